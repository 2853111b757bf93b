"""Buyers' chip sourcing: how an order splits across vendors within a budget, what a buyer cut off
by the rules seeks on the grey market, and stockpiling between a rule's announcement (or the
month buyers expected it) and its effect. Decisions as data (the orders to place), from plain
inputs (testable without a model); `market.chip_trade` places them.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from agents.strategies import effective_chip_cost, order_price_response, vendor_shares
from market.controls import classify, order_regime


def sourcing_plan(h100e_wanted: float, budget_usd: float, weights: np.ndarray, offers: list,
                  vendors: list, h100e: np.ndarray, server_price: np.ndarray,
                  elasticity: float, cost_usd_per_h100e: np.ndarray, switching_cost: float,
                  sensitivity: float, lines: list | None = None,
                  line_dissimilarity: float = 1.0) -> tuple[list, float, float]:
    """Split an order for `h100e_wanted` [H100e] across vendors by value
    (`agents.strategies.vendor_shares`: a logit in each offer's cost per H100e of the hour's
    value to the buyer, `cost_usd_per_h100e`, with its preference `weights`, after its
    state's discouragement of foreign chips, as a switching cost), and each vendor's part
    across the products of its line (`line_shares`, a logit sharper by 1 / `line_dissimilarity`:
    one vendor's chips are closer substitutes than two vendors'), each product's part sized by
    its price against list (`order_price_response`), within `budget_usd`. A two-level choice:
    vendors are compared by their best offers, not by the value of their whole lines (the
    inclusive value of a nested logit, McFadden 1978), so the dissimilarity moves no demand
    between vendors.

    `offers` per vendor: its best offer (product, chip, unit price [USD]) or None; `lines`
    per vendor (optional): every product it offers, (product, chip, unit price [USD], cost
    per H100e of the hour's value [USD]); without them a vendor's part goes to its best
    offer. Returns (plan, cost, scale): plan rows (vendor, product, units, cost with server
    [USD]) before scaling, their total cost [USD], and the budget's scale on every row
    (<= 1).
    """
    shares = vendor_shares(cost_usd_per_h100e, weights, switching_cost, sensitivity)
    plan = []
    for i, (vendor, share, offer) in enumerate(zip(vendors, shares, offers)):
        if share <= 0 or offer is None:
            continue
        line = lines[i] if lines is not None and lines[i] else [(*offer, 1.0)]
        parts = line_shares(line, sensitivity / line_dissimilarity)
        for (prod, chip, price, _), part in zip(line, parts):
            if part <= 0:
                continue
            units = order_price_response(h100e_wanted * share * part / h100e[chip], price,
                                         vendor.list_price[prod], elasticity)
            plan.append((vendor, prod, units, units * price * server_price[chip]))
    cost = sum(c for *_, c in plan)
    scale = min(1.0, budget_usd / cost) if cost > 0 else 0.0
    return plan, cost, scale


def line_shares(line: list, sensitivity: float) -> np.ndarray:
    """How a vendor's part of an order spreads over the products of its line [fraction of
    the H100e]: a logit in the log of each product's cost per H100e of the hour's value
    (the fourth field of each row) with `sensitivity`, no switching cost between one
    vendor's products (`agents.strategies.vendor_shares`). A vendor sells its older chips
    beside its flagship, and buyers take them by their value: A100s went on shipping through
    2023 beside the H100 (Epoch's counts). The within-line `sensitivity` is the vendor-choice
    one over `line_dissimilarity` in (0, 1], as in a nested logit's lower level (McFadden
    1978): one vendor's chips share software and servers, so they are closer substitutes than
    two vendors' are, and the cheaper per H100e of value takes more. One product takes it
    all."""
    if len(line) <= 1:
        return np.ones(len(line))
    cost = np.array([row[3] for row in line], dtype=float)
    return vendor_shares(cost, np.ones(cost.size), 0.0, sensitivity)


def grey_market_choice(vendors: list, weights: np.ndarray, month: int, decide: Callable,
                       group: str, worth_h100e: np.ndarray, server_price: np.ndarray,
                       switching_cost: float, banned: frozenset = frozenset()):
    """The product a buyer in a leakage destination seeks through third countries: among its
    preferred, non-captive vendors' active base products that the rules prohibit to its
    group, the lowest effective cost per H100e of the hour's value to its market
    (`worth_h100e` per chip; `agents.strategies.effective_chip_cost`, its preferences as a
    switching cost), as it chooses legal offers; `month` is when the order would ship (the
    products on sale then); chips in `banned` (indices: its own state bans them) are not
    sought. Returns (1 / effective cost [market H100e
    per USD], vendor, product, chip) or None."""
    rows = []
    for i, (vendor, weight) in enumerate(zip(vendors, weights)):
        if weight <= 0 or vendor.captive_to:
            continue
        for prod in vendor.active_base_products(month):
            chip = int(vendor.product_chip[prod])
            if chip in banned:
                continue
            rule = decide(chip, group, vendor)
            if not rule.controlled or rule.shippable_fraction > 0:
                continue
            rows.append((i, vendor, prod, chip,
                         vendor.price[prod] * server_price[chip] / worth_h100e[chip]))
    if not rows:
        return None
    cost = effective_chip_cost(np.array([r[4] for r in rows]),
                               np.array([weights[r[0]] for r in rows]), switching_cost)
    k = int(np.argmin(cost))
    _, vendor, prod, chip, _ = rows[k]
    return 1.0 / cost[k], vendor, prod, chip


def stockpile_orders(month: int, announcements, stockpile_months: float, nations: dict,
                     rules, usual_h100e_per_month: np.ndarray, site_groups: list[str],
                     vendors: list, offers_of: Callable[[int], list], decide: Callable,
                     chips: list, h100e: np.ndarray) -> list[tuple]:
    """While a tightening rule is known (announced, or expected from reports of it) but not
    yet in force, buyers it will cut off pull `stockpile_months` of their usual orders
    forward, spread over the window, of the chips that ship now and will not then.

    Parameters
    ----------
    announcements : (first month known, effective month, issuer, rule id) per rule known
        before it takes effect (`agents.nation.announced_rules`)
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
