"""The web app in a real browser: `gpumarket viz` on a free loopback port, driven by Debian's
chromium through playwright (no `playwright install`: the system's chromium is used).

Outside CI, a missing chromium, playwright or Solara asset cache skips this module with one
line saying how to enable it; with CI=true they fail it. Screenshots go to a temporary
directory (SCREENSHOT_DIR to keep them). Bounded waits everywhere; the server's process group
is always stopped.
"""

import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from analysis.assets import DEFAULT_CACHE
from market.processes import stop_process_group

CHROMIUM = os.environ.get("CHROMIUM", shutil.which("chromium") or "/usr/bin/chromium")
CHROME_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run"]
ASSETS = Path(os.environ.get("SOLARA_ASSETS_PROXY_CACHE_DIR", DEFAULT_CACHE))
SERVER_START_TIMEOUT, UI_TIMEOUT_MS = 90, 30_000
COUNTER = re.compile(r"^(?:Step|Time): (\d+)(?:\.0)?$")
ENABLE = "run `bash scripts/test.sh` (installs chromium and Solara's assets)"


def _missing() -> str | None:
    import importlib.util

    if importlib.util.find_spec("playwright") is None:
        return "playwright is not installed"
    if not Path(CHROMIUM).exists():
        return f"no chromium at {CHROMIUM}"
    if not (ASSETS / "requirejs@2.3.6").is_dir():
        return f"no Solara assets in {ASSETS}"
    return None


if (_why := _missing()) is not None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"browser test cannot run in CI: {_why}; {ENABLE}", pytrace=False)
    pytest.skip(f"browser test skipped: {_why}; {ENABLE}", allow_module_level=True)

