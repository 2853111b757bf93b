"""How agents *decide*: pure functions, testable without a model (ASSUME's units vs strategies).

Each takes numbers or numpy arrays and returns new values; agents call them with their state.
Alternatives sit in registries from name to function; an unknown name fails with the list.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from market import costs
from market.errors import UnknownNameError
from market.world import TRAINING_BID_FLOOR_USD_PER_H100E_HOUR

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


def ask_prices(cost_usd_per_h100e_hour: np.ndarray, energy_usd_per_h100e_hour: np.ndarray,
               margin: float) -> np.ndarray:
    """Ask per H100e-hour = full owned cost x (1 + margin), never below the electricity bill."""
    return np.maximum(cost_usd_per_h100e_hour * (1.0 + margin), energy_usd_per_h100e_hour)


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


# -------------------------------------------------------------------- lab bidding ---

def lab_bids(market_need_h100e_hours: np.ndarray, total_need_h100e_hours: np.ndarray,
             budget_usd_per_month: np.ndarray, inference_share: np.ndarray,
             inference_wtp: float, training_wtp_cap: float, experiment_share: float,
             experiment_wtp: float) -> tuple[np.ndarray, np.ndarray]:
    """Three demand blocks per lab: (quantity [H100e·h], price [USD/(H100e·h)]), shape (3, n).

    Serving is bought at what inference earns (it pays for itself); training at what the
    training budget affords per hour of the lab's whole training need (own cluster included),
    capped; opportunistic experiments at a low price. The experiment block gives the demand
    curve a tail, so prices in a glut stop near what labs value spare compute at rather than
    at the electricity bill.
    """
    need = np.asarray(market_need_h100e_hours, float)
    inf_q = need * inference_share
    train_q = need - inf_q
    train_total = np.asarray(total_need_h100e_hours, float) * (1.0 - inference_share)
    affordable = np.divide(budget_usd_per_month, train_total,
                           out=np.full_like(need, training_wtp_cap), where=train_total > 0)
    train_p = np.clip(affordable, TRAINING_BID_FLOOR_USD_PER_H100E_HOUR, training_wtp_cap)
    qty = np.stack([inf_q, train_q, train_q * experiment_share])
    price = np.stack([np.full_like(need, inference_wtp), train_p,
                      np.minimum(np.full_like(need, experiment_wtp), train_p)])
    return qty, price


# ------------------------------------------------------------------ rent vs build ---

def build_decision(gap_gpus: np.ndarray, capex_usd_per_gpu: np.ndarray,
                   opex_usd_per_gpu_month: np.ndarray, rental_usd_per_gpu_hour: np.ndarray,
                   utilization: float, horizon_months: float) -> np.ndarray:
    """True where building `gap_gpus` breaks even against renting within `horizon_months`.

    Uses the cost core's cloud-vs-build breakeven (`market.costs.breakeven_months`).
    """
    gap = np.maximum(np.asarray(gap_gpus, float), 1.0)
    months = costs.breakeven_months(gap * capex_usd_per_gpu, gap * opex_usd_per_gpu_month, gap,
                                    rental_usd_per_gpu_hour, utilization)
    return np.asarray(months) <= horizon_months
