"""Clouds: sell GPU-hours from their fleets, price by utilization, invest in new chips.

How a cloud invests (docs/model.md, section 8): it expects the price of a sold hour and its
load from what it has seen (adaptive expectations with a memory), judges what an hour added to its fleet will earn when its orders are installed (`delivery_earnings`: its
load then, from its region's demand trend and its supply line; at a posted price only the
hours demand exceeds its fleet by sell), values a new chip's H100e over its life at its cost
of capital (`expected_pv_usd_per_h100e`), replaces what retires and grows its committed fleet
while that value exceeds the chip's owned cost (`investment_rate_per_year`), within the power
its site has free at delivery (`power_room_h100e`) and the money it can raise
(`financing_allowance_usd`: operating cash flow, outside money, debt capacity). Hours are
market H100e-hours (`market.hour_value`); fleets and orders are in training H100e.
"""

from __future__ import annotations

from collections import deque
from typing import NamedTuple

import mesa
import numpy as np

from agents.strategies import (
    adaptive_expectation,
    added_hour_earnings_usd,
    demand_growth_factor,
    expected_load_at_delivery,
    expected_pv_usd_per_h100e,
    financing_allowance_usd,
    investment_rate_per_year,
    MarkupSignals,
    power_room_h100e,
    pricing_strategy,
)
from market.timeline import TimePath
from market.world import HOURS_PER_MONTH

#: Months of revenue in the trailing window debt capacity is measured on [months]: a year,
#: as lenders quote leverage on annual revenue (the unit of `debt_to_revenue`).
TRAILING_MONTHS = 12


def investment_order_h100e(committed_h100e: float, rate_per_year: float,
                           power_room: float) -> float:
    """H100e a cloud orders this month: its committed fleet (installed + on its way + on
    order) grown by a month of `rate_per_year`, no more than fits in its free power [H100e].
    A cloud with no fleet yet grows from what its free power holds."""
    base = committed_h100e if committed_h100e > 0 else power_room
    return max(min(base * rate_per_year / 12.0, power_room), 0.0)


def order_rate_per_year(expected_usd_per_offered_h100e_hour: float,
                        energy_usd_per_h100e_hour: float, cost_usd_per_h100e: float,
                        offered_hours_per_year: float, price_decline_per_year: float,
                        wacc_per_year: float, life_years: float, lead_years: float,
                        response_per_year: float) -> float:
    """The growth rate of its committed fleet a cloud orders for [fraction/yr]: the expected
    present value of a new H100e against its owned cost (`investment_rate_per_year`)."""
    pv = expected_pv_usd_per_h100e(expected_usd_per_offered_h100e_hour,
                                   energy_usd_per_h100e_hour, offered_hours_per_year,
                                   price_decline_per_year, wacc_per_year, life_years, lead_years)
    return investment_rate_per_year(pv, cost_usd_per_h100e, response_per_year,
                                    1.0 / life_years if life_years > 0 else 0.0)


def order_decision_h100e(committed_h100e: float, power_room: float,
                         expected_usd_per_offered_h100e_hour: float,
                         energy_usd_per_h100e_hour: float, cost_usd_per_h100e: float,
                         offered_hours_per_year: float, price_decline_per_year: float,
                         wacc_per_year: float, life_years: float, lead_years: float,
                         response_per_year: float) -> float:
    """The whole investment decision from plain numbers: the expected present value of a new
    H100e against its owned cost sets the growth rate, which sets the order [H100e]."""
    rate = order_rate_per_year(expected_usd_per_offered_h100e_hour, energy_usd_per_h100e_hour,
                               cost_usd_per_h100e, offered_hours_per_year,
                               price_decline_per_year, wacc_per_year, life_years, lead_years,
                               response_per_year)
    return investment_order_h100e(committed_h100e, rate, power_room)


class OrderDecision(NamedTuple):
    """A cloud's investment decision for one offer, in training H100e of the offered chip."""

    order_h100e: float              #: what it orders, within its free power
    wanted_h100e: float             #: what it would order with power to spare
    facility_mw_per_h100e: float    #: facility MW an H100e of the chip draws
    power_room_h100e: float         #: H100e of the chip its free power holds at delivery


