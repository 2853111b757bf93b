"""Market mechanisms as pure functions over numpy arrays.

1. `clear_spot`: uniform-price clearing of spot markets whose buyers have continuous,
   downward-sloping demand curves, against the merit order of sellers' asks (see its
   docstring). Prices are set where demand meets supply, not on any bid constant.
2. `ration`: how scarce chips are shared among open orders (pro-rata or first come).

Results are new objects and the inputs are never written to.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from market.errors import UnknownNameError

#: Quantities at or below this are treated as absent (guards against denormal arithmetic).
MIN_QUANTITY = 1e-12


# ---------------------------------------------------------------------- chip rationing ---

def _ration_pro_rata(outstanding: np.ndarray, placed_step: np.ndarray, supply: float
                     ) -> np.ndarray:
    total = outstanding.sum()
    if total <= supply:
        return outstanding.copy()
    return outstanding * (supply / total)


def ration_pro_rata_by_group(outstanding: np.ndarray, group: np.ndarray,
                             supply: np.ndarray) -> np.ndarray:
    """The pro-rata rule for many products at once: orders of group g share `supply[g]` in
    proportion to their size when the group's orders exceed it [units]."""
    supply = np.maximum(np.asarray(supply, float), 0.0)
    total = np.bincount(group, weights=outstanding, minlength=supply.size)
    scale = np.divide(supply, total, out=np.ones(supply.size), where=total > supply)
    return outstanding * scale[group]


def _ration_first_come(outstanding: np.ndarray, placed_step: np.ndarray, supply: float
                       ) -> np.ndarray:
    order = np.argsort(placed_step, kind="stable")
    before = np.concatenate(([0.0], np.cumsum(outstanding[order])[:-1]))
    out = np.empty_like(outstanding)
    out[order] = np.clip(supply - before, 0.0, outstanding[order])
    return out


#: Chip rationing rules: pro_rata shares a short month's output in proportion to open orders
#: (allocation by backlog, as NVIDIA described its H100 allocation); first_come serves the
#: oldest orders first.
RATIONING: dict[str, Callable] = {"pro_rata": _ration_pro_rata,
                                  "first_come": _ration_first_come}


def ration(outstanding: np.ndarray, placed_step: np.ndarray, supply: float,
           rule: str = "pro_rata") -> np.ndarray:
    """Units shipped to each open order out of `supply` units [units], never above the order."""
    if rule not in RATIONING:
        raise UnknownNameError("rationing rule", rule, list(RATIONING))
    outstanding = np.asarray(outstanding, float)
    if outstanding.size == 0 or supply <= 0:
        return np.zeros_like(outstanding)
    return RATIONING[rule](outstanding, np.asarray(placed_step, float), float(supply))


# ------------------------------------------------------------------ many markets at once ---

# -------------------------------------------------------------- spot (continuous demand) ---

@dataclass(frozen=True)
class SpotResult:
    """Outcome of clearing spot markets whose buyers have continuous demand curves.

    price : per market [USD per unit]; NaN where the market has no asks
    volume : traded quantity per market [units]
    ask_fill : quantity sold per ask, same order as the inputs [units]
    short : per market, True where demand exceeds all supply at `price_cap` (buyers rationed)
    """

    price: np.ndarray
    volume: np.ndarray
    ask_fill: np.ndarray
    short: np.ndarray


#: Factor around a market's guess (last month's price) its first bracket spans [-]: a
#: numerical choice (a price that moved further is found in the full bracket), not behaviour.
GUESS_BRACKET = 1.5


