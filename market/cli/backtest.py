"""`gpumarket backtest`: a scenario's runs scored against the observed series."""

from __future__ import annotations

import math
from pathlib import Path

import click

from market.cli.base import INTEGER, _check_within, _emit_json, cli
from market.errors import GpumarketError


def _check_month(month: str, option: str) -> str:
    from market.timeline import parse_month

    try:
        parse_month(month)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=f"'{option}'") from None
    return month


def _check_until_in_run(until: str, start: str, months: int) -> None:
    """`--until` must name a month the runs cover: an earlier one leaves nothing to score and
    a later one nothing to hold out (said before any model runs)."""
    from market.timeline import parse_month

    first = parse_month(start)
    _check_within([until], first, first + months - 1, "--until", "the scenario's run")


#: Fewest design runs an input correlation is computed from (`analysis.scripted` skips fewer).
MIN_DESIGN_RUNS = 3


def _check_design_runs(design_runs: int) -> None:
    """0 skips the design; 1 or 2 runs would silently give no correlation."""
    if design_runs != 0 and design_runs < MIN_DESIGN_RUNS:
        raise click.BadParameter(f"{design_runs}; expected 0 (none) or at least "
                                 f"{MIN_DESIGN_RUNS}", param_hint="'--design-runs'")


def _runs_from_seeds(scenario, seeds: int, months: int) -> list[dict]:
    from market.outputs import run_tables

    return [run_tables(scenario, seed, months) for seed in range(1, seeds + 1)]


def _runs_from_ensemble(directory: Path, until: str) -> tuple[list[dict], object]:
    """Every finished run of a Monte Carlo batch, and the batch's scenario (`until` checked
    against the months the batch ran before any run file is read)."""
    import json

    from analysis.observables import TABLES_USED
    from analysis.runner import read_tables, run_files
    from scenarios.loader import load_scenario

    manifest = directory / "batch.json"
    if not manifest.is_file() or not run_files(directory):
        raise GpumarketError(f"{directory}: not a Monte Carlo batch (needs batch.json and "
                             "runs/run-*.parquet)")
    meta = json.loads(manifest.read_text())
    scenario = load_scenario(meta.get("scenario_source") or meta["scenario"]).scenario
    _check_until_in_run(until, scenario.start, meta.get("months") or scenario.months)
    frames = read_tables(directory, list(TABLES_USED))
    if any(frame.empty for frame in frames.values()):
        empty = [name for name, frame in frames.items() if frame.empty]
        raise GpumarketError(f"{directory}: its run files have no {', '.join(empty)} table "
                             "(written by an older gpumarket); rerun the batch")
    runs = []
    for run_id in sorted(frames["compute"]["run_id"].unique()):
        runs.append({name: frame[frame["run_id"] == run_id].drop(
            columns=[c for c in frame.columns if c in ("run_id", "seed")
                     or c.startswith("param.")]) for name, frame in frames.items()})
    return runs, scenario


def _print_table(scores, result, out_of_sample) -> None:
    head = (f"{'series':<62}{'n':>4}{'male':>7}{'bias':>7}{'dir':>6}{'cover':>7}"
            f"{'in-src':>7}{'persist':>8}{'trend':>7}")
    click.echo(head)

    def cell(value, width, digits=2):
        return f"{'-':>{width}}" if value is None or not math.isfinite(value) \
            else f"{value:>{width}.{digits}f}"

    for _, r in scores.iterrows():
        click.echo(f"{r['series'][:61]:<62}{int(r['observations']):>4}{cell(r['male'], 7)}"
                   f"{cell(r['bias'], 7)}{cell(r['direction'], 6)}{cell(r['coverage'], 7)}"
                   f"{cell(r['in_source'], 7)}{cell(r['male_persistence'], 8)}"
                   f"{cell(r['male_trend'], 7)}")


def scripted_outcomes(runs: list[dict], scenario, until: str, design_runs: int,
                      months: int | None):
    """The diagnostics of `analysis.scripted` over the runs, and the input correlations."""
    import pandas as pd

    from analysis.scripted import diagnostics, input_correlations, summarize

    table = summarize([diagnostics(tables, scenario, until) for tables in runs])
    if design_runs:
        first = f"{max(int(scenario.start[:4]), 2023)}-01-01"
        corr = input_correlations(scenario, design_runs, 0, first, until + "-01", months)
        if len(corr):
            corr = corr.rename(columns={"runs": "count"})
            table = pd.concat([table, corr], ignore_index=True)
    return table


@cli.command()
@click.argument("scenario", required=False, default="history")
@click.option("--seeds", type=INTEGER, default=8, show_default=True,
              help="Run the scenario with seeds 1..N.")
@click.option("--ensemble", type=click.Path(path_type=Path),
              help="Score the runs of a `gpumarket montecarlo` batch instead of seeds.")
@click.option("--until", default="2024-12", show_default=True,
              help="Last month of data the backtest may use (YYYY-MM); later rows are "
                   "scored apart, as out of sample.")
@click.option("--observed", "observed_dir", type=click.Path(path_type=Path),
              help="A directory of more observed CSV files in the same format.")
@click.option("--out", type=click.Path(path_type=Path),
              help="Directory for scores (CSV, Parquet, JSON), one PNG per series and an "
                   "HTML page.")
