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
               guess: np.ndarray | None = None) -> SpotResult:
    """Uniform-price clearing of independent spot markets against continuous demand.

    `demand(p)` maps a price per market (n_markets,) to the quantity demanded per market; it
    must fall (weakly) as the price rises. Supply is the merit order of asks: S(p) is the sum of
    asks priced at or below p. The clearing price is where excess demand D(p) - S(p) changes
    sign (Walras' tatonnement solved directly; Mas-Colell, Whinston and Green 1995, ch. 17),
    found by bisection on log price, all markets at once: either where the demand curve crosses
    a step of supply (a price between asks, set by demand) or at an ask whose quantity is
    rationed at the margin (a price set by that seller's cost). Volume = D(p); asks fill in price
    order. Where demand exceeds all supply even at `price_cap`, the price is the cap, every ask
    sells out and `short` is set (buyers must be rationed by the caller). A `guess` per market
    (last month's price) narrows the first bracket to [guess / b, guess x b], b =
    `GUESS_BRACKET`, where it holds the root, which saves most of the bisection; the result is
    the same up to `rel_tol`.
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

    lo, hi = np.log(lowest), np.full(n_markets, np.log(price_cap))
    at_floor = demand(lowest) <= supply(lowest)           # surplus even at the cheapest ask
    short = has & (demand(np.full(n_markets, price_cap)) > capacity)
    if guess is not None:
        g = np.asarray(guess, float)
        ok = np.isfinite(g) & (g > 0)
        g_lo = np.clip(np.log(np.where(ok, g, 1.0) / GUESS_BRACKET), lo, hi)
        g_hi = np.clip(np.log(np.where(ok, g, 1.0) * GUESS_BRACKET), lo, hi)
        p_lo, p_hi = np.exp(g_lo), np.exp(g_hi)
        holds = ok & (demand(p_lo) > supply(p_lo)) & ~(demand(p_hi) > supply(p_hi))
        lo, hi = np.where(holds, g_lo, lo), np.where(holds, g_hi, hi)
    # markets without asks (no price: NaN below), with a surplus at the cheapest ask (the
    # price is that ask) or short at the cap have no root to find: they set no bracket width
    search = has & ~at_floor & ~short
    width = float(np.max(np.where(search, hi - lo, 0.0))) if n_markets else 0.0
    for _ in range(int(np.ceil(np.log2(max(width, 1e-9) / rel_tol))) + 1):
        mid = 0.5 * (lo + hi)
        p = np.exp(mid)
        excess = demand(p) > supply(p)
        lo, hi = np.where(excess, mid, lo), np.where(excess, hi, mid)
    price = np.where(at_floor, lowest, np.exp(hi))
    price = np.where(short, price_cap, price)
    volume = np.minimum(demand(price), supply(price))    # only asks priced at or below it
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
