"""Prices of the GPU-hour market: where they open, what buyers compare, how they move.

Part of the GPU-hour phase (`market.gpu_hours` runs the month's trades): the first month's
prices (`initial_prices`), the effective cost of each option buyers choose among
(`option_costs`), and after the trades the month's price records and next month's prices
(`update_prices`: spot expectations and the forward price; hyperscalers' markups by load and
menu-cost revisions of their list prices toward the higher of cost-plus,
`region_list_targets`, and the expected spot price times the premium buyers put on a
hyperscaler's hour, which a seller gives up by selling it at list). The rules themselves are
`agents.pricing`'s pure functions.

Units: USD per H100e-hour.
"""

from __future__ import annotations

import numpy as np

from agents.pricing import (HYPER_CONTRACT, LIST, NEO_CONTRACT, SPOT, adapt_expectation,
                            forward_price, list_target, revise_list_price)
from market.clearing import clear_spot
from market.world import TIERS

#: Upper bound of the spot-price search [USD per H100e-hour]: a numerical bracket far above any
#: price demand pays (not behaviour: the clearing reports `short` if demand would pay more).
SPOT_PRICE_SEARCH_CAP = 1e4


def region_list_targets(model, supply, n_regions: int) -> np.ndarray:
    """Per region, the list price its hyperscalers aim at: each one's fleet owned cost x
    (1 + its markup), weighted by capacity [USD/H100e-h]; NaN where none."""
    cap = supply.by_cloud
    fleet_cost = np.divide((supply.hours * supply.owned).sum(axis=1), cap,
                           out=np.zeros_like(cap), where=cap > 0)
    margins = np.array([c.margin for c in model.clouds])
    w = np.where(supply.tier == 0, cap, 0.0)
    num = np.bincount(supply.region, weights=w * list_target(fleet_cost, margins),
                      minlength=n_regions)
    den = np.bincount(supply.region, weights=w, minlength=n_regions)
    return np.divide(num, den, out=np.full(n_regions, np.nan), where=den > 0)


def initial_prices(model, hm, supply, curves, own) -> None:
    """First month: list prices at the hyperscalers' targets; the spot price expected is the
    one that would clear neoclouds' whole capacity against the demand of the buyers who use
    neoclouds at the start (contract and spot), so the market opens near its own level."""
    hm.list_price = region_list_targets(model, supply, hm.n_regions)
    r = model.book.nation
    weight = np.where(hm.has_tier[r, 1], hm.shares[:, NEO_CONTRACT] + hm.shares[:, SPOT], 0.0)
    rows = np.flatnonzero(weight > 0)
    neo = np.flatnonzero(supply.tier == 1)
    a_cloud, a_chip = np.nonzero(supply.hours[neo] > 0)
    a_cloud = neo[a_cloud]

    curve = curves.market_demand(rows, own)

    def demand(price):
        q = weight[rows] * curve.at(np.log(np.maximum(price, 1e-12)), r[rows])
        return np.bincount(r[rows], weights=q, minlength=hm.n_regions)

    res = clear_spot(demand, supply.region[a_cloud], supply.hours[a_cloud, a_chip],
                     supply.energy[a_cloud, a_chip], hm.n_regions, SPOT_PRICE_SEARCH_CAP)
    hm.expected_spot = hm.spot = res.price
    hm.forward = forward_price(hm.expected_spot, model.params.contract_term_premium)


def option_costs(model, hm, target: np.ndarray):
    """Per region (buyers there see the same prices), each option's effective cost of an
    hour (price / the buyer's value of the tier), and whether the option is open: (cost,
    available), (regions, 5). Posted prices (list, committed use, the forward) are known;
    spot is judged at the spot price buyers expect (adaptive, like the sellers'). A rationed
    option is judged at what it costs a buyer given last month's share of it that was
    served, the rest bought at home spot: a contract by the share of new contracts the
    clouds signed, renting abroad by the share the KYC room served."""
    p = model.params
    premium = p.hyperscaler_wtp_premium
    spot = np.where(np.isfinite(hm.expected_spot), hm.expected_spot, hm.spot)
    # renting abroad is rationed by the foreign clouds' KYC room: what it served last month
    # is bought at the foreign spot plus the friction, the rest at home spot
    fill = hm.remote_fill[np.maximum(target, 0)]
    abroad = spot[np.maximum(target, 0)] + p.remote_friction_usd_per_h100e_hour
    remote_cost = np.where(target >= 0, fill * abroad + (1.0 - fill) * np.where(
        np.isfinite(spot), spot, abroad), np.nan)
    # a contract is rationed by what the clouds will commit: the share of new contracts
    # signed last month is bought at the contract price, the rest at spot
    contract = np.stack([hm.list_price * (1 - p.committed_use_discount) / premium,
                         np.where(np.isfinite(hm.contract_price), hm.contract_price,
                                  hm.forward)], axis=1)
    contract = hm.contract_fill * contract + (1.0 - hm.contract_fill) * np.where(
        np.isfinite(spot), spot, contract.T).T
    cost = np.stack([hm.list_price / premium, contract[:, 0], contract[:, 1], spot,
                     remote_cost], axis=1)
    available = np.stack([hm.has_tier[:, 0], hm.has_tier[:, 0], hm.has_tier[:, 1],
                          hm.has_tier[:, 1], target >= 0], axis=1) & np.isfinite(cost)
    return cost, available


