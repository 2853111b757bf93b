"""How agents *decide*: pure functions, testable without a model (ASSUME's units vs strategies).

Each takes numbers or numpy arrays and returns new values; agents call them with their state.
Alternatives sit in registries from name to function; an unknown name fails with the list.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy.special import ndtr

from market.errors import UnknownNameError

# ------------------------------------------------------------------- cloud pricing ---


@dataclass(frozen=True)
class MarkupSignals:
    """What a cloud's list markup may move with this month."""
    utilization: float          # its load: hours sold / offered (`market.hyperscaler_load`) [-]
    target_utilization: float   # the load it aims at [-]
    #: relative change of its region's hyperscaler share of the hours buyers asked for,
    #: since the month before [fraction]; 0 once acted on
    share_growth: float = 0.0


def _utilization_margin(margin: float, signals: MarkupSignals, params, lo: float,
                        hi: float) -> float:
    """Raise the markup when utilization is above target, cut it when below (bounded), by
    `market.margin_response` per unit of the gap."""
    return min(max(margin + params.margin_response
                   * (signals.utilization - signals.target_utilization), lo), hi)


def _market_share_margin(margin: float, signals: MarkupSignals, params, lo: float,
                         hi: float) -> float:
    """Raise the markup when buyers move toward the hyperscalers, cut it when they move away:
    margin x (1 + `market.markup_share_response` x the share's relative change), the markup
    rule of Dosi, Fagiolo and Roventini (2010, *J. Econ. Dyn. Control* 34(9), eq. 7), where
    a firm's market power grows with its share. It compounds to margin_0 x (s / s_0)^v for
    small steps: the markup is an outcome of where buyers go, not of a bound (`lo`, `hi`
    are guards; `margin_at_bound` reports when they bind)."""
    grown = margin * (1.0 + params.markup_share_response * signals.share_growth)
    return min(max(grown, lo), hi)


def _posted_price(margin: float, signals: MarkupSignals, params, lo: float,
                  hi: float) -> float:
    """A posted list price: the markup stays where it is (within bounds) whatever the load."""
    return min(max(margin, lo), hi)


PRICING: dict[str, Callable[..., float]] = {
    "utilization_margin": _utilization_margin,
    "market_share_margin": _market_share_margin,
    "posted_price": _posted_price,
}


def pricing_strategy(name: str, what: str = "pricing strategy") -> Callable[..., float]:
    """The markup rule `name` (`PRICING`); an unknown name fails with the known ones, `what`
    saying where the name came from."""
    if name not in PRICING:
        raise UnknownNameError(what, name, list(PRICING))
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


#: Largest natural log a float64 exponentiates without overflow: a numerical bound.
MAX_LOG_FLOAT = 709.0


def damped_trend_growth(now: float, then: float, months_between: float,
                        horizon_months: float, damping_per_month: float = 1.0) -> float:
    """Growth over `horizon_months` of a quantity that went from `then` to `now` in
    `months_between` months [-], carried forward as a damped trend: with g the monthly log
    growth seen, month i ahead grows by g x f^i, so the horizon h adds g x f (1 - f^h) /
    (1 - f) in logs (Gardner and McKenzie 1985, *Manage. Sci.* 31(10); f = 1 is the undamped
    trend g x h, f = 0 expects no growth). A damped trend never carries more than f / (1 - f)
    months of today's growth, however long the horizon. 1 where either value is not
    positive."""
    if now <= 0 or then <= 0 or months_between <= 0:
        return 1.0
    f = float(damping_per_month)
    if f >= 1.0:
        months = float(horizon_months)
    elif f <= 0.0:
        months = 0.0
    else:
        months = f * -np.expm1(horizon_months * np.log(f)) / (1.0 - f)
    # in logs, bounded to what a float holds (a world whose demand jumps from nothing)
    return float(np.exp(min(np.log(now / then) / months_between * months, MAX_LOG_FLOAT)))


def demand_growth_factor(history, region: int, memory_months: float,
                         horizon_months: float, trend_damping_per_month: float = 1.0) -> float:
    """Growth of a region's demand a cloud expects over `horizon_months` [-]: the trend of
    the last `memory_months` of demand it has seen, D_t / D_(t-m) (an extrapolative
    expectation of the kind firms form from recent growth; Nerlove 1958, applied to the
    growth rate), carried forward as a damped trend (`damped_trend_growth`). 1 until two
    months have been seen."""
    m = min(int(round(max(memory_months, 1.0))), len(history) - 1)
    if m < 1:
        return 1.0
    return damped_trend_growth(float(history[-1][region]), float(history[-1 - m][region]), m,
                               horizon_months, trend_damping_per_month)


def expected_load_at_delivery(load: float, demand_growth: float, installed_h100e: float,
                              committed_h100e: float, supply_line_weight: float) -> float:
    """Demand per offered hour a cloud expects when what it has ordered is installed [-]:
    today's load (hours asked / offered) x the demand growth it expects, over the fleet it
    will have: installed + w x (committed - installed), w the weight it gives its supply line
    (Sterman 1989, *Manage. Sci.* 35(3): decision makers underweight the supply line, w < 1,
    which makes orders overshoot)."""
    if installed_h100e <= 0:
        return load * demand_growth
    fleet = installed_h100e + supply_line_weight * max(committed_h100e - installed_h100e, 0.0)
    return load * demand_growth * installed_h100e / fleet


