"""The chip phase: gather vendors' order books, apply export controls and caps, ration,
deliver, leak; and the order desk through which buyers place the orders they decided on.

A phase module (docs/model.md, "Where each piece lives"): buyers decide how much to order
(clouds in `agents.cloud`, building labs in `agents.lab`, stockpiling in `agents.buyers`),
vendors decide prices and ration (`agents.vendor`); this module checks each shipment against
`market.controls` through the model's rule book, applies caps, and moves the chips. It reads the
model's state through the `model` argument and imports nothing from its caller.

Units: chips in units and H100-equivalents (H100e), money in USD, time in months.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from functools import partial

import numpy as np

from agents.buyers import grey_market_choice, sourcing_plan, stockpile_orders
from agents.strategies import effective_chip_cost
from agents.vendor import Vendor, rival_prices_per_h100e
from market.world import HOURS_PER_MONTH, going_rate, shock_factor


# -- selling: controls, caps, rationing, delivery, leakage ------------------------------
@dataclass
class Screened:
    """A vendor's open orders (copied before shipping) after the export rules and caps."""

    sites: np.ndarray
    prods: np.ndarray
    kinds: np.ndarray           #: 0 usual, 1 stockpile, 2 grey market
    units: np.ndarray
    decisions: list             #: the rules' decision per order
    legal: np.ndarray           #: share that may ship legally [-]
    planned: list | None        #: per order, (exempt, capped, cap key) [TPP H100e]
    ship_fraction: np.ndarray   #: legal share plus the diverted share of the rest [-]
    lost_usd: float             #: value of the blocked demand [USD]


def screen_orders(model, vendor: Vendor) -> Screened:
    """Every open order of a vendor through the export rules and caps; diversion: part of
    what the rules block reaches the destination via third countries, more so the wider the
    price gap and the weaker the enforcement; grey-market orders (kind 2) ship only that way."""
    book = vendor.book()
    n = book["units"].size
    sites, prods = book["site"].copy(), book["product"].copy()
    kinds, units = book["kind"].copy(), book["units"].copy()
    chips = vendor.product_chip[prods]
    decisions = [decision(model, int(c), model.site_group[st], vendor)
                 for c, st in zip(chips.tolist(), sites.tolist())]
    legal = np.array([d.shippable_fraction for d in decisions]) if n else np.zeros(0)
    legal, planned = apply_caps(model, vendor, decisions, sites, prods, units, legal)
    share = np.array([diversion_share(model, st, d) if d.controlled else 0.0
                      for st, d in zip(sites.tolist(), decisions)]) if n else np.zeros(0)
    grey = kinds == 2
    legal[grey], share[grey] = 0.0, 1.0
    ship_fraction = legal + (1.0 - legal) * share
    blocked = units * (1.0 - ship_fraction)
    lost = float(blocked @ vendor.price[prods]) if n else 0.0
    return Screened(sites, prods, kinds, units, decisions, legal, planned, ship_fraction, lost)


def record_shipments(model, vid: str, vendor: Vendor, out: dict, legal_units: np.ndarray,
                     diverted: np.ndarray, stock: np.ndarray) -> None:
    """Who bought which chip (the `shipments` table, as arrays tabulated at the end) and the
    month's flows by channel, origin and destination [H100e], also by vendor."""
    sites_out, chips_out = out["site"], out["chip"]
    dest = model.site_nation[sites_out]
    h100e_legal, h100e_div = legal_units * model.h100e[chips_out], \
        diverted * model.h100e[chips_out]
    n_nations = len(model.nation_ids)
    model.records["shipments"].append((model.step_index, vid, sites_out, chips_out,
                                       legal_units, diverted, stock, out["price"]))
    for channel, origin, amounts in (
            ("shipments", vendor.nation, np.where(stock, 0.0, h100e_legal)),
            ("stockpiling", vendor.nation, np.where(stock, h100e_legal, 0.0)),
            ("diversion", model.leakage.via, h100e_div)):
        by_nation = np.bincount(dest, weights=amounts, minlength=n_nations)
        for ni in np.flatnonzero(by_nation > 0):
            model.records["flows"].append((model.step_index, channel, origin,
                                           model.nation_ids[ni], float(by_nation[ni])))
            # the same flow by vendor, for views of the trade network
            model.records["vendor_flows"].append((model.step_index, channel, vid,
                                                  model.nation_ids[ni],
                                                  float(by_nation[ni])))


