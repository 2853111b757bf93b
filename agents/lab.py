"""AI labs: named frontier labs and a generated long tail, kept as columns of numpy arrays.

Lab state lives in a `LabBook` (one array per attribute, one row per lab) so a month's demand,
spend and training progress are a few vectorized operations whatever the number of labs; each
`Lab` Mesa agent is a thin view on its row and makes the one decision a lab makes alone: whether
to build its own cluster (`Lab.plan_build`). How much compute a lab buys at a price is its
demand curve (`agents.demand`); where it buys it, its option shares (`agents.pricing`).

Heterogeneity (the model's seeded generator): the long tail's sizes, every lab's reference
value of compute and its elasticities (lognormal around the scenario's means), and the length
and phase of its training runs.
"""

from __future__ import annotations

import mesa
import numpy as np

from agents.demand import DemandCurves
from market import costs
from market.timeline import parse_month
from market.world import HOURS_PER_MONTH


def _lognormal_around(rng: np.random.Generator, mean: float, sigma: float, n: int) -> np.ndarray:
    """n draws with median `mean` and log-sd `sigma` (sigma 0: all equal to `mean`)."""
    if sigma <= 0 or n == 0:
        return np.full(n, float(mean))
    return mean * np.exp(rng.normal(0.0, sigma, size=n))


def owned_cost_usd_per_h100e_hour(hardware_usd: float, h100e_per_chip: float,
                                  energy_usd_per_chip_hour: float, cost_of_capital: float,
                                  utilization: float) -> float:
    """Owned cost of a useful H100e-hour of a new chip [USD]: the user cost of capital
    (Jorgenson 1963: interest plus economic depreciation, the cost core's r = 0.322/yr value
    decline) on the hardware with its interconnect, plus energy, divided by utilization."""
    per_chip = hardware_usd / (1.0 - costs.INTERCONNECT_SHARE)
    rate = cost_of_capital + costs.HARDWARE_VALUE_DECLINE_PER_YEAR
    return (per_chip * rate / costs.HOURS_PER_YEAR + energy_usd_per_chip_hour) \
        / max(utilization, 1e-9) / h100e_per_chip


def build_share(owned_usd_per_h100e_hour: float, rent_usd_per_h100e_hour: float | None,
                price_sensitivity: float) -> float:
    """Share of its compute a building lab wants on its own site [-]: a binary logit over the
    log costs of owning and renting an hour, 1 / (1 + (own / rent)^beta), with the buyers'
    weight on log effective cost (`market.choice_price_sensitivity`, as in their choice of
    tier and instrument, `agents.pricing.choose_options`): half at equal costs, all or
    nothing only as beta grows (McFadden 1974). 0 with no rent to compare with."""
    if rent_usd_per_h100e_hour is None or rent_usd_per_h100e_hour <= 0:
        return 0.0
    ratio = max(owned_usd_per_h100e_hour, 0.0) / rent_usd_per_h100e_hour
    with np.errstate(over="ignore"):
        return float(1.0 / (1.0 + np.float64(ratio) ** price_sensitivity))


def build_order_h100e(wanted_h100e: float, have_h100e: float, owned_usd_per_h100e_hour: float,
                      rent_usd_per_h100e_hour: float | None, gap_closure_per_month: float,
                      price_sensitivity: float = np.inf) -> float:
    """Build or rent: H100e a building lab orders this month (0: none): it wants the
    `build_share` of the compute it wants on its own site, and orders
    `gap_closure_per_month` of the gap between that and what it has installed and on order
    [H100e]. An infinite `price_sensitivity` is the all-or-nothing rule: build everything
    while owning is cheaper than a contract."""
    if rent_usd_per_h100e_hour is None:
        return 0.0
    if np.isinf(price_sensitivity):
        share = 1.0 if owned_usd_per_h100e_hour < rent_usd_per_h100e_hour else 0.0
    else:
        share = build_share(owned_usd_per_h100e_hour, rent_usd_per_h100e_hour,
                            price_sensitivity)
    return max(share * wanted_h100e - have_h100e, 0.0) * gap_closure_per_month


