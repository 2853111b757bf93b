"""`gpumarket calibrate`: estimate a scenario's `[calibrate]` parameters against 2022-2024."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from market.cli.base import INTEGER, _emit_json, cli, require_extra
from market.cli.backtest import _check_month
from market.cli.batch import EXIT_INTERRUPTED, EXIT_WRITE_FAILED, _close, _check_batch_args
from market.errors import GpumarketError

METHODS = ("history-matching", "optuna")


@cli.command()
@click.argument("scenario", required=False, default="history")
@click.option("--budget", type=INTEGER, default=300, show_default=True,
              help="Parameter sets to run in all (each with --seeds runs): the waves, the "
                   "calibrated point and a few posterior draws.")
@click.option("--method", type=click.Choice(METHODS), default="history-matching",
              show_default=True, help="History matching in waves with Gaussian-process "
              "emulators, then a posterior sample of what is left; or Optuna's TPE search "
              "with a rejection sample of its best sets.")
@click.option("--waves", type=INTEGER, default=3, show_default=True,
              help="History-matching waves the budget is shared among.")
@click.option("--seeds", type=INTEGER, default=3, show_default=True,
              help="Runs per parameter set (seeds 1..N, as `gpumarket backtest --seeds`).")
@click.option("--until", default="2024-12", show_default=True,
              help="Last month of data the calibration may use (YYYY-MM); runs stop there.")
@click.option("--seed", type=INTEGER, default=0, show_default=True,
              help="Root seed of the designs and the posterior sample.")
@click.option("--workers", type=INTEGER, help="Local Dask worker processes (default: one "
              "per core); 0 runs in this process.")
@click.option("--scheduler", help="Address of an existing Dask scheduler.")
@click.option("--set", "overrides", multiple=True, metavar="PATH=VALUE",
              help="Override a scenario field for every run (repeatable).")
@click.option("--out", type=click.Path(path_type=Path), help="Calibration directory "
              "(default calibration-SCENARIO); rerunning the same command resumes it.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def calibrate(scenario: str, budget: int, method: str, waves: int, seeds: int, until: str,
              seed: int, workers: int | None, scheduler: str | None,
              overrides: tuple[str, ...], out: Path | None, as_json: bool) -> None:
    """Estimate the scenario's [calibrate] parameters against the observed series to --until."""
    require_extra("calibrate", "calibrate")
    import time

    from analysis.calibration.run import Calibration, Settings
    from analysis.runner import BatchWriteError, make_executor
    from market import __version__
    from market.timeline import parse_month
    from scenarios.loader import load_scenario

    _check_month(until, "--until")
    loaded = load_scenario(scenario, overrides)
    s = loaded.scenario
    _check_batch_args(s, None, seed, workers, scheduler)
    if not s.calibrate:
        raise GpumarketError(f"{loaded.source}: has no [calibrate] block: nothing to "
                             "calibrate (scenarios/behavioural.py lists what may be)")
    from analysis.calibration.observe import in_sample

    months = parse_month(until) - parse_month(s.start) + 1
    if months >= 1 and in_sample(until).empty:
        raise click.BadParameter(f"no observation ends by {until}: nothing to calibrate "
                                 "against", param_hint="'--until'")
    if not 1 <= months <= s.months:
        raise click.BadParameter(f"{until} is outside the scenario ({s.start} to {s.end})",
                                 param_hint="'--until'")
    for name, value, least in (("--seeds", seeds, 1), ("--waves", waves, 1)):
        if value < least:
            raise click.BadParameter(f"must be at least {least}, got {value}",
                                     param_hint=f"'{name}'")
    settings = Settings(method, budget, seeds, waves, seed, until)
    need = settings.check_sets() + waves * (len(s.calibrate) + 2)
    if budget < need:
        raise click.BadParameter(f"must be at least {need} for {waves} waves of "
                                 f"{len(s.calibrate)} parameters (each wave needs "
                                 "parameters + 2 sets to fit its emulators), got "
                                 f"{budget}", param_hint="'--budget'")
    calibration = Calibration(out or Path(f"calibration-{s.name}"), loaded, settings, months,
                              __version__)
    calibration.open()
    executor, stopped, result = None, None, None
    started = time.perf_counter()
    try:
        try:
            executor = make_executor(workers, scheduler)
        except GpumarketError:
            calibration.abandon()
            raise
        except Exception as exc:   # noqa: BLE001  (Dask could not start: one line)
            calibration.abandon()
            raise GpumarketError(f"cannot start the Dask executor ({type(exc).__name__}: "
                                 f"{exc})") from None
        total = sum(settings.wave_sizes()) + settings.check_sets()
        with _progress(total * seeds, f"{s.name} ({executor.name}, {executor.workers} "
                                      "workers)") as bar:
            def say(text: str) -> None:
                bar.status(text)
                if not as_json:
                    click.echo(f"{text} ({time.perf_counter() - started:.0f} s)")
            result = calibration.run(executor, bar, say)
    except KeyboardInterrupt:
        stopped = ("interrupted; rerun the same command to resume", EXIT_INTERRUPTED)
    except BatchWriteError as exc:
        stopped = (f"error: {exc}; free space and rerun the same command to resume",
                   EXIT_WRITE_FAILED)
    finally:
        _close(executor, calibration)
    if stopped is not None:
        click.echo(f"gpumarket: {stopped[0]}", err=True)
        raise SystemExit(stopped[1])
    elapsed = time.perf_counter() - started
    if as_json:
        _emit_json({**result, "elapsed_s": round(elapsed, 1), "out": str(calibration.dir)})
        return
    click.echo(f"{result['parameter_sets_run']} parameter sets ({result['model_runs']} model "
               f"runs) in {elapsed:.0f} s; loss {result['loss_before']:.3f} -> "
               f"{result['loss_after']:.3f} (persistence {result['score_persistence']:.3f}, "
               f"trend {result['score_trend']:.3f}); {result['series_better_after']} of "
               f"{result['series_scored']} series fit better")
    for path, value in result["point_estimate"].items():
        click.echo(f"  {path} = {value:.4g}")
    click.echo(f"wrote {calibration.dir}/calibrated.toml, posterior.parquet and report.html")
    warning = worse_than_input(result)
    if warning:
        click.echo(warning)


