"""Foundries: advanced-packaging (TSMC CoWoS) and domestic AI-die (SMIC) capacity.

A foundry's capacity is its scenario path (observed and announced capacity, dated inputs) plus
what it decides to build itself: from `expansion_from` on, when vendors' committed demand
(their new orders and unmade backlog, in wafers) exceeds its capacity online and under
construction (at the share of it a supply shock leaves producing) by more than
`expansion_threshold`, it starts a share `expansion_response` of the gap each month, at most
`max_expansion_per_year` x its capacity in any 12 months; new capacity comes online `expansion_lag_months` later and costs
`capex_usd_per_wafer_month` per wafer/month, booked when started. A glut (committed demand
below capacity) starts nothing. Units: wafers per month.

The demand it plans for is the demand it expects when a line started now comes online: its
smoothed reading of committed demand (an adaptive expectation, memory
`demand_memory_months`), grown over the lag at that reading's growth over the past year as a
damped trend (`expansion_trend_damping_per_month`; `agents.strategies.damped_trend_growth`): 0 plans for
today's demand (the myopic accelerator), near 1 for the trend carried over the lag, as a
supplier building to its customers' forecasts does.
"""

from __future__ import annotations

from collections import deque

import mesa

from agents.strategies import adaptive_expectation, damped_trend_growth
from market.timeline import TimePath, parse_month


def expansion_start(committed_wafers: float, capacity_ahead_wafers: float, threshold: float,
                    response: float) -> float:
    """New capacity a foundry starts this month [wafers/month]: `response` x (committed -
    capacity ahead) once committed demand exceeds the capacity it will have (online and under
    construction) by more than `threshold`, else nothing (an accelerator rule of investment:
    capacity follows demand with a lag, as in the capacity-expansion models of Manne 1961)."""
    if committed_wafers <= (1.0 + threshold) * capacity_ahead_wafers:
        return 0.0
    return response * (committed_wafers - capacity_ahead_wafers)


