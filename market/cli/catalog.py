"""`gpumarket chips`, `controls`: the chip catalog and the export-control rules."""

from __future__ import annotations

from typing import Any

import click

from market.cli.base import _check_within, _emit_json, _num, cli


# ------------------------------------------------------------------------------ chips ---

_SHORT = {"prohibited": "prohibited", "licence": "licence", "case_by_case": "case-by-case",
          "notification": "notify", "allowed": "allowed"}


def _status(decision) -> str:
    """A decision in a table cell: treatment, approval share, and whether it is listed."""
    if not decision.controlled:
        return "-"
    text = _SHORT[decision.treatment]
    if decision.treatment in ("licence", "case_by_case"):
        text += f" {decision.approval_probability:.0%}"
    return text


@cli.command()
@click.option("--rule", "rule_id", help="Add each chip's status under this export rule (with "
              "the rules in force when it took effect), per destination group it names.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (units in the key names).")
def chips(rule_id: str | None, as_json: bool) -> None:
    """List the chip catalog with TPP, performance density and H100-equivalents."""
    from market.catalog import load_catalog
    from market.controls import classify, load_rules, order_regime

    catalog = load_catalog()
    records = [_chip_record(c) for c in catalog.values()]
    groups: list[str] = []
    if rule_id is not None:
        book = load_rules()
        rule = book[rule_id]
        regime = order_regime(book, (*book.regime_at(rule.effective), rule_id))
        groups = list(dict.fromkeys(g for a in rule.actions for g in a.destinations)) or \
            [g for g in book.groups if g != "US"]
        for r in records:
            r["controls"] = {"rule": rule_id, "regime": list(regime), "by_group": {}}
            for g in groups:
                d = classify(catalog[r["id"]], g, regime, book)
                r["controls"]["by_group"][g] = {
                    "controlled": d.controlled, "treatment": d.treatment,
                    "approval_probability": d.approval_probability, "decided_by": d.rule_id,
                    "action": d.action, "status": _status(d)}
    if as_json:
        _emit_json(records)
        return
    header = ("id", "vendor", "launch", "BF16 TFLOP/s", "TPP", "TPP/mm2", "H100e", "mem GB",
              "mem GB/s", "link GB/s", "TDP W", "price USD", *groups)

    def tagged(r: dict[str, Any], field: str, text: str) -> str:
        """A published figure followed by its confidence tag (computed ones carry none)."""
        tag = r["confidence"].get(field)
        return text if tag is None or text == "n/a" else f"{text} {tag}"

    table = [(r["id"], r["vendor"], tagged(r, "launch", r["launch"]),
              tagged(r, "dense_tflops_bf16", _num(r["dense_tflops_bf16"])), f"{r['tpp']:,.0f}",
              _num(r["performance_density_tpp_per_mm2"]), f"{r['h100e']:.2f}",
              tagged(r, "memory_gb", f"{r['memory_gb']:,.0f}"),
              tagged(r, "memory_bandwidth_gbps", f"{r['memory_bandwidth_gbps']:,.0f}"),
              tagged(r, "interconnect_gbps", f"{r['interconnect_gbps']:,.0f}"),
              tagged(r, "tdp_w", f"{r['tdp_w']:,.0f}"),
              tagged(r, "unit_price_usd", "n/a" if r["unit_price_usd"] is None
                     else f"{r['unit_price_usd']:,.0f}"),
              *(r["controls"]["by_group"][g]["status"] for g in groups))
             for r in records]
    widths = [max(len(str(row[i])) for row in [header, *table]) for i in range(len(header))]
    for row in [header, *table]:
        click.echo("  ".join(str(v).ljust(w) if i < 3 else str(v).rjust(w)
                             for i, (v, w) in enumerate(zip(row, widths))))
    click.echo("TPP = max over precisions of dense TOPS x bit length; H100e = dense BF16 / 989.4 "
               "TFLOP/s (both computed, as is TPP/mm2).")
    click.echo("After each published figure, its confidence: H primary or official source, "
               "M reputable estimate, L weak or conflicting, D derived by arithmetic. Sources, "
               "notes and tags per field: gpumarket chips --json; docs/calibration.md.")
    if rule_id is not None:
        click.echo(f"Status under {rule_id} with the rules in force on {rule.effective} "
                   f"({', '.join(regime)}), by destination group: '-' not controlled; "
                   "'allowed' listed but licence-free there. Details: gpumarket controls CHIP "
                   "--destination GROUP --date YYYY-MM.")


