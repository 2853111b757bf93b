"""The GPU-hour phase: contracts, hyperscaler list sales, the neocloud spot market, settlement.

A phase module (docs/model.md, "The GPU-hour market"): it gathers what clouds can sell and
what labs demand at each price (`agents.demand`), lets buyers split their demand over the
options (`agents.pricing.choose_options`), serves contracts in force, then list sales at the
posted list price, then clears the spot market (`market.clearing.clear_spot`), and settles. It
decides nothing for the agents and imports nothing from its caller.

Order within a region each month: contracts in force are served first (take-or-pay; if a shock
leaves less capacity than was contracted, every contract is cut pro rata); hyperscalers sell
list hours at their posted price from what is left, rationing pro rata when demand exceeds it
(the unserved part seeks spot); neoclouds' remaining hours clear at the spot price, where
buyers from restricted destinations may also bid (remote access), up to the share of capacity
the know-your-customer screening leaves open to them.

Units: GPU-hours in market H100e-hours (`market.hour_value`: each chip's hour at its value to
the region's buyers), prices in USD per market H100e-hour, money in USD per month; training
work and flows in training H100e(-hours).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr

from agents.pricing import (HYPER_CONTRACT, LIST, NEO_CONTRACT, OPTIONS, REMOTE, SPOT,
                            adapt_expectation, choose_options)
from market import costs
from market.clearing import clear_spot
from market.hour_value import hour_value_h100e, serving_share_by_region
from market.hour_prices import (SPOT_PRICE_SEARCH_CAP, initial_prices, option_costs,
                                update_prices)
from market.world import FLOP_PER_H100E_HOUR, HOURS_PER_MONTH, TIERS


#: Months of regional demand kept for clouds' growth expectations: longer than any
#: expectation memory the schema allows a cloud (`cloud_investment`), so none runs short.
DEMAND_HISTORY_MONTHS = 121


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
class Supply:
    """What every cloud can sell this month, by chip class (clouds x chips)."""

    hours: np.ndarray            #: sellable market H100e-hours (`market.hour_value`)
    energy: np.ndarray           #: energy cost [USD per market H100e-hour]
    owned: np.ndarray            #: full owned cost, capital and energy [USD/market H100e-h]
    region: np.ndarray           #: per cloud
    tier: np.ndarray             #: per cloud (index into TIERS)
    serving: np.ndarray          #: sellable hours in serving H100e-hours (tokens / an H100's)
    training: np.ndarray         #: sellable hours in training H100e-hours (dense throughput)

    @property
    def by_cloud(self) -> np.ndarray:
        return self.hours.sum(axis=1)


class HourMarket:
    """State of the GPU-hour markets carried from month to month: posted list prices, price
    expectations, buyers' option shares and the contracts in force."""

    def __init__(self, model):
        p, book = model.params, model.book
        n_regions = len(model.nation_ids)
        self.n_regions = n_regions
        self.list_price = np.full(n_regions, np.nan)      # hyperscaler list, per region
        self.expected_spot = np.full(n_regions, np.nan)
        self.spot = np.full(n_regions, np.nan)
        self.forward = np.full(n_regions, np.nan)
        #: the price new neocloud contracts were signed at this month [USD/H100e-h]
        self.contract_price = np.full(n_regions, np.nan)
        #: the spot price labs planned their compute at, per region (an adaptive expectation
        #: with the memory of their re-planning) [USD per market H100e-hour]
        self.planned_spot = np.full(n_regions, np.nan)
        #: the hyperscaler list price labs planned their compute at, per region (the same
        #: re-planning memory): a list revision meets list buyers on their short-run curves,
        #: as a spot surprise meets spot buyers [USD per market H100e-hour]; kept only with
        #: `market.list_buyers_plan_list` (NaN otherwise)
        self.planned_list = np.full(n_regions, np.nan)
        #: the hyperscalers' share of the hours asked for last month, per region (NaN before
        #: any): `market_share_margin` moves their markups with its change [-]
        self.hyperscaler_share = np.full(n_regions, np.nan)
        #: the home spot price each lab planned its compute at: its own adaptive expectation
        #: from the month it entered, NaN before (an entrant meets its first month on its
        #: long-run curve: it planned its entry knowing the market it enters) [USD per market
        #: H100e-hour]. For labs there from the start it is the region's `planned_spot`.
        self.planned_spot_by_lab = np.full(book.n, np.nan)
        #: per region rented from, the share of remote buyers' hours its KYC room served
        #: last month [-]; the rest of their demand sought spot at home
        self.remote_fill = np.ones(n_regions)
        #: per region and contract option (hyperscaler, neocloud), the share of the new
        #: contracts asked last month that the clouds signed [-]
        self.contract_fill = np.ones((n_regions, 2))
        self.revisions: list[tuple[int, int]] = []        # (step, region) of list revisions
        #: per month, the hours labs in each region asked of the clouds at that month's
        #: prices [market H100e-h]
        self.demand_history: deque[np.ndarray] = deque(maxlen=DEMAND_HISTORY_MONTHS)
        tier = np.array([TIERS.index(c.tier) for c in model.clouds], dtype=np.int64)
        region = np.array([model.nation_index[c.region] for c in model.clouds], dtype=np.int64)
        self.has_tier = np.zeros((n_regions, 2), dtype=bool)
        self.has_tier[region, tier] = True
        h, c = book.hyperscaler_share, p.initial_contract_share
        self.shares = np.stack([h * (1 - c), h * c, (1 - h) * c, (1 - h) * (1 - c),
                                np.zeros(book.n)], axis=1)
        months = p.contract_months
        self.cohort_qty = np.zeros((months, book.n, 2))       # per month of the term
        self.cohort_price = np.zeros((months, book.n, 2))
        # running totals over the cohorts in force (kept as they change, not re-summed)
        self.in_force_qty = np.zeros((book.n, 2))            # H100e-hours a month
        self.in_force_usd = np.zeros((book.n, 2))            # USD a month

    def remote_target(self, model) -> np.ndarray:
        """Per nation, the first foreign region with neoclouds its labs may rent from (-1)."""
        out = np.full(self.n_regions, -1, dtype=np.int64)
        for nid, nation in model.nations.items():
            if not model.remote_open[nid]:
                continue
            for region in nation.remote_regions:
                r = model.nation_index[region]
                if self.has_tier[r, 1]:
                    out[model.nation_index[nid]] = r
                    break
        return out