def update_prices(model, hm, supply, ledger,
                  spot: np.ndarray) -> None:
    """Record this month's prices by instrument, then form next month's: expectations and
    the forward price from spot; hyperscalers' margins by utilization and list revisions."""
    p = model.params
    step = model.step_index
    hm.spot = np.where(np.isnan(spot), hm.spot, spot)
    model.latest_price_index = {}
    model.latest_prices = {}
    for i, region in enumerate(model.nation_ids):
        rows = []
        if hm.has_tier[i, 0]:
            rows += [("hyperscaler", "list", hm.list_price[i]),
                     ("hyperscaler", "contract",
                      hm.list_price[i] * (1 - p.committed_use_discount))]
        if hm.has_tier[i, 1]:
            rows += [("neocloud", "contract", hm.contract_price[i]),
                     ("neocloud", "spot", spot[i])]
        for tier, instrument, price in rows:
            if np.isfinite(price):
                model.records["price_index"].append((step, region, tier, instrument,
                                                     float(price)))
                model.latest_prices[(region, tier, instrument)] = float(price)
        if hm.has_tier[i, 0]:
            model.latest_price_index[(region, "hyperscaler")] = float(hm.list_price[i])
        if hm.has_tier[i, 1] and np.isfinite(spot[i]):
            model.latest_price_index[(region, "neocloud")] = float(spot[i])
    record_chip_prices(model, hm, supply, ledger)
    hm.expected_spot = adapt_expectation(hm.expected_spot, spot, p.expectation_memory_months)
    hm.planned_spot = adapt_expectation(hm.planned_spot, spot, p.demand_adjustment_months)
    book = model.book
    here = book.active(model.month)
    hm.planned_spot_by_lab = np.where(here, adapt_expectation(
        hm.planned_spot_by_lab, spot[book.nation], p.demand_adjustment_months),
        hm.planned_spot_by_lab)
    if p.list_buyers_plan_list:      # read only by list buyers who plan at the list
        hm.planned_list = adapt_expectation(hm.planned_list, hm.list_price,
                                            p.demand_adjustment_months)
    hm.forward = forward_price(hm.expected_spot, p.contract_term_premium)
    share = hyperscaler_demand_share(book.nation, ledger.wanted, hm.n_regions)
    growth = np.divide(share, hm.hyperscaler_share, out=np.ones_like(share),
                       where=np.isfinite(hm.hyperscaler_share)
                       & (np.nan_to_num(hm.hyperscaler_share) > 0) & np.isfinite(share)) - 1.0
    hm.hyperscaler_share = np.where(np.isfinite(share), share, hm.hyperscaler_share)
    for cloud, region in zip(model.clouds, supply.region):
        if cloud.tier == "hyperscaler":
            cloud.observe_share_growth(growth[region])
        cloud.reprice(p)
    # the list never aims below what buyers would pay for the hour at spot, valued at the
    # premium they put on a hyperscaler's: the opportunity cost of selling it at list
    target = np.fmax(region_list_targets(model, supply, hm.n_regions),
                     p.hyperscaler_wtp_premium * hm.expected_spot)
    new, revised = revise_list_price(hm.list_price, target, p.list_revision_threshold)
    hm.list_price = np.where(hm.has_tier[:, 0], new, np.nan)
    for i in np.flatnonzero(revised & hm.has_tier[:, 0]):
        hm.revisions.append((step, int(i)))


def hyperscaler_demand_share(region: np.ndarray, wanted: np.ndarray,
                             n_regions: int) -> np.ndarray:
    """Per region, the hyperscalers' share of the hours buyers asked for this month (at list
    and under committed use, served or not, over all options) [-]; NaN where none asked.
    `region` per lab; `wanted` (labs, options) H100e-hours asked (`Ledger.wanted`)."""
    total = np.bincount(region, weights=wanted.sum(axis=1), minlength=n_regions)
    hyper = np.bincount(region, weights=wanted[:, LIST] + wanted[:, HYPER_CONTRACT],
                        minlength=n_regions)
    return np.divide(hyper, total, out=np.full(n_regions, np.nan), where=total > 0)


def record_chip_prices(model, hm, supply, ledger) -> None:
    """Per region, tier and chip class: the tier's headline price (list, spot) per GPU-hour of
    that chip, GPU-hours sold and utilization."""
    step = model.step_index
    n_chips = len(model.chip_ids)
    cell = (supply.region * 2 + supply.tier)[:, None] * n_chips + np.arange(n_chips)[None, :]
    size = 2 * hm.n_regions * n_chips
    offered = np.bincount(cell.ravel(), weights=supply.hours.ravel(), minlength=size)
    sold = np.bincount(cell.ravel(), weights=ledger.sold.ravel(), minlength=size)
    for c in np.flatnonzero(offered > 0):
        m, k = divmod(int(c), n_chips)
        region_i, tier_i = divmod(m, 2)
        instrument = "list" if tier_i == 0 else "spot"
        index = hm.list_price[region_i] if tier_i == 0 else hm.spot[region_i]
        if not np.isfinite(index):
            continue
        worth = model.hour_h100e[region_i, k]      # market H100e in an hour of the chip
        model.records["prices"].append((step, model.nation_ids[region_i], TIERS[tier_i],
                                        instrument, model.chip_ids[k],
                                        float(index * worth),
                                        float(sold[c] / worth),
                                        float(sold[c] / offered[c])))
