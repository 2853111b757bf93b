"""`gpumarket montecarlo`, `sensitivity`, `report`: batches of runs and their analysis."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable

import click

from market.cli.base import (INTEGER, _check_within, _emit_json, _parse_dates, cli,
                             require_extra)
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
                   scheduler: str | None, out: Path, extra: dict | None = None,
                   hold_lock: bool = False):
    """Lock, start (or verify and resume) and run a batch; returns (batch, manifest, runs
    done now, seconds). Everything that can be refused is refused before the cluster starts;
    Ctrl-C and a failed write stop the batch with one line, leaving it resumable. With
    `hold_lock` a finished batch stays locked for the caller to write into (it calls
    `batch.close()`)."""
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
    executor, stopped, finished = None, None, False
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
        finished = True
    except KeyboardInterrupt:
        stopped = ("interrupted; rerun the same command to resume", EXIT_INTERRUPTED)
    except BatchWriteError as exc:
        done = len(batch.finished() & set(range(len(design.runs))))
        stopped = (f"error: {exc}; the batch stopped with {done} of {len(design.runs)} runs "
                   "complete: free space and rerun the same command to resume",
                   EXIT_WRITE_FAILED)
    finally:
        _close(executor, batch, release=not (hold_lock and finished))
    if stopped is not None:
        click.echo(f"gpumarket: {stopped[0]}", err=True)
        raise SystemExit(stopped[1])
    return batch, manifest, todo, time.perf_counter() - started


def _close(executor, batch, release: bool = True) -> None:
    """Close the cluster (its workers exit before this process does) and release the batch
    (unless not `release`); a second Ctrl-C meanwhile is ignored so that no worker is left
    behind."""
    import signal
    import threading

    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if main else None
    try:
        if executor is not None:
            executor.close()
        if release:
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

    from scenarios.loader import _parse_value, error_reason, set_path
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
                msg = error_reason(exc.errors()[0]) if isinstance(exc, ValidationError) \
                    else str(exc)
                raise click.BadParameter(f"{path.strip()} = {value!r}: {msg}",
                                         param_hint="'--lever'") from None
        out[path.strip()] = values
    return out


def _posterior_draws(directory: Path, loaded):
    """A calibration's posterior sample, checked: a finished calibration, every parameter a
    behavioural field this scenario can set to every drawn value's range."""
    import copy
    import json as _json

    import pandas as pd
    from pydantic import ValidationError

    from scenarios.behavioural import classify_path
    from scenarios.loader import error_reason, set_path
    from scenarios.schema import Scenario

    manifest, sample = directory / "calibration.json", directory / "posterior.parquet"
    if not manifest.is_file() or not sample.is_file():
        raise GpumarketError(f"{directory}: not a finished gpumarket calibration (needs "
                             "calibration.json and posterior.parquet)")
    try:
        meta = _json.loads(manifest.read_text())
    except (ValueError, UnicodeDecodeError):
        meta = None
    if not isinstance(meta, dict) or meta.get("kind") != "calibration":
        raise GpumarketError(f"{manifest}: not a gpumarket calibration manifest")
    if meta.get("status") != "done":
        raise GpumarketError(f"{directory}: the calibration has not finished (status "
                             f"{meta.get('status')!r}); rerun its command to finish it")
    try:
        draws = pd.read_parquet(sample)
    except Exception as exc:       # noqa: BLE001  (a damaged file: one line)
        raise GpumarketError(f"{sample}: unreadable ({type(exc).__name__})") from None
    if draws.empty or not all(pd.api.types.is_numeric_dtype(t) for t in draws.dtypes):
        raise GpumarketError(f"{sample}: expected numeric columns of draws, one per parameter")
    for path in draws.columns:
        why = classify_path(path)
        if why is not None:
            raise GpumarketError(f"{sample}: column {path}: {why}")
        for value in (float(draws[path].min()), float(draws[path].max())):
            probe = copy.deepcopy(loaded.scenario.model_dump(mode="json"))
            try:
                set_path(probe, path, value)
                Scenario.model_validate(probe)
            except (GpumarketError, ValidationError) as exc:
                msg = error_reason(exc.errors()[0]) if isinstance(exc, ValidationError) \
                    else str(exc)
                raise GpumarketError(f"{sample}: column {path} = {value:g}: {msg}") from None
    return draws