@click.option("--design-runs", type=INTEGER, default=12, show_default=True,
              help="Runs of the small Latin-hypercube design that correlates headline "
                   "outcomes with their nearest inputs: 0 skips it, otherwise at least 3 "
                   "(a correlation needs 3 points).")
@click.option("--force", is_flag=True, help="Replace an --out directory gpumarket wrote.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (units in the key names).")
def backtest(scenario: str, seeds: int, ensemble: Path | None, until: str,
             observed_dir: Path | None, out: Path | None, design_runs: int, force: bool,
             as_json: bool) -> None:
    """Score a scenario's runs against observed 2022-2024 series, beside naive baselines."""
    import time
    from contextlib import nullcontext

    import pandas as pd

    from analysis.backtest import backtest as run_backtest
    from analysis.scripted import format_diagnostics
    from market import __version__
    from market.observed import load_observed, split_by_until
    from market.outputs import OutputClaim, write_errors, write_manifest
    from market.timeline import format_month, parse_month
    from scenarios.loader import load_scenario

    _check_month(until, "--until")
    if seeds < 1:
        raise click.BadParameter(f"must be at least 1, got {seeds}", param_hint="'--seeds'")
    _check_design_runs(design_runs)
    observed = load_observed()
    if observed_dir is not None:
        extra = load_observed(observed_dir)
        extra["file"] = str(observed_dir) + "/" + extra["file"]
        observed = pd.concat([observed, extra], ignore_index=True)
    inside, later = split_by_until(observed, until)
    loaded = load_scenario(scenario).scenario if ensemble is None else None
    if loaded is not None:
        _check_until_in_run(until, loaded.start, loaded.months)
    # the claim checks and locks --out before any model time is spent
    with OutputClaim(out, force) if out is not None else nullcontext() as claim:
        started = time.perf_counter()
        if ensemble is not None:
            runs, s = _runs_from_ensemble(ensemble, until)
            source = f"{len(runs)} runs of {ensemble}"
            months = None
        else:
            s = loaded
            ends = [parse_month(until)] + [parse_month(d.strftime("%Y-%m")) for d in later["end"]]
            months = max(1, min(s.months, max(ends) - parse_month(s.start) + 1))
            runs = _runs_from_seeds(s, seeds, months)
            source = (f"seeds 1-{seeds}, {months} months to "
                      f"{format_month(parse_month(s.start) + months - 1)}")
        result = run_backtest(inside, runs, s)
        later_result = run_backtest(later, runs, s) if len(later) else None
        scripted = scripted_outcomes(runs, s, until, design_runs, months)
        elapsed = time.perf_counter() - started
        meta = {"gpumarket_version": __version__, "kind": "backtest", "scenario": s.name,
                "runs": len(runs), "source_of_runs": source, "until": until,
                "seconds": round(elapsed, 2), "observations_in_sample": int(len(inside)),
                "observations_after_until": int(len(later))}
        if claim is not None:
            from analysis.backtest_report import write_outputs

            with write_errors(out):
                write_outputs(claim.tmp, result, meta, scripted)
                if later_result is not None and len(later_result.scores):
                    later_result.scores.to_csv(claim.tmp / "scores_out_of_sample.csv",
                                               index=False, float_format="%.6g")
                # every directory --force may replace lists what gpumarket wrote into it
                write_manifest(claim.tmp / "figures", {"gpumarket_version": __version__,
                                                       "kind": "backtest figures"})
                write_manifest(claim.tmp, meta)
            claim.publish()
    if as_json:
        _emit_json({**meta, "overall": result.overall,
                    "series": result.scores.to_dict(orient="records"),
                    "not_modelled": result.not_modelled.to_dict(orient="records"),
                    "out_of_sample": None if later_result is None else {
                        "overall": later_result.overall,
                        "series": later_result.scores.to_dict(orient="records")},
                    "scripted": scripted.to_dict(orient="records"),
                    "out": None if out is None else str(out)})
        return
    o = result.overall
    click.echo(f"{s.name}: backtest to {until} over {source} ({elapsed:.1f} s)")
    click.echo(f"{o.get('series_scored', 0)} series scored ({o.get('observations_scored', 0)} "
               f"observations), {o['series_not_modelled']} not modelled")
    if len(result.scores):
        _print_table(result.scores, result, later_result)
        click.echo(f"overall score (weighted mean abs. log error): {o['score']:.3f}; "
                   f"persistence {o['score_persistence']:.3f} over {o['series_with_persistence']} "
                   f"series (model {o['score_model_where_persistence']:.3f}, beats it in "
                   f"{o['series_beating_persistence']}); trend {o['score_trend']:.3f} over "
                   f"{o['series_with_trend']} series (model {o['score_model_where_trend']:.3f}, "
                   f"beats it in {o['series_beating_trend']})")
    if len(scripted):
        click.echo(format_diagnostics(scripted))
    for _, r in result.not_modelled.iterrows():
        click.echo(f"not modelled: {r['series']} ({r['observations']} obs.): {r['reason']}")
    if later_result is not None:
        lo = later_result.overall
        click.echo(f"out of sample (after {until}): {lo.get('series_scored', 0)} series, score "
                   f"{lo.get('score', float('nan')):.3f}")
    if out is not None:
        click.echo(f"wrote scores, figures and backtest.html to {out}")
