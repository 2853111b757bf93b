"""The GPU-hour phase: gather clouds' asks and labs' bids, clear them, settle, record prices.

A phase module (docs/model.md, "Where each piece lives"): it collects what the agents offer
(clouds' asks at their margins, labs' bids from their budgets and needs), calls the pure
mechanisms of `market.clearing`, and hands the fills back to the agents; it decides nothing for
them. It reads the model's state through the `model` argument and imports nothing from its
caller.

Units: GPU-hours in H100e-hours, prices in USD per H100e-hour.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from agents.strategies import ask_prices
from market import costs
from market.clearing import ClearingResult, clear, clear_segmented
from market.world import HOURS_PER_MONTH, TIERS


def _clear_grouped(bid_qty, bid_price, ask_qty, ask_price, tie_break, rng):
    """`clear`, with bids at the same price pooled first when ties are shared pro rata.

    Pooling is exact for the pro-rata rule (tied bids get the same fraction either way) and
    turns tens of thousands of long-tail bids into a few price levels.
    """
    if tie_break != "pro_rata" or bid_qty.size < 64:
        return clear(bid_qty, bid_price, ask_qty, ask_price, tie_break=tie_break, rng=rng)
    levels, which = np.unique(bid_price, return_inverse=True)
    pooled = np.bincount(which, weights=bid_qty, minlength=levels.size)
    res = clear(pooled, levels, ask_qty, ask_price, tie_break=tie_break, rng=rng)
    fraction = np.divide(res.bid_fill, pooled, out=np.zeros_like(pooled), where=pooled > 0)
    return ClearingResult(res.price, res.volume, bid_qty * fraction[which], res.ask_fill)


@dataclass
class Bids:
    """Labs' GPU-hour bids by (region, tier, block, price).

    `split[t, k, i]` is what lab i bids in tier t for block k (0 serving, 1 training,
    2 experiments) [H100e-hours]; `which[t, k, i]` is the bid that carries it (-1: none).
    """

    qty: np.ndarray       #: per bid [H100e-hours]
    price: np.ndarray     #: per bid, as valued at a neocloud [USD per H100e-hour]
    region: np.ndarray
    tier: np.ndarray
    split: np.ndarray     #: (2, 3, n)
    which: np.ndarray     #: (2, 3, n)

    def per_lab(self, per_unit_of_bid: np.ndarray) -> np.ndarray:
        """Spread a per-bid rate (per H100e-hour bid) back to the labs: (3, n) per block."""
        rate = np.append(per_unit_of_bid, 0.0)        # index -1 reads 0
        return self.split[0] * rate[self.which[0]] + self.split[1] * rate[self.which[1]]


def tier_bids(qty: np.ndarray, price: np.ndarray, hyperscaler_share: np.ndarray,
              nation: np.ndarray, pool: bool) -> Bids:
    """Split labs' (3, n) demand blocks between the tiers and, when `pool`, merge bids with the
    same region, tier, block and price into one.

    Pooling is exact under the pro-rata tie rule (tied bids get the same fraction either way)
    and turns tens of thousands of long-tail bids into a few price levels. Grouping hashes the
    prices (pandas.factorize) and counts into dense integer cells: O(n), no sort of lab rows.
    """
    n = qty.shape[1]
    split = np.stack([qty * hyperscaler_share, qty * (1.0 - hyperscaler_share)])  # (2, 3, n)
    block = np.arange(3)[:, None]
    if not pool:
        t, k, i = np.nonzero(split > 0)
        which = np.full(split.shape, -1, dtype=np.int64)
        which[t, k, i] = np.arange(t.size)
        return Bids(split[t, k, i], price[k, i], nation[i], t, split, which)
    code, levels = pd.factorize(price.ravel(), sort=False)
    cell = ((nation[None, :] * 3 + block) * levels.size + code.reshape(3, n)).ravel()
    size = int(cell.max()) + 1 if cell.size else 0
    pooled = np.stack([np.bincount(cell, weights=split[t].ravel(), minlength=size)
                       for t in (0, 1)])
    t, g = np.nonzero(pooled > 0)
    slot = np.full((2, size), -1, dtype=np.int64)
    slot[t, g] = np.arange(t.size)
    which = np.stack([slot[0][cell], slot[1][cell]]).reshape(split.shape)
    return Bids(pooled[t, g], levels[g % levels.size], g // levels.size // 3, t, split, which)


class CloudFleets:
    """Installed units and current value per chip of every cloud (clouds x chips); rows are
    rebuilt only for fleets that changed since the last call."""

    def __init__(self, fleets: list, n_chips: int):
        self.fleets = fleets
        self.versions = [-1] * len(fleets)
        self.units = np.zeros((len(fleets), n_chips))
        self.disc = np.zeros((len(fleets), n_chips))

    def read(self, months_since_start: int) -> tuple[np.ndarray, np.ndarray]:
        for i, f in enumerate(self.fleets):
            f.units_by_chip()                   # brings `version` up to date
            if f.version != self.versions[i]:
                self.units[i] = f.units_by_chip()
                self.disc[i] = f.discounted_value_by_chip()
                self.versions[i] = f.version
        decay = np.exp(-costs.HARDWARE_VALUE_DECLINE_PER_YEAR * months_since_start / 12.0)
        value = np.divide(self.disc * decay, self.units,
                          out=np.zeros_like(self.disc), where=self.units > 0)
        return self.units, value


@dataclass
class Asks:
    """One ask per cloud and installed chip class [H100e-hours, USD per H100e-hour]."""

    cloud: np.ndarray
    chip: np.ndarray
    qty: np.ndarray
    price: np.ndarray
    market: np.ndarray
    region: np.ndarray


class Trades:
    """What is left, sold, bought and paid over the passes of one month's clearing."""

    def __init__(self, asks: Asks, bids: Bids, n_markets: int):
        self.a_left, self.b_left = asks.qty.copy(), bids.qty.copy()
        self.a_sold, self.a_rev = np.zeros_like(asks.qty), np.zeros_like(asks.qty)
        self.b_got, self.b_paid = np.zeros_like(bids.qty), np.zeros_like(bids.qty)
        # per market, over all passes: value and volume traded (the index is their ratio)
        self.deal_value = np.zeros(n_markets)
        self.deal_volume = np.zeros(n_markets)
        self.first_price: dict[int, float] = {}
        self.remote_rows: list = []