class Foundry(mesa.Agent):
    """Turns dated wafer capacity, its own expansions and supply shocks into wafers allotted
    to vendors, and expands in response to their committed demand (`plan_expansion`)."""

    def __init__(self, model: mesa.Model, foundry_id: str, spec):
        super().__init__(model)
        self.foundry_id = foundry_id
        self.name = spec.name
        self.nation = spec.nation
        self.path = TimePath(spec.capacity_wafers_per_month.points,
                             spec.capacity_wafers_per_month.growth_after_per_year)
        self.vendor_shares = dict(spec.vendor_shares)
        self.yield_path = None if spec.yield_path is None else TimePath(
            spec.yield_path.points, spec.yield_path.growth_after_per_year)
        self.expansion_from = None if spec.expansion_from is None else \
            parse_month(spec.expansion_from)
        self.lag_months = round(spec.expansion_lag_months)
        self.threshold = spec.expansion_threshold
        self.response = spec.expansion_response
        self.capex_per_wafer_month = spec.capex_usd_per_wafer_month
        self.max_expansion_per_year = spec.max_expansion_per_year
        self.demand_memory = spec.demand_memory_months
        self.trend_damping = spec.expansion_trend_damping_per_month
        self.expected_committed: float | None = None   # smoothed reading [wafers/month]
        #: the smoothed readings of the past year, monthly (13: now and 12 months back)
        self._readings: deque[float] = deque(maxlen=13)
        self.builds: list[tuple[int, float]] = []        # (month online, wafers/month)
        self.shocks: list[tuple[int, int, float]] = []   # (first month, last month, factor)
        self.wafers_this_month = 0.0
        self.committed_wafers = 0.0     # vendors' committed demand, whole-foundry [wafers/month]
        self.started_wafers = 0.0       # capacity started this month [wafers/month]
        self.capex_usd = 0.0            # spent on it this month [USD]

    def add_shock(self, start: str, months: int, factor: float) -> None:
        first = parse_month(start)
        self.shocks.append((first, first + months - 1, factor))

    def shock_factor(self, month: int) -> float:
        factor = 1.0
        for first, last, f in self.shocks:
            if first <= month <= last:
                factor *= f
        return factor

    def built_online(self, month: int) -> float:
        """Its own expansions online by `month` [wafers/month]."""
        return sum(w for online, w in self.builds if online <= month)

    def under_construction(self, month: int) -> float:
        """Its own expansions started and not yet online [wafers/month]."""
        return sum(w for online, w in self.builds if online > month)

    def build_room(self, month: int) -> float:
        """New capacity it may still start this month [wafers/month]: what it starts in any
        12 months is at most `max_expansion_per_year` x its nominal capacity online (tools,
        cleanrooms and crews grow with the organisation it has)."""
        started = sum(w for online, w in self.builds if online - self.lag_months > month - 12)
        return max(self.max_expansion_per_year * self.capacity(month) - started, 0.0)

    def capacity(self, month: int) -> float:
        """Nominal capacity [wafers/month]: the path plus its own expansions online."""
        return self.path.at(month) + self.built_online(month)

    def _yield(self, month: int) -> float:
        return 1.0 if self.yield_path is None else self.yield_path.at(month)

    def allot_wafers(self, month: int) -> dict[str, float]:
        """Wafers each vendor gets this month [wafers], in wafers of the products' nominal
        yield (a yield path above 1 means more good dies per wafer than nominal)."""
        self.wafers_this_month = self.capacity(month) * self.shock_factor(month) \
            * self._yield(month)
        return {v: self.wafers_this_month * share for v, share in self.vendor_shares.items()}

    def demand_at_completion(self) -> float:
        """Fold this month's committed demand into the smoothed reading and return the demand
        the foundry expects when a line started now comes online [wafers/month] (module
        docstring)."""
        self.expected_committed = adaptive_expectation(self.expected_committed,
                                                       self.committed_wafers,
                                                       self.demand_memory)
        self._readings.append(self.expected_committed)
        growth = damped_trend_growth(self._readings[-1], self._readings[0],
                                     len(self._readings) - 1, self.lag_months,
                                     self.trend_damping)
        return self.expected_committed * growth

    def plan_expansion(self, month: int, orders_wafers: dict[str, float],
                       short_wafers: dict[str, float]) -> float:
        """Start new capacity from vendors' committed demand: each vendor's new orders this
        month plus what its wafers left unmade, spread over the expansion lag [wafers/month,
        nominal-yield wafers]; scaled to the whole foundry by those vendors' shares and the
        yield, and compared with the capacity it will have in `expansion_lag_months` (path,
        expansions online and under construction) at the output share a shock leaves it now;
        it plans for the demand it expects then (`demand_at_completion`), and starts no more
        than its `build_room`. Returns what it started."""
        self.started_wafers, self.capex_usd = 0.0, 0.0
        vendors = sorted(set(orders_wafers) | set(short_wafers))   # a fixed order: sums repeat
        shares = sum(self.vendor_shares.get(v, 0.0) for v in vendors)
        committed = sum(orders_wafers.values()) + sum(short_wafers.values()) / self.lag_months
        scale = shares * self._yield(month)       # committed wafers per wafer of capacity
        self.committed_wafers = committed / scale if scale > 0 else 0.0
        planned = self.demand_at_completion()
        if self.expansion_from is None or month < self.expansion_from or self.response <= 0:
            return 0.0
        # the capacity it will have, at the share of it a shock leaves producing: the
        # foundry cannot know when a shock ends, so what it starts may replace lost lines
        ahead = (self.path.at(month + self.lag_months) + self.built_online(month)
                 + self.under_construction(month)) * self.shock_factor(month)
        start = min(expansion_start(planned, ahead, self.threshold, self.response),
                    self.build_room(month))
        if start > 0:
            self.builds.append((month + self.lag_months, start))
            self.started_wafers = start
            self.capex_usd = start * self.capex_per_wafer_month
        return start