def gather_supply(model, hours: float) -> Supply:
    """Sellable hours and their costs: installed units x each chip's hour value in its
    region's market (`model.hour_h100e`) x sellable hours; the owned cost is the cost
    core's (linear in the vintage's current value) plus energy, per market H100e-hour."""
    units, value = model.cloud_fleets.read(model.month - model.start_month)
    energy_chip = model.energy_usd_per_chip_hour[model.cloud_sites]
    region = model.cloud_market // 2
    worth = model.hour_h100e[region]                         # (clouds, chips)
    return Supply(units * worth * hours, energy_chip / worth,
                  (value * model.hardware_usd_per_usd_hour + energy_chip) / worth,
                  region, model.cloud_market % 2,
                  units * model.serving_h100e * hours, units * model.h100e * hours)


def fleet_values(supply: Supply, n_regions: int, default_serving: np.ndarray,
                 default_training: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per region, the serving and the training H100e a market H100e-hour of its clouds'
    fleet holds [-] (tokens per hour relative to an H100's; dense throughput relative to an
    H100's); the defaults where a region has no fleet."""
    market = np.bincount(supply.region, weights=supply.hours.sum(axis=1), minlength=n_regions)
    out = []
    for h100e_hours, default in ((supply.serving, default_serving),
                                 (supply.training, default_training)):
        total = np.bincount(supply.region, weights=h100e_hours.sum(axis=1), minlength=n_regions)
        out.append(np.divide(total, market, out=default.copy(), where=market > 0))
    return out[0], out[1]


def sign_contracts(model, hm: HourMarket, curves, own, supply: Supply,
                   staggered: bool = False) -> np.ndarray:
    """Expire the contracts signed a term ago and sign new ones at today's contract prices,
    up to the share of each tier's capacity its clouds commit. `staggered` (the first month):
    the contracts in force at the start, as if signed evenly over the past term, so they
    expire one month's worth at a time. Returns each lab's share of demand that found no
    contract because the clouds had committed all they would [-]."""
    p, book = model.params, model.book
    slot = model.month % p.contract_months
    hm.in_force_qty = np.maximum(hm.in_force_qty - hm.cohort_qty[slot], 0.0)
    hm.in_force_usd = np.maximum(hm.in_force_usd - hm.cohort_qty[slot] * hm.cohort_price[slot],
                                 0.0)
    hm.cohort_qty[slot] = 0.0
    in_force = hm.in_force_qty                                 # (n, 2)
    r = book.nation
    price = np.stack([hm.list_price[r] * (1 - p.committed_use_discount), hm.forward[r]], axis=1)
    value = np.array([p.hyperscaler_wtp_premium, 1.0])
    cap = np.bincount(supply.region * 2 + supply.tier, weights=supply.by_cloud,
                      minlength=2 * hm.n_regions).reshape(hm.n_regions, 2)
    unsigned_share = np.zeros(book.n)
    for k, option in ((0, HYPER_CONTRACT), (1, NEO_CONTRACT)):
        ok = np.flatnonzero(np.isfinite(price[:, k]) & (hm.shares[:, option] > 0))
        committed = np.bincount(r, weights=in_force[:, k], minlength=hm.n_regions)
        room = np.maximum(p.contract_capacity_share * cap[:, k] - committed, 0.0)
        curve = curves.market_demand(ok, own)
        if k == 1:
            hm.contract_price = clear_contracts(hm, curve, ok, r, hm.shares[ok, option],
                                                in_force[ok, k], room)
            price[:, 1] = hm.contract_price[r]
        want = np.zeros(book.n)
        want[ok] = hm.shares[ok, option] * curve(np.log(price[ok, k] / value[k]))
        new = np.maximum(want - in_force[:, k], 0.0)
        asked = np.bincount(r, weights=new, minlength=hm.n_regions)
        scale = np.divide(room, asked, out=np.zeros_like(room), where=asked > 0)
        signed = new * np.minimum(scale, 1.0)[r]
        hm.contract_fill[:, k] = np.where(asked > 0, np.minimum(scale, 1.0), 1.0)
        unsigned_share += hm.shares[:, option] * np.divide(
            new - signed, want, out=np.zeros(book.n), where=want > 0)
        slots = slice(None) if staggered else slot
        hm.cohort_qty[slots, :, k] = signed / p.contract_months if staggered else signed
        hm.cohort_price[slots, :, k] = np.nan_to_num(price[:, k])
        hm.in_force_qty[:, k] += signed
        hm.in_force_usd[:, k] += signed * np.nan_to_num(price[:, k])
    return unsigned_share


def clear_contracts(hm: HourMarket, curve, rows, region, weight, in_force, room):
    """The price of new neocloud contracts per region: the forward price (the clouds'
    reservation: what they expect the hours to fetch at spot) where buyers ask no more than
    the clouds will commit, else the price at which new asks fill that room exactly
    (uniform-price clearing, one seller per region) [USD per market H100e-hour].

    `curve`: the labs `rows`' market demand by log price (`DemandCurves.market_demand`);
    `region` (per lab) their region; `weight` (per row) their share of demand in the option;
    `in_force` (per row) the contracted hours they hold [H100e-h a month]; `room` (per
    region) the hours the clouds will still commit [H100e-h a month]."""
    n_r = hm.n_regions
    r = region[rows]

    def demand(price):
        log_p = np.log(np.maximum(price, 1e-12))
        new = np.maximum(weight * curve.at(log_p, r) - in_force, 0.0)
        return np.bincount(r, weights=new, minlength=n_r)

    sells = np.flatnonzero(np.isfinite(hm.forward))
    res = clear_spot(demand, sells, room[sells], hm.forward[sells], n_r,
                     SPOT_PRICE_SEARCH_CAP, guess=hm.contract_price)
    return np.where(np.isfinite(res.price), res.price, hm.forward)


class Ledger:
    """What each cloud sold and earned and each lab got and paid, over the month's stages."""

    def __init__(self, supply: Supply, n_labs: int):
        self.left = supply.hours.copy()                 # (clouds, chips) unsold H100e-hours
        self.sold = np.zeros_like(supply.hours)
        self.revenue = np.zeros(supply.hours.shape[0])
        self.got = np.zeros((n_labs, len(OPTIONS)))
        self.paid = np.zeros(n_labs)
        #: what labs earned reselling contracted hours at spot [USD]
        self.resold_usd = np.zeros(n_labs)
        self.wanted = np.zeros((n_labs, len(OPTIONS)))
        #: hours asked of each cloud at its posted price that it could not serve [H100e-h]
        self.unserved = np.zeros(supply.hours.shape[0])
        #: hours each cloud sold in the spot market [H100e-h] (a hyperscaler's idle ones)
        self.spot_sold = np.zeros(supply.hours.shape[0])

    def sell_pro_rata(self, clouds: np.ndarray, hours: np.ndarray, usd: np.ndarray) -> None:
        """Sell `hours` [H100e-h] for `usd` per cloud, spread over its chips by what is left."""
        left = self.left[clouds]
        total = left.sum(axis=1)
        frac = np.divide(np.minimum(hours, total), total, out=np.zeros_like(total),
                         where=total > 0)
        take = left * frac[:, None]
        self.left[clouds] -= take
        self.sold[clouds] += take
        self.revenue[clouds] += usd


def serve_contracts(model, hm: HourMarket, supply: Supply, ledger: Ledger) -> None:
    """Contracts in force take capacity first; cut pro rata where capacity fell short."""
    book = model.book
    qty, usd = hm.in_force_qty, hm.in_force_usd                  # (n, 2)
    cap = np.bincount(supply.region * 2 + supply.tier, weights=ledger.left.sum(axis=1),
                      minlength=2 * hm.n_regions)
    for k, option in ((0, HYPER_CONTRACT), (1, NEO_CONTRACT)):
        cell = book.nation * 2 + k
        contracted = np.bincount(cell, weights=qty[:, k], minlength=2 * hm.n_regions)
        served = np.minimum(1.0, np.divide(cap, contracted, out=np.ones_like(cap),
                                           where=contracted > 0))
        f = served[cell]
        ledger.got[:, option] += qty[:, k] * f
        ledger.wanted[:, option] += qty[:, k]
        ledger.paid += usd[:, k] * f
        cells = supply.region * 2 + supply.tier
        clouds = np.flatnonzero(supply.tier == k)
        share = np.divide(ledger.left.sum(axis=1), cap[cells], out=np.zeros(cells.size),
                          where=cap[cells] > 0)[clouds]
        hours = (contracted * served)[cells[clouds]] * share
        value = np.bincount(cell, weights=usd[:, k] * f, minlength=2 * hm.n_regions)
        ledger.sell_pro_rata(clouds, hours, value[cells[clouds]] * share)


def sell_list(model, hm: HourMarket, curves, own, supply: Supply, ledger: Ledger
              ) -> np.ndarray:
    """Hyperscalers sell list hours at their posted price; returns each lab's unserved share
    of its list demand (it seeks spot)."""
    p, book = model.params, model.book
    r = book.nation
    ok = np.isfinite(hm.list_price[r]) & (hm.shares[:, LIST] > 0)
    rows = np.flatnonzero(ok)
    want = np.zeros(book.n)
    # list buyers planned at the list they expected (`list_buyers_plan_list`; an entrant,
    # with no plan yet, at the list it meets: its long-run curve), valued at the premium
    # they put on the tier; otherwise they meet the list on their long-run curves
    anchor = np.where(np.isnan(hm.planned_spot_by_lab[rows]), np.nan,
                      hm.planned_list[r[rows]]) / p.hyperscaler_wtp_premium \
        if p.list_buyers_plan_list else None
    want[rows] = hm.shares[rows, LIST] * curves.market_demand(rows, own, anchor)(
        np.log(hm.list_price[r[rows]] / p.hyperscaler_wtp_premium))
    asked = np.bincount(r, weights=want, minlength=hm.n_regions)
    hyper = np.flatnonzero(supply.tier == 0)
    left = ledger.left[hyper].sum(axis=1)
    room = np.bincount(supply.region[hyper], weights=left, minlength=hm.n_regions)
    served = np.minimum(1.0, np.divide(room, asked, out=np.ones_like(room), where=asked > 0))
    ledger.got[:, LIST] += want * served[r]
    ledger.wanted[:, LIST] += want
    ledger.paid += want * served[r] * np.nan_to_num(hm.list_price[r])
    share = np.divide(left, room[supply.region[hyper]], out=np.zeros(hyper.size),
                      where=room[supply.region[hyper]] > 0)
    hours = (asked * served)[supply.region[hyper]] * share
    ledger.sell_pro_rata(hyper, hours, hours * hm.list_price[supply.region[hyper]])
    ledger.unserved[hyper] += (asked * (1.0 - served))[supply.region[hyper]] * share
    return np.where(ok, hm.shares[:, LIST] * (1.0 - served[r]), 0.0)


class ContractResale:
    """Contract holders resell at spot the contracted hours they would not use at the spot
    price: a holder keeps what its short-run demand for that option wants at the spot price
    (a hyperscaler's hour valued at the buyers' premium) and offers the rest, so a contract
    fixes what it pays, not what it must use (the physical position follows the spot price,
    as with forward contracts in power markets; Hull, *Options, Futures and Other
    Derivatives*, ch. 2). Only where a spot market exists (a region with neoclouds)."""

    def __init__(self, model, hm: HourMarket, curves, own, ledger: Ledger):
        p, r = model.params, model.book.nation
        self.n_labs, self.n_regions = r.size, hm.n_regions
        premium = np.array([p.hyperscaler_wtp_premium, 1.0])
        options = (HYPER_CONTRACT, NEO_CONTRACT)
        spot_here = hm.has_tier[r, 1]
        # one row per (holder, option) held, both options stacked: one curve evaluation
        rows = [np.flatnonzero(spot_here & (ledger.got[:, o] > 0)) for o in options]
        self.lab = np.concatenate(rows)
        self.option = np.concatenate([np.full(x.size, k) for k, x in enumerate(rows)])
        self.region = r[self.lab]
        self.premium = premium[self.option]
        self._premiums = premium                # per option, for the price per (region, option)
        self.group = self.region * len(options) + self.option
        self.held = np.concatenate([ledger.got[x, o] for x, o in zip(rows, options)])
        self.weight = np.concatenate([hm.shares[x, o] for x, o in zip(rows, options)])
        self.anchor = hm.planned_spot_by_lab[self.lab] / self.premium
        self.curve = curves.market_demand(self.lab, own, self.anchor)

    def within(self, regions: np.ndarray) -> ContractResale:
        """The same holders, only those in `regions` (a mask over regions)."""
        if regions.all():
            return self
        part = object.__new__(ContractResale)
        part.__dict__.update(self.__dict__)
        keep = regions[self.region]
        for name in ("lab", "option", "region", "premium", "group", "held", "weight",
                     "anchor"):
            setattr(part, name, getattr(self, name)[keep])
        part.curve = self.curve.take(keep)      # the same rows' curves, not built anew
        return part

    def sharing(self, home_rows: np.ndarray) -> ContractResale:
        """The same holders, set to take the curve values of their neocloud contract rows
        from the home spot bidders `home_rows` (sorted lab rows) where they are among them:
        such a row is the holder's home spot curve (planned at its own expected spot price,
        at the spot price itself: the premium is 1), so it is the same number, computed
        once (the clearing evaluates both a few dozen times a month)."""
        part = object.__new__(ContractResale)
        part.__dict__.update(self.__dict__)
        pos = np.minimum(np.searchsorted(home_rows, self.lab), max(home_rows.size - 1, 0))
        neo = self.option == 1                  # the neocloud contract (premium 1)
        found = neo & (home_rows[pos] == self.lab) if home_rows.size else np.zeros_like(neo)
        part._shared, part._shared_pos = np.flatnonzero(found), pos[found]
        part._alone = np.flatnonzero(~found)
        part._alone_curve, part._alone_group = self.curve.take(part._alone), \
            self.group[part._alone]
        return part

    def _curve_hours(self, log_p: np.ndarray, home_hours: np.ndarray | None) -> np.ndarray:
        """Each row's market demand at the log price per (region, option) `log_p`; with
        `home_hours` (per `sharing`'s home row, at the same spot price), the shared rows'
        taken from it [H100e-h]."""
        if home_hours is None:
            return self.curve.at(log_p, self.group)
        hours = np.empty(self.lab.size)
        hours[self._alone] = self._alone_curve.at(log_p, self._alone_group)
        hours[self._shared] = home_hours[self._shared_pos]
        return hours

    def _offered(self, price: np.ndarray, home_hours: np.ndarray | None = None
                 ) -> np.ndarray:
        """Hours each (holder, option) row resells at the region spot `price` [H100e-h]
        (`home_hours`: see `_curve_hours`)."""
        if not self.lab.size:
            return np.zeros(0)
        # the log price per (region, option): one logarithm and exponential each, not a row
        log_p = np.log(np.maximum(price, 1e-12)[:, None] / self._premiums).ravel()
        return np.maximum(self.held - self.weight * self._curve_hours(log_p, home_hours), 0.0)

    def by_region(self, price: np.ndarray, home_hours: np.ndarray | None = None
                  ) -> np.ndarray:
        """Hours resold per region at `price` [H100e-h] (the clearing calls this often);
        `home_hours`: the home bidders' curve values at `price`, after `sharing`."""
        return np.bincount(self.region, weights=self._offered(price, home_hours),
                           minlength=self.n_regions)

    def settle(self, ledger: Ledger, price: np.ndarray, wanted: np.ndarray) -> np.ndarray:
        """Book the resales at `price`, at most the hours buyers want per region (`wanted`;
        where more is offered even at the lowest ask, resales are cut pro rata): holders give
        up the hours and the buyers' payment for them is theirs (`Ledger.resold_usd`);
        returns the hours resold per region [H100e-h]."""
        sold = self._offered(price)
        offered = np.bincount(self.region, weights=sold, minlength=self.n_regions)
        fill = np.minimum(1.0, np.divide(wanted, offered, out=np.ones(self.n_regions),
                                         where=offered > 0))
        sold = sold * fill[self.region]
        for k, option in enumerate((HYPER_CONTRACT, NEO_CONTRACT)):
            mine = self.option == k
            ledger.got[self.lab[mine], option] -= sold[mine]
            # a resale is a choice, not unmet demand: the holder no longer wants those hours
            ledger.wanted[self.lab[mine], option] -= sold[mine]
        ledger.resold_usd += np.bincount(self.lab, weights=sold * price[self.region],
                                         minlength=self.n_labs)
        return np.bincount(self.region, weights=sold, minlength=self.n_regions)


def spot_asks(offered: np.ndarray, supply: Supply, ledger: Ledger, list_price: np.ndarray,
              spread: float, tranches: int):
    """The spot market's asks: (cloud, chip, hours, price) per ask, from `offered` (clouds x
    chips) [H100e-h].

    A neocloud offers all it has left at its energy cost (its short-run marginal cost). A
    hyperscaler's idle hours are perishable too, but one sold at spot is not there for a
    buyer at its posted prices who draws on it later in the month (a list buyer, or a
    committed-use customer: those commitments are to spend, not to fixed hours). It
    protects hours for them and asks for an idle hour q deep the list price times the
    chance that their demand reaches it, P(D > L + q) = 1 - Phi(ln(1 + q / L) / s), for
    demand D of median L (this month's sales at posted prices) and log spread s
    (`list_demand_spread`; 0: none held back), and at least its energy cost: the expected marginal seat revenue
    of the airlines' booking limit between fare classes (Belobaba 1989, *Oper. Res.* 37(2);
    Talluri and van Ryzin 2004, *The Theory and Practice of Revenue Management*, ch. 2).
    Its idle hours of each chip are offered in `tranches` equal blocks, each priced at its
    middle hour (a numerical resolution of that ladder, not behaviour)."""
    if spread == 0.0:          # no hours held back: every idle hour at its energy cost
        cloud, chip = np.nonzero(offered > 0)
        return cloud, chip, offered[cloud, chip], supply.energy[cloud, chip]
    neo = supply.tier == 1
    n_cloud, n_chip = np.nonzero(offered * neo[:, None] > 0)
    h_cloud, h_chip = np.nonzero(offered * ~neo[:, None] > 0)
    posted = ledger.sold.sum(axis=1)[h_cloud]                    # before the spot market
    depth = offered.sum(axis=1)[h_cloud, None] * (np.arange(tranches) + 0.5) / tranches
    reached = np.where(posted[:, None] > 0, ndtr(-np.log1p(
        depth / np.maximum(posted[:, None], 1e-12)) / spread), 0.0)
    protect = np.nan_to_num(list_price[supply.region[h_cloud]])[:, None] * reached
    ask = np.maximum(supply.energy[h_cloud, h_chip][:, None], protect)
    return (np.concatenate([n_cloud, np.repeat(h_cloud, tranches)]),
            np.concatenate([n_chip, np.repeat(h_chip, tranches)]),
            np.concatenate([offered[n_cloud, n_chip],
                            np.repeat(offered[h_cloud, h_chip] / tranches, tranches)]),
            np.concatenate([supply.energy[n_cloud, n_chip], ask.ravel()]))


class BidCurve:
    """What rows with market demand `curve` (`agents.demand.MarketDemand`) bidding in
    `region` (per row) buy at a spot price per region, paying `extra` [USD per H100e-hour]
    on top of it, before their weights [H100e-h]."""

    def __init__(self, curve, region, extra=0.0):
        self.curve, self.region, self.extra = curve, region, extra

    def __call__(self, price):
        log_p = np.log(np.maximum(np.maximum(price, 0.0) + self.extra, 1e-12))
        return self.curve.at(log_p, self.region)

    def take(self, keep):
        """The rows `keep` (a mask) only."""
        return BidCurve(self.curve.take(keep), self.region[keep], self.extra)


def clear_spot_markets(model, hm: HourMarket, curves, own, supply: Supply, ledger: Ledger,
                       spill: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Neoclouds' remaining hours (and hyperscalers' idle ones) against spot demand: home
    buyers, list spill-over, remote buyers within the KYC share, less what contract holders
    resell; returns the spot price per region (NaN: no neocloud).

    Remote buyers bid abroad first; the share of their demand the KYC room leaves unserved
    this month, and all of it where they may no longer rent abroad, bids at home: the markets
    clear once with last month's unserved share at home, then the regions whose buyers were
    rationed abroad clear again with this month's (a region rented from does not depend on
    the prices of the regions that rent from it, so its price and fill stand)."""
    p, book = model.params, model.book
    n_r = hm.n_regions
    r = book.nation
    t = target[r]
    remote = np.flatnonzero((t >= 0) & (hm.shares[:, REMOTE] > 0))
    friction = p.remote_friction_usd_per_h100e_hour
    # neoclouds offer all they have left at their energy cost, hyperscalers a share of their
    # idle hours (spot or preemptible instances) at what they would fetch held back
    offered = ledger.left * np.where(supply.tier == 1, 1.0, p.hyperscaler_spot_share)[:, None]
    a_cloud, a_chip, a_qty, a_price = spot_asks(offered, supply, ledger, hm.list_price,
                                                p.list_demand_spread, p.spot_ask_tranches)
    a_market = supply.region[a_cloud]
    neo_cap = np.bincount(a_market, weights=np.where(supply.tier[a_cloud] == 1, a_qty, 0.0),
                          minlength=n_r)
    remote_cap = p.remote_kyc_share * neo_cap
    # spot buyers meet a spot price away from the one they planned at on their short-run
    # curves (`agents.demand`); posted list and contract prices were known, long-run. Home
    # bidders planned at their own expectation (`planned_spot_by_lab`), remote ones at the
    # region they rent from's; an entrant, with no plan yet, bids on its long-run curve
    planned = hm.planned_spot
    resale = ContractResale(model, hm, curves, own, ledger)

    def bids(rows, region, weight, anchor, extra=0.0):
        """Demand of `rows` bidding in `region` (per row) at a price per region, paying
        `extra` on top of it [H100e-h]."""
        hours = BidCurve(curves.market_demand(rows, own, anchor), region, extra)
        return lambda price: weight * hours(price)

    def new_remote_bids(regions):
        """Remote buyers bidding into `regions` (a mask): their rows and demand."""
        rows = remote[regions[t[remote]]]
        anchor = np.where(np.isnan(hm.planned_spot_by_lab[rows]), np.nan, planned[t[rows]])
        return rows, bids(rows, t[rows], hm.shares[rows, REMOTE], anchor + friction, friction)

    everywhere_remote = new_remote_bids(np.ones(n_r, bool))     # built once, used twice

    def remote_bids(regions):
        return everywhere_remote if regions.all() else new_remote_bids(regions)

    # every lab's home spot curve, built once: each round's bidders take their rows of it
    home_curves = curves.market_demand(np.arange(book.n), own, hm.planned_spot_by_lab)

    def home_bids(unserved_abroad, regions):
        """Home spot bidders in `regions`, with `unserved_abroad` (per region rented from)
        of remote buyers' demand bidding at home: their rows, weights and demand before
        the weights (`BidCurve`)."""
        remote_spill = hm.shares[:, REMOTE] * np.where(t >= 0, unserved_abroad[t], 1.0)
        home_w = np.where(hm.has_tier[r, 1], hm.shares[:, SPOT] + spill + remote_spill, 0.0)
        rows = np.flatnonzero((home_w > 0) & regions[r])
        return rows, home_w[rows], BidCurve(home_curves.take(rows), r[rows])

    def fill_abroad(remote_rows, remote_demand, price):
        """Share of remote buyers' demand the KYC room serves at `price`, per region, and
        what they ask there [H100e-h]."""
        total = np.bincount(t[remote_rows], weights=remote_demand(price), minlength=n_r)
        return np.minimum(1.0, np.divide(remote_cap, total, out=np.ones(n_r),
                                         where=total > 0)), total

    def asked(home, home_w, home_hours, regions):
        """Hours asked of the clouds of `regions` (a mask) at a price per region: the home
        bidders `home` (rows, weights, `BidCurve`) and remote buyers' demand there less
        what contract holders resell (other regions' entries: 0)."""
        rem_rows, remote_demand = remote_bids(regions)
        resold = resale.within(regions).sharing(home)

        def demand(price):
            hours = home_hours(price)
            d = np.bincount(r[home], weights=home_w * hours, minlength=n_r)
            rem = np.bincount(t[rem_rows], weights=remote_demand(price), minlength=n_r)
            return d + np.minimum(rem, remote_cap) - resold.by_region(price, hours)
        return demand

    def clear(regions, unserved_abroad):
        """Clear the spot markets of `regions` (a mask) with that spill at home."""
        home, home_w, home_hours = home_bids(unserved_abroad, regions)
        everyone = asked(home, home_w, home_hours, regions)
        # once the search has solved some markets it asks only for the others: the same
        # sums from fewer rows (each market's rows, in the same order), the rows of each
        # set of markets picked once (the search narrows through a few such sets)
        fewer = {}

        def demand(price, markets=None):
            wanted = regions if markets is None else regions & markets
            if (wanted == regions).all():
                return everyone(price)
            key = wanted.tobytes()
            if key not in fewer:
                keep = wanted[r[home]]
                fewer[key] = asked(home[keep], home_w[keep], home_hours.take(keep), wanted)
            return fewer[key](price)
        asks = np.flatnonzero(regions[a_market])
        return asks, clear_spot(demand, a_market[asks], a_qty[asks], a_price[asks], n_r,
                                SPOT_PRICE_SEARCH_CAP, guess=hm.spot, demand_of_markets=True)

    everywhere = np.ones(n_r, bool)
    # a first round with last month's unserved share at home (it starts every market near
    # its price: last month's is the bisection's first bracket)
    unserved = 1.0 - hm.remote_fill
    _, res = clear(everywhere, unserved)
    price, volume, ask_fill = res.price, res.volume, res.ask_fill
    rem_rows, remote_demand = everywhere_remote
    if remote.size:
        fill, _ = fill_abroad(rem_rows, remote_demand, np.nan_to_num(price))
        # the regions whose remote buyers' unserved share differs from last month's clear
        # again with this month's bidding at home; the others' prices stand
        again = np.zeros(n_r, bool)
        again[r[remote][fill[t[remote]] != 1.0 - unserved[t[remote]]]] = True
        unserved = 1.0 - fill
        if again.any():
            asks, second = clear(again, unserved)
            price = np.where(again, second.price, price)
            volume = np.where(again, second.volume, volume)
            ask_fill = ask_fill.copy()
            ask_fill[asks] = second.ask_fill
    home, home_w, home_hours = home_bids(unserved, everywhere)
    px = np.nan_to_num(price)
    q_home = home_w * home_hours(px)
    rem_fill, rem_total = fill_abroad(rem_rows, remote_demand, px)
    hm.remote_fill = rem_fill
    wanted = np.bincount(r[home], weights=q_home, minlength=n_r) \
        + np.minimum(rem_total, remote_cap)
    resold = resale.settle(ledger, px, wanted)
    # buyers get the clouds' hours and the resold ones
    ration = np.minimum(1.0, np.divide(np.maximum(volume, 0.0) + resold, wanted,
                                       out=np.ones(n_r), where=wanted > 0))
    ledger.got[home, SPOT] += q_home * ration[r[home]]
    ledger.wanted[home, SPOT] += q_home
    ledger.paid[home] += q_home * ration[r[home]] * px[r[home]]
    # abroad, remote buyers sought what the KYC room serves; the rest of their demand is
    # in their home spot bids above
    sought_abroad = remote_demand(px) * rem_fill[t[rem_rows]]
    got_rem = sought_abroad * ration[t[rem_rows]]
    ledger.got[rem_rows, REMOTE] += got_rem
    ledger.wanted[rem_rows, REMOTE] += sought_abroad
    ledger.paid[rem_rows] += got_rem * px[t[rem_rows]]          # friction is not a payment
    np.subtract.at(ledger.left, (a_cloud, a_chip), ask_fill)
    np.add.at(ledger.sold, (a_cloud, a_chip), ask_fill)
    ledger.revenue += np.bincount(a_cloud, weights=ask_fill * px[a_market],
                                  minlength=ledger.revenue.size)
    ledger.spot_sold += np.bincount(a_cloud, weights=ask_fill, minlength=ledger.revenue.size)
    if rem_rows.size:
        n = len(model.nation_ids)
        flows = np.zeros((n, n))
        # in training H100e, the unit of the other flows (shipments, diversion)
        np.add.at(flows, (t[rem_rows], r[rem_rows]),
                  got_rem * model.training_value[t[rem_rows]])
        for dst, origin in zip(*np.nonzero(flows > 0)):
            model.records["flows"].append((model.step_index, "remote_access",
                                           model.nation_ids[dst], model.nation_ids[origin],
                                           flows[dst, origin] / HOURS_PER_MONTH))
    return price


def settle_labs(model, hm: HourMarket, curves, own, own_training, ledger: Ledger,
                supply: Supply, target: np.ndarray) -> None:
    """Labs' compute, spend and serving margin; frontier-run progress in one cluster. Hours
    are market H100e-hours of the market they came from (own cluster, home region, the
    region rented from abroad); training work counts each in training H100e by that
    market's fleet (`own_training`, `model.training_value`)."""
    p, book = model.params, model.book
    r = book.nation
    headline = np.where(np.isfinite(hm.spot[r]), hm.spot[r],
                        hm.list_price[r] / p.hyperscaler_wtp_premium)
    headline = np.nan_to_num(headline, nan=p.reference_price_usd_per_h100e_hour)
    serve, train = curves.split(headline)
    total = serve + train
    serving_share = np.divide(serve, total, out=np.zeros_like(total), where=total > 0)
    own_used = np.minimum(own, total)
    bought = ledger.got.sum(axis=1)
    book.own_h100e_hours = own_used
    book.bought_h100e_hours = bought
    book.need_h100e_hours = own_used + ledger.wanted.sum(axis=1)
    book.spend_usd = ledger.paid.copy()
    book.resale_usd = ledger.resold_usd.copy()
    got = own_used + bought
    book.serving_h100e_hours = got * serving_share
    # training work in training H100e-hours: an hour holds its fleet's training value
    remote_from = np.where(target[r] >= 0, target[r], r)
    remote_got = ledger.got[:, REMOTE]
    training_work = own_used * own_training + (bought - remote_got) * model.training_value[r] \
        + remote_got * model.training_value[remote_from]
    book.training_h100e_hours = training_work * (1.0 - serving_share)
    # the serving margin: tokens sold at the price labs posted, (1 + markup) x the spot price
    # they planned at (a spike squeezes it; docs/model.md, "Demand"), less what the served
    # hours cost. Revenue is per hour served, not per dollar paid (a contract hour bought
    # dear sells tokens at the same price), and users buy at that price no more tokens than
    # their long-run curve asks there: a slump below the plan sells no more.
    cost = serving_share * np.maximum(ledger.paid - ledger.resold_usd + own_used * headline, 0.0)
    planned = hm.planned_spot_by_lab
    posted = np.where(np.isfinite(planned) & np.isfinite(hm.spot[r]) & (headline > 0),
                      planned, headline)
    asked, _ = curves.split(posted)
    revenue = (1.0 + p.serving_markup) * posted * np.minimum(book.serving_h100e_hours, asked)
    book.serving_margin_usd = revenue - cost
    # the frontier run uses the largest cluster the lab can hold in one place
    fleet = supply.hours.sum(axis=1)
    largest_cloud = np.zeros(hm.n_regions)
    np.maximum.at(largest_cloud, supply.region, fleet)
    cluster = p.largest_site_share * np.maximum(largest_cloud[r] * model.training_value[r],
                                                own * own_training)
    frontier = np.minimum(book.training_h100e_hours * (1.0 - p.experiment_share), cluster)
    book.advance_training(frontier, FLOP_PER_H100E_HOUR * p.mfu, model.month)


def settle_clouds(model, supply: Supply, ledger: Ledger) -> None:
    offered = supply.by_cloud.tolist()
    sold = ledger.sold.sum(axis=1).tolist()
    revenue = ledger.revenue.tolist()
    step = model.step_index
    for cloud, o, s, rv, u, at_spot in zip(model.clouds, offered, sold, revenue,
                                           ledger.unserved.tolist(), ledger.spot_sold.tolist()):
        cloud.settle(o, s, rv, u, at_spot)
        model.records["clouds"].append((step, cloud.cloud_id, cloud.region, cloud.tier,
                                        o, s, rv, cloud.margin))


def own_hours(model, hours: float) -> tuple[np.ndarray, np.ndarray]:
    """Market H100e-hours each lab's own cluster offers this month [H100e-h], valued as its
    region's market values them, and the training H100e an hour of that cluster holds [-]
    (1 where a lab has none)."""
    book = model.book
    own = np.zeros(book.n)
    training = np.ones(book.n)
    for row in np.flatnonzero(book.site >= 0):
        units = model.sites[book.site[row]].fleet.units_by_chip()
        market = float(units @ model.hour_h100e[book.nation[row]])
        own[row] = market * hours
        if market > 0:
            training[row] = float(units @ model.h100e) / market
    return own, training


def clear_gpu_hours(model) -> None:
    """The month's GPU-hour markets: demand, option choice, contracts, list, spot, settlement."""
    p, hm, book = model.params, model.hour_market, model.book
    hours = HOURS_PER_MONTH * p.availability
    model.hour_h100e = hour_value_h100e(model.h100e, model.serving_h100e, model.serving_share)
    supply = gather_supply(model, hours)
    model.serving_value, model.training_value = fleet_values(
        supply, hm.n_regions, model.serving_value, model.training_value)
    index = model.demand_index.at(model.month) * model._demand_factor()
    curves = book.demand_curves(model.month, model.start_month,
                                index * model._efficiency_factor(),
                                model.financing_index.at(model.month) * model._demand_factor(),
                                model.serving_value, model.training_value,
                                short_run_share=p.short_run_elasticity_share,
                                token_price_multiple=1.0 + p.serving_markup)
    own, own_training = own_hours(model, hours)
    target = hm.remote_target(model)
    first = model.month == model.start_month
    if first:
        initial_prices(model, hm, supply, curves, own)
    else:          # buyers choose on last month's prices; at the start they hold their shares
        cost, available = option_costs(model, hm, target)
        hm.shares = choose_options(hm.shares, cost, available, p.choice_price_sensitivity,
                                   p.switching_cost, group=book.nation,
                                   revision_share=p.choice_revision_share)
    ledger = Ledger(supply, book.n)
    unsigned = sign_contracts(model, hm, curves, own, supply, staggered=first)
    serve_contracts(model, hm, supply, ledger)
    # list buyers the hyperscalers could not serve, and a share of those who found no
    # contract, buy spot this month (the rest wait for next month's contract round)
    spill = sell_list(model, hm, curves, own, supply, ledger) \
        + p.uncontracted_spot_share * unsigned
    spot = clear_spot_markets(model, hm, curves, own, supply, ledger, spill, target)
    settle_clouds(model, supply, ledger)
    settle_labs(model, hm, curves, own, own_training, ledger, supply, target)
    # the use mix the market values hours by, an adaptive expectation of what it was
    observed = serving_share_by_region(
        book.serving_h100e_hours, book.own_h100e_hours + book.bought_h100e_hours, book.nation,
        hm.n_regions, model.serving_share)
    model.serving_share = adapt_expectation(model.serving_share, observed,
                                            p.expectation_memory_months)
    hm.demand_history.append(np.bincount(book.nation, weights=ledger.wanted.sum(axis=1),
                                         minlength=hm.n_regions))
    update_prices(model, hm, supply, ledger, spot)
