"""The low room every part of the month imports: calendar constants and the shock calendar.

Nothing here imports from `agents`, the phase modules or `market.model`, so agents and phases
can share these without importing their caller (docs/model.md, "Where decisions live").
"""

from __future__ import annotations

import numpy as np

from market import costs
from market.catalog import H100_DENSE_BF16_TFLOPS

#: Price tiers of every region's GPU-hour market, in their index order.
TIERS = ("hyperscaler", "neocloud")
#: The instrument each tier's headline price is quoted in: hyperscalers' posted list price,
#: neoclouds' monthly spot price (`price_index.instrument`).
HEADLINE_INSTRUMENT = {"hyperscaler": "list", "neocloud": "spot"}
#: Hours in an average calendar month [h].
HOURS_PER_MONTH = costs.HOURS_PER_MONTH
#: FLOP delivered by one H100e-hour at 100% of dense BF16 peak [FLOP].
FLOP_PER_H100E_HOUR = H100_DENSE_BF16_TFLOPS * 1e12 * costs.SECONDS_PER_HOUR
#: Treatments under which a variant serves a market.
FREE = ("allowed", "notification")


def _any_event(event) -> bool:
    return True


def shock_factor(windows, month: int, kind: str, match=_any_event) -> float:
    """Product of the factors of the `kind` shocks in force in `month` [-].

    `windows` holds (kind, first month, last month, event) of the shocks with a duration.
    """
    factor = 1.0
    for k, first, last, event in windows:
        if k == kind and first <= month <= last and match(event):
            factor *= event.factor
    return factor


def efficiency_factor(windows, month: int) -> float:
    """FLOP needed per unit of capability after efficiency breakthroughs [-]: the saving
    is whole at the start and demand grows back into it linearly over `months`."""
    factor = 1.0
    for k, first, last, event in windows:
        if k == "efficiency_shock" and first <= month:
            done = min(1.0, (month - first) / max(last - first + 1, 1))
            factor *= event.factor + (1.0 - event.factor) * done
    return factor


def going_rate(price_index: dict, region: str | None) -> float | None:
    """Last month's neocloud (else hyperscaler) price index of a region [USD/H100e-h]."""
    return price_index.get((region, "neocloud"), price_index.get((region, "hyperscaler")))


def energy_usd_per_chip_hour(pue, electricity_usd_per_kwh, tdp_w: np.ndarray,
                             server_power: np.ndarray, power_fraction: np.ndarray) -> np.ndarray:
    """Per site and chip (sites x chips), the cost core's energy cost of a chip-hour [USD]:
    electricity [USD/kWh] and PUE [-] are per site, TDP [W], server power multiplier [-]
    and average power fraction [-] per chip."""
    pue = np.array(pue)[:, None]
    price = np.array(electricity_usd_per_kwh)[:, None]
    kwh = costs.energy_kwh(1.0, tdp_w[None, :], server_power[None, :],
                           power_fraction[None, :], pue)
    return np.asarray(costs.energy_cost_usd(kwh, price))