def gather_asks(model, hours: float) -> Asks:
    """Asks: one block per cloud and installed chip class, at full owned cost (the cost core's,
    linear in the vintage's current value) x (1 + the cloud's margin)."""
    units, value = model.cloud_fleets.read(model.month - model.start_month)
    energy = model.energy_usd_per_chip_hour[model.cloud_sites]
    margin = np.array([c.margin for c in model.clouds])[:, None]
    price = ask_prices((value * model.hardware_usd_per_usd_hour + energy) / model.h100e,
                       energy / model.h100e, margin)
    a_cloud, a_chip = np.nonzero(units > 0)
    a_qty = units[a_cloud, a_chip] * model.h100e[a_chip] * hours
    a_market = model.cloud_market[a_cloud]
    return Asks(a_cloud, a_chip, a_qty, price[a_cloud, a_chip], a_market, a_market // 2)


def gather_bids(model, hours: float):
    """Bids: three blocks per lab (serving, training, experiments), split by tier.
    Returns (need, own, bids) [H100e-hours per lab, H100e-hours per lab, Bids]."""
    p, book = model.params, model.book
    index = model.demand_index.at(model.month) * model._demand_factor()
    need = book.need(model.month, model.start_month, index * model._efficiency_factor(),
                     HOURS_PER_MONTH)
    own = np.zeros(book.n)
    for row in np.flatnonzero(book.site >= 0):
        fleet = model.sites[book.site[row]].fleet
        own[row] = float(fleet.units_by_chip() @ model.h100e) * hours
    market_need = np.maximum(need - own, 0.0)
    budget = book.budget_per_month(model.month, model.start_month, index)
    qty, price, h = book.bids(market_need, need, budget, p)
    bids = tier_bids(qty, price, h, book.nation, p.tie_break == "pro_rata")
    return need, own, bids


def first_tiers(model, bids: Bids, premium: np.ndarray) -> np.ndarray:
    """Shoppers (bids not tied to a hyperscaler contract) try first the tier that was cheaper
    last month for what they get: hyperscaler price / premium vs neocloud price."""
    b_first = bids.tier.copy()
    for r, region in enumerate(model.nation_ids):
        hyper = model.latest_price_index.get((region, "hyperscaler"))
        neo = model.latest_price_index.get((region, "neocloud"))
        if hyper is not None and neo is not None and hyper / premium[0] < neo:
            b_first[(bids.region == r) & (bids.tier == 1)] = 0
    return b_first


def remote_targets(model) -> list[np.ndarray]:
    """Per remote rank: the target region of each nation's labs (-1: none open)."""
    targets = []
    if any(model.remote_open.values()):
        ranks = max((len(n.remote_regions) for n in model.nations.values()), default=0)
        for k in range(ranks):
            targets.append(np.array([
                model.nation_index[n.remote_regions[k]]
                if len(n.remote_regions) > k and model.remote_open[nid] else -1
                for nid, n in model.nations.items()]))
    return targets


def clear_pro_rata(model, asks: Asks, bids: Bids, b_first, premium, targets, tr: Trades):
    """Every pass clears all its (independent) markets in one vectorized call."""
    p = model.params
    n_markets = len(model.markets)
    a_price, a_market, a_region = asks.price, asks.market, asks.region
    b_base, b_region = bids.price, bids.region
    b_left, a_left = tr.b_left, tr.a_left

    def run_all(b_rows, b_seg, b_value, a_rows, a_seg, n_seg, remote=False):
        if b_rows.size == 0 or a_rows.size == 0:
            return None
        # residuals are >= 0 (fills never exceed quantities); tiny float residues
        # fall under the clearing's MIN_QUANTITY
        res = clear_segmented(b_seg, b_left[b_rows], b_value, a_seg, a_left[a_rows],
                              a_price[a_rows], n_seg, check=False)
        b_fill, a_fill = res.bid_fill, res.ask_fill
        paid = np.nan_to_num(res.price)       # segments without asks fill nothing
        b_px, a_px = paid[b_seg], paid[a_seg]
        b_left[b_rows] -= b_fill; a_left[a_rows] -= a_fill
        tr.b_got[b_rows] += b_fill; tr.a_sold[a_rows] += a_fill
        tr.b_paid[b_rows] += b_fill * b_px          # friction is not a payment
        tr.a_rev[a_rows] += a_fill * a_px
        tr.deal_volume[:] += np.bincount(a_market[a_rows], weights=a_fill,
                                         minlength=n_markets)
        tr.deal_value[:] += np.bincount(a_market[a_rows], weights=a_fill * a_px,
                                        minlength=n_markets)
        if remote:
            tr.remote_rows.append((b_rows, b_fill, b_seg))
        return res

    # pass 1: each lab buys in its home region and its chosen tier
    b_rows = np.arange(bids.qty.size)
    seg = b_region * 2 + b_first
    res = run_all(b_rows, seg, b_base * premium[b_first], np.arange(asks.qty.size),
                  a_market, n_markets)
    has_bids = np.bincount(seg, minlength=n_markets) > 0
    for m in np.unique(a_market):
        if has_bids[m] and res is not None:
            tr.first_price[int(m)] = float(res.price[m])
        else:
            tr.first_price[int(m)] = float(a_price[a_market == m].min())
    # pass 2: what is left tries the other tier at home
    b_rows = np.flatnonzero(b_left > 1e-9)
    a_rows = np.flatnonzero(a_left > 1e-9)
    other = 1 - b_first[b_rows]
    run_all(b_rows, b_region[b_rows] * 2 + other, b_base[b_rows] * premium[other],
            a_rows, a_market[a_rows], n_markets)
    # pass 3: remote access to foreign clouds, where the rules allow it
    for target in targets:
        b_rows = np.flatnonzero((target[b_region] >= 0) & (b_left > 1e-9))
        a_rows = np.flatnonzero(a_left > 1e-9)
        run_all(b_rows, target[b_region[b_rows]],
                b_base[b_rows] - p.remote_friction_usd_per_h100e_hour,
                a_rows, a_region[a_rows], len(model.nation_ids), remote=True)


def clear_by_market(model, asks: Asks, bids: Bids, b_first, premium, targets, tr: Trades):
    """Market by market, for tie rules that need each market's own draw."""
    p = model.params
    a_price, a_market, a_region = asks.price, asks.market, asks.region
    b_base, b_region = bids.price, bids.region
    b_left, a_left = tr.b_left, tr.a_left

    def run(b_rows, a_rows, tier_value=1.0, friction=0.0, remote_region=None):
        """Clear residual bids against residual asks of one market; bids value the
        hour at their base value x the tier's premium, less any friction."""
        if b_rows.size == 0 or a_rows.size == 0:
            return None
        res = _clear_grouped(b_left[b_rows], b_base[b_rows] * tier_value - friction,
                             a_left[a_rows], a_price[a_rows], p.tie_break, model.rng)
        if res.volume > 0:
            b_left[b_rows] -= res.bid_fill; a_left[a_rows] -= res.ask_fill
            tr.b_got[b_rows] += res.bid_fill; tr.a_sold[a_rows] += res.ask_fill
            tr.b_paid[b_rows] += res.bid_fill * res.price
            tr.a_rev[a_rows] += res.ask_fill * res.price
            tr.deal_volume[:] += np.bincount(a_market[a_rows], weights=res.ask_fill,
                                             minlength=len(model.markets))
            tr.deal_value[:] += np.bincount(a_market[a_rows],
                                            weights=res.ask_fill * res.price,
                                            minlength=len(model.markets))
            if remote_region is not None:
                tr.remote_rows.append((b_rows, res.bid_fill,
                                       np.full(b_rows.size, remote_region)))
        return res

    for m, (region, tier) in enumerate(model.markets):
        r, t = model.nation_index[region], TIERS.index(tier)
        res = run(np.flatnonzero((b_region == r) & (b_first == t)),
                  np.flatnonzero(a_market == m), premium[t])
        if res is not None:
            tr.first_price[m] = res.price
        elif np.any(a_market == m):
            tr.first_price[m] = float(a_price[a_market == m].min())
    for m, (region, tier) in enumerate(model.markets):
        r, t = model.nation_index[region], TIERS.index(tier)
        run(np.flatnonzero((b_region == r) & (b_first != t) & (b_left > 1e-9)),
            np.flatnonzero((a_market == m) & (a_left > 1e-9)), premium[t])
    for target in targets:
        for r in np.unique(target[target >= 0]):
            labs_from = np.flatnonzero(target == r)
            run(np.flatnonzero(np.isin(b_region, labs_from) & (b_left > 1e-9)),
                np.flatnonzero((a_region == r) & (a_left > 1e-9)),
                friction=p.remote_friction_usd_per_h100e_hour, remote_region=int(r))


def settle(model, asks: Asks, bids: Bids, need, own, tr: Trades) -> None:
    """Clouds' revenue, labs' compute and spend, remote-access flows."""
    book = model.book
    n_clouds = len(model.clouds)
    offered_c = np.bincount(asks.cloud, weights=asks.qty, minlength=n_clouds).tolist()
    sold_c = np.bincount(asks.cloud, weights=tr.a_sold, minlength=n_clouds).tolist()
    rev_c = np.bincount(asks.cloud, weights=tr.a_rev, minlength=n_clouds).tolist()
    step = model.step_index
    for cloud, o, sl, rv in zip(model.clouds, offered_c, sold_c, rev_c):
        cloud.settle(o, sl, rv)
        model.records["clouds"].append((step, cloud.cloud_id, cloud.region, cloud.tier,
                                        o, sl, rv, cloud.margin))
    b_qty = bids.qty
    book.need_h100e_hours = need
    book.own_h100e_hours = np.minimum(own, need)
    got_share = np.divide(tr.b_got, b_qty, out=np.zeros_like(b_qty), where=b_qty > 0)
    paid_per_unit = np.divide(tr.b_paid, b_qty, out=np.zeros_like(b_qty), where=b_qty > 0)
    lab_got, lab_paid = bids.per_lab(got_share), bids.per_lab(paid_per_unit)
    book.bought_h100e_hours = lab_got.sum(axis=0)
    book.spend_usd = lab_paid.sum(axis=0)
    book.serving_bought_h100e_hours = lab_got[0]
    if tr.remote_rows:
        n = len(model.nation_ids)
        got = np.zeros((n, n))   # target x origin
        for rows, fill, target in tr.remote_rows:
            np.add.at(got, (target, bids.region[rows]), fill)
        for r, ni in zip(*np.nonzero(got > 0)):
            model.records["flows"].append((model.step_index, "remote_access",
                                           model.nation_ids[r], model.nation_ids[ni],
                                           got[r, ni] / HOURS_PER_MONTH))


def record_prices(model, asks: Asks, tr: Trades) -> None:
    """Prices per market (volume-weighted over passes) and per chip class."""
    model.latest_price_index = {}
    step = model.step_index
    n_markets = len(model.markets)
    n_chips = len(model.chip_ids)
    cell = asks.market * n_chips + asks.chip
    offered = np.bincount(cell, weights=asks.qty, minlength=n_markets * n_chips).reshape(
        n_markets, n_chips)
    sold = np.bincount(cell, weights=tr.a_sold, minlength=n_markets * n_chips).reshape(
        n_markets, n_chips)
    index_of = np.zeros(n_markets)
    for m, (region, tier) in enumerate(model.markets):
        if m not in tr.first_price:
            continue                      # no cloud of this tier in this region
        index = tr.deal_value[m] / tr.deal_volume[m] if tr.deal_volume[m] > 0 \
            else tr.first_price[m]
        index_of[m] = index
        model.latest_price_index[(region, tier)] = index
        model.records["price_index"].append((step, region, tier, index))
    ms, ks = np.nonzero(offered > 0)
    prices_out = (index_of[ms] * model.h100e[ks]).tolist()
    volume_out = (sold[ms, ks] / model.h100e[ks]).tolist()
    util_out = (sold[ms, ks] / offered[ms, ks]).tolist()
    for m, k, pr, vol, ut in zip(ms.tolist(), ks.tolist(), prices_out, volume_out, util_out):
        region, tier = model.markets[m]
        model.records["prices"].append((step, region, tier, model.chip_ids[k], pr, vol, ut))


def clear_gpu_hours(model) -> None:
    """The month's GPU-hour markets: asks, bids, clearing passes, settlement, prices."""
    p = model.params
    hours = HOURS_PER_MONTH * p.availability
    asks = gather_asks(model, hours)
    need, own, bids = gather_bids(model, hours)
    premium = np.array([p.hyperscaler_wtp_premium, 1.0])      # by tier index
    b_first = first_tiers(model, bids, premium)
    targets = remote_targets(model)
    trades = Trades(asks, bids, len(model.markets))
    passes = clear_pro_rata if p.tie_break == "pro_rata" else clear_by_market
    passes(model, asks, bids, b_first, premium, targets, trades)
    settle(model, asks, bids, need, own, trades)
    record_prices(model, asks, trades)
