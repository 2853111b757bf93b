"""The parameters a calibration searches: the scenario's `[calibrate]` priors as a box.

Points are handled in the unit cube, u in [0, 1)^d: u_j maps to parameter j through its prior's
quantile function (`analysis.design._ppf`, truncated to the prior's bounds), so a uniform draw
of u is a draw from the prior and the emulators work on one scale for every parameter.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from analysis.design import _ppf


@dataclass(frozen=True)
class ParameterSpace:
    paths: tuple[str, ...]
    priors: tuple        #: the `Distribution` of each path

    @classmethod
    def of(cls, scenario) -> "ParameterSpace":
        # sorted: the order of a [calibrate] block does not change the calibration
        paths = tuple(sorted(scenario.calibrate))
        return cls(paths, tuple(scenario.calibrate[p] for p in paths))

    @property
    def dim(self) -> int:
        return len(self.paths)

    def values(self, u: np.ndarray) -> np.ndarray:
        """Parameter values of unit-cube points [n, d] (each in its field's unit)."""
        u = np.atleast_2d(np.asarray(u, float))
        return np.column_stack([np.asarray(_ppf(p, u[:, j]), float)
                                for j, p in enumerate(self.priors)])

    def unit(self, values: np.ndarray) -> np.ndarray:
        """The unit-cube points of parameter values [n, d] (the inverse of `values`)."""
        values = np.atleast_2d(np.asarray(values, float))
        return np.column_stack([_cdf(p, values[:, j]) for j, p in enumerate(self.priors)])

    def params(self, values_row) -> dict[str, float]:
        """One point as the `{path: value}` a run sets."""
        return {path: float(v) for path, v in zip(self.paths, values_row)}

    def bounds(self) -> np.ndarray:
        """[d, 2]: each parameter's lowest and highest value."""
        return self.values(np.array([[0.0] * self.dim, [1.0 - 1e-12] * self.dim])).T

    def describe(self) -> dict:
        return {p: prior.model_dump(exclude_none=True) for p, prior in zip(self.paths,
                                                                            self.priors)}


def _cdf(prior, x: np.ndarray) -> np.ndarray:
    """The prior's cumulative distribution at x, rescaled to its truncation."""
    if prior.dist == "uniform":
        width = prior.high - prior.low
        return np.clip((x - prior.low) / width, 0, 1) if width > 0 else np.zeros_like(x)
    if prior.dist == "triangular":
        width = prior.high - prior.low
        if width == 0:
            return np.zeros_like(x)
        return stats.triang(c=(prior.mode - prior.low) / width, loc=prior.low,
                            scale=width).cdf(x)
    frozen = stats.norm(loc=prior.mean, scale=prior.sigma) if prior.dist == "normal" else \
        stats.lognorm(s=prior.sigma, scale=prior.mean)
    lo, hi = frozen.cdf(prior.low), frozen.cdf(prior.high)
    return np.clip((frozen.cdf(x) - lo) / (hi - lo), 0, 1)
