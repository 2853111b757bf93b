"""Chip vendors: make products from allotted wafers, price them, take orders, ration, ship."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

import mesa
import numpy as np

from market.clearing import ration, ration_pro_rata_by_group
from market.controls import classify, compliant_variant, order_regime
from market.errors import UnknownNameError
from market.timeline import format_month, parse_month
from market.world import FREE
from scenarios.schema import Product

# ------------------------------------------------------------------------- pricing ---

@dataclass(frozen=True)
class SupplySignals:
    """What a vendor reads before it prices, in months of its own wafer capacity.

    `lead_time_months`: open orders its stock does not cover [months of capacity] (the wait a
    new buyer faces); `glut_months`: supply nobody asked for, i.e. stock beyond its open orders
    and target inventory plus this month's idle wafer allotment (capacity it reserved and its
    book did not need) [months of capacity]; `rival_price_ratio`: its flagship's list price
    per H100e over rivals' current price per H100e [-] (NaN: no rival sold last month).
    """

    lead_time_months: float
    glut_months: float
    rival_price_ratio: float


def backlog_markup_price(price: np.ndarray, list_price: np.ndarray, unit_cost: np.ndarray,
                         signals: SupplySignals, spec) -> np.ndarray:
    """Next month's unit prices [USD]: partial adjustment towards a target over list.

    target = list x min(S x G x R, `max_price_multiple`), never below the floor
    unit_cost x (1 + `floor_margin`), with
    S = 1 + `scarcity_markup_per_backlog_month` x lead time (scarcity: orders outrun output),
    G = max(1 - `glut_discount_per_stock_month` x glut months, 0) (stock piles up: prices fall,
    also below list, down to the floor),
    R = min(1, q^(-`rival_response`)), q = rival price ratio / (1 + `rival_premium`) (a
    vendor dearer per H100e than its rivals plus the premium its buyers tolerate cuts towards
    them; with response 1 it matches them).
    price' = price + `price_adjustment_per_month` x (target - price): prices move gradually
    (partial adjustment, as in Nerlove's model). Pricing against stock and backlog follows
    Blinder (1982, "Inventories and sticky prices", AER 72); the linear form is [A].
    """
    floor = unit_cost * (1.0 + spec.floor_margin)
    if np.isinf(signals.lead_time_months):
        scarcity = spec.max_price_multiple
    else:
        scarcity = 1.0 + spec.scarcity_markup_per_backlog_month * signals.lead_time_months
    glut = max(1.0 - spec.glut_discount_per_stock_month * signals.glut_months, 0.0)
    rival = 1.0
    ratio = signals.rival_price_ratio
    if np.isfinite(ratio) and ratio > 0:
        rival = min(1.0, (ratio / (1.0 + spec.rival_premium)) ** -spec.rival_response)
    target = np.maximum(list_price * min(scarcity * glut * rival, spec.max_price_multiple),
                        floor)
    new = price + spec.price_adjustment_per_month * (target - price)
    return np.maximum(new, floor)


def list_price_rule(price: np.ndarray, list_price: np.ndarray, unit_cost: np.ndarray,
                    signals: SupplySignals, spec) -> np.ndarray:
    """Counterfactual: the vendor never reprices (list price whatever its book); for what-if
    comparisons only, no built-in scenario uses it."""
    return np.maximum(list_price, unit_cost)


#: Vendor pricing rules by name (the scenario's `[vendors.X] pricing`).
PRICING: dict[str, Callable[..., np.ndarray]] = {
    "backlog_markup": backlog_markup_price,
    "list_price": list_price_rule,
}


def pricing_rule(name: str) -> Callable[..., np.ndarray]:
    if name not in PRICING:
        raise UnknownNameError("vendor pricing rule", name, list(PRICING))
    return PRICING[name]


def rival_prices_per_h100e(price_per_h100e: np.ndarray, shipped_h100e: np.ndarray,
                           open_market: np.ndarray) -> np.ndarray:
    """Per vendor, its rivals' price per H100e [USD/H100e]: the mean over the other
    open-market vendors' best offers, weighted by the H100e each shipped last month; NaN when
    no rival shipped."""
    w = np.where(open_market & np.isfinite(price_per_h100e), shipped_h100e, 0.0)
    p = np.where(w > 0, price_per_h100e, 0.0)
    # each vendor's sums over the others, added up rather than the total less its own: a
    # difference of two large sums can leave a rival weight of ~1e-16 with a price sum of 0
    others = w[None, :] * (1.0 - np.eye(len(w)))
    total_w, total_pw = others.sum(axis=1), others @ p
    return np.divide(total_pw, total_w, out=np.full(len(w), np.nan), where=total_w > 0)


# ---------------------------------------------------------------------- production ---

def fill_by_weight(need: np.ndarray, weight: np.ndarray, supply: float) -> np.ndarray:
    """Share `supply` among needs in proportion to need x weight, none above its need
    (water-filling: what a filled need leaves goes to the others)."""
    if supply >= need.sum():
        return need.astype(float)
    out = np.zeros_like(need, dtype=float)
    open_ = need > 0
    left = float(supply)
    while left > 1e-12 and open_.any():
        w = np.where(open_, need * weight, 0.0)
        give = left * w / w.sum()
        room = need - out
        full = open_ & (give >= room)
        if not full.any():
            return out + give
        out[full] = need[full]
        left -= float(room[full].sum())
        open_ &= ~full
    return out


class Vendor(mesa.Agent):
    """A chip vendor with a product line, an order book, a stock and a price list.

    Each month it makes chips from its wafer allotment to cover its open orders plus a target
    stock (`produce`), prices against its lead time, its stock and its rivals by the rule the
    scenario names (`set_prices`, `PRICING`), and rations its stock among the open orders
    (`ship`). Its lead time (`lead_time_months`) is what a buyer ordering now waits.
    """

    def __init__(self, model: mesa.Model, vendor_id: str, spec, chip_index: dict[str, int],
                 catalog, extra_products: list | None = None, merge_orders: bool = True):
        super().__init__(model)
        self.vendor_id = vendor_id
        self.name = spec.name
        self.nation = spec.nation
        self.foundry_id = spec.foundry
        self.captive_to = set(spec.captive_to)
        self.spec = spec      # the pricing parameters, read by the pricing rule
        self.pricing = pricing_rule(spec.pricing)
        self.target_inventory_months = spec.target_inventory_months
        self.compliant_variants = spec.compliant_variants
        self.variant_lag_months = spec.variant_lag_months
        self.variant_design_months = spec.variant_design_months
        self.variant_trigger = spec.variant_trigger
        self.hbm_dependence = spec.hbm_dependence
        self.hbm_stockpile_months = spec.hbm_stockpile_months
        prods = list(spec.products) + list(extra_products or [])
        self.product_chip = np.array([chip_index[p.chip] for p in prods], dtype=np.int64)
        self.declared_available = np.array([parse_month(p.available) for p in prods])
        # variants are dormant until the vendor responds to a rule (see `serve_variant`)
        self.variant_parent = np.array([chip_index[p.variant_of] if p.variant_of else -1
                                        for p in prods], dtype=np.int64)
        self.derived = np.array([i >= len(spec.products) for i in range(len(prods))])
        self.available = np.where(self.variant_parent >= 0, 10**9, self.declared_available)
        # products on sale by month (mask, indices, base indices): the month's and the
        # next's, which buyers order against (see `active`); a variant launch empties it
        self._active_by_month: dict[int, tuple[np.ndarray, list[int], list[int]]] = {}
        self._base = self.variant_parent < 0          # base products (not variants)
        self.variant_groups: dict[int, dict[str, int]] = {}   # product -> {group: from month}
        self.end = np.array([parse_month(p.end) if p.end else 10**9 for p in prods])
        self.packages_per_wafer = np.array([p.packages_per_wafer for p in prods])
        self.unit_cost = np.array([p.unit_cost_usd for p in prods])
        self.list_price = np.array([
            p.list_price_usd if p.list_price_usd is not None else catalog[p.chip].unit_price_usd
            for p in prods])
        self.mix_weight = np.array([p.mix_weight for p in prods])
        n = len(prods)
        self.inventory = np.zeros(n)
        self.price = self.list_price.copy()
        self.output_units = np.zeros(n)
        # order book: one row per open order (new orders buffer in a list until read)
        self._book = {"site": np.zeros(0, dtype=np.int64), "product": np.zeros(0, dtype=np.int64),
                      "units": np.zeros(0), "placed": np.zeros(0, dtype=np.int64),
                      "kind": np.zeros(0, dtype=np.int64)}   # kind: 0 usual, 1 stockpile, 2 grey
        self._new_orders: list[tuple[int, int, float, int, int]] = []
        # under pro-rata rationing one buyer's open orders for a product share alike, so they
        # are kept as one row (first-come rationing needs each order's month)
        self.merge_orders = merge_orders
        self.shipped_units = np.zeros(n)
        self.revenue_usd = 0.0
        self.wafers_used = 0.0
        self.wafers_allotted = 0.0      # this month's wafers [wafers]
        self.wafers_wanted = 0.0        # wafers its book and target stock asked for [wafers]
        self.lead_time = 0.0            # [months of capacity], as priced this month
        self.ordered_units = np.zeros(n)   # orders taken since it last produced [units]
        self.intake_wafers = 0.0        # those orders in wafers, read when it produces [wafers]
        self.short_wafers = 0.0         # what the wafers left unmade this month [wafers]

    def _orders(self) -> dict[str, np.ndarray]:
        if self._new_orders:
            site, product, units, placed, kind = zip(*self._new_orders)
            self._new_orders = []
            book = self._book
            book["site"] = np.concatenate((book["site"], np.array(site, dtype=np.int64)))
            book["product"] = np.concatenate((book["product"], np.array(product, dtype=np.int64)))
            book["units"] = np.concatenate((book["units"], np.array(units, dtype=float)))
            book["placed"] = np.concatenate((book["placed"], np.array(placed, dtype=np.int64)))
            book["kind"] = np.concatenate((book["kind"], np.array(kind, dtype=np.int64)))
            if self.merge_orders:
                key = (book["site"] * len(self.product_chip) + book["product"]) * 3 + book["kind"]
                rows, which = np.unique(key, return_inverse=True)
                if rows.size < key.size:
                    placed = np.full(rows.size, np.iinfo(np.int64).max)
                    np.minimum.at(placed, which, book["placed"])
                    first = np.zeros(rows.size, dtype=np.int64)
                    first[which[::-1]] = np.arange(key.size)[::-1]
                    self._book = {"site": book["site"][first], "product": book["product"][first],
                                  "units": np.bincount(which, weights=book["units"],
                                                       minlength=rows.size),
                                  "placed": placed, "kind": book["kind"][first]}
        return self._book

    def book(self) -> dict[str, np.ndarray]:
        """The open orders as arrays: site, product, units, placed (month), kind."""
        return self._orders()

    def _on_sale(self, month: int) -> tuple[np.ndarray, list[int], list[int]]:
        entry = self._active_by_month.get(month)
        if entry is None:
            if len(self._active_by_month) >= 2:      # a new month: keep only two
                self._active_by_month.clear()
            mask = (self.available <= month) & (month <= self.end)
            # the same as indices, all and base products only (buyers loop over them)
            products = np.flatnonzero(mask).tolist()
            entry = (mask, products, [k for k in products if self.variant_parent[k] < 0])
            self._active_by_month[month] = entry
        return entry

    def active(self, month: int) -> np.ndarray:
        """Products on sale in `month`, from `available` to `end` (cached; a variant launch
        resets it). An order placed in a month ships from the next month's production, so
        buyers order against the next month's products: a product's first deliveries land
        in its `available` month, and none is ordered that would ship after its `end`."""
        return self._on_sale(month)[0]

    def active_products(self, month: int) -> list[int]:
        """Indices of the products on sale in `month` (`active`)."""
        return self._on_sale(month)[1]

    def active_base_products(self, month: int) -> list[int]:
        """Indices of the base products (not variants) on sale in `month`."""
        return self._on_sale(month)[2]

    def offers_to(self, product: int, group: str, month: int) -> bool:
        """Whether a product is sold to buyers of a destination group this month: base products
        everywhere, variants only where the vendor launched them for that group."""
        if self.variant_parent[product] < 0:
            return True
        start = self.variant_groups.get(product, {}).get(group)
        return start is not None and start <= month

    def serve_variant(self, product: int, group: str, month: int) -> int:
        """Launch a variant for a group after its lag (a declared variant's, not before its
        own date; a designed one's design and qualification); returns its first month."""
        lag = self.variant_design_months if self.derived[product] else self.variant_lag_months
        first = max(month + lag, int(self.declared_available[product]))
        groups = self.variant_groups.setdefault(product, {})
        if group not in groups:
            groups[group] = first
            self.available[product] = min(groups.values())
            self._active_by_month.clear()
        return groups[group]

    def respond_to_rules(self, month: int, buyer_groups: list[str], home_group: str, decide,
                         h100e: np.ndarray, chip_ids: list[str]) -> list[str]:
        """Variant response: where a product is restricted in a market (less than
        `variant_trigger` of its orders may ship), launch, after the design lag, the best
        variant that ships there freely (declared in the scenario, else derived).

        `decide(chip, group, vendor)` is the export-control decision in force; `h100e` per
        chip [H100e]. Returns what was launched, in words, for the policy log.
        """
        if not self.compliant_variants or not (self.variant_parent >= 0).any():
            return []
        done = []
        active = self.active(month) | (self.declared_available > month)
        for prod in np.flatnonzero(active & (self.variant_parent < 0) & (self.end >= month)):
            chip = int(self.product_chip[prod])
            variants = np.flatnonzero((self.variant_parent == chip) & (self.end >= month))
            if variants.size == 0 or self.declared_available[prod] > month:
                continue
            for group in buyer_groups:
                if group == home_group or decide(chip, group, self).shippable_fraction \
                        >= self.variant_trigger:
                    continue
                free = [v for v in variants if decide(
                    int(self.product_chip[v]), group, self).treatment in FREE]
                if not free or any(group in self.variant_groups.get(v, {}) for v in free):
                    continue
                best = max(free, key=lambda v: (h100e[self.product_chip[v]],
                                                not self.derived[v]))
                first = self.serve_variant(int(best), group, month)
                done.append(f"{self.vendor_id} launches "
                            f"{chip_ids[self.product_chip[best]]} for {group} from "
                            f"{format_month(first)} ({chip_ids[chip]} restricted)")
        return done

    def backlog_by_product(self) -> np.ndarray:
        book = self._orders()
        return np.bincount(book["product"], weights=book["units"],
                           minlength=len(self.product_chip))

    def hbm_supply_factor(self, factor: float, month: int, hbm_cut_since: int | None) -> float:
        """`factor` [-] cut by the vendor's HBM dependence once HBM exports to its nation have
        been controlled for longer than its HBM stockpile lasts."""
        if self.hbm_dependence > 0 and hbm_cut_since is not None \
                and month - hbm_cut_since >= self.hbm_stockpile_months:
            factor *= 1.0 - self.hbm_dependence     # the HBM stockpile has run out
        return factor

    def produce(self, month: int, wafers: float) -> None:
        """Turn this month's wafers into chips: each active product's target is its open
        orders plus `target_inventory_months` x its last month's shipments; the wafers go to
        what is short of target (shared by need x `mix_weight` when they do not cover it all).
        With no orders the vendor makes only what tops up the target stock."""
        active = self.active(month)
        self.wafers_allotted = float(wafers)
        target = self.backlog_by_product() + self.target_inventory_months * self.shipped_units
        short = np.where(active, np.maximum(target - self.inventory, 0.0), 0.0)
        need = short / self.packages_per_wafer
        self.wafers_wanted = float(need.sum())
        self.intake_wafers = float((self.ordered_units / self.packages_per_wafer).sum())
        self.ordered_units = np.zeros(len(self.product_chip))
        used = fill_by_weight(need, self.mix_weight, max(float(wafers), 0.0))
        self.wafers_used = float(used.sum())
        self.short_wafers = self.wafers_wanted - self.wafers_used
        self.output_units = used * self.packages_per_wafer
        self.inventory += self.output_units

    def _uncovered_and_excess_wafers(self, month: int) -> tuple[float, float]:
        """Open orders the stock does not cover, and stock beyond the open orders and the
        target stock, over active products [wafers]."""
        active = self.active(month)
        backlog = self.backlog_by_product()
        target = self.target_inventory_months * self.shipped_units
        uncovered = np.where(active, np.maximum(backlog - self.inventory, 0.0), 0.0)
        excess = np.where(active, np.maximum(self.inventory - backlog - target, 0.0), 0.0)
        return (float((uncovered / self.packages_per_wafer).sum()),
                float((excess / self.packages_per_wafer).sum()))

    def lead_time_months(self, month: int | None = None) -> float:
        """Months a new order waits: the open orders its stock does not cover, in months of
        its wafer allotment [months] (inf when it has orders and no wafers). Without `month`,
        the lead time it last priced with."""
        if month is None:
            return self.lead_time
        return self._months_of_capacity(self._uncovered_and_excess_wafers(month)[0])

    def _months_of_capacity(self, wafers: float) -> float:
        if wafers <= 0:
            return 0.0
        return wafers / self.wafers_allotted if self.wafers_allotted > 0 else float("inf")

    def signals(self, month: int, rival_price_per_h100e: float,
                h100e: np.ndarray) -> SupplySignals:
        """Lead time, glut and rival ratio (see `SupplySignals`) from the book and stock."""
        uncovered, excess = self._uncovered_and_excess_wafers(month)
        idle = max(self.wafers_allotted - self.wafers_wanted, 0.0)   # allotment nobody asked for
        glut = (excess + idle) / self.wafers_allotted if self.wafers_allotted > 0 else 0.0
        return SupplySignals(self._months_of_capacity(uncovered), glut,
                             self.flagship_list_per_h100e(month, h100e) / rival_price_per_h100e
                             if np.isfinite(rival_price_per_h100e) else float("nan"))

    def flagship_list_per_h100e(self, month: int, h100e: np.ndarray) -> float:
        """List price per H100e of its best-value active base product [USD/H100e]."""
        return self._best_per_h100e(month, h100e, self.list_price)

    def price_per_h100e(self, month: int, h100e: np.ndarray) -> float:
        """Current price per H100e of its best-value active base product [USD/H100e]: what
        rivals compare themselves with (before its first product ships, its base products'
        prices; after its last, those of its last ones)."""
        return self._best_per_h100e(month, h100e, self.price)

    def _best_per_h100e(self, month: int, h100e: np.ndarray, prices: np.ndarray) -> float:
        base = self._base
        pick = base & self.active(month)
        if not pick.any():
            pick = base & (self.available > month)
            if not pick.any():
                pick = base & (self.end == self.end.max())
        return float(np.min(prices[pick] / h100e[self.product_chip[pick]]))

    def set_prices(self, month: int, rival_price_per_h100e: float, h100e: np.ndarray) -> None:
        """This month's prices by the vendor's pricing rule (`PRICING`) from its signals;
        `rival_price_per_h100e` from `rival_prices_per_h100e` (NaN: none), `h100e` per chip."""
        signals = self.signals(month, rival_price_per_h100e, h100e)
        self.lead_time = signals.lead_time_months
        self.price = self.pricing(self.price, self.list_price, self.unit_cost, signals,
                                  self.spec)

    def sells_to(self, buyer_id: str) -> bool:
        return not self.captive_to or buyer_id in self.captive_to

    def take_order(self, site: int, product: int, units: float, month: int,
                   kind: int = 0) -> None:
        if units <= 0:
            return
        self._new_orders.append((site, product, units, month, kind))
        self.ordered_units[product] += units

    def cancel_orders(self, keep: np.ndarray) -> None:
        book = self._orders()
        for key in book:
            book[key] = book[key][keep]

    def ship(self, shippable_fraction: np.ndarray, rule: str,
             month: int | None = None) -> dict[str, np.ndarray]:
        """Ration inventory among open orders (`rule`: pro_rata or first_come, the
        allocation under shortage); returns the shipments as arrays: `row` (order row in the
        book as it was), `site`, `chip`, `units` and unit `price` [USD]. What is not shipped
        waits in the book (the buyer's delivery slips by the lead time).

        `shippable_fraction[i]` is the share of order i that may ship now (0 for a prohibited
        destination); the rest of the order is cancelled, as are orders for products past
        their last month (given `month`) that the stock could not fill.
        """
        self.shipped_units = np.zeros(len(self.product_chip))
        self.revenue_usd = 0.0
        empty = {k: np.zeros(0, dtype=np.int64 if k in ("row", "site", "chip") else float)
                 for k in ("row", "site", "chip", "units", "price")}
        book = self._orders()
        if book["units"].size == 0:
            return empty
        book["units"] = book["units"] * shippable_fraction
        n = len(self.product_chip)
        if rule == "pro_rata":      # every product at once
            sent = ration_pro_rata_by_group(book["units"], book["product"], self.inventory)
        else:
            sent = np.zeros_like(book["units"])
            for product in np.unique(book["product"]).tolist():
                rows = np.flatnonzero(book["product"] == product)
                sent[rows] = ration(book["units"][rows], book["placed"][rows],
                                    self.inventory[product], rule)
        shipped = np.bincount(book["product"], weights=sent, minlength=n)
        self.inventory = np.maximum(self.inventory - shipped, 0.0)   # rounding of the rationing
        self.shipped_units = shipped
        self.revenue_usd = float(shipped @ self.price)
        out = np.flatnonzero(sent > 0)
        shipments = {"row": out, "site": book["site"][out],
                     "chip": self.product_chip[book["product"][out]], "units": sent[out],
                     "price": self.price[book["product"][out]]}
        book["units"] = book["units"] - sent
        keep = book["units"] > 1e-6
        if month is not None:
            keep &= self.end[book["product"]] >= month
        self.cancel_orders(keep)
        return shipments


# ------------------------------------------------------------ variant design ---

def reachable_regimes(scenario, rules, issuer: str) -> list[tuple[str, ...]]:
    """Regimes the issuer's events (and adaptive policies) can put in force."""
    regime: tuple[str, ...] = ()
    seen = []
    for event in sorted((e for e in scenario.events
                         if e.kind == "export_control" and e.issuer == issuer),
                        key=lambda e: parse_month(e.date)):
        ids = (*regime, event.rule) if event.action == "impose" else \
            tuple(r for r in regime if r != event.rule)
        regime = order_regime(rules, ids)
        seen.append(regime)
    adaptive = [a.impose for a in scenario.nations[issuer].adaptive if a.impose]
    for base in list(seen) or [()]:
        seen += [order_regime(rules, (*base, rid)) for rid in adaptive]
    return [r for r in dict.fromkeys(seen) if r]

def design_variants(scenario, catalog: dict, rules,
                    buyer_groups: list[str]) -> dict[str, list[Product]]:
    """Compliant variants each vendor that `design_variants` could need under the regimes its
    nation may impose, designed up front from the rule data (so the chip arrays stay fixed
    during a run);
    a vendor launches one only when a rule actually restricts the parent (see
    `Vendor.respond_to_rules`). A declared variant that complies is preferred to a derived one."""
    extra: dict[str, list[Product]] = defaultdict(list)
    seen: set[tuple] = set()
    for vid, vendor in scenario.vendors.items():
        if not (vendor.compliant_variants and vendor.design_variants):
            continue
        home = scenario.nations[vendor.nation].controls_group
        declared = [p for p in vendor.products if p.variant_of]
        markets = buyer_groups if not vendor.captive_to else sorted(
            {scenario.nations[o.nation].controls_group
             for oid, o in [*scenario.clouds.items(), *scenario.labs.items()]
             if oid in vendor.captive_to})
        for regime in reachable_regimes(scenario, rules, vendor.nation):
            for product in vendor.products:
                if product.variant_of:
                    continue
                parent = catalog[product.chip]
                for group in markets:
                    if group == home:
                        continue
                    decision = classify(parent, group, regime, rules)
                    if decision.shippable_fraction >= vendor.variant_trigger:
                        continue
                    if any(d.variant_of == product.chip and classify(
                            catalog[d.chip], group, regime, rules).treatment in FREE
                           for d in declared):
                        continue
                    chip_id = f"{product.chip}-for-{group.lower()}-{decision.rule_id}"
                    variant = compliant_variant(parent, group, regime, rules, chip_id)
                    if variant is None:
                        continue
                    key = (product.chip, group, round(variant.tpp), variant.interconnect_gbps,
                           variant.memory_bandwidth_gbps)
                    if key in seen or chip_id in catalog:
                        continue
                    seen.add(key)
                    catalog[chip_id] = variant
                    price = product.list_price_usd or parent.unit_price_usd
                    base = vendor.variant_price_base_share
                    extra[vid].append(Product(
                        chip=chip_id, available=product.available, end=product.end,
                        packages_per_wafer=product.packages_per_wafer,
                        unit_cost_usd=product.unit_cost_usd,
                        list_price_usd=price * (base + (1.0 - base) * variant.tpp / parent.tpp),
                        mix_weight=product.mix_weight, variant_of=product.chip))
    return extra
