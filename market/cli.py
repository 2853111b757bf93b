"""The `gpumarket` command line: parse, call the library, print.

Every user error (a `GpumarketError` or a click usage error) becomes one line on stderr and
exit code 2. Heavy imports stay inside the commands so `--help` is instant.
"""

from __future__ import annotations

import json
import math
import re
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

import click

from market.errors import GpumarketError

_SUFFIXES = {"k": 1e3, "m": 1e6, "b": 1e9, "g": 1e9, "t": 1e12}
_NUMBER_RE = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?)\s*([kmbgt]?)\s*$", re.I)


class _Number(click.ParamType):
    """A finite number, optionally with a k/M/B/T suffix (175B = 175e9)."""

    name = "number"

    def __init__(self, integer: bool = False):
        self.integer = integer

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None):
        if isinstance(value, (int, float)):
            number = float(value)
        else:
            match = _NUMBER_RE.match(str(value))
            if not match:
                self.fail(f"{value!r} is not a finite number (examples: 2.5, 3e23, 175B)",
                          param, ctx)
            number = float(match.group(1)) * _SUFFIXES.get(match.group(2).lower(), 1.0)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        if self.integer:
            if number != int(number):
                self.fail(f"{value!r} is not a whole number", param, ctx)
            return int(number)
        return number


NUMBER = _Number()
INTEGER = _Number(integer=True)


class _Cli(click.Group):
    """Click group that reports usage and user errors as one line with exit code 2."""

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True, **extra: Any):
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.exceptions.Exit as exc:
            sys.exit(exc.exit_code)
        except click.exceptions.NoArgsIsHelpError as exc:
            click.echo(exc.ctx.get_help())
            sys.exit(0)
        except click.Abort:
            click.echo("gpumarket: interrupted", err=True)
            sys.exit(130)
        except click.ClickException as exc:
            click.echo(f"gpumarket: error: {exc.format_message()}", err=True)
            sys.exit(2)
        except GpumarketError as exc:
            for line in str(exc).splitlines() or [type(exc).__name__]:
                click.echo(f"gpumarket: error: {line}", err=True)
            sys.exit(2)
        sys.exit(rv if isinstance(rv, int) else 0)


def _version() -> str:
    from market import __version__
    return __version__


@click.group(cls=_Cli, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(_version(), prog_name="gpumarket")
def cli() -> None:
    """gpumarket: an agent-based model of the AI-compute market, with a deterministic cost core."""


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="gpumarket")


# ------------------------------------------------------------------------- formatting ---

def _parse_dates(dates: str | None) -> list[str] | None:
    """`--dates` as a list of YYYY-MM months (None when not given); a bad month is a usage
    error naming the option."""
    from market.timeline import parse_month

    if not dates:
        return None
    wanted = [d.strip() for d in dates.split(",")]
    for d in wanted:
        try:
            parse_month(d)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="'--dates'") from None
    return wanted


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def _emit_json(payload: Any) -> None:
    click.echo(json.dumps(_json_safe(payload), indent=2, allow_nan=False))


def _usd(x: float | None) -> str:
    if x is None:
        return "n/a"
    for scale, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M")):
        if abs(x) >= scale:
            return f"${x / scale:,.3g}{suffix}" if abs(x) < 100 * scale else f"${x / scale:,.0f}{suffix}"
    return f"${x:,.0f}" if abs(x) >= 100 else f"${x:,.2f}"


def _num(x: float | None, digits: int = 3) -> str:
    if x is None:
        return "n/a"
    if x != 0 and (abs(x) >= 1e7 or abs(x) < 1e-2):
        return f"{x:.{digits}g}"
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:,.{max(digits - 1, 1)}f}"


def _rows(title: str, rows: list[tuple[str, str]], notes: list[str] | None = None) -> None:
    width = max(len(label) for label, _ in rows)
    click.echo(title)
    for label, value in rows:
        click.echo(f"  {label:<{width}}  {value}")
    for note in notes or []:
        click.echo(f"Note: {note}")


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
    table = [(r["id"], r["vendor"], r["launch"], _num(r["dense_tflops_bf16"]), f"{r['tpp']:,.0f}",
              _num(r["performance_density_tpp_per_mm2"]), f"{r['h100e']:.2f}",
              f"{r['memory_gb']:,.0f}", f"{r['memory_bandwidth_gbps']:,.0f}",
              f"{r['interconnect_gbps']:,.0f}", f"{r['tdp_w']:,.0f}",
              "n/a" if r["unit_price_usd"] is None else f"{r['unit_price_usd']:,.0f}",
              *(r["controls"]["by_group"][g]["status"] for g in groups))
             for r in records]
    widths = [max(len(str(row[i])) for row in [header, *table]) for i in range(len(header))]
    for row in [header, *table]:
        click.echo("  ".join(str(v).ljust(w) if i < 3 else str(v).rjust(w)
                             for i, (v, w) in enumerate(zip(row, widths))))
    click.echo("TPP = max over precisions of dense TOPS x bit length; H100e = dense BF16 / 989.4 "
               "TFLOP/s. Sources: gpumarket chips --json.")
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
    }


# ------------------------------------------------------------------------------- cost ---

@cli.group()
def cost() -> None:
    """Deterministic cost core: training, inference and cluster economics."""