class LabBook:
    """Columns of lab state. Units: potential demand in H100e of continuous use, financing in
    USD/yr, compute in H100e-hours, training work in FLOP, months as integers."""

    def __init__(self, scenario, nation_index: dict[str, int], rng: np.random.Generator):
        named = list(scenario.labs.items())
        tail = scenario.long_tail
        p = scenario.market
        n_named = len(named)
        # split the long tail among nations by their share of its demand, then size the labs
        nations = [n for n, d in tail.demand_h100e_by_nation.items() if d > 0]
        totals = np.array([tail.demand_h100e_by_nation[n] for n in nations])
        n_tail = tail.count if nations else 0
        tail_nation = (rng.choice(len(nations), size=n_tail, p=totals / totals.sum())
                       if n_tail else np.zeros(0, dtype=np.int64))
        sizes = rng.lognormal(0.0, tail.size_sigma, size=n_tail)
        tail_demand = np.zeros(n_tail)
        for i in range(len(nations)):
            members = tail_nation == i
            if members.any():
                tail_demand[members] = totals[i] * sizes[members] / sizes[members].sum()

        self.ids = [lab_id for lab_id, _ in named] + [f"tail-{nations[k]}-{j:05d}"
                                                      for j, k in enumerate(tail_nation)]
        self.names = [spec.name for _, spec in named] + [
            f"{nations[k]} lab {j + 1}" for j, k in enumerate(tail_nation)]
        self.n = n = n_named + n_tail
        self.n_named = n_named
        self.nation = np.array([nation_index[s.nation] for _, s in named]
                               + [nation_index[nations[k]] for k in tail_nation], dtype=np.int64)
        start = parse_month(scenario.start)
        self.start_month = np.array([parse_month(s.start) if s.start else start for _, s in named]
                                    + [start] * n_tail, dtype=np.int64)
        self.demand_h100e = np.concatenate(([s.demand_h100e for _, s in named], tail_demand))
        tail_growth = np.array([tail.demand_growth_by_nation.get(n, tail.demand_growth_per_year)
                                for n in nations])
        self.demand_growth = np.concatenate(([s.demand_growth_per_year for _, s in named],
                                             tail_growth[tail_nation] if n_tail else []))
        self.financing_usd_per_year = np.concatenate((
            [s.financing_usd_per_year for _, s in named],
            tail_demand * tail.financing_usd_per_h100e_year))
        self.financing_growth = np.concatenate((
            [s.financing_growth_per_year for _, s in named],
            tail_growth[tail_nation] if n_tail else []))
        self.inference_share = np.concatenate(([s.inference_share for _, s in named],
                                               np.full(n_tail, tail.inference_share)))
        self.hyperscaler_share = np.concatenate(([s.hyperscaler_share for _, s in named],
                                                 np.full(n_tail, tail.hyperscaler_share)))
        self.can_build = np.concatenate(([s.can_build for _, s in named],
                                         np.zeros(n_tail, dtype=bool))).astype(bool)
        # heterogeneity: what compute is worth to each lab and how it responds to price
        self.reference_price = _lognormal_around(rng, p.reference_price_usd_per_h100e_hour,
                                                 p.value_sigma, n)
        # elasticities within the schema's range for their means (a lognormal tail is long)
        self.serving_elasticity = np.clip(_lognormal_around(
            rng, p.serving_elasticity, p.elasticity_sigma, n), 0.05, 5.0)
        self.training_elasticity = np.clip(_lognormal_around(
            rng, p.training_elasticity, p.elasticity_sigma, n), 0.05, 5.0)
        # training runs: each lab's wall-clock limit and where in its cycle it starts
        spread = p.run_months * p.run_months_spread
        self.run_months = np.maximum(np.rint(rng.uniform(p.run_months - spread,
                                                         p.run_months + spread, size=n)),
                                     1).astype(np.int64)
        self.run_started = self.start_month - rng.integers(0, self.run_months)
        self.run_flop = np.zeros(n)
        self.largest_run_flop = np.zeros(n)
        self.completed_run_flop = np.zeros(n)
        self.site = np.full(n, -1, dtype=np.int64)   # own cluster site, -1 = none
        # money: last month's serving margin funds this month's budget
        self.serving_margin_usd = np.zeros(n)
        # this month's results
        self.need_h100e_hours = np.zeros(n)
        self.own_h100e_hours = np.zeros(n)
        self.bought_h100e_hours = np.zeros(n)
        self.serving_h100e_hours = np.zeros(n)
        self.training_h100e_hours = np.zeros(n)
        self.spend_usd = np.zeros(n)
        self.resale_usd = np.zeros(n)      # contracted hours resold at spot [USD]
        self.capex_usd = np.zeros(n)
        self.budget_usd = np.zeros(n)

    def active(self, month: int) -> np.ndarray:
        return self.start_month <= month

    def potential_h100e_hours(self, month: int, model_start: int, demand_index: float,
                              hours_per_month: float) -> tuple[np.ndarray, np.ndarray]:
        """(serving, training) compute each lab would use this month at its reference price
        [H100e-hours]: its potential demand, grown, times the market's potential-demand path."""
        years = (month - model_start) / 12.0
        grown = np.where(self.active(month),
                         self.demand_h100e * (1.0 + self.demand_growth) ** years
                         * demand_index * hours_per_month, 0.0)
        return grown * self.inference_share, grown * (1.0 - self.inference_share)

    def budget_per_month(self, month: int, model_start: int, financing_index: float
                         ) -> np.ndarray:
        """Money a lab may spend on compute this month [USD]: its outside financing (an input
        path, investors' money) plus the margin its serving earned last month."""
        years = (month - model_start) / 12.0
        financing = self.financing_usd_per_year * financing_index \
            * (1.0 + self.financing_growth) ** years / 12.0
        return np.where(self.active(month), financing + self.serving_margin_usd, 0.0)

    def demand_curves(self, month: int, model_start: int, demand_index: float,
                      financing_index: float, serving_value: np.ndarray,
                      training_value: np.ndarray | None = None,
                      hours_per_month: float = HOURS_PER_MONTH,
                      short_run_share: float = 1.0,
                      token_price_multiple: float = np.inf) -> DemandCurves:
        """This month's demand curves (`agents.demand.DemandCurves`), budgets net of capex;
        labs meet an unexpected price with `short_run_share` of their elasticities."""
        serve, train = self.potential_h100e_hours(month, model_start, demand_index,
                                                  hours_per_month)
        self.budget_usd = self.budget_per_month(month, model_start, financing_index)
        return DemandCurves(serve, train, self.reference_price, self.reference_price,
                            self.serving_elasticity, self.training_elasticity,
                            np.maximum(self.budget_usd - self.capex_usd, 0.0),
                            serving_value[self.nation],
                            1.0 if training_value is None else training_value[self.nation],
                            short_run_share, token_price_multiple)

    def advance_training(self, frontier_h100e_hours: np.ndarray, flop_per_h100e_hour: float,
                         month: int) -> np.ndarray:
        """Add this month's frontier-run work (hours in one cluster [H100e-h]); a run ends at
        its wall-clock limit and its size is what it accumulated. Returns the FLOP of runs
        completed this month (0 where none)."""
        self.run_flop += np.where(self.active(month), frontier_h100e_hours, 0.0) \
            * flop_per_h100e_hour
        done = month - self.run_started >= self.run_months
        self.completed_run_flop = np.where(done, self.run_flop, 0.0)
        self.largest_run_flop = np.maximum(self.largest_run_flop, self.completed_run_flop)
        self.run_flop = np.where(done, 0.0, self.run_flop)
        self.run_started = np.where(done, month, self.run_started)
        return self.completed_run_flop


