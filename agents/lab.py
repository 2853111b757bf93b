"""AI labs: named frontier labs and a generated long tail, kept as columns of numpy arrays.

Lab state lives in a `LabBook` (one array per attribute, one row per lab) so a month's demand,
bids, spend and training progress are a few vectorized operations whatever the number of labs;
each `Lab` Mesa agent is a thin view on its row. The long tail's sizes are drawn from the
model's seeded generator.
"""

from __future__ import annotations

import mesa
import numpy as np

from agents.strategies import build_decision, lab_bids
from market import costs
from market.timeline import parse_month
from market.world import HOURS_PER_MONTH, going_rate

#: How far ahead a building lab plans its own cluster [months] (issue 12: to become an input).
BUILD_LOOKAHEAD_MONTHS = 12
#: Utilization a building lab assumes in its build-or-rent test [-] (issue 12: an input).
BUILD_UTILIZATION = 0.8


def build_order_h100e(future_need_h100e: float, have_h100e: float, backlog_h100e: float,
                      h100e_per_chip: float, server_price_usd: float,
                      energy_usd_per_chip_month: float, rent_usd_per_h100e_hour: float | None,
                      horizon_months: float) -> float:
    """Build or rent: H100e a building lab orders this month (0: none).

    The gap is the need it foresees less its fleet, pipeline and open orders [H100e]; it
    builds when owning that many chips breaks even against renting them within
    `horizon_months` (`strategies.build_decision`), and then orders a third of the gap.
    """
    gap_h100e = future_need_h100e - have_h100e - backlog_h100e
    if gap_h100e <= 0:
        return 0.0
    gap_gpus = gap_h100e / h100e_per_chip
    if rent_usd_per_h100e_hour is None:
        return 0.0
    if not build_decision(gap_gpus, costs.acquisition_cost_usd(1, server_price_usd),
                          energy_usd_per_chip_month, rent_usd_per_h100e_hour * h100e_per_chip,
                          BUILD_UTILIZATION, horizon_months):
        return 0.0
    return gap_h100e / 3.0