def clear_spot(demand: Callable[[np.ndarray], np.ndarray], ask_market: np.ndarray,
               ask_qty: np.ndarray, ask_price: np.ndarray, n_markets: int,
               price_cap: float, rel_tol: float = 1e-5,
               guess: np.ndarray | None = None, demand_of_markets: bool = False
               ) -> SpotResult:
    """Uniform-price clearing of independent spot markets against continuous demand.

    `demand(p)` maps a price per market (n_markets,) to the quantity demanded per market; it
    must fall (weakly) as the price rises. Supply is the merit order of asks: S(p) is the sum of
    asks priced at or below p. The clearing price is where excess demand D(p) - S(p) changes
    sign (Walras' tatonnement solved directly; Mas-Colell, Whinston and Green 1995, ch. 17),
    found on log price, all markets at once: either where the demand curve crosses a step of
    supply (a price between asks, set by demand) or at an ask whose quantity is rationed at the
    margin (a price set by that seller's cost). Volume = D(p); asks fill in price order. Where
    demand exceeds all supply even at `price_cap`, the price is the cap, every ask sells out
    and `short` is set (buyers must be rationed by the caller). A `guess` per market (last
    month's price) narrows the first bracket to [guess / b, guess x b], b = `GUESS_BRACKET`,
    where it holds the root. The root is found by `_itp_roots` (never more demand
    evaluations than bisection, a handful where excess demand is smooth); the price is the
    lowest one found without excess demand, within `rel_tol` of the root.

    `demand_of_markets`: `demand(p, markets)` also takes a mask of the markets whose demand
    is wanted (the others' entries may be anything), so that once some markets are solved
    the search stops evaluating their buyers' curves.
    """
    ask_market = np.asarray(ask_market, dtype=np.int64)
    ask_qty, ask_price = np.asarray(ask_qty, float), np.asarray(ask_price, float)
    has = np.bincount(ask_market, weights=(ask_qty > MIN_QUANTITY).astype(float),
                      minlength=n_markets) > 0
    lowest = np.full(n_markets, np.inf)
    np.minimum.at(lowest, ask_market, np.where(ask_qty > MIN_QUANTITY, ask_price, np.inf))
    lowest = np.where(has, np.maximum(lowest, 1e-9), 1.0)
    capacity = np.bincount(ask_market, weights=ask_qty, minlength=n_markets)

    def supply(p):
        offered = np.where(ask_price <= p[ask_market], ask_qty, 0.0)
        return np.bincount(ask_market, weights=offered, minlength=n_markets)

    def shortfall(x, markets=None):
        """Supply less demand at log price `x` (rises with x), and the demand; only the
        entries of `markets` (a mask; None: all) are wanted."""
        p = np.exp(x)
        d = demand(p, markets) if demand_of_markets and markets is not None else demand(p)
        return supply(p) - d, d

    floor_x, cap_x = np.log(lowest), np.full(n_markets, np.log(price_cap))
    holds = np.zeros(n_markets, bool)
    if guess is not None:
        g = np.asarray(guess, float)
        ok = np.isfinite(g) & (g > 0)
        a = np.clip(np.log(np.where(ok, g, 1.0) / GUESS_BRACKET), floor_x, cap_x)
        b = np.clip(np.log(np.where(ok, g, 1.0) * GUESS_BRACKET), floor_x, cap_x)
        f_a, _ = shortfall(a)
        f_b, d_b = shortfall(b)
        holds = ok & (f_a < 0) & (f_b >= 0)
    at_floor = short = np.zeros(n_markets, bool)
    d_floor = d_cap = np.zeros(n_markets)
    if guess is None or not holds[has].all():
        # a market whose guess does not hold the root: is there a root between its
        # cheapest ask and the cap? (one whose guess holds it has excess demand at its
        # cheapest ask and none at the cap: demand falls and supply rises with the price)
        # (only the markets whose guess does not hold use these)
        f_floor, d_floor = shortfall(floor_x, None if guess is None else ~holds)
        f_cap, d_cap = shortfall(cap_x, None if guess is None else ~holds)
        at_floor = ~holds & (f_floor >= 0)                 # surplus even at the cheapest ask
        short = has & ~holds & (d_cap > capacity)
        if guess is None:
            a, b, f_a, f_b, d_b = floor_x, cap_x, f_floor, f_cap, d_cap
        else:
            a, f_a = np.where(holds, a, floor_x), np.where(holds, f_a, f_floor)
            b, f_b = np.where(holds, b, cap_x), np.where(holds, f_b, f_cap)
            d_b = np.where(holds, d_b, d_cap)
    # markets without asks (no price: NaN below), with a surplus at the cheapest ask (the
    # price is that ask) or short at the cap have no root to find
    search = has & ~at_floor & ~short
    hi, d_hi = _itp_roots(shortfall, a, b, f_a, f_b, d_b, search, rel_tol)
    price = np.where(at_floor, lowest, np.exp(hi))
    price = np.where(short, price_cap, price)
    demanded = np.where(at_floor, d_floor, np.where(short, d_cap, d_hi))
    volume = np.minimum(demanded, supply(price))          # only asks priced at or below it
    volume = np.where(has, volume, 0.0)
    price = np.where(has, price, np.nan)
    # fill asks in price order (ties in input order) up to each market's volume
    order = np.lexsort((ask_price, ask_market))
    q = ask_qty[order]
    m = ask_market[order]
    cum = np.cumsum(q)
    before = cum - q
    start = np.zeros(n_markets)
    firsts = np.flatnonzero(np.r_[True, m[1:] != m[:-1]]) if m.size else np.zeros(0, int)
    start[m[firsts]] = before[firsts]
    done_before = before - start[m]
    fill_sorted = np.clip(volume[m] - done_before, 0.0, q)
    ask_fill = np.zeros_like(ask_qty)
    ask_fill[order] = fill_sorted
    return SpotResult(price, volume, ask_fill, short)