class Lab(mesa.Agent):
    """A thin Mesa view on one row of the `LabBook` (what the lab has and did this month)."""

    def __init__(self, model: mesa.Model, book: LabBook, row: int):
        super().__init__(model)
        self.book, self.row = book, row

    @property
    def lab_id(self) -> str:
        return self.book.ids[self.row]

    @property
    def compute_h100e_hours(self) -> float:
        return float(self.book.own_h100e_hours[self.row] + self.book.bought_h100e_hours[self.row])

    @property
    def spend_usd(self) -> float:
        return float(self.book.spend_usd[self.row])

    @property
    def largest_run_flop(self) -> float:
        return float(self.book.largest_run_flop[self.row])

    def plan_build(self, offer: tuple[int, float], backlog_h100e: float,
                   rent_usd_per_h100e_hour: float | None, wanted_h100e: float) -> float:
        """H100e this building lab orders for its own site this month, given the best chip
        offered to it (chip index, unit price [USD]), its open orders [H100e], the contract
        price it would rent at [USD per market H100e-hour] and the compute it wants [market
        H100e]."""
        m, row = self.model, self.row
        p = m.params
        site_i = int(self.book.site[row])
        site = m.sites[site_i]
        chip, unit_price = offer
        # the market values an hour of each chip at `hour_h100e` (rent and want are in
        # those units); orders are placed in training H100e
        worth = m.hour_h100e[site.nation]
        owned = owned_cost_usd_per_h100e_hour(
            unit_price * m.server_price[chip], worth[chip],
            float(m.energy_usd_per_chip_hour[site_i, chip]), p.lab_cost_of_capital,
            p.build_utilization)
        have = float((site.fleet.units_by_chip() + site.fleet.pipeline_by_chip()) @ worth) \
            + backlog_h100e * worth[chip] / m.h100e[chip]
        order = build_order_h100e(wanted_h100e, have, owned, rent_usd_per_h100e_hour,
                                  p.build_gap_closure_per_month, p.choice_price_sensitivity)
        return order * m.h100e[chip] / worth[chip]