def added_hour_earnings_usd(price_usd_per_sold_hour: float, load_at_delivery: float,
                            posted_price: bool, demand_uncertainty: float,
                            idle_usd_per_hour: float) -> float:
    """What an hour added to a cloud's fleet is expected to earn at delivery [USD per offered
    H100e-hour], from the price of an hour it sells at its own terms and the load expected
    then (hours asked at those terms / offered, `expected_load_at_delivery`).

    A seller at spot sells all it offers at a price that moves with the load (unit
    elasticity of the clearing price to capacity, the iso-elastic demand of `agents.demand`
    at elasticity 1): price x load. A seller at a posted price sells the added hour at that
    price only if demand then exceeds its fleet, with probability Phi(ln(load) / s) for a
    forecast of log spread s; otherwise the hour is idle and earns `idle_usd_per_hour` (on
    the spot market): the newsvendor's marginal value of capacity (Arrow, Harris and
    Marschak 1951, *Econometrica* 19(3); Van Mieghem 2003, *Manuf. Serv. Oper. Manag.*
    5(4))."""
    if not posted_price:
        return float(price_usd_per_sold_hour * load_at_delivery)
    sold = float(ndtr(np.log(max(load_at_delivery, 1e-12)) / max(demand_uncertainty, 1e-6)))
    return sold * price_usd_per_sold_hour + (1.0 - sold) * idle_usd_per_hour


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
                             response_per_year: float,
                             replacement_per_year: float = 0.0) -> float:
    """Growth of its committed fleet a cloud orders for [fraction/yr]: depreciation
    (`replacement_per_year`, 1 / chip life, the steady-state replacement rate) plus
    `response_per_year` x (PV / cost - 1), never below 0 (Tobin's q investment: gross
    investment covers wear and adds more while q = value / replacement cost > 1, at a rate
    rising with q - 1; Hayashi 1982, *Econometrica* 50(1), I/K = delta + (q - 1) / phi)."""
    if cost_usd_per_h100e <= 0:
        return 0.0
    return max(float(replacement_per_year
                     + response_per_year * (pv_usd_per_h100e / cost_usd_per_h100e - 1.0)), 0.0)


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


def power_to_start_mw(committed_fleet_mw: float, expected_order_mw_per_month: float,
                      build_lag_months: float, site_committed_mw: float) -> float:
    """Datacenter power an owner starts building this month [MW]: what its fleet will draw
    when a project started now comes online (the fleet installed, shipping and on order,
    plus the orders it expects to want meanwhile at the rate it has wanted them), less the
    power it has online and under construction; nothing when that covers it. The
    accelerator rule of capacity investment (capacity follows the demand expected over the
    build lag; Chenery 1952, *Econometrica* 20(1)), as the foundry's (`agents.foundry`)."""
    need = committed_fleet_mw + max(expected_order_mw_per_month, 0.0) * build_lag_months
    return max(need - site_committed_mw, 0.0)


def effective_chip_cost(cost_usd_per_h100e: np.ndarray, weights: np.ndarray,
                        switching_cost: float) -> np.ndarray:
    """What a buyer counts a vendor's chip as costing [USD per market H100e]: its cost (chip
    and server per H100e of the hour's value to the buyer's market) x (1 + `switching_cost`
    x (1 - w / w_max)), w the buyer's preference weight for the vendor and w_max its
    highest among the vendors on offer: moving away from the vendor it prefers costs it
    software ports, requalification and a second supply chain (a switching cost in the
    sense of Klemperer 1987, *Q. J. Econ.* 102(2)). Inf where there is no offer (NaN cost)
    or the buyer gives the vendor no weight (a chip its state pays for in full costs 0)."""
    # a handful of vendors per call, many calls a month: plain floats beat numpy here
    cost = np.asarray(cost_usd_per_h100e, float).tolist()
    w = np.asarray(weights, float).tolist()
    ok = [c >= 0 and c != math.inf and wv > 0 for c, wv in zip(cost, w)]   # NaN fails c >= 0
    if not any(ok):
        return np.full(len(cost), np.inf)
    w_max = max(wv for wv, o in zip(w, ok) if o)
    return np.array([c * (1.0 + switching_cost * (1.0 - wv / w_max)) if o else math.inf
                     for c, wv, o in zip(cost, w, ok)])


def vendor_shares(cost_usd_per_h100e: np.ndarray, weights: np.ndarray, switching_cost: float,
                  sensitivity: float) -> np.ndarray:
    """Share of an order (in H100e) going to each vendor [fraction]: a multinomial logit over
    the vendors on offer in the log of their effective cost (`effective_chip_cost`), share_v
    proportional to cost_v^-`sensitivity` (McFadden 1974, "Conditional logit analysis of
    qualitative choice behavior"): buyers choose chips by value for their use, preferences
    enter only as the switching cost. All zeros when no vendor is on offer."""
    eff = effective_chip_cost(cost_usd_per_h100e, weights, switching_cost).tolist()
    ok = [c != math.inf for c in eff]
    if not any(ok):
        return np.zeros(len(eff))
    # a free chip (cost 0) takes the whole order: its log cost is floored at that of a
    # millionth of a dollar
    log_cost = np.log([max(c, 1e-6) if o else 1.0 for c, o in zip(eff, ok)]).tolist()
    least = min(lc for lc, o in zip(log_cost, ok) if o)
    e = np.exp([-sensitivity * (lc - least) if o else -math.inf
                for lc, o in zip(log_cost, ok)])
    return e / e.sum()


def order_price_response(units: float, price_usd: float, list_price_usd: float,
                         elasticity: float) -> float:
    """Orders shrink as the chip price rises above list: units x (list / price)^elasticity."""
    if price_usd <= 0:
        return units
    return units * (list_price_usd / price_usd) ** elasticity
