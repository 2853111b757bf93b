"""AI labs: named frontier labs and a generated long tail, kept as columns of numpy arrays.

Lab state lives in a `LabBook` (one array per attribute, one row per lab) so a month's demand,
bids, spend and training progress are a few vectorized operations whatever the number of labs;
each `Lab` Mesa agent is a thin view on its row. The long tail's sizes are drawn from the
model's seeded generator.
"""

from __future__ import annotations

import mesa
import numpy as np

from agents.strategies import lab_bids
from market.timeline import parse_month


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
