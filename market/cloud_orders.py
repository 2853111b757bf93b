"""The clouds' investment phase: each cloud reprices, raises its month's financing, orders
the chips its expected returns call for and starts the power its fleet will need.

A phase module (docs/model.md, "8. Clouds reprice and invest"): the decisions sit with the
cloud (`agents.cloud.Cloud.reprice`, `finance`, `plan_capacity`); the order desk places what
it decided (`market.chip_trade.order_chips`) and the grid shares out power
(`market.power_builds`). It imports nothing from its caller.
"""

from __future__ import annotations

from market import chip_trade
from market.power_builds import power_request_mw, start_power


def plan_capacity(model) -> None:
    """Each cloud reprices, raises its month's financing and orders the chips its expected
    returns call for (`Cloud.plan_capacity`) within it, then starts the power its fleet will
    need within its nation's grid and the money left (`market.power_builds`); the spend is
    booked (capex, an output) and what own funds do not cover is borrowed."""
    p = model.params
    backlog = chip_trade.site_backlog_h100e(model)
    model.vendor_waits_months = chip_trade.vendor_waits_months(model)
    chips_usd, allowances, requests, grey = [], [], [], []
    for i, cloud in enumerate(model.clouds):
        cloud.reprice(p)
        allowance = cloud.finance(cloud.fleet_energy_usd_per_month(), p.retire_after_years,
                                  model.month)
        offer = chip_trade.best_offer(model, cloud.site, cloud.vendor_weights)
        cloud.wanted_order_h100e = 0.0
        want = cloud.plan_capacity(offer, backlog[cloud.site]) if offer is not None else 0.0
        spent = 0.0
        if want > 0:
            spent = chip_trade.order_chips(model, cloud.site, cloud.cloud_id, want, allowance,
                                           cloud.vendor_weights)
        # in a leakage destination: the demand the rules block seeks the grey market
        demand, prohibited = grey_request(model, cloud, want, backlog[cloud.site])
        if demand > 0:
            grey.append((i, (cloud.site, cloud.cloud_id, prohibited, demand, allowance - spent)))
        chips_usd.append(spent)
        allowances.append(allowance)
        # and the power its fleet will need, from what the allowance leaves
        requests.append((cloud.site, power_request_mw(
            model, cloud.site, cloud.wanted_order_h100e, backlog[cloud.site],
            cloud.facility_mw_per_h100e), allowance - spent, p.datacenter_capex_usd_per_mw))
    # grey-market orders share the transit hubs' room, paid before the power
    for (i, _), usd in zip(grey, chip_trade.place_grey_orders(model, [g for _, g in grey])):
        chips_usd[i] += usd
        site, mw, money, per_mw = requests[i]
        requests[i] = (site, mw, money - usd, per_mw)
    power = start_power(model, requests)
    for cloud, chips, allowance, (mw, usd) in zip(model.clouds, chips_usd, allowances, power):
        cloud.spend(chips + usd)
        model.records["cloud_capex"].append((model.step_index, cloud.cloud_id, chips + usd,
                                             allowance, cloud.debt_usd, usd, mw,
                                             model.sites[cloud.site].capacity_mw(model.month)))


def grey_request(model, cloud, legal_h100e: float, backlog_h100e: float) -> tuple[float, tuple]:
    """What a cloud in a leakage destination seeks on the grey market [H100e of the
    prohibited chip], and the offer it seeks (`chip_trade.grey_offer`; (0, None) when none):
    the diversion share of the fleet growth the rules block, which is what it would want of
    the prohibited chip with power to spare less what it wants of the legal one (both growth
    of its committed fleet, in training H100e), within the power the legal order leaves."""
    prohibited = chip_trade.grey_offer(model, cloud.site, cloud.vendor_weights)
    if prohibited is None:
        return 0.0, None
    blocked = cloud.order_for((prohibited[2], prohibited[3]), backlog_h100e)
    demand = chip_trade.grey_demand(model, cloud.site, cloud.wanted_order_h100e,
                                    blocked.wanted_h100e)
    # the grey chips need the power the legal order has not taken
    taken = legal_h100e * cloud.facility_mw_per_h100e / blocked.facility_mw_per_h100e \
        if blocked.facility_mw_per_h100e > 0 else 0.0
    return min(demand, max(blocked.power_room_h100e - taken, 0.0)), prohibited
