"""Clouds: sell GPU-hours from their fleets, price by utilization, invest in new chips."""

from __future__ import annotations

import mesa
import numpy as np

from agents.strategies import investment_rate_per_year, pricing_strategy
from market.timeline import TimePath


def investment_order_h100e(installed_h100e: float, pipeline_h100e: float,
                           power_cap_h100e: float, earned_usd_per_offered_h100e_hour,
                           going_rate_usd_per_h100e_hour: float, target_utilization: float,
                           new_cost_per_h100e_hour: float, response: float) -> float:
    """A cloud's investment decision: H100e to order now (<= 0: none).

    The fleet it wants (`desired_fleet_h100e`: installed x (1 + the growth rate the return on
    a new chip calls for), at least half its power when that return is positive, never more
    than its power) less what it has installed and on order [H100e]. A cloud that has sold
    nothing yet (`earned` None) expects its market's going rate at its target utilization
    [USD/H100e-h].
    """
    earned = earned_usd_per_offered_h100e_hour
    if earned is None:   # a cloud with no fleet yet expects its market's going rate
        earned = going_rate_usd_per_h100e_hour * target_utilization
    desired = desired_fleet_h100e(installed_h100e, power_cap_h100e, earned,
                                  new_cost_per_h100e_hour, response)
    return desired - installed_h100e - pipeline_h100e


def desired_fleet_h100e(installed_h100e: float, power_cap_h100e: float, earned: float,
                        new_cost_per_h100e_hour: float, response: float) -> float:
    """Fleet a cloud wants within the planning horizon [H100e]: installed x (1 + growth rate),
    where the rate follows the return on a new chip; with positive returns it also aims to
    fill half its power; never more than its power allows."""
    rate = investment_rate_per_year(earned, new_cost_per_h100e_hour, response)
    desired = installed_h100e * (1.0 + rate)
    if rate > 0:
        desired = max(desired, 0.5 * power_cap_h100e)
    return min(desired, power_cap_h100e)


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

    def order_wanted_h100e(self, installed_h100e: float, pipeline_h100e: float,
                           power_cap_h100e: float, new_cost_per_h100e_hour: float,
                           going_rate_usd_per_h100e_hour: float, response: float) -> float:
        """This cloud's investment decision (`investment_order_h100e`) with its own state."""
        return investment_order_h100e(installed_h100e, pipeline_h100e, power_cap_h100e,
                                      self.earned_per_offered_h100e_hour(),
                                      going_rate_usd_per_h100e_hour, self.target_utilization,
                                      new_cost_per_h100e_hour, response)

    def plan_capacity(self, offer: tuple[int, float], backlog_h100e: float) -> float:
        """H100e this cloud orders this month, given the best chip offered to its site
        (chip index, unit price [USD]) and its open orders [H100e]; reads its site, costs and
        market from the model it lives in."""
        m, p = self.model, self.model.params
        chip, unit_price = offer
        site = m.sites[self.site]
        nation = m.nations[self.region]
        new_cost = (unit_price * m.server_price[chip] * m.hardware_usd_per_usd_hour
                    + m.energy_usd_per_chip_hour[self.site, chip]) / m.h100e[chip]
        installed = float(site.fleet.units_by_chip() @ m.h100e)
        pipeline = float(site.fleet.pipeline_by_chip() @ m.h100e) + backlog_h100e
        cap_mw = site.capacity_mw(m.month + p.chip_lead_time_months + 3,
                                  nation.power_buildout_per_year)
        power_cap = cap_mw / site.pue / (m.mw_per_chip[chip] / m.h100e[chip])
        return self.order_wanted_h100e(installed, pipeline, power_cap, new_cost,
                                       m.latest_price_index.get((self.region, self.tier), 0.0),
                                       p.cloud_invest_response)

    def capex_per_month(self, month: int) -> float:
        return self.capex.at(month) / 12.0
