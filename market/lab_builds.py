"""The build phase: labs that can build decide build or rent and order chips for their sites.

A phase module (docs/model.md, "6. Labs build"): it reads each building lab's best chip offer,
its open orders and last month's contract price from the model and lets the lab decide
(`agents.lab.Lab.plan_build`); `market.chip_trade.order_chips` places what it decided, paid
from this month's budget, and the lab starts the power its cluster will need, renting it
from then on (`market.power_builds`); what the budget leaves rents in the GPU-hour market. It
imports nothing from its caller.
"""

from __future__ import annotations

import numpy as np

from market import chip_trade
from market.power_builds import (lease_months, lease_usd_per_mw_month, power_request_mw,
                                 start_power)
from market.world import HOURS_PER_MONTH


def labs_build(model) -> None:
    """Building labs decide build or rent against last month's contract price, ordering
    from this month's budget (what is left is rented in the GPU-hour market)."""
    book, p = model.book, model.params
    book.capex_usd = np.zeros(book.n)
    if not model.builders:
        return
    index = model.demand_index.at(model.month) * model._demand_factor()
    curves = book.demand_curves(model.month, model.start_month,
                                index * model._efficiency_factor(),
                                model.financing_index.at(model.month) * model._demand_factor(),
                                model.serving_value, model.training_value)
    backlog = chip_trade.site_backlog_h100e(model)
    hours = HOURS_PER_MONTH * p.availability
    lease_per_mw = lease_usd_per_mw_month(model)
    requests, grey = [], []
    for row in model.builders:
        if not book.active(model.month)[row]:
            continue
        site_i = int(book.site[row])
        offer = chip_trade.best_offer(model, site_i, model.lab_vendor_weights[row])
        # in a leakage destination, the chip the rules keep from it (sought on the grey
        # market even when nothing legal is on offer)
        prohibited = chip_trade.grey_offer(model, site_i, model.lab_vendor_weights[row])
        if offer is None and prohibited is None:
            continue
        region = model.nation_ids[model.sites[site_i].nation]
        rent = model.latest_prices.get((region, "neocloud", "contract"),
                                      model.latest_price_index.get((region, "hyperscaler")))
        chip = offer[0] if offer is not None else prohibited[2]
        worth = model.hour_h100e[model.sites[site_i].nation, chip]
        owned_guess = float(model.energy_usd_per_chip_hour[site_i, chip]) / worth
        wanted = float(curves.total(np.array([max(rent or owned_guess, 1e-9)]),
                                    np.array([row]))[0]) / hours
        lab = model.lab_agents[row]
        want = lab.plan_build(offer, backlog[site_i], rent, wanted) if offer is not None else 0.0
        # the rent it owes comes first; chips and new leases share what the budget leaves
        owed = model.sites[site_i].rent_due_usd(model.month)
        if want > 0:
            book.capex_usd[row] = chip_trade.order_chips(
                model, site_i, model.site_buyer[site_i], want,
                max(float(book.budget_usd[row]) - owed, 0.0), model.lab_vendor_weights[row])
        if prohibited is not None:
            demand = lab_grey_demand_h100e(model, lab, site_i, offer, max(want, 0.0),
                                           prohibited, backlog[site_i], rent, wanted)
            if demand > 0:
                grey.append((len(requests), row, (
                    site_i, model.site_buyer[site_i], prohibited, demand,
                    float(book.budget_usd[row] - book.capex_usd[row] - owed))))
        # and the power its cluster will need, from what the budget leaves
        facility_mw_per_h100e = model.sites[site_i].facility_mw_per_h100e(
            model.mw_per_chip[chip], model.h100e[chip])
        requests.append((site_i, power_request_mw(model, site_i, max(want, 0.0),
                                                  backlog[site_i], facility_mw_per_h100e),
                         float(book.budget_usd[row] - book.capex_usd[row] - owed),
                         lease_per_mw))
    # grey-market orders share the transit hubs' room, paid before new leases
    for (k, row, _), usd in zip(grey, chip_trade.place_grey_orders(model,
                                                                   [g for _, _, g in grey])):
        book.capex_usd[row] += usd
        site_i, mw, money, per_mw = requests[k]
        requests[k] = (site_i, mw, money - usd, per_mw)
    months = lease_months(model)
    for site_i, (_, usd) in zip((r[0] for r in requests), start_power(model, requests)):
        model.sites[site_i].lease(model.month, usd, months)
    # every building lab pays the rent of its power online, from its budget (in a month its
    # budget falls below the rent it still owes it: its hour budget is then 0)
    for row in model.builders:
        book.capex_usd[row] += model.sites[int(book.site[row])].rent_usd(model.month)


def lab_grey_demand_h100e(model, lab, site_i: int, offer, legal_h100e: float, prohibited,
                          backlog_h100e: float, rent, wanted: float) -> float:
    """What a building lab seeks on the grey market [H100e of the prohibited chip]: the
    diversion share of the compute the rules block, which is what it would build of the
    prohibited chip at its grey price less what it builds of the legal one, both counted in
    market H100e (the hour's value to its market: the two chips do different work)."""
    worth = model.hour_h100e[model.sites[site_i].nation]
    chip = prohibited[2]
    blocked = lab.plan_build((chip, prohibited[3]), backlog_h100e, rent, wanted)
    legal = legal_h100e * worth[offer[0]] / model.h100e[offer[0]] if offer is not None else 0.0
    demand = chip_trade.grey_demand(model, site_i, legal, blocked * worth[chip] / model.h100e[chip])
    return demand * model.h100e[chip] / worth[chip]
