"""Market mechanisms as pure functions over numpy arrays.

1. `clear`: a uniform-price merit-order (call) auction for GPU-hours. Bids are sorted from the
   highest price down, asks from the lowest up; the cleared volume is the largest quantity at
   which the marginal bid is at least the marginal ask. The uniform price is the price of the
   side that is rationed at the margin (the marginal bid in a shortage, the marginal ask in a
   surplus), or the midpoint of the bid-ask gap when both sides clear exactly (the k = 1/2
   double auction; McAfee 1992, doi:10.1016/0022-0531(92)90091-U; ASSUME's pay-as-clear
   mechanism). Every filled bid is at or above the price, every filled ask at or below it.
2. `ration`: how scarce chips are shared among open orders (pro-rata or first come).

Tie-breaking among participants at the marginal price is a named rule (see TIE_BREAKS);
results are new objects and the inputs are never written to.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from market.errors import UnknownNameError


@dataclass(frozen=True)
class ClearingResult:
    """Outcome of one call auction.

    price : uniform price [USD per unit]; for zero volume, the lowest ask (what a buyer would
        have had to pay), or NaN when there are no asks at all
    volume : traded quantity [units]
    bid_fill, ask_fill : quantity filled per bid / per ask, same order as the inputs [units]
    """

    price: float
    volume: float
    bid_fill: np.ndarray
    ask_fill: np.ndarray


def _fill_pro_rata(qty: np.ndarray, price: np.ndarray, volume: float, descending: bool,
                   rng: np.random.Generator | None) -> np.ndarray:
    """Fill in price priority; participants tied at the margin share the rest pro rata."""
    key = -price if descending else price
    order = np.argsort(key, kind="stable")
    k_sorted, q_sorted = key[order], qty[order]
    cum = np.concatenate(([0.0], np.cumsum(q_sorted)))
    lo = np.searchsorted(k_sorted, key, side="left")   # quantity strictly better: cum[lo]
    hi = np.searchsorted(k_sorted, key, side="right")  # through the tie group: cum[hi]
    better, tied = cum[lo], cum[hi] - cum[lo]
    with np.errstate(all="ignore"):
        share = np.clip((volume - better) / np.where(tied > 0, tied, 1.0), 0.0, 1.0)
    return qty * np.where(tied > 0, share, 0.0)


def _fill_random(qty: np.ndarray, price: np.ndarray, volume: float, descending: bool,
                 rng: np.random.Generator | None) -> np.ndarray:
    """Fill in price priority; ties are served in an order drawn from the model's generator."""
    if rng is None:
        raise ValueError("the 'random' tie-break needs the model's generator")
    key = -price if descending else price
    order = np.lexsort((rng.permutation(len(key)), key))
    filled_sorted = np.clip(volume - np.concatenate(([0.0], np.cumsum(qty[order])[:-1])),
                            0.0, qty[order])
    out = np.empty_like(qty)
    out[order] = filled_sorted
    return out


#: Quantities at or below this are treated as absent (guards against denormal arithmetic).
MIN_QUANTITY = 1e-12

TIE_BREAKS: dict[str, Callable] = {"pro_rata": _fill_pro_rata, "random": _fill_random}


def _tie_break(name: str) -> Callable:
    if name not in TIE_BREAKS:
        raise UnknownNameError("tie-break rule", name, list(TIE_BREAKS))
    return TIE_BREAKS[name]


def clear(bid_qty: np.ndarray, bid_price: np.ndarray, ask_qty: np.ndarray,
          ask_price: np.ndarray, *, tie_break: str = "pro_rata",
          rng: np.random.Generator | None = None) -> ClearingResult:
    """Clear one uniform-price market (see the module docstring for the rule).

    Worked example (shortage): asks 10 @ 1 and 10 @ 2; bids 15 @ 5 and 10 @ 3. Supply 20 <
    demand 25 at any price up to 3, so volume 20, the 3-bid is rationed (5 of 10) and sets the
    price: 3.
    """
    bid_qty, bid_price = np.asarray(bid_qty, float), np.asarray(bid_price, float)
    ask_qty, ask_price = np.asarray(ask_qty, float), np.asarray(ask_price, float)
    for name, arr in (("bid_qty", bid_qty), ("ask_qty", ask_qty)):
        if np.any(arr < 0) or not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} must be finite and non-negative")
    fill = _tie_break(tie_break)
    bids = bid_qty > MIN_QUANTITY
    asks = ask_qty > MIN_QUANTITY
    empty = ClearingResult(float(ask_price[asks].min()) if asks.any() else float("nan"), 0.0,
                           np.zeros_like(bid_qty), np.zeros_like(ask_qty))
    if not bids.any() or not asks.any():
        return empty
    bp, bq, ap, aq = bid_price[bids], bid_qty[bids], ask_price[asks], ask_qty[asks]
    candidates = np.unique(np.concatenate((bp, ap)))
    # supply S(p): asks priced <= p; demand D(p): bids priced >= p
    a_order, b_order = np.argsort(ap), np.argsort(bp)
    a_cum = np.concatenate(([0.0], np.cumsum(aq[a_order])))
    b_cum = np.concatenate(([0.0], np.cumsum(bq[b_order])))
    supply = a_cum[np.searchsorted(ap[a_order], candidates, side="right")]
    demand = b_cum[-1] - b_cum[np.searchsorted(bp[b_order], candidates, side="left")]
    traded = np.minimum(supply, demand)
    volume = float(traded.max())
    if volume <= 0:
        return empty
    at_max = np.flatnonzero(traded >= volume * (1 - 1e-12))
    p_lo, p_hi = candidates[at_max[0]], candidates[at_max[-1]]
    if demand[at_max[-1]] > volume * (1 + 1e-12):      # bids rationed at the margin
        price = float(p_hi)
    elif supply[at_max[0]] > volume * (1 + 1e-12):     # asks rationed at the margin
        price = float(p_lo)
    else:                                              # exact match: middle of the gap
        price = float(0.5 * (p_lo + p_hi))
    bid_fill = np.zeros_like(bid_qty)
    ask_fill = np.zeros_like(ask_qty)
    bid_fill[bids] = fill(bq, bp, volume, True, rng)
    ask_fill[asks] = fill(aq, ap, volume, False, rng)
    return ClearingResult(price, volume, bid_fill, ask_fill)


# ---------------------------------------------------------------------- chip rationing ---

def _ration_pro_rata(outstanding: np.ndarray, placed_step: np.ndarray, supply: float
                     ) -> np.ndarray:
    total = outstanding.sum()
    if total <= supply:
        return outstanding.copy()
    return outstanding * (supply / total)


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