def _finish_message(batch, manifest: dict, quiet: bool = False) -> None:
    """The counts on stdout (unless `quiet`: --json says them); failures on stderr, exit 1."""
    failed = manifest["failed"]
    if not quiet:
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
@click.option("--posterior", type=click.Path(path_type=Path), help="A `gpumarket calibrate` "
              "directory: each sample takes one of its posterior draws for the calibrated "
              "parameters.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON (nothing else "
              "on stdout).")
def montecarlo(scenario: str, runs: int, method: str, seed: int, workers: int | None,
               scheduler: str | None, months: int | None, overrides: tuple[str, ...],
               levers: tuple[str, ...], out: Path | None, dates: str | None,
               posterior: Path | None, as_json: bool) -> None:
    """Run a seeded ensemble over the scenario's [uncertain] inputs, on Dask or in-process."""
    require_extra("batch", "montecarlo")
    from analysis.design import make_design
    from analysis.outcomes import (ensemble_summary, format_ensemble, option_labels,
                                   summary_json)
    from market.timeline import format_month, parse_month
    from scenarios.loader import load_scenario

    if runs < 1:
        raise click.BadParameter(f"must be at least 1, got {runs}", param_hint="'--runs'")
    loaded = load_scenario(scenario, overrides)
    s = loaded.scenario
    _check_batch_args(s, months, seed, workers, scheduler)
    wanted = _parse_dates(dates)
    if wanted:
        _check_within(wanted, parse_month(s.start), parse_month(s.start) + (months or s.months)
                      - 1, "--dates", "the runs")
    draws = None if posterior is None else _posterior_draws(posterior, loaded)
    design = make_design(s, runs, method, seed, _parse_levers(levers, loaded), draws)
    out = out or Path(f"mc-{s.name}")
    batch, manifest, ran, elapsed = _execute_batch("montecarlo", loaded, design, months,
                                                   workers, scheduler, out)
    if ran and not as_json:
        click.echo(f"{ran} runs in {elapsed:.1f} s ({ran / max(elapsed, 1e-9):.2f} runs/s)")
    last = format_month(parse_month(s.start) + (months or s.months) - 1)
    shown = sorted({d for d in (wanted or ["2024-12", "2026-12", last])
                    if parse_month(s.start) <= parse_month(d) <= parse_month(last)},
                   key=parse_month)
    # per lever option, with the options' differences paired by sample: pooling the options
    # would hide the policy comparison the batch was run for
    summaries = ensemble_summary(batch.dir, shown, design.levers) \
        if manifest["completed"] and shown else {}
    if as_json:
        _emit_json({"scenario": s.name, "directory": str(batch.dir),
                    "runs": {k: manifest[k] for k in ("expected", "completed", "failed")},
                    "samples": design.samples, "levers": design.levers,
                    "reference_option": option_labels(design.levers)[0] if design.levers
                    else None, "ran_now": ran, "elapsed_s": round(elapsed, 2),
                    "dates": shown, "outcomes": summary_json(summaries)})
    elif summaries:
        click.echo(format_ensemble(summaries, shown, manifest["completed"], design.levers))
    _finish_message(batch, manifest, quiet=as_json)


@cli.command()
@click.argument("scenario")
@click.option("--method", type=click.Choice(["sobol", "morris"]), default="sobol",
              show_default=True, help="Sobol' indices (Saltelli design) or Morris screening.")
@click.option("--samples", type=INTEGER, default=16, show_default=True,
              help="Base samples: Sobol' runs N x (D + 2) (N rounded up to a power of 2; "
                   "stable indices need N >= 512), Morris N trajectories of D + 1 runs "
                   "(N >= 10).")