def book_shipped(model, vid: str, screened: Screened, rows: np.ndarray, sites_out: np.ndarray,
                 legal_units: np.ndarray) -> None:
    """Count legal shipments against home-relative volume caps, country caps and
    per-customer exemptions, in proportion to what of the planned amount shipped."""
    for r, site, units_r in zip(rows, sites_out, legal_units):
        group = model.site_group[site]
        model.shipped_to[(vid, int(screened.prods[r]), group)] += units_r
        if screened.planned is not None and screened.planned[r] is not None:
            exempt, capped, key = screened.planned[r]
            used = units_r / max(screened.units[r] * screened.legal[r], 1e-12)
            model.exempt_used[(int(site), model.month // 12)] += exempt * used
            model.cap_used[key] += capped * used


def sell_chips(model) -> None:
    """Each vendor prices (`Vendor.set_prices`); every open order passes the export rules
    and caps (`screen_orders`); the vendor rations its inventory (`Vendor.ship`); shipments go
    in transit, legal ones after the lead time, diverted ones a month later at a premium;
    the month's sales are recorded."""
    lead = model.params.chip_lead_time_months
    lost_by_nation: dict[str, float] = defaultdict(float)
    model._offers_month = None        # prices change now: offers are recomputed
    rivals = rival_prices(model)
    for vid, vendor in model.vendors.items():
        vendor.set_prices(model.month, float(rivals[vid]), model.h100e)
        screened = screen_orders(model, vendor)
        lost_by_nation[vendor.nation] += screened.lost_usd
        out = vendor.ship(screened.ship_fraction, model.params.rationing, model.month)
        rows, sites_out, chips_out = out["row"], out["site"], out["chip"]
        legal_units = out["units"] * np.divide(screened.legal[rows],
                                               screened.ship_fraction[rows])
        diverted = out["units"] - legal_units
        revenue_share = np.array([screened.decisions[r].revenue_share for r in rows])
        paid_to_state = float(np.sum(legal_units * out["price"] * revenue_share))
        hw = out["price"] * model.server_price[chips_out]
        deliver(model, sites_out, chips_out, legal_units, hw, model.month + lead)
        deliver(model, sites_out, chips_out, diverted,
                hw * (1.0 + model.leakage.smuggling_premium), model.month + lead + 1)
        record_shipments(model, vid, vendor, out, legal_units, diverted,
                         screened.kinds[rows] == 1)
        book_shipped(model, vid, screened, rows, sites_out, legal_units)
        vendor.revenue_usd -= paid_to_state
        shipped_h100e = float(vendor.shipped_units @ model.h100e[vendor.product_chip])
        model.records["vendors"].append((model.step_index, vid,
                                         float(vendor.shipped_units.sum()), shipped_h100e,
                                         vendor.revenue_usd, float(vendor.output_units.sum()),
                                         screened.lost_usd, paid_to_state,
                                         # a vendor with orders and no wafers waits
                                         # forever: shown as the run's length
                                         min(vendor.lead_time_months(), float(model.n_months)),
                                         float(vendor.backlog_by_product().sum()),
                                         float(vendor.inventory.sum()),
                                         vendor.price_per_h100e(model.month, model.h100e),
                                         vendor.wafers_allotted, vendor.wafers_used))
    for nation, queue in model.lost_revenue.items():
        queue.append(lost_by_nation.get(nation, 0.0))


def rival_prices(model) -> dict[str, float]:
    """Per vendor, its open-market rivals' price per H100e before this month's repricing
    (`agents.vendor.rival_prices_per_h100e`, weighted by last month's H100e shipped)."""
    vendors = list(model.vendors.values())
    price = np.array([v.price_per_h100e(model.month, model.h100e) for v in vendors])
    shipped = np.array([float(v.shipped_units @ model.h100e[v.product_chip]) for v in vendors])
    open_market = np.array([not v.captive_to for v in vendors])
    return dict(zip(model.vendors, rival_prices_per_h100e(price, shipped, open_market)))


def apply_caps(model, vendor: Vendor, decisions, sites, prods, units, legal):
    """Limit shipments under country caps (with per-customer exemptions) and volume caps
    relative to home sales. Returns the new shippable fractions and, per order, the
    (exempt, capped, cap key) amounts planned [TPP-based H100e] for the books."""
    n = len(decisions)
    if not any(d.cap_h100e or d.volume_cap_vs_home is not None for d in decisions):
        return legal, None
    legal = legal.copy()
    planned: list = [None] * n
    tpp_units = model.h100e_tpp[vendor.product_chip[prods]]
    wanted = units * legal * tpp_units                       # H100e (TPP) asked
    by_key: dict[tuple, list[int]] = defaultdict(list)
    for i, d in enumerate(decisions):
        if d.cap_h100e:
            nation = model.nation_ids[model.sites[int(sites[i])].nation]
            key = (vendor.nation, d.rule_id, nation)
            start = model.cap_start.setdefault(key, model.month)
            if model.month - start >= d.cap_months:      # a new cap period
                model.cap_start[key], model.cap_used[key] = model.month, 0.0
            by_key[key].append(i)
    for key, rows in by_key.items():
        exempt = np.zeros(len(rows))
        for j, i in enumerate(rows):
            left = decisions[i].exemption_h100e_per_customer_year - \
                model.exempt_used[(int(sites[i]), model.month // 12)]
            exempt[j] = min(max(left, 0.0), wanted[i])
        rest = wanted[rows] - exempt
        room = max(decisions[rows[0]].cap_h100e - model.cap_used[key], 0.0)
        scale = min(1.0, room / rest.sum()) if rest.sum() > 0 else 0.0
        for j, i in enumerate(rows):
            allowed = exempt[j] + rest[j] * scale
            legal[i] = legal[i] * allowed / wanted[i] if wanted[i] > 0 else legal[i]
            planned[i] = (exempt[j], rest[j] * scale, key)
    home = model.nations[vendor.nation].controls_group
    for i, d in enumerate(decisions):
        if d.volume_cap_vs_home is None:
            continue
        group, prod = site_group(model, int(sites[i])), int(prods[i])
        rows = [k for k in range(n) if int(prods[k]) == prod
                and decisions[k].volume_cap_vs_home is not None
                and site_group(model, int(sites[k])) == group]
        room = max(d.volume_cap_vs_home * model.shipped_to[(vendor.vendor_id, prod, home)]
                   - model.shipped_to[(vendor.vendor_id, prod, group)], 0.0)
        ask = float(sum(units[k] * legal[k] for k in rows))
        if ask > room:
            for k in rows:
                legal[k] *= room / ask
    return legal, planned

def diversion_share(model, site: int, decision=None) -> float:
    """Share of blocked demand diverted to its destination [fraction]:
    max x (1 - exp(-k x gap)) x (1 - enforcement), gap = the destination's neocloud price
    index over the controller's, minus one [A: the form; leakage parameters in the
    scenario]."""
    leak = model.leakage
    if decision is not None and (not decision.controlled
                                 or decision.shippable_fraction >= 1.0):
        return 0.0
    group = site_group(model, site)
    if group not in leak.destinations:
        return 0.0
    dest = model.nation_ids[model.sites[site].nation]
    issuer = next((n for n, a in model.nations.items() if a.regime), None)
    p_dest = going_rate(model.latest_price_index, dest)
    p_ref = going_rate(model.latest_price_index, issuer) if issuer else None
    if p_dest is None or p_ref is None or p_ref <= 0:
        return 0.0
    gap = max(p_dest / p_ref - 1.0, 0.0)
    return leak.diversion_max_share * (1.0 - math.exp(-leak.diversion_gap_sensitivity * gap)) \
        * (1.0 - leak.enforcement)

def site_group(model, site: int) -> str:
    return model.site_group[site]

def deliver(model, sites: np.ndarray, chips: np.ndarray, units: np.ndarray,
             price_usd: np.ndarray, arrival_month: int) -> None:
    """Put shipments in transit, one lot per site and chip (price averaged by units)."""
    lots: dict[tuple[int, int], list[float]] = {}
    for site, chip, n, price in zip(sites.tolist(), chips.tolist(), units.tolist(),
                                    price_usd.tolist()):
        if n > 0:
            lot = lots.setdefault((site, chip), [0.0, 0.0])
            lot[0] += n
            lot[1] += n * price
    for (site, chip), (n, paid) in lots.items():
        model.sites[site].fleet.ship(arrival_month, chip, n, paid / n)


# -- ordering helpers -------------------------------------------------------------------
def site_backlog_h100e(model) -> np.ndarray:
    """Open chip orders per site [H100e]."""
    out = np.zeros(len(model.sites))
    for vendor in model.vendors.values():
        book = vendor.book()
        if book["units"].size:
            out += np.bincount(book["site"], weights=book["units"]
                               * model.h100e[vendor.product_chip[book["product"]]],
                               minlength=len(model.sites))
    return out

def vendor_offers(model, site: int) -> list[tuple[int, int, float] | None]:
    """Per vendor: the best product an order this site places now may buy (one on sale next
    month, when it ships: `shippable_products`): (product, chip, price). Prices and rules are
    fixed within a month, so offers are cached per month. Stockpile orders take the same
    offers though they may ship this month from stock: a product ending this month is not
    stockpiled (none in the built-in scenarios is)."""
    offers = _month_cache(model)
    key = model._offer_key[site]
    if key not in offers:
        offers[key] = compute_offers(model, site)
    return offers[key]


def offer_keys(model) -> list[tuple]:
    """Per site, what its chip offers depend on: its nation, the vendors that sell to it
    (captive vendors sell to named buyers only) and the chips its state bans it from buying;
    sites with the same key see the same offers."""
    return [(site.nation, tuple(v.sells_to(model.site_buyer[i]) for v in model.vendors.values()),
             model.site_banned[i]) for i, site in enumerate(model.sites)]


def _month_cache(model) -> dict:
    """The month's cache of offers and lines (emptied when the month turns)."""
    if model._offers_month != model.month:
        model._offers, model._offers_month = {}, model.month
        model._best_products = {}
    return model._offers

def compute_offers(model, site: int) -> list[tuple[int, int, float] | None]:
    buyer, group = model.site_buyer[site], site_group(model, site)
    banned = model.site_banned[site]
    offers = []
    for vendor in model.vendors.values():
        best = best_product(model, vendor, group, banned) if vendor.sells_to(buyer) else None
        offers.append(None if best is None else _subsidised(model, site, vendor, best))
    return offers


def _subsidised(model, site: int, vendor: Vendor, offer: tuple) -> tuple:
    """An offer (product, chip, price, ...) at the price the buyer pays: the buyer's state
    pays `domestic_chip_subsidy` of the price of home-made chips."""
    nation = model.nations[model.nation_ids[model.sites[site].nation]]
    if vendor.nation == nation.nation_id and nation.domestic_chip_subsidy:
        return (offer[0], offer[1], offer[2] * (1.0 - nation.domestic_chip_subsidy),
                *offer[3:])
    return offer


def place_opening_orders(model) -> None:
    """Put each vendor's opening book (`opening_orders_units`) on its books, placed the month
    before the run: each chip's orders shared among the sites it sells to by their starting
    fleets of it (who bought before kept buying). They were paid before the run, so they
    count in no buyer's capex; the vendor makes and ships them from the first month (without
    them nothing ships in it, because orders ship from the next month's output), and its
    foundry reads them as the first month's intake, as any order."""
    held = np.array([site.fleet.units_by_chip() for site in model.sites])
    for vendor in model.vendors.values():
        buys = np.array([vendor.sells_to(b) for b in model.site_buyer], bool)
        for chip, units in vendor.spec.opening_orders_units.items():
            k = model.chip_index[chip]
            prod = int(np.flatnonzero((vendor.product_chip == k)
                                      & (vendor.variant_parent < 0))[0])
            fleet = np.where(buys, held[:, k], 0.0)
            for site in np.flatnonzero(fleet > 0).tolist():
                vendor.take_order(site, prod, units * fleet[site] / fleet.sum(),
                                  model.start_month - 1)


def vendor_lines(model, site: int) -> list[list[tuple[int, int, float, float]]]:
    """Per vendor, every product this site may order (on sale next month), at the price it
    pays: (product, chip, unit price [USD], full price per market H100e [USD], as
    `offer_costs_usd_per_h100e`); empty for a vendor that does not sell to it. Cached per
    month with the offers."""
    cache, key = _month_cache(model), ("lines", model._offer_key[site])
    if key not in cache:
        buyer, group = model.site_buyer[site], site_group(model, site)
        r = model.sites[site].nation
        worth, waiting = model.hour_h100e[r], waiting_cost_usd_per_h100e(model, r)
        lines = []
        for i, vendor in enumerate(model.vendors.values()):
            products = shippable_products(model, vendor, group, model.site_banned[site]) \
                if vendor.sells_to(buyer) else []
            paid = [_subsidised(model, site, vendor, offer) for offer in products
                    if worth[offer[1]] > 0]
            lines.append([(prod, chip, price,
                           _full_price(model, chip, price, worth, waiting[i]))
                          for prod, chip, price in paid])
        cache[key] = lines
    return cache[key]


def shippable_products(model, vendor: Vendor, group: str,
                       banned: frozenset = frozenset()) -> list[tuple[int, int, float]]:
    """The vendor's products an order placed this month may buy for the group: those on sale
    next month, when the order ships (`Vendor.active`), under this month's rules and not
    among the `banned` chips (indices) the buyer's state keeps it from buying: (product,
    chip, unit price [USD])."""
    out = []
    ships = model.month + 1
    for prod in vendor.active_products(ships):
        chip = int(vendor.product_chip[prod])
        if chip not in banned and vendor.offers_to(prod, group, ships) and \
                decision(model, chip, group, vendor).shippable_fraction > 0:
            out.append((prod, chip, float(vendor.price[prod])))
    return out

def best_product(model, vendor: Vendor, group: str,
                 banned: frozenset = frozenset()) -> tuple[int, int, float] | None:
    """The vendor's product with the most H100e per dollar that an order placed this month
    may buy for the group (`shippable_products`, without the `banned` chips): (product,
    chip, unit price) (cached per month)."""
    key = (vendor.vendor_id, group, banned)
    if key not in model._best_products:
        best, best_value = None, -1.0
        for prod, chip, price in shippable_products(model, vendor, group, banned):
            value = model.h100e[chip] / price
            if value > best_value:
                best, best_value = (prod, chip, price), value
        model._best_products[key] = best
    return model._best_products[key]

def buyer_weights(model, site: int, weights: np.ndarray) -> np.ndarray:
    """A buyer's vendor weights after its state's discouragement of foreign chips."""
    nation = model.nations[model.nation_ids[model.sites[site].nation]]
    if nation.foreign_chip_weight >= 1.0:
        return weights
    foreign = model.foreign_vendor[model.sites[site].nation]
    return np.where(foreign, weights * nation.foreign_chip_weight, weights)

def offer_costs_usd_per_h100e(model, site: int, offers: list) -> np.ndarray:
    """Per vendor, the full price of its offer to a site per H100e of the hour's value to the
    site's market (`market.hour_value`) [USD per market H100e]: unit price x server
    multiplier / hour value, plus what the hours it would have earned while the order waits
    are worth (`waiting_cost_usd_per_h100e`); NaN where it offers nothing."""
    r = model.sites[site].nation
    worth = model.hour_h100e[r]
    waiting = waiting_cost_usd_per_h100e(model, r)
    return np.array([np.nan if o is None else _full_price(model, o[1], o[2], worth, waiting[i])
                     for i, o in enumerate(offers)])


def _full_price(model, chip: int, price_usd: float, worth: np.ndarray,
                waiting_usd: float) -> float:
    """A chip's full price per market H100e [USD]: unit price x server multiplier / the
    hour value `worth` of the chip, plus the vendor's waiting cost."""
    return price_usd * model.server_price[chip] / worth[chip] + waiting_usd


def vendor_waits_months(model) -> np.ndarray:
    """Per vendor, the months a new order waits at it: its lead time, at most the run's
    length (an infinite wait, orders without wafers, counts as that) [months]."""
    most = float(model.n_months)
    # no lead time yet (NaN) waits nothing; an infinite one waits the run's length
    return np.array([0.0 if w != w else min(w, most)
                     for w in (float(v.lead_time) for v in model.vendors.values())])


def waiting_cost_usd_per_h100e(model, region: int) -> np.ndarray:
    """Per vendor, what waiting for its chips costs a buyer in `region` [USD per market
    H100e]: the months a new order waits at it (its lead time, at most the run's length) x the
    hours a month of a market H100e sells (at the scenario's availability) x the region's
    expected spot price (0 before one is seen). A chip in stock and a cheaper one behind a
    long queue are compared at their full prices: money plus the time the queue takes
    (rationing by waiting; Barzel 1974, *J. Law Econ.* 17(1))."""
    spot = float(model.hour_market.expected_spot[region])
    hour_usd = spot if np.isfinite(spot) else 0.0
    return vendor_waits_months(model) * HOURS_PER_MONTH * model.params.availability * hour_usd


def best_offer(model, site: int, weights: np.ndarray) -> tuple[int, float] | None:
    """The offer to a site a buyer judges its investment by: the lowest effective cost per
    market H100e (`agents.strategies.effective_chip_cost`: value for the buyer's use, its
    preferences as a switching cost): (chip index, unit price)."""
    offers = vendor_offers(model, site)
    cost = effective_chip_cost(offer_costs_usd_per_h100e(model, site, offers),
                               buyer_weights(model, site, weights),
                               model.params.vendor_switching_cost)
    if not np.isfinite(cost).any():
        return None
    _, chip, price = offers[int(np.argmin(cost))]
    return chip, price

def order_chips(model, site: int, buyer: str, h100e_wanted: float, budget_usd: float,
                 weights: np.ndarray, kind: int = 0) -> float:
    """Place orders for `h100e_wanted` across vendors by preference, within a budget.
    Returns the committed spend [USD]."""
    if h100e_wanted <= 0 or budget_usd <= 0:
        return 0.0
    offers = vendor_offers(model, site)
    p = model.params
    plan, cost, scale = sourcing_plan(h100e_wanted, budget_usd,
                                      buyer_weights(model, site, weights), offers,
                                      list(model.vendors.values()), model.h100e,
                                      model.server_price, p.order_price_elasticity,
                                      offer_costs_usd_per_h100e(model, site, offers),
                                      p.vendor_switching_cost, p.vendor_choice_sensitivity,
                                      vendor_lines(model, site), p.line_dissimilarity)
    # what was wanted against what the allowance allowed (a cloud's financing, a building
    # lab's capex input: the `orders` table)
    model.records["orders"].append((model.step_index, buyer, kind, cost, budget_usd,
                                   cost * scale))
    placed = 0.0
    for vendor, prod, units, _ in plan:
        vendor.take_order(site, prod, units * scale, model.month, kind)
        placed += units * scale * model.h100e[vendor.product_chip[prod]]
    if kind == 0:
        model._ordered[site] += placed
    return cost * scale


# -- the grey market ----------------------------------------------------------------------
def grey_offer(model, site: int, weights: np.ndarray) -> tuple | None:
    """What a buyer in a leakage destination would seek through third countries: the best
    value among the prohibited products of its preferred open-market vendors (`agents.buyers.
    grey_market_choice`) and what it would pay for it, the vendor's price x (1 +
    `leakage.smuggling_premium`): (vendor, product, chip, unit price [USD]). None outside
    the destinations or when the rules keep nothing it wants from it."""
    group = site_group(model, site)
    if group not in model.leakage.destinations:
        return None
    best = grey_market_choice(list(model.vendors.values()), buyer_weights(model, site, weights),
                              model.month + 1, partial(decision, model), group,
                              model.hour_h100e[model.sites[site].nation], model.server_price,
                              model.params.vendor_switching_cost, model.site_banned[site])
    if best is None:
        return None
    _, vendor, prod, chip = best
    return vendor, prod, chip, float(vendor.price[prod]) * (1.0 + model.leakage.smuggling_premium)


def grey_demand(model, site: int, legal: float, blocked: float) -> float:
    """Grey-market demand, in the unit of its arguments: the diversion share
    (`diversion_share`: the price gap and enforcement) of the demand the rules block, which
    is what the buyer would want of the prohibited chip at its grey price (`blocked`) less
    what it wants of the legal one (`legal`), since the legal chips stand in for the others.
    Tighter rules leave less to buy legally, so they raise it."""
    gap = max(blocked - max(legal, 0.0), 0.0)
    return diversion_share(model, site) * gap if gap > 0 else 0.0


def transit_room_units(model) -> float:
    """Chips the transit hubs can still move this month [units]:
    `leakage.transit_capacity_units_per_month` less the grey-market orders placed so far."""
    if model.grey_month != model.month:
        model.grey_month, model.grey_units = model.month, 0.0
    return max(model.leakage.transit_capacity_units_per_month - model.grey_units, 0.0)


def place_grey_orders(model, requests: list[tuple]) -> list[float]:
    """Place a phase's grey-market orders: `requests` are (site, buyer, offer from
    `grey_offer`, H100e wanted, money it may spend [USD]). They share what the transit hubs
    can still move this month pro rata, then each is cut to its money; they ship only by
    diversion (kind 2). Returns the USD each committed (paid now, as ordinary orders are)."""
    wanted = np.array([max(h100e, 0.0) / model.h100e[offer[2]]
                       for _, _, offer, h100e, _ in requests])
    total = float(wanted.sum())
    if total <= 0:
        return [0.0] * len(requests)
    scale = min(1.0, transit_room_units(model) / total)
    spent = []
    for (site, buyer, (vendor, prod, chip, price), _, money), units in zip(requests, wanted):
        money = max(money, 0.0)        # what is left after its legal chips, never below 0
        cost_per_unit = price * float(model.server_price[chip])
        placed = min(units * scale, money / cost_per_unit) if units > 0 else 0.0
        model.records["orders"].append((model.step_index, buyer, 2, units * cost_per_unit,
                                        money, placed * cost_per_unit))
        vendor.take_order(site, prod, placed, model.month, kind=2)
        model.grey_units += placed
        spent.append(placed * cost_per_unit)
    return spent


def decision(model, chip: int, group: str, vendor: Vendor):
    """Export-control decision for a vendor's chip to a destination group (cached)."""
    issuer = model.nations.get(vendor.nation)
    regime = issuer.regime if issuer is not None else ()
    key = (chip, group, regime)
    if key not in model._decisions:
        model._decisions[key] = model.rules.decide(model.chips[chip], group, regime)
    return model._decisions[key]


# -- stockpiling ahead of announced rules ---------------------------------------------------
def stockpile(model) -> None:
    """Buyers stockpile between a rule's announcement and its effect: each site's usual
    orders (an exponential average over `leakage.usual_orders_memory_months` of what it
    ordered) pulled forward for `leakage.stockpile_months` (`agents.buyers.stockpile_orders`
    decides; here they are placed, as `kind` 1 orders)."""
    weight = 1.0 / model.leakage.usual_orders_memory_months      # exponential average
    model.order_ema = (1.0 - weight) * model.order_ema + weight * model._ordered
    model._ordered = np.zeros(len(model.sites))
    orders = stockpile_orders(
        model.month, model.announcements, model.leakage.stockpile_months, model.nations,
        model.rules, model.order_ema, model.site_group, list(model.vendors.values()),
        partial(vendor_offers, model), partial(decision, model), model.chips, model.h100e)
    for vendor, site, prod, units in orders:
        vendor.take_order(site, prod, units, model.month, kind=1)


# -- production and installation ----------------------------------------------------------
def produce_chips(model) -> None:
    """Foundries allot wafers; each vendor turns its wafers, net of HBM shortages, into chips
    (`Vendor.produce`); then each foundry reads its vendors' committed demand (new orders and
    what the wafers left unmade) and decides whether to expand (`Foundry.plan_expansion`)."""
    wafers: dict[str, float] = defaultdict(float)
    for foundry in model.foundries.values():
        for vendor, w in foundry.allot_wafers(model.month).items():
            wafers[vendor] += w
    for vid, vendor in model.vendors.items():
        factor = shock_factor(model.windows, model.month, "hbm_shortage",
                              lambda e: not e.vendors or vid in e.vendors)
        factor = vendor.hbm_supply_factor(factor, model.month,
                                          model.hbm_cut_since.get(vendor.nation))
        vendor.produce(model.month, wafers.get(vid, 0.0) * factor)
    for fid, foundry in model.foundries.items():
        mine = [v for v in foundry.vendor_shares if v in model.vendors]
        foundry.plan_expansion(model.month,
                               {v: model.vendors[v].intake_wafers for v in mine},
                               {v: model.vendors[v].short_wafers for v in mine})
        model.records["foundries"].append((
            model.step_index, fid, foundry.capacity(model.month), foundry.wafers_this_month,
            foundry.committed_wafers, foundry.started_wafers,
            foundry.under_construction(model.month), foundry.capex_usd))


def install_chips(model) -> None:
    """Delivered chips join their site's fleet within its power; old vintages retire."""
    max_age = model.params.retire_after_years * 12.0
    power = {n: shock_factor(model.windows, model.month, "power_constraint",
                             lambda e, n=n: e.nation == n)
             for n in model.nation_ids}
    for site in model.sites:
        site.power_factor = power[model.nation_ids[site.nation]]
        site.fleet.retire(model.month, max_age)
        headroom = site.capacity_mw(model.month) - site.installed_mw(model.mw_per_chip)
        site.fleet.receive_and_install(model.month, headroom / site.pue, model.mw_per_chip,
                                       model.h100e, model.install_order)
