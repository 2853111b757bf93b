"""Calendar months as model steps, and piecewise log-linear time paths.

A run's step k (k = 1, 2, ...) is the k-th month from the scenario's start; step 0 is the state
before the first month. Months are written `YYYY-MM` everywhere in scenario files and outputs.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Mapping

import numpy as np


def parse_month(text: str) -> int:
    """Months since year 0 for `YYYY-MM` (a total order that is cheap to subtract)."""
    parts = text.split("-")
    # exactly two digits for the month, as scenario files require: "2024-6" is refused, not
    # taken for 2024-06 in one place and left unmatched in another
    if (len(parts) != 2 or len(parts[0]) != 4 or len(parts[1]) != 2
            or not (parts[0] + parts[1]).isascii() or not parts[0].isdigit()
            or not parts[1].isdigit() or not 1 <= int(parts[1]) <= 12):
        raise ValueError(f"{text!r} is not a month written YYYY-MM")
    return int(parts[0]) * 12 + int(parts[1]) - 1


def format_month(index: int) -> str:
    """Inverse of `parse_month`."""
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def month_start(index: int) -> dt.date:
    """First day of the month, the `date` column of every output table."""
    return dt.date(index // 12, index % 12 + 1, 1)


class TimePath:
    """A quantity given at dated points, interpolated log-linearly between them.

    Before the first point the first value holds; after the last point the value grows at
    `growth_after_per_year` (a fraction, 0.3 = +30%/yr; 0 holds it flat). Log-linear
    interpolation suits capacities and demand that grow by factors per year.
    """

    def __init__(self, points: Mapping[str, float], growth_after_per_year: float = 0.0):
        items = sorted((parse_month(k), float(v)) for k, v in points.items())
        self.months = np.array([m for m, _ in items], dtype=float)
        values = np.array([v for _, v in items], dtype=float)
        self._zero = values <= 0
        self.log_values = np.log(np.where(self._zero, 1e-300, values))
        self.values = values
        self.growth_after = growth_after_per_year

    def at(self, month_index: int | float) -> float:
        """Value at a month index (from `parse_month`)."""
        m = float(month_index)
        if m <= self.months[0]:
            return float(self.values[0])
        if m >= self.months[-1]:
            years = (m - self.months[-1]) / 12.0
            return float(self.values[-1] * (1.0 + self.growth_after) ** years)
        i = int(np.searchsorted(self.months, m, side="right")) - 1
        if self._zero[i] or self._zero[i + 1]:  # a zero endpoint: interpolate linearly
            frac = (m - self.months[i]) / (self.months[i + 1] - self.months[i])
            return float(self.values[i] + frac * (self.values[i + 1] - self.values[i]))
        frac = (m - self.months[i]) / (self.months[i + 1] - self.months[i])
        return float(math.exp(self.log_values[i] + frac * (self.log_values[i + 1]
                                                           - self.log_values[i])))


#: Last month of the data a built-in path may be set from (the calibration window's end).
LAST_OBSERVED_MONTH = "2024-12"


def extrapolated_growth_per_year(points: Mapping[str, float],
                                 last_observed: str = LAST_OBSERVED_MONTH) -> float:
    """Growth a path keeps after its last observed point, by the rule the built-in scenarios
    state [fraction/yr]: half the log growth of the year to that point,
    exp(ln(P(last) / P(last - 12 months)) / 2) - 1 (growth slows as a boom matures; a path
    that was flat stays flat). The path is read as `TimePath` interpolates it; points after
    `last_observed` are not used."""
    kept = {k: v for k, v in points.items() if parse_month(k) <= parse_month(last_observed)}
    path = TimePath(kept)
    last = max(parse_month(k) for k in kept)
    now, before = path.at(last), path.at(last - 12)
    if now <= 0 or before <= 0:
        return 0.0
    return float(math.exp(0.5 * math.log(now / before)) - 1.0)
