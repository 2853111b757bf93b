"""Clouds: sell GPU-hours from their fleets, price by utilization, invest in new chips."""

from __future__ import annotations

import mesa
import numpy as np

from agents.strategies import investment_rate_per_year, pricing_strategy
from market.timeline import TimePath


class Cloud(mesa.Agent):
    """A cloud in one region and one price tier (hyperscaler list or neocloud/contract)."""

    def __init__(self, model: mesa.Model, cloud_id: str, spec, site: int,
                 vendor_weights: np.ndarray, pricing: str = "utilization_margin"):
        super().__init__(model)
        self.cloud_id = cloud_id
        self.name = spec.name
        self.region = spec.nation
        self.tier = spec.tier
        self.site = site
        self.capex = TimePath(spec.capex_usd_per_year.points,
                              spec.capex_usd_per_year.growth_after_per_year)
        self.vendor_weights = vendor_weights
        self.min_margin, self.max_margin = spec.min_margin, spec.max_margin
        self.margin = spec.min_margin      # competes on price until utilization says otherwise
        self.target_utilization = spec.target_utilization
        self._pricing = pricing_strategy(pricing)
        self.utilization = spec.target_utilization
        self.revenue_usd = 0.0
        self.offered_h100e_hours = 0.0
        self.sold_h100e_hours = 0.0

    def settle(self, offered: float, sold: float, revenue: float) -> None:
        self.offered_h100e_hours, self.sold_h100e_hours, self.revenue_usd = offered, sold, revenue
        self.utilization = sold / offered if offered > 0 else self.target_utilization

    def reprice(self, response: float) -> None:
        self.margin = self._pricing(self.margin, self.utilization, self.target_utilization,
                                    response, self.min_margin, self.max_margin)

    def earned_per_offered_h100e_hour(self) -> float | None:
        """What an offered H100e-hour earned last month [USD]; None before it has sold any."""
        if self.offered_h100e_hours <= 0:
            return None
        return self.revenue_usd / self.offered_h100e_hours

    def desired_fleet_h100e(self, installed_h100e: float, power_cap_h100e: float,
                            earned: float, new_cost_per_h100e_hour: float,
                            response: float) -> float:
        """Fleet it wants within the planning horizon [H100e]: installed x (1 + growth rate),
        where the rate follows the return on a new chip; with positive returns it also aims to
        fill half its power; never more than its power allows."""
        rate = investment_rate_per_year(earned, new_cost_per_h100e_hour, response)
        desired = installed_h100e * (1.0 + rate)
        if rate > 0:
            desired = max(desired, 0.5 * power_cap_h100e)
        return min(desired, power_cap_h100e)

    def capex_per_month(self, month: int) -> float:
        return self.capex.at(month) / 12.0
