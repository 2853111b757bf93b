"""How agents *decide*: pure functions, testable without a model (ASSUME's units vs strategies).

Each takes numbers or numpy arrays and returns new values; agents call them with their state.
Alternatives sit in registries from name to function; an unknown name fails with the list.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from market.errors import UnknownNameError

# ------------------------------------------------------------------- cloud pricing ---


def _utilization_margin(margin: float, utilization: float, target: float, response: float,
                        lo: float, hi: float) -> float:
    """Raise the markup when utilization is above target, cut it when below (bounded)."""
    return min(max(margin + response * (utilization - target), lo), hi)


def _posted_price(margin: float, utilization: float, target: float, response: float,
                  lo: float, hi: float) -> float:
    """A posted list price: the markup stays where it is (within bounds) whatever the load."""
    return min(max(margin, lo), hi)


PRICING: dict[str, Callable[..., float]] = {
    "utilization_margin": _utilization_margin,
    "posted_price": _posted_price,
}


def pricing_strategy(name: str) -> Callable[..., float]:
    if name not in PRICING:
        raise UnknownNameError("pricing strategy", name, list(PRICING))
    return PRICING[name]


# --------------------------------------------------------------- cloud investment ---

def investment_rate_per_year(revenue_usd_per_offered_h100e_hour: float,
                             new_cost_usd_per_h100e_hour: float, response: float,
                             max_rate: float = 3.0) -> float:
    """Fleet growth a cloud orders for [fraction/yr], from the return on a new chip.

    The return is what an offered H100e-hour earned last month (price x utilization) over the
    full owned cost of a new one, minus one; the cloud grows its fleet by `response` times that
    return per year, between 0 and `max_rate`.
    """
    if new_cost_usd_per_h100e_hour <= 0:
        return 0.0
    ret = revenue_usd_per_offered_h100e_hour / new_cost_usd_per_h100e_hour - 1.0
    return min(max(float(response * ret), 0.0), max_rate)


def split_order(weights: np.ndarray, available: np.ndarray) -> np.ndarray:
    """Share of an order going to each vendor: preference weights over vendors that have an
    allowed product, renormalized; all zeros when none has."""
    w = [wt if ok else 0.0 for wt, ok in zip(weights.tolist(), available.tolist())]
    total = sum(w)
    return np.array([x / total for x in w] if total > 0 else w)


def order_price_response(units: float, price_usd: float, list_price_usd: float,
                         elasticity: float) -> float:
    """Orders shrink as the chip price rises above list: units x (list / price)^elasticity."""
    if price_usd <= 0:
        return units
    return units * (list_price_usd / price_usd) ** elasticity
