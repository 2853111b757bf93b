"""`gpumarket scenarios`, `validate`, `run`, `compare`: single scenario runs."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from market.cli.base import INTEGER, _emit_json, _parse_dates, cli


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
    from market.summary import format_outcomes, key_outcome_flags, key_outcomes, summary_dates
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
    click.echo(format_outcomes(key_outcomes(frames, shown), key_outcome_flags(frames, s, shown)))
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
    from market.summary import DEFAULT_DATES, comparison, comparison_flags, format_comparison
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
    click.echo(format_comparison(table, names, comparison_flags(
        frames, {ls.scenario.name: ls.scenario for ls in loaded}, shown)))
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


