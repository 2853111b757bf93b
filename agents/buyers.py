"""Buyers' chip sourcing ahead of a rule: stockpiling between a rule's announcement and its
effect. A decision as data: the orders to place, from plain inputs (testable without a model).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from market.controls import classify, order_regime


def stockpile_orders(month: int, announcements, stockpile_months: float, nations: dict,
                     rules, usual_h100e_per_month: np.ndarray, site_groups: list[str],
                     vendors: list, offers_of: Callable[[int], list], decide: Callable,
                     chips: list, h100e: np.ndarray) -> list[tuple]:
    """While a tightening rule is announced but not yet in force, buyers it will cut off pull
    `stockpile_months` of their usual orders forward, spread over the window, of the chips
    that ship now and will not then.

    Parameters
    ----------
    announcements : (announced month, effective month, issuer, rule id) per announced rule
    usual_h100e_per_month : per site, the moving average of its usual orders [H100e/month]
    offers_of : site -> per vendor, the best offer (product, chip, price) or None
    decide : (chip, group, vendor) -> the export-control decision in force now

    Returns the orders as (vendor, site, product, units) in the order they are placed.
    """
    orders = []
    months = stockpile_months
    for announced, effective, issuer, rule_id in announcements:
        if not announced <= month < effective or months <= 0:
            continue
        controller = nations[issuer]
        future = order_regime(rules, (*controller.regime, rule_id))
        window = effective - announced
        for site in range(len(site_groups)):
            usual = usual_h100e_per_month[site]
            group = site_groups[site]
            if usual <= 0 or group == controller.controls_group:
                continue
            for vendor, offer in zip(vendors, offers_of(site)):
                if offer is None or vendor.nation != issuer:
                    continue
                prod, chip, _ = offer
                now = decide(chip, group, vendor).shippable_fraction
                later = classify(chips[chip], group, future, rules)
                if later.shippable_fraction < now:
                    orders.append((vendor, site, prod, usual * months / window / h100e[chip]))
    return orders
