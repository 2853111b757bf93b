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

@dataclass(frozen=True)
class SegmentedResult:
    """Outcome of clearing independent markets (segments) together.

    price, volume : per segment [USD per unit, units]; a segment that trades nothing has the
        price of its lowest ask, or NaN without asks
    bid_fill, ask_fill : per bid / ask, same order as the inputs [units]
    """

    price: np.ndarray
    volume: np.ndarray
    bid_fill: np.ndarray
    ask_fill: np.ndarray


def clear_segmented(bid_segment: np.ndarray, bid_qty: np.ndarray, bid_price: np.ndarray,
                    ask_segment: np.ndarray, ask_qty: np.ndarray, ask_price: np.ndarray,
                    n_segments: int, check: bool = True) -> SegmentedResult:
    """`clear` with the pro-rata tie rule, for many independent markets in one vectorized
    pass: each bid and ask belongs to the segment (market) numbered in `*_segment`.

    Same rule as `clear`, segment by segment: candidate prices are the distinct bid and ask
    prices of the segment; supply S(p) and demand D(p) are cumulated per segment (in a padded
    segment x candidate matrix, so no sum runs across segments); the volume is max min(S, D)
    and the uniform price comes from the rationed side. The result equals calling `clear` on
    each segment, up to the order of floating-point additions. `check=False` skips the input
    validation for callers whose quantities are finite and non-negative by construction.
    """
    bid_qty, bid_price = np.asarray(bid_qty, float), np.asarray(bid_price, float)
    ask_qty, ask_price = np.asarray(ask_qty, float), np.asarray(ask_price, float)
    if check:
        for name, arr in (("bid_qty", bid_qty), ("ask_qty", ask_qty)):
            if np.any(arr < 0) or not np.all(np.isfinite(arr)):
                raise ValueError(f"{name} must be finite and non-negative")
    price = np.full(n_segments, np.nan)
    volume = np.zeros(n_segments)
    bid_fill, ask_fill = np.zeros_like(bid_qty), np.zeros_like(ask_qty)
    vb, va = np.flatnonzero(bid_qty > MIN_QUANTITY), np.flatnonzero(ask_qty > MIN_QUANTITY)
    if va.size == 0:
        return SegmentedResult(price, volume, bid_fill, ask_fill)
    seg = np.concatenate((np.asarray(bid_segment)[vb], np.asarray(ask_segment)[va]))
    prc = np.concatenate((bid_price[vb], ask_price[va]))
    order = np.lexsort((prc, seg))
    s_sorted, p_sorted = seg[order], prc[order]
    new = np.ones(order.size, dtype=bool)
    new[1:] = (s_sorted[1:] != s_sorted[:-1]) | (p_sorted[1:] != p_sorted[:-1])
    cand = np.empty(order.size, dtype=np.int64)
    cand[order] = np.cumsum(new) - 1
    cand_seg, cand_price = s_sorted[new], p_sorted[new]
    n_c = cand_seg.size
    start = np.ones(n_c, dtype=bool)
    start[1:] = cand_seg[1:] != cand_seg[:-1]
    starts = np.flatnonzero(start)
    group = np.cumsum(start) - 1                     # candidate -> present segment
    pos = np.arange(n_c) - starts[group]             # candidate -> column
    width = int(pos.max()) + 1
    shape = (starts.size, width)
    b_c, a_c = cand[:vb.size], cand[vb.size:]
    cell = group * width + pos                       # candidate -> flat matrix cell
    A = np.bincount(cell[a_c], weights=ask_qty[va], minlength=shape[0] * width).reshape(shape)
    B = np.bincount(cell[b_c], weights=bid_qty[vb], minlength=shape[0] * width).reshape(shape)
    P = np.full(shape, np.nan)
    P.ravel()[cell] = cand_price
    valid = np.arange(width)[None, :] < np.bincount(group)[:, None]   # real candidates
    S = np.cumsum(A, axis=1)                                  # asks priced <= p
    D = np.cumsum(B[:, ::-1], axis=1)[:, ::-1]                # bids priced >= p
    traded = np.where(valid, np.minimum(S, D), -np.inf)
    vol = traded.max(axis=1)
    at_max = valid & (traded >= (vol * (1 - 1e-12))[:, None])
    first = np.argmax(at_max, axis=1)
    last = width - 1 - np.argmax(at_max[:, ::-1], axis=1)
    rows = np.arange(starts.size)
    p_lo, p_hi = P[rows, first], P[rows, last]
    seg_price = np.where(D[rows, last] > vol * (1 + 1e-12), p_hi,
                         np.where(S[rows, first] > vol * (1 + 1e-12), p_lo, 0.5 * (p_lo + p_hi)))
    trades = vol > 0
    if not trades.all():
        lowest_ask = np.where(A > 0, P, np.inf).min(axis=1)
        seg_price = np.where(trades, seg_price,
                             np.where(np.isfinite(lowest_ask), lowest_ask, np.nan))
    present = cand_seg[starts].astype(np.int64)
    price[present] = seg_price
    volume[present] = np.where(trades, vol, 0.0)
    room = np.where(trades, vol, 0.0)[:, None]
    frac_b = np.divide(room - (D - B), B, out=np.zeros(shape), where=B > 0)
    frac_a = np.divide(room - (S - A), A, out=np.zeros(shape), where=A > 0)
    np.clip(frac_b, 0.0, 1.0, out=frac_b)
    np.clip(frac_a, 0.0, 1.0, out=frac_a)
    bid_fill[vb] = bid_qty[vb] * frac_b.ravel()[cell[b_c]]
    ask_fill[va] = ask_qty[va] * frac_a.ravel()[cell[a_c]]
    return SegmentedResult(price, volume, bid_fill, ask_fill)


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


def clear_spot(demand: Callable[[np.ndarray], np.ndarray], ask_market: np.ndarray,
               ask_qty: np.ndarray, ask_price: np.ndarray, n_markets: int,
               price_cap: float, rel_tol: float = 1e-6) -> SpotResult:
    """Uniform-price clearing of independent spot markets against continuous demand.

    `demand(p)` maps a price per market (n_markets,) to the quantity demanded per market; it
    must fall (weakly) as the price rises. Supply is the merit order of asks: S(p) is the sum of
    asks priced at or below p. The clearing price is where excess demand D(p) - S(p) changes
    sign (Walras' tatonnement solved directly; Mas-Colell, Whinston and Green 1995, ch. 17),
    found by bisection on log price, all markets at once: either where the demand curve crosses
    a step of supply (a price between asks, set by demand) or at an ask whose quantity is
    rationed at the margin (a price set by that seller's cost). Volume = D(p); asks fill in price
    order. Where demand exceeds all supply even at `price_cap`, the price is the cap, every ask
    sells out and `short` is set (buyers must be rationed by the caller).
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
    for _ in range(int(np.ceil(np.log2(max(np.log(price_cap) - lo.min(), 1e-9) / rel_tol))) + 1):
        mid = 0.5 * (lo + hi)
        p = np.exp(mid)
        excess = demand(p) > supply(p)
        lo, hi = np.where(excess, mid, lo), np.where(excess, hi, mid)
    price = np.where(at_floor, lowest, np.exp(hi))
    price = np.where(short, price_cap, price)
    volume = np.minimum(demand(price), capacity)
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