def _common_energy_options(fn: Callable) -> Callable:
    fn = click.option("--pue", type=NUMBER, default=None,
                      help="Power usage effectiveness [-] (default 1.1 hyperscaler, 1.25 other).")(fn)
    fn = click.option("--electricity-usd-per-kwh", type=NUMBER, default=0.0806, show_default=True,
                      help="Electricity price [USD/kWh] (US industrial average 2023, EIA).")(fn)
    return fn


@cost.command("training")
@click.option("--model", help="A reference training run (gpt-3, palm, gpt-4, llama-3.1-405b, "
                              "deepseek-v3).")
@click.option("--flop", type=NUMBER, help="Training compute [FLOP], e.g. 3.14e23.")
@click.option("--params", type=NUMBER, help="Parameters N (with --tokens: C = 6ND), e.g. 70B.")
@click.option("--tokens", type=NUMBER, help="Training tokens D, e.g. 15T.")
@click.option("--chip", help="Chip id from `gpumarket chips` (default: the run's, else h100-sxm).")
@click.option("--mfu", type=NUMBER, help="Model FLOP utilization in (0, 1] (default 0.375, "
                                         "Epoch AI's median).")
@click.option("--gpus", type=INTEGER, help="Cluster size [GPUs] (default: the run's, else 1,024).")
@click.option("--price-usd-per-hour", type=NUMBER, help="Rental price [USD per GPU-hour].")
@_common_energy_options
@click.option("--grid-kg-co2-per-kwh", type=NUMBER, default=0.367, show_default=True,
              help="Grid carbon intensity [kg CO2/kWh] (US average 2023, EIA).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (units in the key names).")
def cost_training(as_json: bool, **kwargs: Any) -> None:
    """Compute, GPU time, cost, energy and CO2 of a training run."""
    from market.estimates import estimate_training

    r = estimate_training(**kwargs)
    if as_json:
        _emit_json(r)
        return
    title = (f"{r['model_name'] or 'Training run'} on {r['chip_name']} x {r['gpus']:,}")
    eff = ("measured at scale" if r["scaling_efficiency"] is None
           else f"scaling efficiency {r['scaling_efficiency']:.0%} at {r['gpus']:,} GPUs")
    cloud = (_usd(r["cloud_cost_usd"]) + f" at ${r['price_usd_per_gpu_hour']:.2f}/GPU-h"
             if r["cloud_cost_usd"] is not None else "n/a (pass --price-usd-per-hour)")
    amort = ("n/a (chip has no published price)" if r["amortized_cost_usd"] is None else
             f"{_usd(r['amortized_cost_usd'])} (hardware {_usd(r['amortized_hardware_usd'])}, "
             f"energy {_usd(r['energy_cost_usd'])})")
    rows = [
        ("training compute", f"{r['training_flop']:.3g} FLOP"),
        ("", f"= {r['pflop_s_days']:,.0f} PFLOP/s-days (a unit of work, not GPU time)"),
        ("GPU-days at 100% utilization", f"{r['gpu_days_at_full_utilization']:,.0f} "
                                         f"{r['chip'].upper()}-days"),
        ("", f"(= {r['a100_days_at_full_utilization']:,.0f} A100-days "
             f"= {r['h100_days_at_full_utilization']:,.0f} H100-days)"),
        ("GPU-hours held", f"{_num(r['gpu_hours'])} GPU-h ({r['basis']}; MFU {r['mfu']:.1%}, "
                           f"{eff})"),
        ("wall-clock", f"{r['wall_clock_days']:,.1f} days on {r['gpus']:,} GPUs"),
        ("cloud rental cost", cloud),
        ("amortized hardware + energy", amort),
        ("cluster acquisition cost", _usd(r["acquisition_cost_usd"])),
        ("energy", f"{r['energy_mwh']:,.0f} MWh at PUE {r['pue']:.2f}"),
        ("CO2", f"{r['co2_t']:,.0f} t at {r['grid_kg_co2_per_kwh']} kg/kWh"),
    ]
    _rows(title, rows, [r["note"]] if r["note"] else None)


@cost.command("inference")
@click.option("--params", type=NUMBER, required=True, help="Model parameters N, e.g. 175B.")
@click.option("--requests-per-day", type=NUMBER, help="Requests per day.")
@click.option("--tokens-per-request", type=NUMBER, help="Tokens generated per request.")
@click.option("--tokens-per-day", type=NUMBER, help="Tokens per day (instead of requests x tokens).")
@click.option("--chip", default="h100-sxm", show_default=True, help="Chip id.")
@click.option("--utilization", type=NUMBER, default=0.3, show_default=True,
              help="Achieved fraction of dense peak while serving, in (0, 1].")
@click.option("--peak-factor", type=NUMBER, default=2.0, show_default=True,
              help="Peak over average load [-] (2-3 is typical).")
@click.option("--bytes-per-param", type=NUMBER, default=2.0, show_default=True,
              help="Weight precision [bytes/parameter] (2 for BF16, 1 for FP8).")
@click.option("--memory-overhead", "memory_overhead_fraction", type=NUMBER, default=0.0,
              show_default=True, help="KV cache and activations as a fraction of weight memory.")
@click.option("--price-usd-per-hour", type=NUMBER,
              help="Rental price [USD per GPU-hour] (default: owned cost, Epoch method).")