class LabBook:
    """Columns of lab state. Units: demand in H100e of continuous use, budgets in USD/yr,
    compute in H100e-hours, training work in FLOP."""

    def __init__(self, scenario, nation_index: dict[str, int], rng: np.random.Generator):
        named = list(scenario.labs.items())
        tail = scenario.long_tail
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
        self.n = n_named + n_tail
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
        self.budget_usd_per_year = np.concatenate((
            [s.budget_usd_per_year for _, s in named],
            tail_demand * tail.budget_usd_per_h100e_year))
        self.budget_growth = np.concatenate(([s.budget_growth_per_year for _, s in named],
                                             tail_growth[tail_nation] if n_tail else []))
        self.inference_share = np.concatenate(([s.inference_share for _, s in named],
                                               np.full(n_tail, tail.inference_share)))
        self.hyperscaler_share = np.concatenate(([s.hyperscaler_share for _, s in named],
                                                 np.full(n_tail, tail.hyperscaler_share)))
        self.can_build = np.concatenate(([s.can_build for _, s in named],
                                         np.zeros(n_tail, dtype=bool))).astype(bool)
        self.run_growth = np.concatenate(([s.run_growth_per_year for _, s in named],
                                          np.full(n_tail, 3.0)))
        first_run = np.concatenate(([s.first_run_flop for _, s in named],
                                    np.maximum(tail_demand, 1.0) * 5e19))
        self.first_run_flop = first_run
        self.next_run_flop = first_run.copy()
        self.training_flop_accumulated = np.zeros(self.n)
        self.largest_run_flop = np.zeros(self.n)
        self.site = np.full(self.n, -1, dtype=np.int64)   # own cluster site, -1 = none
        # this month's results
        self.need_h100e_hours = np.zeros(self.n)
        self.own_h100e_hours = np.zeros(self.n)
        self.bought_h100e_hours = np.zeros(self.n)
        self.spend_usd = np.zeros(self.n)
        self.capex_usd = np.zeros(self.n)
        self.serving_bought_h100e_hours = np.zeros(self.n)

    def active(self, month: int) -> np.ndarray:
        return self.start_month <= month

    def need(self, month: int, model_start: int, demand_index: float,
             hours_per_month: float) -> np.ndarray:
        """Compute each lab wants this month [H100e·h]."""
        years = (month - model_start) / 12.0
        grown = self.demand_h100e * (1.0 + self.demand_growth) ** years
        return np.where(self.active(month), grown * demand_index * hours_per_month, 0.0)

    def budget_per_month(self, month: int, model_start: int, demand_index: float) -> np.ndarray:
        """Compute budget this month [USD]. The market demand path scales budgets as it scales
        needs: the money that followed ChatGPT came with the demand."""
        years = (month - model_start) / 12.0
        return np.where(self.active(month), self.budget_usd_per_year * demand_index
                        * (1.0 + self.budget_growth) ** years / 12.0, 0.0)

    def bids(self, market_need_h100e_hours: np.ndarray, need_h100e_hours: np.ndarray,
             budget_usd_per_month: np.ndarray, params):
        """The labs' GPU-hour bids: three blocks per lab (serving, training, experiments) as
        (quantity [H100e-hours], price [USD per H100e-hour], hyperscaler share [-]), each
        (3, n): serving mostly at hyperscalers, training and experiments by contract."""
        p = params
        qty, price = lab_bids(market_need_h100e_hours, need_h100e_hours, budget_usd_per_month,
                              self.inference_share, p.inference_wtp_usd_per_h100e_hour,
                              p.training_wtp_cap_usd_per_h100e_hour, p.experiment_share,
                              p.experiment_wtp_usd_per_h100e_hour)
        h = np.stack([np.full(self.n, p.inference_hyperscaler_share), self.hyperscaler_share,
                      self.hyperscaler_share])
        return qty, price, h

    def advance_training(self, training_h100e_hours: np.ndarray, flop_per_h100e_hour: float,
                         month: int, model_start: int) -> np.ndarray:
        """Add this month's training work; complete runs that reach their planned size.

        Returns the FLOP of runs completed this month (0 where none). The next planned run is
        the size the lab's run-growth rate gives at the current date.
        """
        self.training_flop_accumulated += training_h100e_hours * flop_per_h100e_hour
        done = self.training_flop_accumulated >= self.next_run_flop
        completed = np.where(done, self.next_run_flop, 0.0)
        self.largest_run_flop = np.maximum(self.largest_run_flop, completed)
        self.training_flop_accumulated = np.where(
            done, self.training_flop_accumulated - self.next_run_flop,
            self.training_flop_accumulated)
        planned = self.first_run_flop * (1.0 + self.run_growth) ** ((month - model_start) / 12.0)
        self.next_run_flop = np.where(done, np.maximum(self.next_run_flop * 1.25, planned),
                                      self.next_run_flop)
        return completed


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

    def plan_build(self, offer: tuple[int, float], backlog_h100e: float) -> float:
        """H100e this building lab orders for its own site this month, given the best chip
        offered to it (chip index, unit price [USD]) and its open orders [H100e]."""
        m, book, row = self.model, self.book, self.row
        horizon = BUILD_LOOKAHEAD_MONTHS
        site_i = int(book.site[row])
        site = m.sites[site_i]
        chip, unit_price = offer
        years = (m.month + horizon - m.start_month) / 12.0
        future_need = (book.demand_h100e[row] * (1 + book.demand_growth[row]) ** years
                       * m.demand_index.at(m.month + horizon) * m._demand_factor()
                       * m._efficiency_factor())
        have = float((site.fleet.units_by_chip() + site.fleet.pipeline_by_chip()) @ m.h100e)
        energy = float(m.energy_usd_per_chip_hour[site_i, chip]) * HOURS_PER_MONTH
        return build_order_h100e(future_need, have, backlog_h100e, m.h100e[chip],
                                 unit_price * m.server_price[chip], energy,
                                 going_rate(m.latest_price_index, m.nation_ids[site.nation]),
                                 m.params.build_horizon_months)
