"""Chip vendors: make products from allotted wafers, price them, take orders, ration, ship."""

from __future__ import annotations

from collections import defaultdict

import mesa
import numpy as np

from market.clearing import ration, ration_pro_rata_by_group
from market.controls import classify, compliant_variant, order_regime
from market.timeline import format_month, parse_month
from market.world import FREE, VARIANT_TRIGGER
from scenarios.schema import Product


class Vendor(mesa.Agent):
    """A chip vendor with a product line, an order book and a scarcity-priced price list.

    Price of a product = list price x (1 + markup x months of backlog beyond one, counted at
    full capacity), capped at `max_price_multiple` x list: cost-plus (the list price) plus
    scarcity (the backlog).
    """

    def __init__(self, model: mesa.Model, vendor_id: str, spec, chip_index: dict[str, int],
                 catalog, extra_products: list | None = None, merge_orders: bool = True):
        super().__init__(model)
        self.vendor_id = vendor_id
        self.name = spec.name
        self.nation = spec.nation
        self.foundry_id = spec.foundry
        self.captive_to = set(spec.captive_to)
        self.scarcity_markup = spec.scarcity_markup_per_backlog_month
        self.max_price_multiple = spec.max_price_multiple
        self.compliant_variants = spec.compliant_variants
        self.variant_lag_months = spec.variant_lag_months
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
        self.capacity_units = 0.0

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

    def active(self, month: int) -> np.ndarray:
        return (self.available <= month) & (month <= self.end)

    def offers_to(self, product: int, group: str, month: int) -> bool:
        """Whether a product is sold to buyers of a destination group this month: base products
        everywhere, variants only where the vendor launched them for that group."""
        if self.variant_parent[product] < 0:
            return True
        start = self.variant_groups.get(product, {}).get(group)
        return start is not None and start <= month

    def serve_variant(self, product: int, group: str, month: int) -> int:
        """Launch a variant for a group after the design lag; returns its first month."""
        first = max(month + self.variant_lag_months, int(self.declared_available[product]))
        groups = self.variant_groups.setdefault(product, {})
        if group not in groups:
            groups[group] = first
            self.available[product] = min(groups.values())
        return groups[group]

    def respond_to_rules(self, month: int, buyer_groups: list[str], home_group: str, decide,
                         h100e: np.ndarray, chip_ids: list[str]) -> list[str]:
        """Variant response: where a product is restricted in a market (less than
        `VARIANT_TRIGGER` of its orders may ship), launch, after the design lag, the best
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
                        >= VARIANT_TRIGGER:
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
        """Turn this month's wafers into chips: build to the order book (plus a small buffer)
        up to the wafers allotted, product mix following the open orders."""
        active = self.active(month)
        self.output_units = np.zeros(len(self.product_chip))
        self.wafers_used = 0.0
        self.capacity_units = 0.0
        if wafers <= 0 or not active.any():
            return
        backlog = self.backlog_by_product()
        short = np.where(active, np.maximum(backlog * 1.1 - self.inventory, 0.0), 0.0)
        needed = float((short / self.packages_per_wafer).sum())
        self.wafers_used = min(wafers, needed + 0.02 * wafers)
        mix = np.where(active, self.mix_weight, 0.0)
        self.capacity_units = wafers * float(mix @ self.packages_per_wafer) / mix.sum()
        # a small floor keeps every active product in production so new ones can start
        weight = np.where(active, self.mix_weight * (short + 0.02 * short.sum() + 1.0), 0.0)
        per_wafer = weight / self.packages_per_wafer
        self.output_units = self.wafers_used * per_wafer / per_wafer.sum() * self.packages_per_wafer
        self.inventory += self.output_units

    def set_prices(self) -> None:
        """Cost-plus-scarcity: list price marked up by months of backlog beyond one."""
        backlog_months = self._orders()["units"].sum() / max(self.capacity_units, 1e-9)
        multiple = min(1.0 + self.scarcity_markup * max(0.0, backlog_months - 1.0),
                       self.max_price_multiple)
        self.price = np.maximum(self.list_price * multiple, self.unit_cost)

    def sells_to(self, buyer_id: str) -> bool:
        return not self.captive_to or buyer_id in self.captive_to

    def take_order(self, site: int, product: int, units: float, month: int,
                   kind: int = 0) -> None:
        if units <= 0:
            return
        self._new_orders.append((site, product, units, month, kind))

    def cancel_orders(self, keep: np.ndarray) -> None:
        book = self._orders()
        for key in book:
            book[key] = book[key][keep]

    def ship(self, shippable_fraction: np.ndarray, rule: str) -> dict[str, np.ndarray]:
        """Ration inventory among open orders; returns the shipments as arrays: `row` (order
        row in the book as it was), `site`, `chip`, `units` and unit `price` [USD].

        `shippable_fraction[i]` is the share of order i that may ship now (0 for a prohibited
        destination); the rest of the order is cancelled.
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
        self.inventory = self.inventory - shipped
        self.shipped_units = shipped
        self.revenue_usd = float(shipped @ self.price)
        out = np.flatnonzero(sent > 0)
        shipments = {"row": out, "site": book["site"][out],
                     "chip": self.product_chip[book["product"][out]], "units": sent[out],
                     "price": self.price[book["product"][out]]}
        book["units"] = book["units"] - sent
        self.cancel_orders(book["units"] > 1e-6)
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
    """Compliant variants each vendor could need under the regimes its nation may impose,
    designed up front from the rule data (so the chip arrays stay fixed during a run);
    a vendor launches one only when a rule actually restricts the parent (see
    `Vendor.respond_to_rules`). A declared variant that complies is preferred to a derived one."""
    extra: dict[str, list[Product]] = defaultdict(list)
    seen: set[tuple] = set()
    for vid, vendor in scenario.vendors.items():
        if not vendor.compliant_variants:
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
                    if decision.shippable_fraction >= VARIANT_TRIGGER:
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
                    extra[vid].append(Product(
                        chip=chip_id, available=product.available, end=product.end,
                        packages_per_wafer=product.packages_per_wafer,
                        unit_cost_usd=product.unit_cost_usd,
                        list_price_usd=price * (0.3 + 0.7 * variant.tpp / parent.tpp),
                        mix_weight=product.mix_weight, variant_of=product.chip))
    return extra