@click.option("--outcome", default="price:US:neocloud", show_default=True,
              help="price:<region>:<tier>, share:<nation>, installed:<nation>, "
                   "largest-run:<nation> or diverted:<nation>.")
@click.option("--date", "month", help="Month of the outcome (default: the last month).")
@_batch_options
@click.option("--out", type=click.Path(path_type=Path),
              help="Batch directory (default sa-SCENARIO-METHOD).")
@click.option("--json", "as_json", is_flag=True, help="Print the indices as JSON (nothing "
              "else on stdout; the warning, if any, still goes to stderr).")
def sensitivity(scenario: str, method: str, samples: int, outcome: str, month: str | None,
                seed: int, workers: int | None, scheduler: str | None, months: int | None,
                overrides: tuple[str, ...], out: Path | None, as_json: bool) -> None:
    """Global sensitivity of one outcome to the scenario's [uncertain] inputs (SALib)."""
    require_extra("batch", "sensitivity")
    from analysis import sensitivity as sa
    from analysis.design import design_from_rows
    from analysis.outcomes import check_outcome, outcome_series, parse_outcome
    from market.timeline import format_month, parse_month
    from scenarios.loader import load_scenario

    if samples < 1:
        raise click.BadParameter(f"must be at least 1, got {samples}", param_hint="'--samples'")
    parse_outcome(outcome)                      # its form, before the scenario is read
    loaded = load_scenario(scenario, overrides)
    s = loaded.scenario
    _check_batch_args(s, months, seed, workers, scheduler)
    # every argument is checked against the scenario before the first run
    try:
        outcome = check_outcome(outcome, s)
    except GpumarketError as exc:
        raise click.BadParameter(str(exc), param_hint="'--outcome'") from None
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
                                "skipped_choice_inputs": skipped}}, hold_lock=True)
    try:                  # the indices are written while the batch is still this process's
        if ran and not as_json:
            click.echo(f"{ran} runs in {elapsed:.1f} s")
        if manifest["completed"] != manifest["expected"]:
            _finish_message(batch, manifest, quiet=as_json)
        series = outcome_series(batch.dir, outcome, dates=[month])
        by_run = series.set_index("run_id")["value"].reindex(range(len(design.runs)))
        indices = sa.analyze(problem, method, X, by_run.to_numpy(dtype=float), seed)
        result = sa.write_results(batch.dir, indices, scenario=s.name, method=method,
                                  outcome=outcome, month=month, samples=samples,
                                  runs=len(design.runs), skipped=skipped)
        if result["warnings"]:
            click.echo(f"gpumarket: warning: {result['warning']}", err=True)
        if as_json:
            _emit_json(dict(result, directory=str(batch.dir), ran_now=ran,
                            elapsed_s=round(elapsed, 2)))
        else:
            click.echo(sa.format_indices(indices, method, result))
            if skipped:
                click.echo(f"not analysed (choice inputs): {', '.join(skipped)}")
            click.echo(f"wrote {', '.join(result['files'].values())} to {batch.dir}")
    finally:
        batch.close()


@cli.command()
@click.argument("directory", type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), help="HTML file (default "
              "DIRECTORY/report.html).")
@click.option("--json", "as_json", is_flag=True, help="Print the path written and the key "
              "tables as JSON (nothing else on stdout).")
def report(directory: Path, out: Path | None, as_json: bool) -> None:
    """Write a self-contained HTML report of a batch: fan charts, threshold probabilities,
    sensitivity indices, provenance; per lever option, with the options' paired differences."""
    from analysis.report import make_report

    if not directory.is_dir():
        raise GpumarketError(f"{directory}: no such batch directory")
    written = make_report(directory, out)
    if as_json:
        _emit_json({"path": str(written.path), **written.tables})
    else:
        click.echo(f"wrote {written.path}")