from playwright import sync_api  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    path = Path(os.environ.get("SCREENSHOT_DIR") or tmp_path_factory.mktemp("screenshots"))
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def ensemble(tmp_path_factory) -> Path:
    """A small real Monte Carlo batch for the ensemble bands."""
    out = tmp_path_factory.mktemp("ensemble") / "mc"
    done = subprocess.run([str(Path(sys.executable).parent / "gpumarket"), "montecarlo",
                           "baseline", "--runs", "3", "--months", "24", "--workers", "0",
                           "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return out


@pytest.fixture(scope="module")
def server(tmp_path_factory, ensemble):
    port = _free_port()
    log_path = tmp_path_factory.mktemp("viz") / "server.log"
    env = dict(os.environ, SOLARA_ASSETS_PROXY_CACHE_DIR=str(ASSETS), PYTHONUNBUFFERED="1")
    cmd = [str(Path(sys.executable).parent / "gpumarket"), "viz", "baseline", "--port",
           str(port), "--no-browser", "--ensemble", str(ensemble)]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=env, start_new_session=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while True:
            if proc.poll() is not None:
                pytest.fail(f"gpumarket viz exited ({proc.returncode}):\n"
                            f"{log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(url, timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"gpumarket viz not up in {SERVER_START_TIMEOUT} s:\n"
                            f"{log_path.read_text()[-3000:]}")
            time.sleep(0.25)
        try:
            urllib.request.urlopen(url + "_solara/cdn/requirejs@2.3.6/require.js",
                                   timeout=30).close()
        except OSError as exc:
            pytest.fail(f"Solara's assets are not served ({exc}); {ENABLE}")
        assert f"serving baseline at {url}" in log_path.read_text()
        yield url
    finally:
        stop_process_group(proc, timeout_s=15)
        text = log_path.read_text(errors="replace")
        if "Traceback" in text:
            print("---- server log ----\n" + text[-4000:])


@pytest.fixture(scope="module")
def page(server):
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROME_ARGS, headless=True)
        try:
            pg = browser.new_page(viewport={"width": 1500, "height": 1100})
            pg.set_default_timeout(UI_TIMEOUT_MS)
            pg.goto(server, wait_until="domcontentloaded")
            yield pg
        finally:
            browser.close()


def counter(pg) -> int:
    loc = pg.get_by_text(COUNTER)
    loc.wait_for()
    return int(COUNTER.match(loc.inner_text().strip()).group(1))


def wait_counter(pg, wanted: int, timeout_s: float = UI_TIMEOUT_MS / 1000) -> None:
    deadline = time.monotonic() + timeout_s
    while (value := counter(pg)) != wanted:
        assert time.monotonic() < deadline, f"step counter stuck at {value}, wanted {wanted}"
        pg.wait_for_timeout(50)


def shot(locator, timeout_s: float = 10) -> bytes:
    """Element screenshot; Solara replaces <img> nodes on re-render, so retry."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return locator.screenshot(timeout=2000)
        except sync_api.Error:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def wait_changed(locator, before: bytes, timeout_s: float = 10) -> float:
    """Seconds until the element's image differs from `before`."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if shot(locator) != before:
            return time.monotonic() - started
        time.sleep(0.02)
    raise AssertionError("the view's image did not change after Step")


def figure(pg):
    img = pg.locator("img").first
    img.wait_for()
    return img


def test_step_views_levers_reset_and_tabs(page, shots):
    step = page.get_by_role("button", name="Step", exact=True)
    assert counter(page) == 0
    page.get_by_text("levers: scenario=baseline").wait_for()
    page.get_by_text("ensemble bands from mc: 3 runs").wait_for()
    # page 0: prices; three steps move the counter and redraw the view
    prices = figure(page)
    before = shot(prices)
    for _ in range(3):
        step.click()
    wait_counter(page, 3)
    wait_changed(prices, before)
    page.get_by_text("2022-03", exact=True).wait_for()          # key figures' month
    page.screenshot(path=str(shots / "tab0_prices.png"), full_page=True)
    # render time: click Step -> the price view's image changes, median of 10
    times = []
    for k in range(10):
        before = shot(figure(page))
        clicked = time.monotonic()
        step.click()
        wait_changed(figure(page), before)
        times.append(time.monotonic() - clicked)
        wait_counter(page, 4 + k)
    print(f"\nstep-to-render, price view: median {statistics.median(times):.3f} s, "
          f"max {max(times):.3f} s over {len(times)} steps")
    # the other tabs: each view redraws after a step
    for tab, name in (("Page 1", "tab1_shares.png"), ("Page 2", "tab2_network.png")):
        page.get_by_role("tab", name=tab).click()
        view = figure(page)
        page.wait_for_timeout(300)
        before = shot(view)
        n = counter(page)
        step.click()
        wait_counter(page, n + 1)
        wait_changed(view, before)
        page.screenshot(path=str(shots / name), full_page=True)
    # a lever: export regime -> no controls; inputs apply on Reset only
    page.get_by_role("tab", name="Page 0").click()
    page.get_by_role("button", name=re.compile("Export-control regime")).click()
    page.get_by_role("option", name="no controls").click()
    page.get_by_role("button", name="Reset").click()
    wait_counter(page, 0)
    page.get_by_text(re.compile(r"levers: .*export_regime=no controls")).wait_for()
    step.click()
    wait_counter(page, 1)
    page.screenshot(path=str(shots / "after_reset_no_controls.png"), full_page=True)
    for name in ("tab0_prices.png", "tab1_shares.png", "tab2_network.png"):
        assert (shots / name).stat().st_size > 30_000, name


def test_an_invalid_lever_combination_shows_a_message(page, shots):
    page.get_by_role("button", name=re.compile("^Scenario")).click()
    page.get_by_role("option", name="history", exact=True).click()
    page.get_by_role("button", name=re.compile("Foundry shock start")).click()
    page.get_by_role("option", name="2028-01").click()
    page.get_by_role("button", name="Reset").click()
    wait_counter(page, 0)
    page.get_by_text(re.compile(r"Levers not applied: .*2028-01 is outside the run")).wait_for()
    page.get_by_text(re.compile(r"levers: scenario=history")).wait_for()
    assert "Traceback" not in page.inner_text("body")
    page.screenshot(path=str(shots / "invalid_lever.png"), full_page=True)
