"""The policy phase: nations apply the month's dated events and their adaptive policies, the
access switches follow the rules in force, and vendors respond to what the rules restrict.

A phase module (docs/model.md, "1. Nations apply policies"): each decision sits with the agent
that makes it (`agents.nation.Nation.apply_event`, `Nation.adapt`, `access_switches`,
`agents.vendor.Vendor.respond_to_rules`); this module reads the calendar and writes the
`policy` records. It imports nothing from its caller.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from agents.nation import access_switches
from market import chip_trade
from market.timeline import parse_month


def apply_policies(model) -> None:
    """The month's events (rules, shocks, switches), then adaptive policies reading last
    month, then the access switches and vendors' responses."""
    for event in model.events_by_month.get(model.month, []):
        if event.kind in ("export_control", "domestic_policy"):
            issuer = event.issuer if event.kind == "export_control" else event.nation
            model.nations[issuer].apply_event(event)
            log_policy(model, issuer, "event", event.note or (
                f"{event.action} {event.rule}" if event.kind == "export_control"
                else "domestic chip policy"))
        elif event.kind == "foundry_shock":
            model.foundries[event.foundry].add_shock(event.date, event.months, event.factor)
        elif event.kind == "remote_access":
            model.remote_access_allowed = event.allowed
        elif event.kind == "demand_shock" and event.months is None:
            model.demand_shock *= event.factor
        else:   # shocks with a duration
            first = parse_month(event.date)
            model.windows.append((event.kind, first, first + event.months - 1, event))
    if model.month > model.start_month:            # adaptive policies read last month
        readings = {"installed_share": model.latest_share,
                    "frontier_share": model.frontier_share,
                    "lost_revenue_usd": {n: sum(q) for n, q in model.lost_revenue.items()}}
        for nid, nation in model.nations.items():
            for text in nation.adapt(model.month, readings):
                log_policy(model, nid, "adaptive", text)
    update_switches(model)
    update_bans(model)
    vendors_respond(model)


def update_bans(model) -> None:
    """Each site's chips its state's purchase bans keep it from buying (chip indices), and
    the offer keys that depend on them, re-read when a ban is added."""
    signature = tuple(len(n.bans) for n in model.nations.values())
    if signature == model._bans_signature:
        return
    model._bans_signature = signature
    for i, site in enumerate(model.sites):
        nation = model.nations[model.nation_ids[site.nation]]
        model.site_banned[i] = frozenset(model.chip_index[c]
                                         for c in nation.banned_for(model.site_buyer[i])
                                         if c in model.chip_index)
    model._offer_key = chip_trade.offer_keys(model)
    model._offers_month = None          # the month's cached offers are stale
    # the open orders it now bans are cancelled at once (any channel: legal, stockpiled, grey)
    for vendor in model.vendors.values():
        book = vendor.book()
        chips = vendor.product_chip[book["product"]].tolist()
        banned = np.array([c in model.site_banned[s] for c, s in zip(chips,
                                                                     book["site"].tolist())],
                          bool)
        if banned.any():
            vendor.cancel_orders(~banned)


def log_policy(model, nation: str, kind: str, text: str) -> None:
    """A `policy` record: what a nation (or a vendor of it) did, with its rules in force."""
    regime = ",".join(model.nations[nation].regime)
    model.records["policy"].append((model.step_index, nation, kind, text, regime))


def update_switches(model) -> None:
    """IaaS (remote access) and HBM switches from every controller's regime."""
    signature = (model.remote_access_allowed,
                 tuple(n.regime for n in model.nations.values()))
    if signature == model._switch_signature:
        return
    model._switch_signature = signature
    for nid, (remote_open, hbm_cut) in access_switches(
            model.nations, model.remote_access_allowed, model.rules).items():
        model.remote_open[nid] = remote_open
        if hbm_cut:
            model.hbm_cut_since.setdefault(nid, model.month)
        else:
            model.hbm_cut_since.pop(nid, None)


def vendors_respond(model) -> None:
    """Vendors launch compliant variants where a rule restricts a product
    (`Vendor.respond_to_rules`), re-read only when a regime or a product line changed."""
    signature = (tuple(n.regime for n in model.nations.values()),
                 tuple(v.active(model.month).tobytes() + v.end.tobytes()
                       for v in model.vendors.values()))
    if signature == model._respond_signature:
        return                      # nothing a vendor responds to has changed
    model._respond_signature = signature
    decide = partial(chip_trade.decision, model)
    for vendor in model.vendors.values():
        home = model.nations[vendor.nation].controls_group
        for text in vendor.respond_to_rules(model.month, model.buyer_groups, home, decide,
                                            model.h100e, model.chip_ids):
            log_policy(model, vendor.nation, "vendor", text)
