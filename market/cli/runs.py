"""`gpumarket scenarios`, `validate`, `run`, `compare`: single scenario runs."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from market.cli.base import INTEGER, _check_within, _emit_json, _parse_dates, cli


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



# ----------------------------------------------------------------------------- --json ---

def _percent_to_fraction(value: float) -> float:
    return value / 100


def _billions_to_usd(value: float) -> float:
    return value * 1e9


def _same(value: float) -> float:
    return value


#: How a row of `market.summary.key_outcomes` reads in JSON: the label's pattern (its named
#: groups become nested keys), the key (with its unit) and the change from the label's unit.
_JSON_OUTCOMES = (
    (r"price (?P<region>\S+) (?P<tier>\S+) (?P<instrument>\S+) \[USD/H100e-h\]",
     "price_usd_per_h100e_hour", _same),
    (r"share of installed H100e (?P<nation>\S+) \[%\]", "share_of_installed_h100e",
     _percent_to_fraction),
    (r"vendor share, trailing 12 months (?P<vendor>\S+) \[%\]",
     "vendor_share_of_shipped_h100e_trailing_12_months", _percent_to_fraction),
    (r"vendor revenue, trailing 12 months (?P<vendor>\S+) \[USD B\]",
     "vendor_revenue_usd_trailing_12_months", _billions_to_usd),
    (r"largest completed run (?P<nation>\S+) \[FLOP\]", "largest_completed_run_flop", _same),
    (r"chips diverted, trailing 12 months \[H100e\]",
     "chips_diverted_h100e_trailing_12_months", _same),
    (r"chips stockpiled, trailing 12 months \[H100e\]",
     "chips_stockpiled_h100e_trailing_12_months", _same),
    (r"compute China's labs rent abroad, this month \[H100e\]",
     "compute_china_labs_rent_abroad_h100e", _same),
)


def outcomes_json(table) -> dict:
    """Key outcomes (the frame of `key_outcomes`) as nested JSON: key with its unit, then
    region, tier and instrument, nation or vendor, then date -> value (None where the run has none). A row
    no pattern knows keeps its label as the key."""
    import math
    import re

    result: dict = {}
    for label, values in table.iterrows():
        for pattern, key, convert in _JSON_OUTCOMES:
            found = re.match(pattern, str(label))    # a marker may follow
            if found:
                break
        else:
            found, key, convert = None, str(label), _same
        node = result.setdefault(key, {})
        for part in found.groups() if found else ():
            node = node.setdefault(part, {})
        for date, value in values.items():
            value = float(value)
            node[str(date)] = convert(value) if math.isfinite(value) else None
    return result


# -------------------------------------------------------------------------------- run ---

def _tables_with_progress(s, seed: int, steps: int, show: bool):
    from market.outputs import run_tables

    if not show:
        return run_tables(s, seed, steps)
    with click.progressbar(length=steps, label=f"{s.name} seed {seed}", file=sys.stderr,
                           show_pos=True) as bar:
        return run_tables(s, seed, steps, on_step=lambda _: bar.update(1))


def _resolved(s) -> dict:
    """The fully resolved scenario for `scenario.toml`: loading it must not merge again."""
    resolved = s.model_dump(mode="json", exclude_none=True)
    resolved.pop("extends", None)
    return resolved


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
@click.option("--force", is_flag=True, help="Replace an existing --out directory that "
                                             "gpumarket wrote (never any other).")
@click.option("--diagnostics", is_flag=True, help="Also print what is scripted: prices on an "
              "input level or flat for 6+ months, orders cut by their allowance, margins at "
              "bounds.")
@click.option("--json", "as_json", is_flag=True, help="Print the key outcomes as JSON.")
def run(scenario: str, seed: int, months: int | None, overrides: tuple[str, ...],
        out: Path | None, fmt: str, dates: str | None, quiet: bool, force: bool,
        diagnostics: bool, as_json: bool) -> None:
    """Run a scenario: write its tables (with --out) and print key outcomes."""
    import os
    import time
    from contextlib import nullcontext

    from market import __version__
    from market.outputs import OutputClaim, fill_run_dir, write_errors
    from market.summary import format_outcomes, key_outcome_flags, key_outcomes, summary_dates
    from market.timeline import format_month, parse_month
    from scenarios.loader import load_scenario

    loaded = load_scenario(scenario, overrides)
    s = loaded.scenario
    if months is not None and not 1 <= months <= s.months:
        raise click.BadParameter(f"must be between 1 and {s.months} (the scenario's length), "
                                 f"got {months}", param_hint="'--months'")
    if seed < 0:
        raise click.BadParameter(f"must be >= 0, got {seed}", param_hint="'--seed'")
    wanted = _parse_dates(dates)
    steps = months or s.months
    if wanted:          # said before any model time is spent
        _check_within(wanted, parse_month(s.start), parse_month(s.start) + steps - 1,
                      "--dates", "this run")
    show_progress = not quiet and not as_json and sys.stderr.isatty()
    # The claim checks and locks --out before any model time is spent.
    with OutputClaim(out, force) if out is not None else nullcontext() as claim:
        started = time.perf_counter()
        frames = _tables_with_progress(s, seed, steps, show_progress)
        elapsed = time.perf_counter() - started
        end = format_month(parse_month(s.start) + steps - 1)      # also if nothing traded
        if claim is not None:
            manifest = {"gpumarket_version": __version__, "kind": "run", "scenario": s.name,
                        "scenario_source": loaded.source, "scenario_sha256": loaded.sha256,
                        "seed": seed, "start": s.start, "end": end, "months": steps,
                        "overrides": list(overrides)}
            with write_errors(out):
                fill_run_dir(claim.tmp, frames, _resolved(s), manifest, fmt)
            claim.publish()
    shown = summary_dates(frames, wanted)
    outcomes = key_outcomes(frames, shown)
    files = [f"{t}.{fmt}" for t in frames] + ["scenario.toml", "manifest.json"]
    scripted = None
    if diagnostics:
        from analysis.scripted import diagnostics as scripted_diagnostics, format_diagnostics

        scripted = scripted_diagnostics(frames, s)
    if as_json:
        _emit_json({"scenario": s.name, "scenario_source": loaded.source,
                    "scenario_sha256": loaded.sha256, "seed": seed, "start": s.start,
                    "end": end, "months": steps, "dates": shown, "run_seconds": elapsed,
                    "outcomes": outcomes_json(outcomes),
                    "scripted": None if scripted is None else scripted.to_dict("records"),
                    "out": None if out is None else os.path.abspath(out),
                    "files": files if out is not None else []})
        return
    if quiet:
        return
    click.echo(f"{s.name}, seed {seed}: {steps} months in {elapsed:.2f} s")
    click.echo(format_outcomes(outcomes, key_outcome_flags(frames, s, shown)))
    if scripted is not None:
        click.echo(format_diagnostics(scripted, over_runs=False))
    if out is not None:
        click.echo(f"wrote {', '.join(files)} to {out}")
    else:
        click.echo("(pass --out DIR to write the tables)")


# ---------------------------------------------------------------------------- compare ---

def _folders(loaded) -> list[str]:
    """Each scenario's sub-directory of compare's --out: a plain name derived from its `name`
    (never a path); two scenarios that would share one are refused."""
    from market.errors import GpumarketError
    from market.outputs import safe_name

    taken: dict[str, object] = {}
    for ls in loaded:
        folder = safe_name(ls.scenario.name)
        if folder in taken:
            other = taken[folder]
            raise GpumarketError(
                f"scenarios {other.scenario.name!r} ({other.source}) and {ls.scenario.name!r} "
                f"({ls.source}) would both be written to {folder!r}; give each a distinct `name`")
        taken[folder] = ls
    return list(taken)


def _write_comparison(directory: Path, loaded, folders: list[str], frames, table, *,
                      seed: int, shown: list[str], last: int, overrides, fmt: str) -> None:
    """Each run's directory, comparison.csv, trajectories.png and the top-level manifest."""
    import pandas as pd

    from analysis.plots import plot_trajectories, trajectories
    from market import __version__
    from market.outputs import fill_run_dir, write_manifest
    from market.timeline import format_month

    names = [ls.scenario.name for ls in loaded]
    for ls, folder in zip(loaded, folders):
        s = ls.scenario
        fill_run_dir(directory / folder, frames[s.name], _resolved(s), {
            "gpumarket_version": __version__, "kind": "run", "scenario": s.name,
            "scenario_source": ls.source, "scenario_sha256": ls.sha256, "seed": seed,
            "start": s.start, "end": s.end, "months": s.months,
            "overrides": list(overrides)}, fmt)
    table.rename_axis("outcome").to_csv(directory / "comparison.csv", float_format="%.10g")
    data = pd.concat([trajectories(frames[n], n) for n in names], ignore_index=True)
    data = data[data["date"] <= pd.Timestamp(format_month(last) + "-01")]
    fig = plot_trajectories(data)
    fig.suptitle(f"{' vs '.join(names)} (seed {seed})")
    fig.savefig(directory / "trajectories.png", dpi=110)
    write_manifest(directory, {"gpumarket_version": __version__, "kind": "compare",
                               "seed": seed, "dates": shown, "overrides": list(overrides),
                               "scenarios": dict(zip(folders, names))})


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
@click.option("--force", is_flag=True, help="Replace an existing --out directory that "
                                             "gpumarket wrote (never any other).")
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON.")
def compare(scenarios: tuple[str, ...], seed: int, dates: str | None,
            overrides: tuple[str, ...], out: Path | None, fmt: str, force: bool,
            as_json: bool) -> None:
    """Run scenarios with common random numbers and compare key outcomes side by side."""
    import os
    from contextlib import nullcontext

    from market.errors import GpumarketError
    from market.outputs import OutputClaim, run_tables, write_errors
    from market.summary import (DEFAULT_DATES, comparison, comparison_flags, format_comparison,
                                key_outcomes)
    from market.timeline import format_month, parse_month
    from scenarios.loader import load_scenario

    if len(scenarios) < 2:
        raise click.BadParameter("give at least two scenarios", param_hint="SCENARIOS")
    if len(set(scenarios)) != len(scenarios):
        raise click.BadParameter("a scenario is named twice", param_hint="SCENARIOS")
    if seed < 0:
        raise click.BadParameter(f"must be >= 0, got {seed}", param_hint="'--seed'")
    loaded = [load_scenario(name, overrides) for name in scenarios]   # all checked first
    names = [ls.scenario.name for ls in loaded]
    for i, ls in enumerate(loaded):
        if ls.scenario.name in names[:i]:
            first = loaded[names.index(ls.scenario.name)]
            raise GpumarketError(f"{first.source} and {ls.source} are both named "
                                 f"{ls.scenario.name!r}; give each a distinct `name`")
    folders = _folders(loaded) if out is not None else []
    wanted = _parse_dates(dates)
    first = max(parse_month(ls.scenario.start) for ls in loaded)
    last = min(parse_month(ls.scenario.end) for ls in loaded)
    if last < first:
        raise click.BadParameter("the scenarios share no month", param_hint="SCENARIOS")
    if wanted:
        _check_within(wanted, first, last, "--dates", "the run all scenarios share")
    shown = wanted or [*DEFAULT_DATES, format_month(last)]
    shown = sorted({d for d in shown if first <= parse_month(d) <= last}, key=parse_month)
    # The claim checks and locks --out before any model time is spent.
    with OutputClaim(out, force) if out is not None else nullcontext() as claim:
        frames = {}
        for ls in loaded:
            if sys.stderr.isatty():
                click.echo(f"running {ls.scenario.name} (seed {seed})...", err=True)
            frames[ls.scenario.name] = run_tables(ls.scenario, seed)
        table = comparison(frames, shown)
        if claim is not None:
            with write_errors(out):
                _write_comparison(claim.tmp, loaded, folders, frames, table, seed=seed,
                                  shown=shown, last=last, overrides=overrides, fmt=fmt)
            claim.publish()
    if as_json:
        _emit_json({"seed": seed, "dates": shown,
                    "out": None if out is None else os.path.abspath(out),
                    "scenarios": [{"name": ls.scenario.name, "source": ls.source,
                                   "sha256": ls.sha256,
                                   "directory": folders[i] if folders else None,
                                   "outcomes": outcomes_json(key_outcomes(
                                       frames[ls.scenario.name], shown, extended=True))}
                                  for i, ls in enumerate(loaded)]})
        return
    click.echo(f"seed {seed} (common random numbers) for: {', '.join(names)}")
    click.echo(format_comparison(table, names, comparison_flags(
        frames, {ls.scenario.name: ls.scenario for ls in loaded}, shown)))
    if out is None:
        click.echo("(pass --out DIR to write the tables and a plot)")
        return
    shown_dirs = ", ".join(f if f == n else f"{f} ({n})" for f, n in zip(folders, names))
    click.echo(f"wrote {shown_dirs} tables, comparison.csv and trajectories.png to {out}")
