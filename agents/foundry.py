"""Foundries: advanced-packaging (TSMC CoWoS) and domestic AI-die (SMIC) capacity."""

from __future__ import annotations

import mesa

from market.timeline import TimePath, parse_month


class Foundry(mesa.Agent):
    """Turns dated wafer capacity, net of supply shocks, into wafers allotted to vendors."""

    def __init__(self, model: mesa.Model, foundry_id: str, spec):
        super().__init__(model)
        self.foundry_id = foundry_id
        self.name = spec.name
        self.nation = spec.nation
        self.capacity = TimePath(spec.capacity_wafers_per_month.points,
                                 spec.capacity_wafers_per_month.growth_after_per_year)
        self.vendor_shares = dict(spec.vendor_shares)
        self.yield_path = None if spec.yield_path is None else TimePath(
            spec.yield_path.points, spec.yield_path.growth_after_per_year)
        self.shocks: list[tuple[int, int, float]] = []   # (first month, last month, factor)
        self.wafers_this_month = 0.0

    def add_shock(self, start: str, months: int, factor: float) -> None:
        first = parse_month(start)
        self.shocks.append((first, first + months - 1, factor))

    def shock_factor(self, month: int) -> float:
        factor = 1.0
        for first, last, f in self.shocks:
            if first <= month <= last:
                factor *= f
        return factor

    def allot_wafers(self, month: int) -> dict[str, float]:
        """Wafers each vendor gets this month [wafers], in wafers of the products' nominal
        yield (a yield path above 1 means more good dies per wafer than nominal)."""
        yield_factor = 1.0 if self.yield_path is None else self.yield_path.at(month)
        self.wafers_this_month = self.capacity.at(month) * self.shock_factor(month) * yield_factor
        return {v: self.wafers_this_month * share for v, share in self.vendor_shares.items()}