@click.option("--pue", type=NUMBER, default=1.25, show_default=True, help="Power usage effectiveness.")
@click.option("--electricity-usd-per-kwh", type=NUMBER, default=0.0806, show_default=True,
              help="Electricity price [USD/kWh].")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (units in the key names).")
def cost_inference(as_json: bool, **kwargs: Any) -> None:
    """GPUs (compute and memory floors), energy and USD per million tokens to serve a model."""
    from market.estimates import estimate_inference

    r = estimate_inference(**kwargs)
    if as_json:
        _emit_json(r)
        return
    rows = [
        ("tokens per day", _num(r["tokens_per_day"])),
        ("compute per token", f"{r['flop_per_token']:.3g} FLOP (2N)"),
        ("compute per day", f"{r['flop_per_day']:.3g} FLOP = {r['flop_per_s'] / 1e15:,.1f} PFLOP/s"),
        ("GPUs at 100% utilization", f"{r['gpus_at_full_utilization']:,.1f}"),
        (f"compute floor at {r['utilization']:.0%}", f"{r['gpus_compute_floor']:,} GPUs"),
        ("memory floor (one replica)", f"{r['gpus_memory_floor']:,} GPUs"),
        (f"GPUs needed (peak x{r['peak_factor']:g})", f"{r['gpus_needed']:,}"),
        ("power", f"{r['power_mw']:,.2f} MW"),
        ("energy", f"{r['energy_mwh_per_day']:,.1f} MWh/day"),
        ("price per GPU-hour", ("n/a" if r["price_usd_per_gpu_hour"] is None
                                else f"${r['price_usd_per_gpu_hour']:.2f}") + f" ({r['price_basis']})"),
        ("cost per day", _usd(r["usd_per_day"])),
        ("cost per million tokens", "n/a" if r["usd_per_million_tokens"] is None
         else f"${r['usd_per_million_tokens']:.3f}"),
    ]
    _rows(f"Serving {r['params']:.3g} parameters on {r['chip_name']}", rows)


@cost.command("cluster")
@click.option("--gpus", type=INTEGER, required=True, help="Accelerators in the cluster.")
@click.option("--chip", default="h100-sxm", show_default=True, help="Chip id.")
@click.option("--pue", type=NUMBER, default=1.25, show_default=True, help="Power usage effectiveness.")
@click.option("--electricity-usd-per-kwh", type=NUMBER, default=0.0806, show_default=True,
              help="Electricity price [USD/kWh].")
@click.option("--staff", type=INTEGER, default=0, show_default=True, help="Operations headcount.")
@click.option("--staff-cost-usd-per-year", type=NUMBER, default=250_000, show_default=True,
              help="Loaded cost per staff member [USD/yr].")
@click.option("--years", type=INTEGER, default=5, show_default=True,
              help="TCO horizon [years] (hyperscalers depreciate servers over 5-6).")
@click.option("--rental-usd-per-hour", type=NUMBER,
              help="Rental price to compare against [USD per GPU-hour], for the breakeven.")
@click.option("--utilization", type=NUMBER, default=0.7, show_default=True,
              help="Fraction of hours the owned cluster does useful work, in (0, 1].")
@click.option("--facility-usd-per-mw", type=NUMBER, default=10e6, show_default=True,
              help="Datacenter build cost per MW of facility power (0 for colocation).")
@click.option("--discount-rate", type=NUMBER, default=0.0, show_default=True,
              help="Annual discount rate for opex in the TCO.")
@click.option("--checkpoint-write-minutes", type=NUMBER, default=1.0, show_default=True,
              help="Time to write one checkpoint [min].")
@click.option("--restart-minutes", type=NUMBER, default=10.0, show_default=True,
              help="Time to restart a job after a failure [min].")
@click.option("--grid-kg-co2-per-kwh", type=NUMBER, default=0.367, show_default=True,
              help="Grid carbon intensity [kg CO2/kWh].")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (units in the key names).")
def cost_cluster(as_json: bool, **kwargs: Any) -> None:
    """Capex, opex, TCO, power, cloud-vs-build breakeven and reliability of an owned cluster."""
    from market.estimates import estimate_cluster

    r = estimate_cluster(**kwargs)
    if as_json:
        _emit_json(r)
        return
    if r["rental_usd_per_gpu_hour"] is None:
        breakeven = "n/a (pass --rental-usd-per-hour)"
    elif r["breakeven_months"] is None:
        breakeven = f"never: renting at ${r['rental_usd_per_gpu_hour']:.2f}/h costs less than opex"
    else:
        breakeven = (f"{r['breakeven_months']:,.1f} months vs renting at "
                     f"${r['rental_usd_per_gpu_hour']:.2f}/GPU-h")
    rows = [
        ("capex", f"{_usd(r['capex_usd'])} = accelerators {_usd(r['capex_accelerators_usd'])} + "
                  f"servers {_usd(r['capex_servers_usd'])} + interconnect "
                  f"{_usd(r['capex_interconnect_usd'])} + facility {_usd(r['capex_facility_usd'])}"),
        ("opex", f"{_usd(r['opex_usd_per_year'])}/yr = energy {_usd(r['opex_energy_usd_per_year'])}"
                 f" + staff {_usd(r['opex_staff_usd_per_year'])}"),
        (f"TCO over {r['years']} years", _usd(r["tco_usd"])),
        ("power", f"{r['power_mw']:,.2f} MW peak, {r['average_power_mw']:,.2f} MW average"),
        ("energy", f"{r['energy_mwh_per_year']:,.0f} MWh/yr, {r['co2_t_per_year']:,.0f} t CO2/yr"),
        (f"owned cost at {r['utilization']:.0%} use", f"${r['owned_usd_per_gpu_hour']:.2f} per "
                                                      "useful GPU-hour (Epoch method)"),
        ("cloud-vs-build breakeven", breakeven),
        ("job MTBF", f"{r['job_mtbf_hours']:,.2f} h ({r['interruptions_per_day']:,.1f} "
                     "interruptions/day)"),
        ("checkpoint interval", f"{r['checkpoint_interval_minutes']:,.1f} min (Young/Daly)"),
        ("goodput", f"{r['goodput_fraction']:.1%}"),
    ]
    _rows(f"Cluster of {r['gpus']:,} x {r['chip_name']}", rows)


