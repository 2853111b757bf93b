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

def adaptive_expectation(expected: float | None, observed: float, memory_months: float) -> float:
    """Adaptive expectations (Cagan 1956, Nerlove 1958): E_t = E_(t-1) + (x_t - E_(t-1)) / m.

    `memory_months` m >= 1 is the mean age of what the expectation remembers [months]: m = 1
    believes last month, larger m forgets an observation at rate 1/m a month. The first
    observation sets the expectation.
    """
    if expected is None:
        return float(observed)
    return float(expected + (observed - expected) / max(memory_months, 1.0))


def discount_years(rate_per_year: float, life_years: float, delay_years: float) -> float:
    """Present value of 1 a year received continuously from `delay_years` for `life_years`,
    discounted at the continuous `rate_per_year` k: e^(-k L) (1 - e^(-k T)) / k [yr]
    (T e^(-k L) when k = 0)."""
    k, life, delay = float(rate_per_year), float(life_years), float(delay_years)
    if abs(k) < 1e-12:
        return life
    return float(np.exp(-k * delay) * -np.expm1(-k * life) / k)


def expected_pv_usd_per_h100e(revenue_usd_per_offered_h100e_hour: float,
                              energy_usd_per_h100e_hour: float, offered_hours_per_year: float,
                              price_decline_per_year: float, wacc_per_year: float,
                              life_years: float, lead_years: float) -> float:
    """Expected present value of one H100e of a chip ordered now, net of energy [USD/H100e].

    The chip arrives after the lead time L and earns for its life T; an offered hour earns
    the expected revenue y (price x utilization), falling at the expected decline of the
    hour's price d; energy e is paid on every offered hour; cash is discounted at the cost
    of capital (WACC) w:

        PV = H x [y x A(r + g) - e x A(r)],   A(k) = e^(-k L) (1 - e^(-k T)) / k,

    with H the offered hours a year, r = ln(1 + w) and g = -ln(1 - d) the continuous rates
    (the standard discounted-cash-flow value of a declining annuity; the decline follows
    Epoch's exponential hardware value decline, `market.costs`).
    """
    r = np.log1p(wacc_per_year)
    g = -np.log1p(-price_decline_per_year)
    revenue = revenue_usd_per_offered_h100e_hour * discount_years(r + g, life_years, lead_years)
    energy = energy_usd_per_h100e_hour * discount_years(r, life_years, lead_years)
    return float(offered_hours_per_year * (revenue - energy))


def investment_rate_per_year(pv_usd_per_h100e: float, cost_usd_per_h100e: float,
                             response_per_year: float) -> float:
    """Growth of its committed fleet a cloud orders for [fraction/yr]: `response_per_year` x
    (PV / cost - 1) when the expected present value of a new H100e exceeds its owned cost,
    else 0 (Tobin's q investment: invest while q = value / replacement cost > 1, at a rate
    rising with q - 1; Hayashi 1982)."""
    if cost_usd_per_h100e <= 0:
        return 0.0
    return max(float(response_per_year * (pv_usd_per_h100e / cost_usd_per_h100e - 1.0)), 0.0)


def financing_allowance_usd(operating_cash_usd: float, outside_usd: float,
                            debt_capacity_usd: float, debt_usd: float) -> float:
    """What a cloud may spend on chips this month [USD]: its own funds (operating cash flow
    after debt repayment, never below 0, plus the outside money it is handed) plus what it
    may still borrow (debt capacity less the debt it has)."""
    return max(operating_cash_usd, 0.0) + outside_usd + max(debt_capacity_usd - debt_usd, 0.0)


def power_room_h100e(capacity_mw: float, installed_mw: float, pipeline_mw: float,
                     new_mw_per_h100e: float) -> float:
    """H100e of the new chip that fit in a site's free power [H100e]: (capacity - the MW of
    the installed fleet and of what is on its way, all at facility power) / the new chip's
    facility MW per H100e."""
    if new_mw_per_h100e <= 0:
        return 0.0
    return max(capacity_mw - installed_mw - pipeline_mw, 0.0) / new_mw_per_h100e


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