def _chip_record(c) -> dict[str, Any]:
    return {
        "id": c.id, "name": c.name, "vendor": c.vendor, "launch": c.launch,
        "dense_tflops_bf16": c.dense_bf16_tflops,
        "dense_throughput_tflops": dict(c.dense_throughput),
        "tpp": c.tpp,
        "performance_density_tpp_per_mm2": c.performance_density,
        "h100e": c.h100e, "h100e_tpp": c.h100e_tpp,
        "memory_gb": c.memory_gb, "memory_bandwidth_gbps": c.memory_bandwidth_gbps,
        "tdp_w": c.tdp_w, "interconnect_gbps": c.interconnect_gbps,
        "die_area_mm2": c.die_area_mm2, "unit_price_usd": c.unit_price_usd,
        "hardware_price_usd": c.hardware_price_usd,
        "server_price_multiplier": c.server_price_multiplier,
        "server_power_multiplier": c.server_power_multiplier,
        "avg_power_fraction": c.avg_power_fraction,
        "sources": dict(c.sources),
        "confidence": dict(c.confidence),
        "notes": dict(c.notes),
    }



# --------------------------------------------------------------------------- controls ---

@cli.command()
@click.argument("chip")
@click.option("--destination", required=True, help="Country (China, UAE, India, Japan...), a "
              "scenario nation id, or a destination group (D5, D4, other, allied).")
@click.option("--date", "month", required=True, help="Month, YYYY-MM.")
@click.option("--scenario", help="Use this scenario's rule timeline (its events) instead of the "
              "real one, and its nations as destinations.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def controls(chip: str, destination: str, month: str, scenario: str | None,
             as_json: bool) -> None:
    """Explain how US export controls treat a chip bound for a destination on a date."""
    from market.catalog import load_catalog
    from market.controls import destination_group, explain, load_rules, order_regime
    from market.timeline import parse_month

    try:
        when = parse_month(month)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="'--date'") from None
    the_chip = load_catalog().get_chip(chip)
    book, nations, timeline = load_rules(), None, "the real US rule timeline"
    if scenario is not None:
        from scenarios.loader import load_scenario

        s = load_scenario(scenario).scenario
        # the scenario's timeline says nothing of a month it does not run
        _check_within([month], parse_month(s.start), parse_month(s.end), "--date",
                      f"scenario {s.name}'s run")
        book = book.with_rules(dict(s.rules), f"scenario {s.name}")
        nations, timeline = s.nations, f"scenario {s.name}'s events"
        live: tuple[str, ...] = ()
        for event in sorted((e for e in s.events if e.kind == "export_control"
                             and e.issuer == "US" and parse_month(e.date) <= when),
                            key=lambda e: parse_month(e.date)):
            ids = (*live, event.rule) if event.action == "impose" else \
                tuple(r for r in live if r != event.rule)
            live = order_regime(book, ids)
        regime = live
    else:
        regime = book.regime_at(when)
    group, place = destination_group(destination, book, nations)
    result = explain(the_chip, group, regime, book)
    d = result["decision"]
    if as_json:
        _emit_json({"chip": the_chip.id, "destination": place, "group": group, "date": month,
                    "timeline": timeline, "rules_in_force": list(regime),
                    "controlled": d.controlled, "treatment": d.treatment,
                    "approval_probability": d.approval_probability,
                    "revenue_share": d.revenue_share, "volume_cap_vs_home": d.volume_cap_vs_home,
                    "cap_h100e": d.cap_h100e, "cap_months": d.cap_months,
                    "exemption_h100e_per_customer_year": d.exemption_h100e_per_customer_year,
                    "decided_by": d.rule_id, "action": d.action, "crossed": list(d.crossed),
                    "explanation": result["lines"], "sources": result["sources"]})
        return
    click.echo(f"{the_chip.name} ({the_chip.id}) to {place} ({group}: {book.groups[group]}), "
               f"{month}, on {timeline}")
    click.echo(f"Chip: TPP {the_chip.tpp:,.0f}, performance density "
               f"{_num(the_chip.performance_density)} TPP/mm2, chip-to-chip I/O "
               f"{the_chip.interconnect_gbps:,.0f} GB/s, memory bandwidth "
               f"{the_chip.memory_bandwidth_gbps:,.0f} GB/s")
    if regime:
        click.echo("Rules in force: " + "; ".join(
            f"{rid} ({book[rid].name}, effective {book[rid].effective})" for rid in regime))
    for line in result["lines"]:
        click.echo(line)
    for rid, source in result["sources"].items():
        click.echo(f"Source ({rid}): {source}")
    click.echo("US rules bind US-origin chips (and chips made with US technology).")