#: The ITP method's constants (Oliveira and Takahashi 2021, ACM TOMS 47(1), their
#: recommended values): the truncation kappa_1 x width^kappa_2 and n_0 spare iterations over
#: bisection's count. Numerical choices, not behaviour.
ITP_KAPPA_1, ITP_KAPPA_2, ITP_SPARE_STEPS = 0.2, 2.0, 1


def _itp_roots(f, a, b, f_a, f_b, d_b, search, rel_tol):
    """Roots of increasing functions, one per market, by the ITP method (interpolate,
    truncate, project; Oliveira and Takahashi 2021), vectorized: each step takes the
    regula-falsi point, moves it a little towards the midpoint (so the bracket shrinks from
    both sides) and keeps it within bisection's guarantee, so a market never needs more steps
    than bisection's plus `ITP_SPARE_STEPS` and a smooth one a handful.

    `f(x, markets)` returns (value, demand) per market, wanted only where the mask
    `markets` is set (the markets still searching); f(a) < 0 <= f(b) where `search`.
    Returns the upper end of each bracket once it is no wider than `rel_tol` (log price: a relative
    tolerance on price), and the demand there."""
    eps = 0.5 * rel_tol
    width0 = np.where(search, b - a, 0.0)
    n_max = np.ceil(np.log2(np.maximum(width0, eps) / (2 * eps))) + ITP_SPARE_STEPS
    kappa_1 = ITP_KAPPA_1 / np.maximum(width0, eps)
    active = search & (b - a > 2 * eps)
    a, b, f_a, f_b, d_b = (np.array(v, float) for v in (a, b, f_a, f_b, d_b))
    for j in range(int(n_max.max(initial=0.0)) + 1):
        if not active.any():
            break
        half = 0.5 * (a + b)
        radius = eps * 2.0 ** (n_max - j) - 0.5 * (b - a)
        delta = kappa_1 * (b - a) ** ITP_KAPPA_2
        with np.errstate(invalid="ignore", divide="ignore"):
            falsi = np.where(active, (f_b * a - f_a * b) / (f_b - f_a), half)
        falsi = np.where(np.isfinite(falsi), falsi, half)
        sigma = np.sign(half - falsi)
        trunc = np.where(delta <= np.abs(half - falsi), falsi + sigma * delta, half)
        x = np.where(np.abs(trunc - half) <= radius, trunc, half - sigma * radius)
        x = np.where(active, x, b)
        f_x, d_x = f(x, active)
        up = active & (f_x >= 0)
        down = active & (f_x < 0)
        b, f_b, d_b = np.where(up, x, b), np.where(up, f_x, f_b), np.where(up, d_x, d_b)
        a, f_a = np.where(down, x, a), np.where(down, f_x, f_a)
        active = active & (b - a > 2 * eps)
    return b, d_b