def worse_than_input(result: dict) -> str | None:
    """A warning when the calibrated point fits the data worse than the input did: a
    posterior median need not fit better than the point it started from (a wide or oddly
    shaped posterior, seed noise), and such an overlay is no improvement to adopt."""
    before, after = result["loss_before"], result["loss_after"]
    if after <= before:
        return None
    return (f"note: the posterior median fits worse than the input (loss {before:.3f} -> "
            f"{after:.3f}); calibrated.toml is no improvement on it: keep the input's values, "
            f"or calibrate again with a larger --budget or more --seeds")


class _progress:
    """A progress bar over model runs on a terminal (nothing elsewhere): runs done, rate and
    ETA, and the best loss after each wave; a callable that advances it."""

    def __init__(self, total: int, label: str):
        self.total, self.label, self.bar = total, label, None

    def __enter__(self):
        if sys.stderr.isatty():
            import shutil

            from tqdm import tqdm
            size = shutil.get_terminal_size((100, 20))        # a bare pty reports 0 x 0
            self.bar = tqdm(total=self.total, unit="run", desc=self.label, file=sys.stderr,
                            ncols=size.columns or 100, nrows=size.lines or 20)
        return self

    def __call__(self, n: int) -> None:
        if self.bar is not None:
            self.bar.update(n)

    def status(self, text: str) -> None:
        """Show the last wave's summary (best loss so far) beside the bar."""
        import re

        found = re.search(r"^(wave \d+|optuna).*?(best loss [0-9.]+)", text)
        if self.bar is not None and found:
            self.bar.set_postfix_str(f"after {found.group(1)}, {found.group(2)}")

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.close()
