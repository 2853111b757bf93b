"""ComputeMarket: the Mesa model of vendors, foundries, clouds, labs and nations.

A run is `Scenario -> ComputeMarket(scenario, seed) -> steps -> tables`. One step is one
calendar month; `step()` reads as the month's phases in order (docs/model.md). Prices,
volumes, shares and who builds what are outcomes of the agents' decisions and the clearing;
the scenario supplies only inputs (specs, capacities, power, demand, budgets, policies, shocks).

Units: compute in H100-equivalents (dense BF16 FLOP/s relative to H100 SXM) and H100e-hours;
money in USD; power in MW; time in months.
"""

from __future__ import annotations

from collections import defaultdict, deque

import mesa
import numpy as np

from agents.cloud import Cloud
from agents.fleet import Site
from agents.foundry import Foundry
from agents.lab import Lab, LabBook
from agents.nation import Nation, announced_rules
from agents.vendor import Vendor, design_variants
from market import chip_trade, cloud_orders, costs, policies
from market.catalog import load_catalog
from market.controls import (load_rules)
from market.collect import collect, datacollector
from market.gpu_hours import (CloudFleets, HourMarket, clear_gpu_hours, fleet_values,
                              gather_supply)
from market.hour_value import hour_value_h100e, serving_share_by_region
from market.lab_builds import labs_build
from market.timeline import TimePath, parse_month
from market.world import (TIERS, efficiency_factor, energy_usd_per_chip_hour,
                          shock_factor)