# -------------------------------------------------------------------------- scenarios ---

@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def scenarios(as_json: bool) -> None:
    """List the built-in scenarios with a one-line description each."""
    from scenarios.loader import describe_builtins

    rows = describe_builtins()
    if as_json:
        _emit_json([{"name": n, "description": d} for n, d in rows])
        return
    width = max(len(n) for n, _ in rows)
    for name, description in rows:
        click.echo(f"{name:<{width}}  {description}")


@cli.command()
@click.argument("scenario")
@click.option("--set", "overrides", multiple=True, metavar="PATH=VALUE",
              help="Override a field, e.g. --set market.mfu=0.4 (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def validate(scenario: str, overrides: tuple[str, ...], as_json: bool) -> None:
    """Check a scenario file (or built-in name) without running it."""
    from scenarios.loader import load_scenario

    loaded = load_scenario(scenario, overrides)
    s = loaded.scenario
    info = {"scenario": s.name, "source": loaded.source, "start": s.start, "end": s.end,
            "months": s.months, "nations": len(s.nations), "vendors": len(s.vendors),
            "clouds": len(s.clouds), "named_labs": len(s.labs),
            "long_tail_labs": s.long_tail.count, "events": len(s.events),
            "uncertain": len(s.uncertain), "sha256": loaded.sha256}
    if as_json:
        _emit_json(dict(info, valid=True))
        return
    click.echo(f"ok: {s.name} ({loaded.source}): {s.start} to {s.end}, {s.months} months, "
               f"{len(s.clouds)} clouds, {len(s.labs)} named labs + {s.long_tail.count} "
               f"long-tail labs, {len(s.events)} events, {len(s.uncertain)} uncertain inputs")


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


# -------------------------------------------------------------------------------- run ---

@cli.command()
@click.argument("scenario")
@click.option("--seed", type=INTEGER, default=0, show_default=True, help="Random seed.")
@click.option("--months", type=INTEGER, help="Run only the first M months.")
@click.option("--set", "overrides", multiple=True, metavar="PATH=VALUE",
              help="Override a scenario field, e.g. --set long_tail.count=1000 (repeatable).")
@click.option("--out", type=click.Path(path_type=Path), help="Directory to write the tables to.")
@click.option("--format", "fmt", type=click.Choice(["parquet", "csv"]), default="parquet",
              show_default=True, help="Table file format.")
@click.option("--dates", help="Comma-separated months for the summary (default 2023-06,2024-12 "
                              "and the last month).")
@click.option("--quiet", is_flag=True, help="Print nothing but errors.")
@click.option("--force", is_flag=True, help="Replace an existing --out directory.")
def run(scenario: str, seed: int, months: int | None, overrides: tuple[str, ...],
        out: Path | None, fmt: str, dates: str | None, quiet: bool, force: bool) -> None:
    """Run a scenario: write its tables (with --out) and print key outcomes."""
    import time

    from market import __version__
    from market.outputs import check_out_dir, run_tables, write_run
    from market.summary import format_outcomes, key_outcomes, summary_dates
    from scenarios.loader import load_scenario

    loaded = load_scenario(scenario, overrides)
    s = loaded.scenario
    if months is not None and not 1 <= months <= s.months:
        raise click.BadParameter(f"must be between 1 and {s.months} (the scenario's length), "
                                 f"got {months}", param_hint="'--months'")
    if seed < 0:
        raise click.BadParameter(f"must be >= 0, got {seed}", param_hint="'--seed'")
    wanted = _parse_dates(dates)
    if out is not None:
        check_out_dir(out, force)
    steps = months or s.months
    show_progress = not quiet and sys.stderr.isatty()
    started = time.perf_counter()
    if show_progress:
        with click.progressbar(length=steps, label=f"{s.name} seed {seed}", file=sys.stderr,
                               show_pos=True) as bar:
            frames = run_tables(s, seed, steps, on_step=lambda _: bar.update(1))
    else:
        frames = run_tables(s, seed, steps)
    elapsed = time.perf_counter() - started
    if out is not None:
        resolved = loaded.scenario.model_dump(mode="json", exclude_none=True)
        resolved.pop("extends", None)   # fully resolved: loading it must not merge again
        manifest = {"gpumarket_version": __version__, "scenario": s.name,
                    "scenario_source": loaded.source, "scenario_sha256": loaded.sha256,
                    "seed": seed, "start": s.start,
                    "end": frames["price_index"]["date"].max().strftime("%Y-%m"),
                    "months": steps, "overrides": list(overrides)}
        write_run(out, frames, resolved, manifest, fmt, force)
    if quiet:
        return
    shown = summary_dates(frames, wanted)
    click.echo(f"{s.name}, seed {seed}: {steps} months in {elapsed:.2f} s")
    click.echo(format_outcomes(key_outcomes(frames, shown)))
    if out is not None:
        click.echo(f"wrote {', '.join(f'{t}.{fmt}' for t in frames)}, scenario.toml, "
                   f"manifest.json to {out}")
    else:
        click.echo("(pass --out DIR to write the tables)")


# ---------------------------------------------------------------------------- compare ---

@cli.command()
@click.argument("scenarios", nargs=-1, required=True)
@click.option("--seed", type=INTEGER, default=0, show_default=True,
              help="One seed for every scenario (common random numbers).")
@click.option("--dates", help="Comma-separated months (default 2023-06,2024-12 and the last "
                              "month all scenarios share).")
@click.option("--set", "overrides", multiple=True, metavar="PATH=VALUE",
              help="Override a field in every scenario (repeatable).")
@click.option("--out", type=click.Path(path_type=Path),
              help="Directory for each run's tables, comparison.csv and trajectories.png.")
@click.option("--format", "fmt", type=click.Choice(["parquet", "csv"]), default="parquet",
              show_default=True, help="Table file format.")
@click.option("--force", is_flag=True, help="Replace an existing --out directory.")
def compare(scenarios: tuple[str, ...], seed: int, dates: str | None,
            overrides: tuple[str, ...], out: Path | None, fmt: str, force: bool) -> None:
    """Run scenarios with common random numbers and compare key outcomes side by side."""
    from market import __version__
    from market.outputs import atomic_directory, check_out_dir, fill_run_dir, run_tables
    from market.summary import DEFAULT_DATES, comparison, format_comparison
    from market.timeline import format_month, parse_month
    from scenarios.loader import load_scenario

    if len(scenarios) < 2:
        raise click.BadParameter("give at least two scenarios", param_hint="SCENARIOS")
    if len(set(scenarios)) != len(scenarios):
        raise click.BadParameter("a scenario is named twice", param_hint="SCENARIOS")
    if seed < 0:
        raise click.BadParameter(f"must be >= 0, got {seed}", param_hint="'--seed'")
    loaded = [load_scenario(name, overrides) for name in scenarios]   # all checked first
    wanted = _parse_dates(dates)
    first = max(parse_month(ls.scenario.start) for ls in loaded)
    last = min(parse_month(ls.scenario.end) for ls in loaded)
    if last < first:
        raise click.BadParameter("the scenarios share no month", param_hint="SCENARIOS")
    shown = wanted or [*DEFAULT_DATES, format_month(last)]
    shown = sorted({d for d in shown if first <= parse_month(d) <= last}, key=parse_month)
    if not shown:
        raise click.BadParameter(f"no date falls in the months all scenarios share "
                                 f"({format_month(first)} to {format_month(last)})",
                                 param_hint="'--dates'")
    if out is not None:
        check_out_dir(out, force)
    names = [ls.scenario.name for ls in loaded]
    frames = {}
    for ls in loaded:
        if sys.stderr.isatty():
            click.echo(f"running {ls.scenario.name} (seed {seed})...", err=True)
        frames[ls.scenario.name] = run_tables(ls.scenario, seed)
    table = comparison(frames, shown)
    click.echo(f"seed {seed} (common random numbers) for: {', '.join(names)}")
    click.echo(format_comparison(table, names))
    if out is None:
        click.echo("(pass --out DIR to write the tables and a plot)")
        return
    import pandas as pd

    from analysis.plots import plot_trajectories, trajectories

    with atomic_directory(out, force) as tmp:
        for ls in loaded:
            s = ls.scenario
            resolved = s.model_dump(mode="json", exclude_none=True)
            resolved.pop("extends", None)
            fill_run_dir(tmp / s.name, frames[s.name], resolved, {
                "gpumarket_version": __version__, "scenario": s.name,
                "scenario_source": ls.source, "scenario_sha256": ls.sha256, "seed": seed,
                "start": s.start, "end": s.end, "months": s.months,
                "overrides": list(overrides)}, fmt)
        table.rename_axis("outcome").to_csv(tmp / "comparison.csv", float_format="%.10g")
        data = pd.concat([trajectories(frames[n], n) for n in names], ignore_index=True)
        data = data[data["date"] <= pd.Timestamp(format_month(last) + "-01")]
        fig = plot_trajectories(data)
        fig.suptitle(f"{' vs '.join(names)} (seed {seed})")
        fig.savefig(tmp / "trajectories.png", dpi=110)
    click.echo(f"wrote {', '.join(names)} tables, comparison.csv and trajectories.png to {out}")


# ------------------------------------------------------------------------ batches ---

def _batch_options(fn: Callable) -> Callable:
    options = [
        click.option("--seed", type=INTEGER, default=0, show_default=True,
                     help="Root seed: run k gets SeedSequence(seed).spawn(n)[k]."),
        click.option("--workers", type=INTEGER, help="Local Dask worker processes (default: "
                     "one per core); 0 runs in this process, one run after another."),
        click.option("--scheduler", help="Address of an existing Dask scheduler (default: "
                     "$DASK_SCHEDULER_ADDRESS, else a local cluster)."),
        click.option("--months", type=INTEGER, help="Run only the first M months."),
        click.option("--set", "overrides", multiple=True, metavar="PATH=VALUE",
                     help="Override a scenario field for every run (repeatable)."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _check_batch_args(s, months: int | None, seed: int, workers: int | None,
                      scheduler: str | None) -> None:
    if months is not None and not 1 <= months <= s.months:
        raise click.BadParameter(f"must be between 1 and {s.months}, got {months}",
                                 param_hint="'--months'")
    if seed < 0:
        raise click.BadParameter(f"must be >= 0, got {seed}", param_hint="'--seed'")
    if workers is not None and workers < 0:
        raise click.BadParameter(f"must be >= 0, got {workers}", param_hint="'--workers'")
    if workers is not None and scheduler:
        raise click.BadParameter("give --workers or --scheduler, not both",
                                 param_hint="'--scheduler'")


def _execute_batch(kind: str, loaded, design, months: int | None, workers: int | None,
                   scheduler: str | None, out: Path, extra: dict | None = None):
    """Check, start (or resume) and run a batch; returns (batch, manifest)."""
    import json as _json
    import time

    import pandas as pd

    from analysis.runner import Batch, Task, make_executor, run_batch
    from market import __version__

    s = loaded.scenario
    identity = {"kind": kind, "gpumarket_version": __version__, "scenario": s.name,
                "scenario_source": loaded.source, "scenario_sha256": loaded.sha256,
                "root_seed": design.root_seed, "months": months or s.months,
                "design": design.describe(),
                "uncertain": {p: d.model_dump(exclude_none=True) for p, d in s.uncertain.items()},
                "created": time.strftime("%Y-%m-%dT%H:%M:%S"), **(extra or {})}
    batch = Batch(out)
    batch.check_compatible(identity)
    if not out.parent.exists():
        raise GpumarketError(f"{out.parent}: directory does not exist")
    executor = make_executor(workers, scheduler)       # fails before anything is written
    try:
        rows = pd.DataFrame([{"run_id": r.run_id, "seed": r.seed,
                              **{f"param.{k}": (_json.dumps(v) if isinstance(v, (dict, list))
                                                else v) for k, v in r.params.items()}}
                             for r in design.runs])
        batch.start(identity, rows)
        scenario_json = _json.dumps(s.model_dump(mode="json"))
        where = str(batch.dir.resolve()) if executor.shares_filesystem else None
        tasks = [Task(r.run_id, r.seed, r.params, months, scenario_json, where)
                 for r in design.runs]
        todo = len(tasks) - len(batch.finished() & {t.run_id for t in tasks})
        started = time.perf_counter()
        if sys.stderr.isatty():
            import shutil

            from tqdm import tqdm
            size = shutil.get_terminal_size((100, 20))        # a bare pty reports 0 x 0
            with tqdm(total=len(tasks), initial=len(tasks) - todo, unit="run",
                      ncols=size.columns or 100, nrows=size.lines or 20,
                      desc=f"{s.name} ({executor.name}, {executor.workers} workers)",
                      file=sys.stderr) as bar:
                run_batch(batch, tasks, executor, bar.update)
        else:
            run_batch(batch, tasks, executor)
        manifest = batch.finish(len(tasks), time.perf_counter() - started,
                                f"{executor.name} x{executor.workers}")
    finally:
        executor.close()
    return batch, manifest, todo, time.perf_counter() - started


def _parse_levers(levers: tuple[str, ...], loaded) -> dict | None:
    if not levers:
        return None
    import copy

    from pydantic import ValidationError

    from scenarios.loader import _parse_value, set_path
    from scenarios.schema import Scenario

    out = {}
    for text in levers:
        path, sep, raw = text.partition("=")
        values = _parse_value(raw.strip()) if sep else None
        if not sep or not isinstance(values, list) or not values:
            raise click.BadParameter(f"{text!r}: expected PATH=[V1, V2, ...]",
                                     param_hint="'--lever'")
        for value in values:
            probe = copy.deepcopy(loaded.scenario.model_dump(mode="json"))
            try:
                set_path(probe, path.strip(), value)
                Scenario.model_validate(probe)
            except (GpumarketError, ValidationError) as exc:
                msg = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else str(exc)
                raise click.BadParameter(f"{path.strip()} = {value!r}: {msg}",
                                         param_hint="'--lever'") from None
        out[path.strip()] = values
    return out


def _finish_message(batch, manifest: dict) -> None:
    failed = manifest["failed"]
    click.echo(f"{manifest['completed']} of {manifest['expected']} runs complete, {failed} "
               f"failed; results in {batch.dir}")
    if failed or manifest["completed"] + failed != manifest["expected"]:
        click.echo(f"gpumarket: {failed} runs failed (errors in {batch.dir / 'runs.jsonl'} and "
                   f"batch.json); rerun the same command to retry them", err=True)
        raise SystemExit(1)


@cli.command()
@click.argument("scenario")
@click.option("--runs", type=INTEGER, required=True, help="Uncertainty samples (each crossed "
              "with every lever option).")
@click.option("--design", "method", type=click.Choice(["mc", "lhs"]), default="lhs",
              show_default=True, help="Monte Carlo or Latin hypercube sampling.")
@_batch_options
@click.option("--lever", "levers", multiple=True, metavar="PATH=[V1, V2]",
              help="Policy options to cross with the samples (default: the scenario's "
                   "[levers]); repeatable.")
@click.option("--out", type=click.Path(path_type=Path), help="Batch directory (default "
              "mc-SCENARIO); rerunning the same command there resumes the batch.")
@click.option("--dates", help="Months for the summary (default 2024-12, 2026-12 and the last).")
def montecarlo(scenario: str, runs: int, method: str, seed: int, workers: int | None,
               scheduler: str | None, months: int | None, overrides: tuple[str, ...],
               levers: tuple[str, ...], out: Path | None, dates: str | None) -> None:
    """Run a seeded ensemble over the scenario's [uncertain] inputs, on Dask or in-process."""
    from analysis.design import make_design
    from analysis.outcomes import DEFAULT_OUTCOMES, outcome_series, quantile_summary, unit_of
    from market.timeline import format_month, parse_month
    from scenarios.loader import load_scenario

    if runs < 1:
        raise click.BadParameter(f"must be at least 1, got {runs}", param_hint="'--runs'")
    loaded = load_scenario(scenario, overrides)
    s = loaded.scenario
    _check_batch_args(s, months, seed, workers, scheduler)
    wanted = _parse_dates(dates)
    design = make_design(s, runs, method, seed, _parse_levers(levers, loaded))
    out = out or Path(f"mc-{s.name}")
    batch, manifest, ran, elapsed = _execute_batch("montecarlo", loaded, design, months,
                                                   workers, scheduler, out)
    if ran:
        click.echo(f"{ran} runs in {elapsed:.1f} s ({ran / max(elapsed, 1e-9):.2f} runs/s)")
    last = format_month(parse_month(s.start) + (months or s.months) - 1)
    shown = sorted({d for d in (wanted or ["2024-12", "2026-12", last])
                    if parse_month(s.start) <= parse_month(d) <= parse_month(last)},
                   key=parse_month)
    if manifest["completed"] and shown:
        from analysis.runner import read_tables
        click.echo(f"median [5%, 95%] across {manifest['completed']} runs:")
        label_w = max(len(n) for n in DEFAULT_OUTCOMES) + 2
        click.echo(" " * label_w + "".join(f"{d:>24}" for d in shown))
        frames = read_tables(batch.dir, ["price_index", "compute"], dates=shown)
        for name in DEFAULT_OUTCOMES:
            q = quantile_summary(outcome_series(batch.dir, name, frames=frames), shown)
            scale = 100.0 if name.startswith("share") else 1.0
            cells = [f"{q.loc[d, 'median'] * scale:.2f} [{q.loc[d, 'p5'] * scale:.2f}, "
                     f"{q.loc[d, 'p95'] * scale:.2f}]" if d in q.index else "" for d in shown]
            unit = "%" if name.startswith("share") else unit_of(name)
            click.echo(f"{name:<{label_w}}" + "".join(f"{c:>24}" for c in cells) + f"  {unit}")
    _finish_message(batch, manifest)


@cli.command()
@click.argument("scenario")
@click.option("--method", type=click.Choice(["sobol", "morris"]), default="sobol",
              show_default=True, help="Sobol' indices (Saltelli design) or Morris screening.")
@click.option("--samples", type=INTEGER, default=16, show_default=True,
              help="Base samples: Sobol' runs N x (D + 2) (N rounded up to a power of 2), "
                   "Morris N x (D + 1) trajectories' points.")
@click.option("--outcome", default="price:US:neocloud", show_default=True,
              help="price:<region>:<tier>, share:<nation>, installed:<nation>, "
                   "largest-run:<nation> or diverted:<nation>.")
@click.option("--date", "month", help="Month of the outcome (default: the last month).")
@_batch_options
@click.option("--out", type=click.Path(path_type=Path),
              help="Batch directory (default sa-SCENARIO-METHOD).")
def sensitivity(scenario: str, method: str, samples: int, outcome: str, month: str | None,
                seed: int, workers: int | None, scheduler: str | None, months: int | None,
                overrides: tuple[str, ...], out: Path | None) -> None:
    """Global sensitivity of one outcome to the scenario's [uncertain] inputs (SALib)."""
    import numpy as np

    from analysis import sensitivity as sa
    from analysis.design import design_from_rows
    from analysis.outcomes import outcome_series, parse_outcome
    from analysis.plots import sensitivity_bars
    from market.timeline import format_month, parse_month
    from scenarios.loader import load_scenario

    if samples < 1:
        raise click.BadParameter(f"must be at least 1, got {samples}", param_hint="'--samples'")
    parse_outcome(outcome)
    loaded = load_scenario(scenario, overrides)
    s = loaded.scenario
    _check_batch_args(s, months, seed, workers, scheduler)
    last = parse_month(s.start) + (months or s.months) - 1
    month = month or format_month(last)
    try:
        if not parse_month(s.start) <= parse_month(month) <= last:
            raise ValueError(f"{month} is outside the run ({s.start} to {format_month(last)})")
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="'--date'") from None
    problem, skipped = sa.salib_problem(s.uncertain)
    X = sa.sample(problem, method, samples, seed)
    design = design_from_rows(method, seed, problem["names"], X)
    out = out or Path(f"sa-{s.name}-{method}")
    batch, manifest, ran, elapsed = _execute_batch(
        "sensitivity", loaded, design, months, workers, scheduler, out,
        {"sensitivity_design": {"method": method, "samples": samples, "problem": problem,
                                "skipped_choice_inputs": skipped}})
    if ran:
        click.echo(f"{ran} runs in {elapsed:.1f} s")
    if manifest["completed"] != manifest["expected"]:
        _finish_message(batch, manifest)
    series = outcome_series(batch.dir, outcome, dates=[month])
    by_run = series.set_index("run_id")["value"].reindex(range(len(design.runs)))
    indices = sa.analyze(problem, method, X, by_run.to_numpy(dtype=float), seed)
    indices.to_csv(batch.dir / "sensitivity.csv", float_format="%.6g")
    title = f"{method} indices of {outcome} at {month}"
    sensitivity_bars(indices, title=title).savefig(batch.dir / "sensitivity.png", dpi=110)
    from analysis.runner import _write_json
    meta = batch.manifest()
    meta["sensitivity"] = {"method": method, "outcome": outcome, "date": month,
                           "skipped_choice_inputs": skipped}
    _write_json(batch.manifest_path, meta)
    click.echo(f"{title} ({len(design.runs)} runs, common seed), most influential first:")
    click.echo(indices.to_string(float_format=lambda v: f"{v:.3f}"))
    if skipped:
        click.echo(f"not analysed (choice inputs): {', '.join(skipped)}")
    click.echo(f"wrote sensitivity.csv and sensitivity.png to {batch.dir}")
    if not np.isfinite(by_run.to_numpy(dtype=float)).all():
        raise SystemExit(1)


@cli.command()
@click.argument("directory", type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), help="HTML file (default "
              "DIRECTORY/report.html).")
def report(directory: Path, out: Path | None) -> None:
    """Write a self-contained HTML report of a batch: fan charts, threshold probabilities,
    sensitivity indices, provenance."""
    from analysis.report import write_report

    if not directory.is_dir():
        raise GpumarketError(f"{directory}: no such batch directory")
    path = write_report(directory, out)
    click.echo(f"wrote {path}")


# ------------------------------------------------------------------------------ viz ---

@cli.command()
@click.argument("scenario", required=False, default="baseline")
@click.option("--port", type=INTEGER, default=8765, show_default=True, help="TCP port.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind (loopback unless told otherwise).")
@click.option("--no-browser", is_flag=True, help="Do not open a browser.")
@click.option("--ensemble", type=click.Path(path_type=Path),
              help="A Monte Carlo batch directory: its bands are drawn under the live run.")
def viz(scenario: str, port: int, host: str, no_browser: bool, ensemble: Path | None) -> None:
    """Serve the web app (Mesa SolaraViz): watch the market, move policy levers."""
    import os
    import signal
    import socket
    import subprocess
    import time
    import urllib.request
    import webbrowser

    from analysis.assets import DEFAULT_CACHE
    from market.processes import stop_process_group
    from scenarios.loader import load_scenario

    load_scenario(scenario)                                 # unknown scenario: exit 2
    if ensemble is not None:
        from analysis.runner import read_table, run_files
        problem = None
        if not (ensemble / "batch.json").is_file() or not run_files(ensemble):
            problem = "needs batch.json and runs/run-*.parquet"
        else:
            try:
                read_table(ensemble, "price_index", columns=["date"])
            except Exception as exc:   # any unreadable file: one line, no server
                problem = f"{type(exc).__name__}: {exc}"
        if problem:
            raise GpumarketError(f"{ensemble}: not a readable Monte Carlo batch ({problem})")
    if not 0 < port < 65536:
        raise click.BadParameter(f"must be between 1 and 65535, got {port}",
                                 param_hint="'--port'")
    with socket.socket() as probe:
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise GpumarketError(f"port {port} on {host} is not available ({exc.strerror}); "
                                 "choose another with --port") from None
    app = Path(__file__).resolve().parent.parent / "analysis" / "app.py"
    env = dict(os.environ, GPUMARKET_SCENARIO=scenario, SOLARA_TELEMETRY_MIXPANEL_ENABLE="false")
    if ensemble is not None:
        env["GPUMARKET_ENSEMBLE"] = str(ensemble.resolve())
    if "SOLARA_ASSETS_PROXY_CACHE_DIR" not in env and DEFAULT_CACHE.is_dir():
        env["SOLARA_ASSETS_PROXY_CACHE_DIR"] = str(DEFAULT_CACHE)
    url = f"http://{host}:{port}/"
    proc = subprocess.Popen([sys.executable, "-m", "solara", "run", str(app), "--host", host,
                             "--port", str(port), "--production", "--no-open"], env=env,
                            start_new_session=True)
    try:
        click.echo(f"gpumarket viz: serving {scenario} at {url} (Ctrl-C to stop)")
        if not no_browser:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and proc.poll() is None:
                try:
                    urllib.request.urlopen(url, timeout=2).close()
                    webbrowser.open(url)
                    break
                except OSError:
                    time.sleep(0.3)
        proc.wait()
    except KeyboardInterrupt:
        pass
    finally:
        stop_process_group(proc)
    if proc.returncode not in (0, -signal.SIGTERM, None):
        raise SystemExit(proc.returncode)


if __name__ == "__main__":  # pragma: no cover
    main()