class Cloud(mesa.Agent):
    """A cloud in one region and one price tier (hyperscaler list or neocloud/contract)."""

    def __init__(self, model: mesa.Model, cloud_id: str, spec, site: int,
                 vendor_weights: np.ndarray, pricing: str | None = None):
        super().__init__(model)
        self.cloud_id = cloud_id
        self.name = spec.name
        self.region = spec.nation
        self.tier = spec.tier
        self.site = site
        self.expectation_memory_months = \
            model.scenario.cloud_investment.expectation_memory_months
        self.financing = TimePath(spec.financing_usd_per_year.points,
                                  spec.financing_usd_per_year.growth_after_per_year)
        self.wacc_per_year = spec.wacc_per_year
        self.debt_to_revenue = spec.debt_to_revenue
        self.vendor_weights = vendor_weights
        self.min_margin, self.max_margin = spec.min_margin, spec.max_margin
        self.margin = spec.min_margin if spec.initial_margin is None else spec.initial_margin
        self.target_utilization = spec.target_utilization
        if pricing is None:        # hyperscalers price by the scenario's rule; neoclouds
            pricing = (model.scenario.market.hyperscaler_pricing       # sell at spot and
                       if spec.tier == "hyperscaler" else "utilization_margin")   # contract
        self._pricing = pricing_strategy(
            pricing, "pricing strategy (market.hyperscaler_pricing)")
        #: whether its markup moves with its load at posted prices (`market.hyperscaler_load`)
        self.prices_by_posted_load = (
            spec.tier == "hyperscaler"
            and model.scenario.market.hyperscaler_load == "posted_prices")
        self.utilization = spec.target_utilization
        self.share_growth = 0.0
        #: adaptive expectations of the price of a sold hour [USD] and of its load (hours
        #: asked / offered) [-]
        self.expected_usd_per_sold_h100e_hour: float | None = None
        self.expected_load = spec.target_utilization
        self.revenue_usd = 0.0
        self.offered_h100e_hours = 0.0
        self.sold_h100e_hours = 0.0
        self.revenue_history: deque[float] = deque(maxlen=TRAILING_MONTHS)
        self.debt_usd = 0.0
        self.capex_usd = 0.0               # spent on chips this month [USD]
        self.allowance_usd = 0.0           # what financing allowed this month [USD]
        self._own_funds = 0.0              # the allowance's own funds (not borrowed) [USD]
        #: this month's order before its power room cut it [H100e], and the facility MW an
        #: H100e of the chip it buys draws [MW/H100e]: what it builds power for
        self.wanted_order_h100e = 0.0
        self.facility_mw_per_h100e = 0.0

    def settle(self, offered: float, sold: float, revenue: float,
               unserved: float = 0.0, sold_at_spot: float = 0.0) -> None:
        """The month's GPU-hour sales: offered and sold [H100e-hours], revenue [USD], the
        hours asked at its posted price it could not serve and the hours it sold at spot
        [H100e-hours]; updates utilization and its expectations of the price of a sold hour
        and of its load (hours asked / offered).

        Its utilization moves its list markup (`reprice`). With `market.hyperscaler_load =
        "posted_prices"` a hyperscaler's is its load at its posted prices: hours sold at list
        and under contract plus those asked there it could not serve, over offered; its idle
        hours sold as spot instances are not among them. Otherwise (`"all_sales"`, the
        default) they are, and its utilization reads 1 whenever it sells its idle hours,
        whatever its list: its markup climbs to `max_margin` and stays (docs/model.md,
        "Margin"). Its expected load, which judges an added hour for investment, counts them
        either way: that hour would earn."""
        self.offered_h100e_hours, self.sold_h100e_hours, self.revenue_usd = offered, sold, revenue
        load = sold - sold_at_spot + unserved if self.prices_by_posted_load else sold
        self.utilization = load / offered if offered > 0 else self.target_utilization
        self.revenue_history.append(revenue)
        if offered > 0:
            memory = self.expectation_memory_months
            if sold > 0:
                self.expected_usd_per_sold_h100e_hour = adaptive_expectation(
                    self.expected_usd_per_sold_h100e_hour, revenue / sold, memory)
            self.expected_load = adaptive_expectation(
                self.expected_load, (sold + unserved) / offered, memory)

    def delivery_earnings(self, installed_h100e: float, committed_h100e: float,
                          horizon_months: float, supply_line_weight: float,
                          demand_uncertainty: float, idle_usd_per_h100e_hour: float,
                          going_rate_usd_per_h100e_hour: float) -> float:
        """What an H100e-hour added to its fleet is expected to earn once its orders are
        installed [USD per offered H100e-hour] (`added_hour_earnings_usd`), with the load it
        expects then: its load now, grown with its region's demand over `horizon_months`,
        over the fleet its supply line will give it (`expected_load_at_delivery`)."""
        m = self.model
        growth = demand_growth_factor(m.hour_market.demand_history,
                                      m.nation_index[self.region],
                                      self.expectation_memory_months, horizon_months,
                                      m.scenario.cloud_investment.trend_damping_per_month)
        load = expected_load_at_delivery(self.expected_load, growth, installed_h100e,
                                         committed_h100e, supply_line_weight)
        price = self.expected_usd_per_sold_h100e_hour
        if price is None:          # yet to sell: its market's going rate
            price = going_rate_usd_per_h100e_hour
        return added_hour_earnings_usd(price, load, self.tier == "hyperscaler",
                                       demand_uncertainty, idle_usd_per_h100e_hour)

    def observe_share_growth(self, growth: float) -> None:
        """Its region's hyperscaler share of the hours asked for changed by `growth` (a
        fraction) this month: the signal `market_share_margin` moves its markup with."""
        self.share_growth = float(growth)

    def reprice(self, params) -> None:
        """Move its list markup by its pricing strategy (`market.hyperscaler_pricing` for a
        hyperscaler); a month's share change is acted on once."""
        signals = MarkupSignals(self.utilization, self.target_utilization, self.share_growth)
        self.margin = self._pricing(self.margin, signals, params, self.min_margin,
                                    self.max_margin)
        self.share_growth = 0.0

    # -- financing ----------------------------------------------------------------------
    def trailing_revenue_usd_per_year(self) -> float:
        """Revenue over the last 12 months, annualized when fewer have passed [USD/yr]."""
        if not self.revenue_history:
            return 0.0
        return sum(self.revenue_history) * 12.0 / len(self.revenue_history)

    def finance(self, energy_usd: float, life_years: float, month: int) -> float:
        """Repay a month of debt (amortized over the chips' life) and return what this month's
        orders may spend (`financing_allowance_usd`): operating cash flow (last month's
        revenue - energy - repayment), the month's outside money, and what it may still
        borrow against its trailing revenue [USD]. Interest is not paid out of the cash flow:
        the cost of capital prices it into the decision (`wacc_per_year`)."""
        repayment = self.debt_usd / (life_years * 12.0)
        self.debt_usd -= repayment
        operating = self.revenue_usd - energy_usd - repayment
        outside = self.financing.at(month) / 12.0
        self._own_funds = max(operating, 0.0) + outside
        capacity = self.debt_to_revenue * self.trailing_revenue_usd_per_year()
        self.allowance_usd = financing_allowance_usd(operating, outside, capacity,
                                                     self.debt_usd)
        return self.allowance_usd

    def spend(self, capex_usd: float) -> None:
        """Book the month's chip spending; what own funds do not cover is borrowed."""
        self.capex_usd = capex_usd
        self.debt_usd += max(capex_usd - self._own_funds, 0.0)

    # -- the decision with this cloud's state -------------------------------------------
    def plan_capacity(self, offer: tuple[int, float], backlog_h100e: float) -> float:
        """H100e this cloud orders this month, given the best chip offered to its site
        (chip index, unit price [USD], locked when ordered) and its open orders [H100e];
        reads its site, costs and market from the model it lives in. Remembers what it would
        have ordered with power to spare (`wanted_order_h100e`, for its power plans)."""
        decision = self.order_for(offer, backlog_h100e)
        self.wanted_order_h100e = decision.wanted_h100e
        self.facility_mw_per_h100e = decision.facility_mw_per_h100e
        return decision.order_h100e

    def order_for(self, offer: tuple[int, float], backlog_h100e: float) -> OrderDecision:
        """The investment decision for one offer (chip index, unit price [USD]), without
        acting on it. Also asked of a chip the rules keep from it, to size the demand they
        block (`market.cloud_orders.grey_request`)."""
        m, p = self.model, self.model.params
        inv = m.scenario.cloud_investment
        chip, unit_price = offer
        site = m.sites[self.site]
        h100e = m.h100e[chip]
        # what an hour of the chip sells for: its value in the region's market (the
        # expected earnings are per market H100e-hour); fleets and orders in training H100e
        r = m.nation_index[self.region]
        worth = m.hour_h100e[r, chip]
        lead = self.lead_time_months()
        facility_mw_per_h100e = site.facility_mw_per_h100e(m.mw_per_chip[chip], h100e)
        pipeline_units = site.fleet.pipeline_by_chip()
        units = site.fleet.units_by_chip()
        installed = float(units @ m.h100e)
        committed = installed + float(pipeline_units @ m.h100e) + backlog_h100e
        room = power_room_h100e(
            site.capacity_mw(m.month + lead), site.installed_mw(m.mw_per_chip),
            float(pipeline_units @ m.mw_per_chip) * site.pue
            + backlog_h100e * facility_mw_per_h100e,
            facility_mw_per_h100e)
        going = m.latest_price_index.get((self.region, self.tier), 0.0)
        # an order lands after the vendors' wait and the lead time: the load it expects is
        # then's (its present value still counts from the lead time alone, as before 0.8.0)
        horizon = lead + self.vendor_wait_months()
        spot = m.hour_market.expected_spot[r]
        idle = p.hyperscaler_spot_share * float(spot) if np.isfinite(spot) else 0.0
        # the load it expects is in the market's hours: its fleet valued at the region's
        # hour values (open orders at the offered chip's)
        worth_r = m.hour_h100e[r]
        installed_market = float(units @ worth_r)
        committed_market = installed_market + float(pipeline_units @ worth_r) \
            + backlog_h100e * worth / h100e
        earnings = self.delivery_earnings(installed_market, committed_market, horizon,
                                          inv.supply_line_weight, inv.demand_uncertainty, idle,
                                          going)
        rate = order_rate_per_year(
            earnings, m.energy_usd_per_chip_hour[self.site, chip] / worth,
            unit_price * m.server_price[chip] / worth, HOURS_PER_MONTH * 12.0 * p.availability,
            inv.expected_price_decline_per_year, self.wacc_per_year, p.retire_after_years,
            lead / 12.0, inv.growth_response_per_year)
        order = investment_order_h100e(committed, rate, room)
        # what it would order with power to spare: the power it plans builds for (a cloud
        # with no fleet yet grows from its free power either way)
        wanted = investment_order_h100e(committed, rate, np.inf) if committed > 0 else order
        return OrderDecision(order, wanted, facility_mw_per_h100e, room)

    def lead_time_months(self) -> int:
        """Months from order to delivery this cloud plans with: the scenario's chip lead time
        (open orders at the vendors count in its committed fleet)."""
        return self.model.params.chip_lead_time_months

    def vendor_wait_months(self) -> float:
        """Months its open orders still wait at the vendors it buys from: their lead times
        (`model.vendor_waits_months`, this month's), weighted by its vendor preferences
        [months]."""
        w = self.vendor_weights
        total = float(w.sum())
        return float(self.model.vendor_waits_months @ w) / total if total > 0 else 0.0

    def fleet_energy_usd_per_month(self) -> float:
        """Electricity of its installed fleet in a month [USD]."""
        m = self.model
        units = m.sites[self.site].fleet.units_by_chip()
        return float(units @ m.energy_usd_per_chip_hour[self.site]) * HOURS_PER_MONTH
