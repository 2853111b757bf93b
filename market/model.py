"""ComputeMarket: the Mesa model of vendors, foundries, clouds, labs and nations.

A run is `Scenario -> ComputeMarket(scenario, seed) -> steps -> tables`. One step is one
calendar month; `step()` reads as the month's phases in order (DESIGN.md section 2). Prices,
volumes, shares and who builds what are outcomes of the agents' decisions and the clearing;
the scenario supplies only inputs (specs, capacities, power, demand, budgets, policies, shocks).

Units: compute in H100-equivalents (dense BF16 FLOP/s relative to H100 SXM) and H100e-hours;
money in USD; power in MW; time in months.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import mesa
import numpy as np
import pandas as pd

from agents.cloud import Cloud
from agents.fleet import Site
from agents.foundry import Foundry
from agents.lab import Lab, LabBook
from agents.nation import Nation
from agents.strategies import build_decision, lab_bids, order_price_response, split_order
from agents.vendor import Vendor
from market import costs
from market.catalog import H100_DENSE_BF16_TFLOPS, load_catalog
from market.clearing import ClearingResult, clear
from market.controls import classify, load_rules
from market.timeline import TimePath, parse_month
from scenarios.loader import LAB_PUE

TIERS = ("hyperscaler", "neocloud")
HOURS_PER_MONTH = costs.HOURS_PER_MONTH
#: FLOP delivered by one H100e-hour at 100% of dense BF16 peak.
FLOP_PER_H100E_HOUR = H100_DENSE_BF16_TFLOPS * 1e12 * costs.SECONDS_PER_HOUR


# Model-level reporters for Mesa's DataCollector: named functions with units in the name (they
# must pickle, so no lambdas).
def price_index_us_neocloud_usd_per_h100e_hour(model: "ComputeMarket") -> float:
    return model.latest_price_index.get(("US", "neocloud"), float("nan"))


def price_index_us_hyperscaler_usd_per_h100e_hour(model: "ComputeMarket") -> float:
    return model.latest_price_index.get(("US", "hyperscaler"), float("nan"))


def china_share_of_installed_h100e(model: "ComputeMarket") -> float:
    return model.latest_share.get("China", float("nan"))


def us_share_of_installed_h100e(model: "ComputeMarket") -> float:
    return model.latest_share.get("US", float("nan"))


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
class _Bids:
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


def _tier_bids(qty: np.ndarray, price: np.ndarray, hyperscaler_share: np.ndarray,
               nation: np.ndarray, pool: bool) -> _Bids:
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
        return _Bids(split[t, k, i], price[k, i], nation[i], t, split, which)
    code, levels = pd.factorize(price.ravel(), sort=False)
    cell = ((nation[None, :] * 3 + block) * levels.size + code.reshape(3, n)).ravel()
    size = int(cell.max()) + 1 if cell.size else 0
    pooled = np.stack([np.bincount(cell, weights=split[t].ravel(), minlength=size)
                       for t in (0, 1)])
    t, g = np.nonzero(pooled > 0)
    slot = np.full((2, size), -1, dtype=np.int64)
    slot[t, g] = np.arange(t.size)
    which = np.stack([slot[0][cell], slot[1][cell]]).reshape(split.shape)
    return _Bids(pooled[t, g], levels[g % levels.size], g // levels.size // 3, t, split, which)


class ComputeMarket(mesa.Model):
    """The global AI-compute market, one month per step.

    Parameters
    ----------
    scenario : a validated `scenarios.schema.Scenario` (no file I/O happens here)
    seed : the run's seed; the model's numpy Generator is the only source of randomness
    """

    def __init__(self, scenario, seed: int | None = None):
        super().__init__(rng=seed)
        self.scenario = scenario
        self.seed = seed
        self.start_month = parse_month(scenario.start)
        self.n_months = scenario.months
        self.month = self.start_month - 1       # the month of the last completed step
        mkt = scenario.market
        self.params = mkt
        catalog = load_catalog()
        self.rules = load_rules()

        # -- chips used in this world ---------------------------------------------------
        used = {p.chip for v in scenario.vendors.values() for p in v.products}
        used |= {c for cl in scenario.clouds.values() for c in cl.fleet}
        used |= {c for lab in scenario.labs.values() for c in lab.fleet}
        self.chip_ids = sorted(used)
        self.chip_index = {c: i for i, c in enumerate(self.chip_ids)}
        chips = [catalog[c] for c in self.chip_ids]
        self.chips = chips
        self.h100e = np.array([c.h100e for c in chips])
        self.tdp_w = np.array([c.tdp_w for c in chips])
        self.server_power = np.array([c.server_power_multiplier for c in chips])
        self.power_fraction = np.array([c.avg_power_fraction for c in chips])
        self.server_price = np.array([c.server_price_multiplier for c in chips])
        self.mw_per_chip = self.tdp_w * self.server_power / 1e6   # IT power per chip [MW]
        self._decisions: dict[tuple[int, str, str | None], object] = {}
        self._offers: dict[tuple[int, int], list] = {}

        # -- agents ------------------------------------------------------------------------
        self.nation_ids = list(scenario.nations)
        self.nation_index = {n: i for i, n in enumerate(self.nation_ids)}
        self.nations = {n: Nation(self, n, spec) for n, spec in scenario.nations.items()}
        self.foundries = {f: Foundry(self, f, spec) for f, spec in scenario.foundries.items()}
        self.vendor_ids = list(scenario.vendors)
        self.vendors = {v: Vendor(self, v, spec, self.chip_index, catalog)
                        for v, spec in scenario.vendors.items()}
        self.sites: list[Site] = []
        self.site_buyer: list[str] = []
        self.clouds: list[Cloud] = []
        for cid, spec in scenario.clouds.items():
            site = self._new_site(cid, spec.nation, spec.power_mw, spec.power_growth_per_year,
                                  spec.pue, spec.fleet, spec.fleet_age_years)
            weights = np.array([spec.vendor_preference.get(v, 0.0) for v in self.vendor_ids])
            self.clouds.append(Cloud(self, cid, spec, site, weights))
        self.markets = [(r, t) for r in self.nation_ids for t in TIERS]
        self.market_index = {m: i for i, m in enumerate(self.markets)}

        self.book = LabBook(scenario, self.nation_index, self.rng)
        self.lab_agents = [Lab(self, self.book, row) for row in range(self.book.n)]
        self.lab_vendor_weights = {}
        for row, (lab_id, spec) in enumerate(scenario.labs.items()):
            if spec.can_build or spec.fleet or spec.power_mw > 0:
                self.book.site[row] = self._new_site(lab_id, spec.nation, spec.power_mw,
                                                     spec.power_growth_per_year, LAB_PUE,
                                                     spec.fleet, 1.0)
                self.lab_vendor_weights[row] = np.array(
                    [spec.vendor_preference.get(v, 0.0) for v in self.vendor_ids])
        self.builders = [row for row in range(self.book.n_named) if self.book.can_build[row]]
        self.builder_capex = {row: TimePath(spec.capex_usd_per_year.points,
                                            spec.capex_usd_per_year.growth_after_per_year)
                              for row, spec in enumerate(scenario.labs.values())
                              if spec.can_build}

        # -- policies and events -----------------------------------------------------------
        self.events_by_month: dict[int, list] = defaultdict(list)
        for event in scenario.events:
            self.events_by_month[parse_month(event.date)].append(event)
        self.demand_index = TimePath(mkt.demand_index.points, mkt.demand_index.growth_after_per_year)
        self.demand_shock = 1.0
        self.remote_access_allowed = mkt.remote_access_allowed

        # -- state read by reporters and the next month -----------------------------------
        self.latest_price_index: dict[tuple[str, str], float] = {}
        self.latest_share: dict[str, float] = {}
        self.records: dict[str, list] = defaultdict(list)
        self.datacollector = mesa.DataCollector(model_reporters={
            "price_index_us_neocloud_usd_per_h100e_hour": price_index_us_neocloud_usd_per_h100e_hour,
            "price_index_us_hyperscaler_usd_per_h100e_hour":
                price_index_us_hyperscaler_usd_per_h100e_hour,
            "china_share_of_installed_h100e": china_share_of_installed_h100e,
            "us_share_of_installed_h100e": us_share_of_installed_h100e,
        })
        self.datacollector.collect(self)

    # ------------------------------------------------------------------ construction ---
    def _new_site(self, owner: str, nation: str, power_mw: float, growth: float, pue: float,
                  fleet: dict[str, float], age_years: float) -> int:
        site = Site(owner, self.nation_index[nation], power_mw, growth, pue, len(self.chip_ids),
                    self.start_month)
        installed_month = self.start_month - int(round(age_years * 12))
        for chip, units in fleet.items():
            k = self.chip_index[chip]
            price = self._reference_unit_price_usd(chip) * self.server_price[k]
            site.fleet.add_installed(k, units, installed_month, price)
        self.sites.append(site)
        self.site_buyer.append(owner)
        return len(self.sites) - 1

    def _reference_unit_price_usd(self, chip: str) -> float:
        """List price of a chip: a vendor product's, else the catalog's (checked on load)."""
        for vendor in self.vendors.values():
            for prod, k in enumerate(vendor.product_chip):
                if self.chip_ids[k] == chip:
                    return float(vendor.list_price[prod])
        return float(self.chips[self.chip_index[chip]].unit_price_usd)

    # ---------------------------------------------------------------------- the month ---
    def step(self) -> None:
        """One month: policies, production, chip sales, installation, GPU-hour market, labs,
        capacity planning, collection."""
        self.month += 1
        self._apply_policies()
        self._produce_chips()
        self._sell_chips()
        self._install_chips()
        self._clear_gpu_hours()
        self._advance_labs()
        self._plan_capacity()
        self._collect()

    @property
    def step_index(self) -> int:
        return self.month - self.start_month + 1

    # 1. nations ---------------------------------------------------------------------------
    def _apply_policies(self) -> None:
        for event in self.events_by_month.get(self.month, []):
            if event.kind == "export_control":
                self.nations[event.issuer].apply_event(event)
            elif event.kind == "foundry_shock":
                self.foundries[event.foundry].add_shock(event.date, event.months, event.factor)
            elif event.kind == "remote_access":
                self.remote_access_allowed = event.allowed
            elif event.kind == "demand_shock":
                self.demand_shock *= event.factor

    def _decision(self, chip: int, group: str, vendor: Vendor):
        """Export-control decision for a vendor's chip to a destination group (cached)."""
        issuer = self.nations.get(vendor.nation)
        rule = issuer.rule_in_force if issuer is not None else None
        key = (chip, group, rule)
        if key not in self._decisions:
            self._decisions[key] = classify(self.chips[chip], group, rule, self.rules)
        return self._decisions[key]

    # 2. foundries -------------------------------------------------------------------------
    def _produce_chips(self) -> None:
        wafers: dict[str, float] = defaultdict(float)
        for foundry in self.foundries.values():
            for vendor, w in foundry.allot_wafers(self.month).items():
                wafers[vendor] += w
        for vid, vendor in self.vendors.items():
            vendor.produce(self.month, wafers.get(vid, 0.0))

    # 3. vendors ---------------------------------------------------------------------------
    def _sell_chips(self) -> None:
        lead = self.params.chip_lead_time_months
        for vid, vendor in self.vendors.items():
            vendor.set_prices()
            fractions = np.array([
                self._decision(int(vendor.product_chip[p]), self._site_group(s),
                               vendor).shippable_fraction
                for s, p in zip(vendor.order_site, vendor.order_product)])
            for site, chip, units, price in vendor.ship(fractions, self.params.rationing):
                self.sites[site].fleet.ship(self.month + lead, chip, units,
                                            price * self.server_price[chip])
                self.records["flows"].append((self.step_index, "shipments", vendor.nation,
                                              self.nation_ids[self.sites[site].nation],
                                              units * self.h100e[chip]))
            shipped_h100e = float(vendor.shipped_units @ self.h100e[vendor.product_chip])
            self.records["vendors"].append((self.step_index, vid, float(vendor.shipped_units.sum()),
                                            shipped_h100e, vendor.revenue_usd,
                                            float(vendor.output_units.sum())))

    def _site_group(self, site: int) -> str:
        return self.nations[self.nation_ids[self.sites[site].nation]].controls_group

    # 4. installation ----------------------------------------------------------------------
    def _install_chips(self) -> None:
        max_age = self.params.retire_after_years * 12.0
        for site in self.sites:
            site.fleet.retire(self.month, max_age)
            growth = self.nations[self.nation_ids[site.nation]].power_buildout_per_year
            headroom = site.capacity_mw(self.month, growth) - site.installed_mw(self.mw_per_chip)
            site.fleet.receive_and_install(self.month, headroom / site.pue, self.mw_per_chip,
                                           self.h100e)

    # 5. GPU-hour market -------------------------------------------------------------------
    def _cloud_costs(self, cloud: Cloud) -> tuple[np.ndarray, np.ndarray]:
        """Full owned cost and energy cost per chip-hour of a cloud's installed chips [USD]."""
        site = self.sites[cloud.site]
        nation = self.nations[cloud.region]
        value = site.fleet.value_by_chip(self.month)
        owned = costs.owned_cost_per_gpu_hour(value, self.tdp_w, self.server_power,
                                              self.power_fraction, site.pue,
                                              nation.electricity_usd_per_kwh)
        return np.asarray(owned.total_usd_per_gpu_hour), np.asarray(owned.energy_usd_per_gpu_hour)

    def _clear_gpu_hours(self) -> None:
        p, book = self.params, self.book
        hours = HOURS_PER_MONTH * p.availability
        # asks: one block per cloud and chip class
        a_cloud, a_chip, a_qty, a_price = [], [], [], []
        for ci, cloud in enumerate(self.clouds):
            units = self.sites[cloud.site].fleet.units_by_chip()
            cost, energy = self._cloud_costs(cloud)
            chips, qty, price = cloud.asks(units, self.h100e, cost, energy, hours)
            a_cloud.append(np.full(len(chips), ci)); a_chip.append(chips)
            a_qty.append(qty); a_price.append(price)
        a_cloud = np.concatenate(a_cloud).astype(np.int64)
        a_chip = np.concatenate(a_chip).astype(np.int64)
        a_qty, a_price = np.concatenate(a_qty), np.concatenate(a_price)
        cloud_market = np.array([self.market_index[(c.region, c.tier)] for c in self.clouds])
        a_market = cloud_market[a_cloud] if a_cloud.size else np.zeros(0, dtype=np.int64)
        a_region = a_market // 2

        # bids: three blocks per lab (serving, training, experiments), split by tier
        index = self.demand_index.at(self.month) * self.demand_shock
        need = book.need(self.month, self.start_month, index, HOURS_PER_MONTH)
        own = np.zeros(book.n)
        for row in np.flatnonzero(book.site >= 0):
            fleet = self.sites[book.site[row]].fleet
            own[row] = float(fleet.units_by_chip() @ self.h100e) * hours
        market_need = np.maximum(need - own, 0.0)
        budget = book.budget_per_month(self.month, self.start_month, index)
        qty, price = lab_bids(market_need, need, budget, book.inference_share,
                              p.inference_wtp_usd_per_h100e_hour,
                              p.training_wtp_cap_usd_per_h100e_hour, p.experiment_share,
                              p.experiment_wtp_usd_per_h100e_hour)
        n = book.n
        # hyperscaler share per block: serving mostly at hyperscalers, training by contract
        h = np.stack([np.full(n, p.inference_hyperscaler_share), book.hyperscaler_share,
                      book.hyperscaler_share])
        premium = np.array([p.hyperscaler_wtp_premium, 1.0])      # by tier index
        bids = _tier_bids(qty, price, h, book.nation, p.tie_break == "pro_rata")
        b_qty, b_base, b_region, b_tier = bids.qty, bids.price, bids.region, bids.tier

        # shoppers (bids not tied to a hyperscaler contract) try first the tier that was
        # cheaper last month for what they get: hyperscaler price / premium vs neocloud price
        b_first = b_tier.copy()
        for r, region in enumerate(self.nation_ids):
            hyper = self.latest_price_index.get((region, "hyperscaler"))
            neo = self.latest_price_index.get((region, "neocloud"))
            if hyper is not None and neo is not None and hyper / premium[0] < neo:
                b_first[(b_region == r) & (b_tier == 1)] = 0
        a_left, b_left = a_qty.copy(), b_qty.copy()
        a_sold, a_rev = np.zeros_like(a_qty), np.zeros_like(a_qty)
        b_got, b_paid = np.zeros_like(b_qty), np.zeros_like(b_qty)
        trades: dict[int, list[tuple[float, float]]] = defaultdict(list)
        first_price: dict[int, float] = {}
        remote_rows = []

        def run(b_rows, a_rows, tier_value=1.0, friction=0.0, remote_region=None):
            """Clear residual bids against residual asks; bids value the hour at their base
            value x the tier's premium, less any remote-access friction."""
            if b_rows.size == 0 or a_rows.size == 0:
                return None
            res = _clear_grouped(b_left[b_rows], b_base[b_rows] * tier_value - friction,
                                 a_left[a_rows], a_price[a_rows], p.tie_break, self.rng)
            if res.volume > 0:
                b_left[b_rows] -= res.bid_fill; a_left[a_rows] -= res.ask_fill
                b_got[b_rows] += res.bid_fill; a_sold[a_rows] += res.ask_fill
                b_paid[b_rows] += res.bid_fill * res.price   # friction is not a payment
                a_rev[a_rows] += res.ask_fill * res.price
                for m in np.unique(a_market[a_rows]):
                    vol = res.ask_fill[a_market[a_rows] == m].sum()
                    if vol > 0:
                        trades[int(m)].append((res.price, vol))
                if remote_region is not None:
                    remote_rows.append((b_rows, res.bid_fill, remote_region))
            return res

        # pass 1: each lab buys in its home region and its chosen tier
        for m, (region, tier) in enumerate(self.markets):
            r, t = self.nation_index[region], TIERS.index(tier)
            res = run(np.flatnonzero((b_region == r) & (b_first == t)),
                      np.flatnonzero(a_market == m), premium[t])
            if res is not None:
                first_price[m] = res.price
            elif np.any(a_market == m):
                first_price[m] = float(a_price[a_market == m].min())
        # pass 2: what is left tries the other tier at home
        for m, (region, tier) in enumerate(self.markets):
            r, t = self.nation_index[region], TIERS.index(tier)
            run(np.flatnonzero((b_region == r) & (b_first != t) & (b_left > 1e-9)),
                np.flatnonzero((a_market == m) & (a_left > 1e-9)), premium[t])
        # pass 3: remote access to foreign clouds, where the rules allow it
        if self.remote_access_allowed:
            ranks = max((len(n.remote_regions) for n in self.nations.values()), default=0)
            for k in range(ranks):
                target = np.array([self.nation_index[n.remote_regions[k]]
                                   if len(n.remote_regions) > k else -1
                                   for n in self.nations.values()])
                for r in np.unique(target[target >= 0]):
                    labs_from = np.flatnonzero(target == r)
                    run(np.flatnonzero(np.isin(b_region, labs_from) & (b_left > 1e-9)),
                        np.flatnonzero((a_region == r) & (a_left > 1e-9)),
                        friction=p.remote_friction_usd_per_h100e_hour,
                        remote_region=self.nation_ids[r])

        # settle: clouds' revenue, labs' compute and spend
        for ci, cloud in enumerate(self.clouds):
            rows = a_cloud == ci
            cloud.settle(float(a_qty[rows].sum()), float(a_sold[rows].sum()),
                         float(a_rev[rows].sum()))
            self.records["clouds"].append((self.step_index, cloud.cloud_id, cloud.region,
                                           cloud.tier, cloud.offered_h100e_hours,
                                           cloud.sold_h100e_hours, cloud.revenue_usd,
                                           cloud.margin))
        book.need_h100e_hours = need
        book.own_h100e_hours = np.minimum(own, need)
        got_share = np.divide(b_got, b_qty, out=np.zeros_like(b_qty), where=b_qty > 0)
        paid_per_unit = np.divide(b_paid, b_qty, out=np.zeros_like(b_qty), where=b_qty > 0)
        lab_got, lab_paid = bids.per_lab(got_share), bids.per_lab(paid_per_unit)
        book.bought_h100e_hours = lab_got.sum(axis=0)
        book.spend_usd = lab_paid.sum(axis=0)
        self._serving_bought = lab_got[0]
        for rows, fill, region in remote_rows:
            got = np.bincount(b_region[rows], weights=fill,
                              minlength=len(self.nation_ids))
            for ni in np.flatnonzero(got > 0):
                self.records["flows"].append((self.step_index, "remote_access", region,
                                              self.nation_ids[ni], got[ni] / HOURS_PER_MONTH))

        # prices: per market (volume-weighted over passes) and per chip class
        self.latest_price_index = {}
        for m, (region, tier) in enumerate(self.markets):
            if m not in first_price:
                continue                      # no cloud of this tier in this region
            deals = trades.get(m)
            index = (sum(pr * v for pr, v in deals) / sum(v for _, v in deals)) if deals \
                else first_price[m]
            self.latest_price_index[(region, tier)] = index
            self.records["price_index"].append((self.step_index, region, tier, index))
            rows = np.flatnonzero(a_market == m)
            offered = np.bincount(a_chip[rows], weights=a_qty[rows], minlength=len(self.chip_ids))
            sold = np.bincount(a_chip[rows], weights=a_sold[rows], minlength=len(self.chip_ids))
            for k in np.flatnonzero(offered > 0):
                self.records["prices"].append((
                    self.step_index, region, tier, self.chip_ids[k], index * self.h100e[k],
                    sold[k] / self.h100e[k], sold[k] / offered[k]))

    # 6. labs ------------------------------------------------------------------------------
    def _advance_labs(self) -> None:
        book, p = self.book, self.params
        own_training = book.own_h100e_hours * (1.0 - book.inference_share)
        training = own_training + book.bought_h100e_hours - self._serving_bought
        book.advance_training(np.maximum(training, 0.0), FLOP_PER_H100E_HOUR * p.mfu, self.month,
                              self.start_month)
        book.capex_usd = np.zeros(book.n)
        if not self.builders:
            return
        backlog = self._site_backlog_h100e()
        horizon = 12
        for row in self.builders:
            if book.start_month[row] > self.month + horizon:
                continue
            site_i = int(book.site[row])
            site = self.sites[site_i]
            nation = self.nation_ids[site.nation]
            offer = self._best_offer(site_i, self.lab_vendor_weights[row])
            if offer is None:
                continue
            chip, unit_price = offer
            years = (self.month + horizon - self.start_month) / 12.0
            future_need = (book.demand_h100e[row] * (1 + book.demand_growth[row]) ** years
                           * self.demand_index.at(self.month + horizon) * self.demand_shock)
            have = float((site.fleet.units_by_chip() + site.fleet.pipeline_by_chip()) @ self.h100e)
            gap_h100e = future_need - have - backlog[site_i]
            if gap_h100e <= 0:
                continue
            gap_gpus = gap_h100e / self.h100e[chip]
            hw = unit_price * self.server_price[chip]
            energy = float(costs.energy_cost_usd(costs.energy_kwh(
                HOURS_PER_MONTH, self.tdp_w[chip], self.server_power[chip],
                self.power_fraction[chip], site.pue), self.nations[nation].electricity_usd_per_kwh))
            rent = self.latest_price_index.get((nation, "neocloud"),
                                               self.latest_price_index.get((nation, "hyperscaler")))
            if rent is None:
                continue
            if not build_decision(gap_gpus, costs.acquisition_cost_usd(1, hw), energy,
                                  rent * self.h100e[chip], 0.8, p.build_horizon_months):
                continue
            allowance = self.builder_capex[row].at(self.month) / 12.0
            spent = self._order_chips(site_i, self.site_buyer[site_i], gap_h100e / 3.0,
                                      allowance, self.lab_vendor_weights[row])
            book.capex_usd[row] = spent

    # 7. clouds plan capacity ------------------------------------------------------------
    def _plan_capacity(self) -> None:
        p = self.params
        backlog = self._site_backlog_h100e()
        lead = p.chip_lead_time_months
        for cloud in self.clouds:
            cloud.reprice(p.margin_response)
            site = self.sites[cloud.site]
            offer = self._best_offer(cloud.site, cloud.vendor_weights)
            if offer is None:
                continue
            chip, unit_price = offer
            nation = self.nations[cloud.region]
            new_cost = costs.owned_cost_per_gpu_hour(
                unit_price * self.server_price[chip], self.tdp_w[chip], self.server_power[chip],
                self.power_fraction[chip], site.pue,
                nation.electricity_usd_per_kwh).total_usd_per_gpu_hour / self.h100e[chip]
            earned = cloud.earned_per_offered_h100e_hour()
            if earned is None:   # a cloud with no fleet yet expects its market's going rate
                index = self.latest_price_index.get((cloud.region, cloud.tier), 0.0)
                earned = index * cloud.target_utilization
            installed = float(site.fleet.units_by_chip() @ self.h100e)
            pipeline = float(site.fleet.pipeline_by_chip() @ self.h100e) + backlog[cloud.site]
            cap_mw = site.capacity_mw(self.month + lead + 3, nation.power_buildout_per_year)
            power_cap = cap_mw / site.pue / (self.mw_per_chip[chip] / self.h100e[chip])
            desired = cloud.desired_fleet_h100e(installed, power_cap, earned, new_cost,
                                                p.cloud_invest_response)
            want = desired - installed - pipeline
            if want > 0:
                self._order_chips(cloud.site, cloud.cloud_id, want, cloud.capex_per_month(self.month),
                                  cloud.vendor_weights)

    # -- ordering helpers -------------------------------------------------------------------
    def _site_backlog_h100e(self) -> np.ndarray:
        """Open chip orders per site [H100e]."""
        out = np.zeros(len(self.sites))
        for vendor in self.vendors.values():
            if vendor.order_units.size:
                out += np.bincount(vendor.order_site, weights=vendor.order_units
                                   * self.h100e[vendor.product_chip[vendor.order_product]],
                                   minlength=len(self.sites))
        return out

    def _vendor_offers(self, site: int) -> list[tuple[int, int, float] | None]:
        """Per vendor: the best active product this site may buy: (product, chip, price).
        Prices and rules are fixed within a month, so offers are cached per month."""
        key = (site, self.month)
        if key not in self._offers:
            self._offers = {k: v for k, v in self._offers.items() if k[1] == self.month}
            self._offers[key] = self._compute_offers(site)
        return self._offers[key]

    def _compute_offers(self, site: int) -> list[tuple[int, int, float] | None]:
        buyer, group = self.site_buyer[site], self._site_group(site)
        offers = []
        for vendor in self.vendors.values():
            best = None
            if vendor.sells_to(buyer):
                for prod in np.flatnonzero(vendor.active(self.month)):
                    chip = int(vendor.product_chip[prod])
                    if self._decision(chip, group, vendor).shippable_fraction <= 0:
                        continue
                    value = self.h100e[chip] / vendor.price[prod]
                    if best is None or value > best[3]:
                        best = (int(prod), chip, float(vendor.price[prod]), value)
            offers.append(None if best is None else best[:3])
        return offers

    def _best_offer(self, site: int, weights: np.ndarray) -> tuple[int, float] | None:
        """Most preferred vendor's offer to a site: (chip index, unit price)."""
        offers = self._vendor_offers(site)
        ranked = [(w, o) for w, o in zip(weights, offers) if o is not None and w > 0]
        if not ranked:
            return None
        _, (_, chip, price) = max(ranked, key=lambda x: x[0])
        return chip, price

    def _order_chips(self, site: int, buyer: str, h100e_wanted: float, budget_usd: float,
                     weights: np.ndarray) -> float:
        """Place orders for `h100e_wanted` across vendors by preference, within a budget.
        Returns the committed spend [USD]."""
        if h100e_wanted <= 0 or budget_usd <= 0:
            return 0.0
        offers = self._vendor_offers(site)
        shares = split_order(weights, np.array([o is not None for o in offers]))
        plan = []
        for vendor, share, offer in zip(self.vendors.values(), shares, offers):
            if share <= 0 or offer is None:
                continue
            prod, chip, price = offer
            units = order_price_response(h100e_wanted * share / self.h100e[chip], price,
                                         vendor.list_price[prod], self.params.order_price_elasticity)
            plan.append((vendor, prod, units, units * price * self.server_price[chip]))
        cost = sum(c for *_, c in plan)
        scale = min(1.0, budget_usd / cost) if cost > 0 else 0.0
        for vendor, prod, units, _ in plan:
            vendor.take_order(site, prod, units * scale, self.month)
        return cost * scale

    # 8. collect ---------------------------------------------------------------------------
    def _collect(self) -> None:
        installed = np.zeros(len(self.nation_ids))
        for site in self.sites:
            installed[site.nation] += float(site.fleet.units_by_chip() @ self.h100e)
        total = installed.sum()
        book = self.book
        frontier = np.zeros(len(self.nation_ids))
        np.maximum.at(frontier, book.nation, book.largest_run_flop)
        demand = np.bincount(book.nation, weights=book.need_h100e_hours,
                             minlength=len(self.nation_ids))
        got = np.bincount(book.nation, weights=book.own_h100e_hours + book.bought_h100e_hours,
                          minlength=len(self.nation_ids))
        self.latest_share = {}
        for i, nation in enumerate(self.nation_ids):
            share = installed[i] / total if total > 0 else 0.0
            self.latest_share[nation] = share
            self.records["compute"].append((self.step_index, nation, installed[i], share,
                                            frontier[i], demand[i], max(demand[i] - got[i], 0.0)))
        self.records["labs"].append((self.step_index, book.own_h100e_hours + book.bought_h100e_hours,
                                     book.spend_usd.copy(), book.capex_usd.copy()))
        self.datacollector.collect(self)

    def run(self, months: int | None = None) -> None:
        """Step through the scenario (or the first `months` of it)."""
        for _ in range(self.n_months if months is None else min(months, self.n_months)):
            self.step()