from scenarios.loader import LAB_PUE

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
        base_catalog = load_catalog()
        self.rules = load_rules().with_rules(dict(scenario.rules), f"scenario {scenario.name}")
        catalog = {cid: base_catalog[cid] for cid in base_catalog}
        groups = {scenario.nations[o.nation].controls_group
                  for o in [*scenario.clouds.values(), *scenario.labs.values()]}
        self.buyer_groups = sorted(groups)
        derived = design_variants(scenario, catalog, self.rules, self.buyer_groups)

        # -- chips used in this world ---------------------------------------------------
        used = {p.chip for v in scenario.vendors.values() for p in v.products}
        used |= {p.variant_of for v in scenario.vendors.values() for p in v.products
                 if p.variant_of}
        used |= {p.chip for products in derived.values() for p in products}
        used |= {c for cl in scenario.clouds.values() for c in cl.fleet}
        used |= {c for lab in scenario.labs.values() for c in lab.fleet}
        self.chip_ids = sorted(used)
        self.chip_index = {c: i for i, c in enumerate(self.chip_ids)}
        chips = [catalog[c] for c in self.chip_ids]
        self.chips = chips
        self.h100e = np.array([c.h100e for c in chips])
        self.h100e_tpp = np.array([c.h100e_tpp for c in chips])   # as the 2025 rule counted
        self.tdp_w = np.array([c.tdp_w for c in chips])
        self.server_power = np.array([c.server_power_multiplier for c in chips])
        self.power_fraction = np.array([c.avg_power_fraction for c in chips])
        self.server_price = np.array([c.server_price_multiplier for c in chips])
        self.mw_per_chip = self.tdp_w * self.server_power / 1e6   # IT power per chip [MW]
        workload = costs.ServingWorkload(**mkt.serving.model_dump())
        self.serving_h100e = np.atleast_1d(costs.serving_h100e(chips, workload))
        self.install_order = np.argsort(-self.h100e / self.mw_per_chip, kind="stable")
        self._decisions: dict[tuple[int, str, str | None], object] = {}
        self._offers: dict[tuple, list] = {}
        self._offers_month = None
        self._best_products: dict[tuple[str, str, frozenset], tuple | None] = {}

        # -- agents ------------------------------------------------------------------------
        self.nation_ids = list(scenario.nations)
        self.nation_index = {n: i for i, n in enumerate(self.nation_ids)}
        self.nations = {n: Nation(self, n, spec, self.rules)
                        for n, spec in scenario.nations.items()}
        self.foundries = {f: Foundry(self, f, spec) for f, spec in scenario.foundries.items()}
        self.vendor_ids = list(scenario.vendors)
        self.vendors = {v: Vendor(self, v, spec, self.chip_index, catalog, derived.get(v),
                                  merge_orders=mkt.rationing == "pro_rata")
                        for v, spec in scenario.vendors.items()}
        self.sites: list[Site] = []
        self.site_buyer: list[str] = []
        self.clouds: list[Cloud] = []
        for cid, spec in scenario.clouds.items():
            site = self._new_site(cid, spec, spec.pue, spec.fleet_age_years)
            weights = np.array([spec.vendor_preference.get(v, 0.0) for v in self.vendor_ids])
            self.clouds.append(Cloud(self, cid, spec, site, weights))
        self.markets = [(r, t) for r in self.nation_ids for t in TIERS]
        self.market_index = {m: i for i, m in enumerate(self.markets)}

        self.book = LabBook(scenario, self.nation_index, self.rng)
        self.lab_agents = [Lab(self, self.book, row) for row in range(self.book.n)]
        self.lab_vendor_weights = {}
        for row, (lab_id, spec) in enumerate(scenario.labs.items()):
            if spec.has_site:
                self.book.site[row] = self._new_site(lab_id, spec, LAB_PUE, 1.0)
                self.lab_vendor_weights[row] = np.array(
                    [spec.vendor_preference.get(v, 0.0) for v in self.vendor_ids])
        self.builders = [row for row in range(self.book.n_named) if self.book.can_build[row]]
        self.energy_usd_per_chip_hour = energy_usd_per_chip_hour(
            [site.pue for site in self.sites],
            [self.nations[self.nation_ids[site.nation]].electricity_usd_per_kwh
             for site in self.sites], self.tdp_w, self.server_power, self.power_fraction)
        self.hardware_usd_per_usd_hour = float(costs.amortized_hardware_cost_usd(1.0, 1.0))
        self.site_nation = np.array([site.nation for site in self.sites], dtype=np.int64)
        # each nation's grid: its sites' power at the start, growing at its build-out rate
        self.grid_mw0 = np.bincount(self.site_nation,
                                    weights=[site.power_mw0 for site in self.sites],
                                    minlength=len(self.nation_ids))
        self.grid_growth_per_year = np.array([self.nations[n].power_buildout_per_year
                                              for n in self.nation_ids])
        self.cloud_sites = np.array([c.site for c in self.clouds], dtype=np.int64)
        self.cloud_fleets = CloudFleets([self.sites[c.site].fleet for c in self.clouds],
                                        len(self.chip_ids))
        self.cloud_market = np.array([self.market_index[(c.region, c.tier)] for c in self.clouds],
                                     dtype=np.int64)
        self.foreign_vendor = np.array([[v.nation != n for v in self.vendors.values()]
                                        for n in self.nation_ids])
        self.site_group = [self.nations[self.nation_ids[site.nation]].controls_group
                           for site in self.sites]
        # the chips each site's state bans it from buying (`market.policies.update_bans`),
        # and what its offers depend on (`chip_trade.offer_keys`)
        self.site_banned: list[frozenset[int]] = [frozenset()] * len(self.sites)
        self._bans_signature: tuple | None = None
        self._offer_key = chip_trade.offer_keys(self)

        # -- policies and events -----------------------------------------------------------
        self.events_by_month: dict[int, list] = defaultdict(list)
        for event in scenario.events:
            self.events_by_month[parse_month(event.date)].append(event)
        self.demand_index = TimePath(mkt.demand_index.points, mkt.demand_index.growth_after_per_year)
        self.financing_index = TimePath(mkt.financing_index.points,
                                        mkt.financing_index.growth_after_per_year)
        # what a market H100e-hour of each region's fleet holds in serving and training
        # H100e [-], and what an hour of each chip is worth there (`market.hour_value`): its
        # buyers' share of serving starts at the share in their potential demand
        n_regions = len(self.nation_ids)
        self.serving_value = np.ones(n_regions)
        self.training_value = np.ones(n_regions)
        serve, train = self.book.potential_h100e_hours(self.start_month, self.start_month,
                                                        self.demand_index.at(self.start_month),
                                                        1.0)
        self.serving_share = serving_share_by_region(serve, serve + train, self.book.nation,
                                                     n_regions, np.zeros(n_regions))
        self.hour_h100e = hour_value_h100e(self.h100e, self.serving_h100e, self.serving_share)
        # so the first month's builds see the fleets' values, as later months do
        self.serving_value, self.training_value = fleet_values(
            gather_supply(self, 1.0), n_regions, self.serving_value, self.training_value)
        self.hour_market = HourMarket(self)
        self.demand_shock = 1.0
        self.remote_access_allowed = mkt.remote_access_allowed
        self.leakage = scenario.leakage
        # rules known (announced or expected) before they take effect: buyers stockpile in between
        self.announcements = announced_rules(scenario.events, self.rules)
        self.windows: list[tuple[str, int, int, object]] = []   # (kind, first, last, event)
        self.remote_open = {n: self.remote_access_allowed for n in self.nation_ids}
        self.hbm_cut_since: dict[str, int] = {}      # nation -> month HBM became controlled
        self.cap_used: dict[tuple, float] = defaultdict(float)     # (issuer, rule, nation)
        self.cap_start: dict[tuple, int] = {}
        self.exempt_used: dict[tuple, float] = defaultdict(float)  # (site, year)
        self.shipped_to: dict[tuple, float] = defaultdict(float)   # (vendor, product, group)
        self.lost_revenue: dict[str, deque] = {n: deque(maxlen=12) for n in self.nation_ids}
        self.frontier_share: dict[str, float] = {}
        self._respond_signature = None
        self._switch_signature = None
        self.order_ema = np.zeros(len(self.sites))
        self._ordered = np.zeros(len(self.sites))
        self.grey_month, self.grey_units = -1, 0.0   # grey-market orders placed this month
        chip_trade.place_opening_orders(self)

        # -- state read by reporters and the next month -----------------------------------
        self.latest_price_index: dict[tuple[str, str], float] = {}
        self.latest_prices: dict[tuple[str, str, str], float] = {}
        self.latest_share: dict[str, float] = {}
        self.records: dict[str, list] = defaultdict(list)
        self.datacollector = datacollector()
        self.datacollector.collect(self)

    # ------------------------------------------------------------------ construction ---
    def _new_site(self, owner: str, spec, pue: float, age_years: float) -> int:
        """A site for a cloud's or lab's `spec`: its power at the start, the projects under
        way then (no faster than its nation's grid grows) and announced, and its fleet."""
        grid = self.nations[spec.nation].power_buildout_per_year
        site = Site(owner, self.nation_index[spec.nation], spec.power_mw, pue,
                    len(self.chip_ids), self.start_month,
                    min(spec.power_pipeline_growth_per_year, grid),
                    self.params.power_build_lag_months,
                    {parse_month(m): mw for m, mw in spec.power_projects_mw.items()})
        installed_month = self.start_month - int(round(age_years * 12))
        for chip, units in spec.fleet.items():
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
        """One month: policies, production, stockpiling ahead of announced rules, chip sales,
        installation, labs' own builds, GPU-hour market, clouds' capacity planning, collection."""
        self.month += 1
        policies.apply_policies(self)
        chip_trade.produce_chips(self)
        chip_trade.stockpile(self)
        chip_trade.sell_chips(self)
        chip_trade.install_chips(self)
        labs_build(self)
        clear_gpu_hours(self)
        cloud_orders.plan_capacity(self)
        collect(self)

    @property
    def step_index(self) -> int:
        return self.month - self.start_month + 1

    def _demand_factor(self) -> float:
        """Multiplier on labs' demand and budgets from demand shocks [-]."""
        return self.demand_shock * shock_factor(self.windows, self.month, "demand_shock")

    def _efficiency_factor(self) -> float:
        return efficiency_factor(self.windows, self.month)

    def run(self, months: int | None = None) -> None:
        """Step through the scenario (or the first `months` of it)."""
        for _ in range(self.n_months if months is None else min(months, self.n_months)):
            self.step()
