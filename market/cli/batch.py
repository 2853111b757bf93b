"""`gpumarket montecarlo`, `sensitivity`, `report`: batches of runs and their analysis."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable

import click

from market.cli.base import INTEGER, _parse_dates, cli, require_extra
from market.errors import GpumarketError


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
        # read by _execute_batch from the context, so the commands' signatures stay as they are
        click.option("--allow-version-change", is_flag=True, expose_value=False,
                     callback=_remember_version_flag,
                     help="Continue a batch that another gpumarket version started (both "
                          "versions are recorded in batch.json)."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


_VERSION_FLAG = "gpumarket.allow_version_change"


def _remember_version_flag(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    ctx.meta[_VERSION_FLAG] = value


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


#: exit code of a batch stopped by Ctrl-C (128 + SIGINT, as shells report it)
EXIT_INTERRUPTED = 130
#: exit code of a batch stopped by a failed write (disk full, quota, file size limit)
EXIT_WRITE_FAILED = 1


def _execute_batch(kind: str, loaded, design, months: int | None, workers: int | None,
                   scheduler: str | None, out: Path, extra: dict | None = None):
    """Lock, start (or verify and resume) and run a batch; returns (batch, manifest, runs
    done now, seconds). Everything that can be refused is refused before the cluster starts;
    Ctrl-C and a failed write stop the batch with one line, leaving it resumable."""
    import json as _json
    import time

    import pandas as pd

    from analysis.runner import Batch, BatchWriteError, Task, make_executor
    from market import __version__

    s = loaded.scenario
    identity = {"kind": kind, "gpumarket_version": __version__, "scenario": s.name,
                "scenario_source": loaded.source, "scenario_sha256": loaded.sha256,
                "root_seed": design.root_seed, "months": months or s.months,
                "design": design.describe(),
                "uncertain": {p: d.model_dump(exclude_none=True) for p, d in s.uncertain.items()},
                "created": time.strftime("%Y-%m-%dT%H:%M:%S"), **(extra or {})}
    rows = pd.DataFrame([{"run_id": r.run_id, "seed": r.seed,
                          **{f"param.{k}": (_json.dumps(v) if isinstance(v, (dict, list))
                                            else v) for k, v in r.params.items()}}
                         for r in design.runs])
    batch = Batch(out)
    ctx = click.get_current_context(silent=True)
    batch.open(identity, rows, bool(ctx and ctx.meta.get(_VERSION_FLAG)))
    executor, stopped = None, None
    started = time.perf_counter()
    try:
        redone = batch.verify()
        if redone:
            files = "1 run file is" if len(redone) == 1 else f"{len(redone)} run files are"
            click.echo(f"gpumarket: {files} empty, truncated or not logged (run "
                       f"{_ids(redone)}); redoing {'it' if len(redone) == 1 else 'them'}",
                       err=True)
        try:
            executor = make_executor(workers, scheduler)
        except GpumarketError:
            batch.abandon()
            raise
        scenario_json = _json.dumps(s.model_dump(mode="json"))
        where = str(batch.dir.resolve()) if executor.shares_filesystem else None
        tasks = [Task(r.run_id, r.seed, r.params, months, scenario_json, where)
                 for r in design.runs]
        todo = len(tasks) - len(batch.finished() & {t.run_id for t in tasks})
        started = time.perf_counter()
        _run_with_progress(batch, tasks, executor, todo, f"{s.name} ({executor.name}, "
                           f"{executor.workers} workers)")
        manifest = batch.finish(len(tasks), time.perf_counter() - started,
                                f"{executor.name} x{executor.workers}")
    except KeyboardInterrupt:
        stopped = ("interrupted; rerun the same command to resume", EXIT_INTERRUPTED)
    except BatchWriteError as exc:
        done = len(batch.finished() & set(range(len(design.runs))))
        stopped = (f"error: {exc}; the batch stopped with {done} of {len(design.runs)} runs "
                   "complete: free space and rerun the same command to resume",
                   EXIT_WRITE_FAILED)
    finally:
        _close(executor, batch)
    if stopped is not None:
        click.echo(f"gpumarket: {stopped[0]}", err=True)
        raise SystemExit(stopped[1])
    return batch, manifest, todo, time.perf_counter() - started


def _close(executor, batch) -> None:
    """Close the cluster (its workers exit before this process does) and release the batch;
    a second Ctrl-C meanwhile is ignored so that no worker is left behind."""
    import signal
    import threading

    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if main else None
    try:
        if executor is not None:
            executor.close()
        batch.close()
    finally:
        if main:
            signal.signal(signal.SIGINT, previous)


def _run_with_progress(batch, tasks, executor, todo: int, label: str) -> None:
    """Run the batch, with a progress bar on a terminal."""
    from analysis.runner import run_batch

    if not sys.stderr.isatty():
        run_batch(batch, tasks, executor)
        return
    import shutil

    from tqdm import tqdm
    size = shutil.get_terminal_size((100, 20))        # a bare pty reports 0 x 0
    with tqdm(total=len(tasks), initial=len(tasks) - todo, unit="run",
              ncols=size.columns or 100, nrows=size.lines or 20, desc=label,
              file=sys.stderr) as bar:
        run_batch(batch, tasks, executor, bar.update)


def _ids(run_ids: list[int], shown: int = 8) -> str:
    text = ", ".join(map(str, run_ids[:shown]))
    return text + (", ..." if len(run_ids) > shown else "")


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
    require_extra("batch", "montecarlo")
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
    require_extra("batch", "sensitivity")
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


