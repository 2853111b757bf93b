"""`gpumarket viz`: the web app."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import click

from market.cli.base import INTEGER, cli, require_extra
from market.errors import GpumarketError


# ------------------------------------------------------------------------------ viz ---

@cli.command()
@click.argument("scenario", required=False, default="baseline")
@click.option("--port", type=INTEGER, default=8765, show_default=True, help="TCP port.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind (loopback unless told otherwise).")
@click.option("--no-browser", is_flag=True, help="Do not open a browser.")
@click.option("--months", type=INTEGER, help="Run only the first M months of the scenario.")
@click.option("--ensemble", type=click.Path(path_type=Path),
              help="A Monte Carlo batch directory: its bands are drawn under the live run.")
def viz(scenario: str, port: int, host: str, no_browser: bool, months: int | None,
        ensemble: Path | None) -> None:
    """Serve the web app (a Mesa model on a Solara page): watch the market, move policy levers."""
    require_extra("viz", "viz")
    import os
    import socket
    import subprocess
    import webbrowser

    from analysis.assets import DEFAULT_CACHE
    from market.processes import stop_process_group
    from scenarios.loader import load_scenario

    scenario_months = load_scenario(scenario).scenario.months    # unknown scenario: exit 2
    if months is not None and not 1 <= months <= scenario_months:
        raise click.BadParameter(f"must be between 1 and {scenario_months} (the scenario's "
                                 f"length), got {months}", param_hint="'--months'")
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
    import analysis

    app = Path(analysis.__file__).resolve().parent / "app.py"
    env = dict(os.environ, GPUMARKET_SCENARIO=scenario, SOLARA_TELEMETRY_MIXPANEL_ENABLE="false",
               # Solara's "runs on Solara" banner sits over the page's bottom-right corner
               SOLARA_THEME_SHOW_BANNER="false", SOLARA_THEME_TITLE="gpumarket")
    env["PYTHONWARNINGS"] = ",".join(filter(None, [env.get("PYTHONWARNINGS"), *QUIET_WARNINGS]))
    if months is not None:
        env["GPUMARKET_MONTHS"] = str(months)
    if ensemble is not None:
        env["GPUMARKET_ENSEMBLE"] = str(ensemble.resolve())
    if "SOLARA_ASSETS_PROXY_CACHE_DIR" not in env and DEFAULT_CACHE.is_dir():
        env["SOLARA_ASSETS_PROXY_CACHE_DIR"] = str(DEFAULT_CACHE)
    url = f"http://{host}:{port}/"
    cmd = [sys.executable, "-m", "solara", "run", str(app), "--host", host, "--port", str(port),
           "--production", "--no-open"]
    stopped_by = None
    proc = None
    # SIGTERM and SIGHUP stop the server the way Ctrl-C does: the server runs in its own
    # session (a terminal's Ctrl-C reaches only us), so we must stop its process tree ourselves.
    previous = {signal.SIGINT: signal.getsignal(signal.SIGINT)}
    try:
        for sig in STOP_SIGNALS:
            previous[sig] = signal.signal(sig, _raise_stop)
        proc = subprocess.Popen(cmd, env=env, start_new_session=True)
        if not _wait_serving(url, proc, SERVER_START_TIMEOUT_S):
            raise GpumarketError(
                f"the Solara server exited with code {proc.returncode} before serving {url} "
                "(its messages are above)" if proc.poll() is not None else
                f"the Solara server did not answer at {url} within {SERVER_START_TIMEOUT_S} s")
        click.echo(f"gpumarket viz: serving {scenario} at {url} (Ctrl-C to stop)")
        if not no_browser:
            webbrowser.open(url)
        proc.wait()
    except KeyboardInterrupt:
        stopped_by = "Ctrl-C"
    except _Stop as stop:
        stopped_by = signal.Signals(stop.signum).name
    finally:
        for sig in previous:                  # a second Ctrl-C or SIGTERM must not cut cleanup
            signal.signal(sig, signal.SIG_IGN)
        if proc is not None:
            stop_process_group(proc, timeout_s=STOP_TIMEOUT_S)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if stopped_by is not None:
        click.echo(f"gpumarket viz: stopped ({stopped_by})", err=True)
        return
    raise GpumarketError(f"the Solara server stopped by itself (exit code {proc.returncode}; "
                         "its messages are above)")


#: Known, harmless warnings of the server (Mesa 3.3's hook order, samesite cookies on plain
#: http) that would bury the URL line; `-W` syntax, added to the user's PYTHONWARNINGS.
QUIET_WARNINGS = ("ignore::UserWarning:solara.validate_hooks",
                  "ignore:Cookies with samesite=none:UserWarning")
#: Signals that stop `gpumarket viz` like Ctrl-C (SIGINT) does.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)
#: How long the server may take to answer its first HTTP request [s].
SERVER_START_TIMEOUT_S = 90
#: How long the server's processes get to exit after SIGTERM before SIGKILL [s].
STOP_TIMEOUT_S = 5.0


class _Stop(BaseException):
    """Raised by the SIGTERM/SIGHUP handler (a BaseException, like KeyboardInterrupt, so no
    `except Exception` on the way swallows it)."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def _raise_stop(signum, frame) -> None:
    raise _Stop(signum)


def _wait_serving(url: str, proc, timeout_s: float) -> bool:
    """Poll `url` until it answers (True), the server exits or `timeout_s` passes (False)."""
    import time
    import urllib.request

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return True
        except OSError:
            time.sleep(0.2)
    return False
