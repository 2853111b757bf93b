"""`gpumarket viz`: the web app."""

from __future__ import annotations

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
@click.option("--ensemble", type=click.Path(path_type=Path),
              help="A Monte Carlo batch directory: its bands are drawn under the live run.")
def viz(scenario: str, port: int, host: str, no_browser: bool, ensemble: Path | None) -> None:
    """Serve the web app (Mesa SolaraViz): watch the market, move policy levers."""
    require_extra("viz", "viz")
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


