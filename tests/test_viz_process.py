"""`gpumarket viz` as a real process: SIGTERM and SIGINT stop the server and everything it
started; the process helpers and the suite's leftover-process check see real children."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from market.processes import alive, descendants, stop_process_group
from tests.conftest import leftover_processes, wait_for_no_leftovers

pytest.importorskip("solara")

GPUMARKET = str(Path(sys.executable).parent / "gpumarket")
START_TIMEOUT_S, EXIT_TIMEOUT_S = 90, 30


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def start_viz(port: int, log: Path, *extra: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    with open(log, "wb") as out:
        return subprocess.Popen([GPUMARKET, "viz", "--no-browser", "--port", str(port), *extra],
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=env, start_new_session=True)


def wait_serving(proc: subprocess.Popen, port: int, log: Path) -> None:
    """Until the server answers HTTP and viz has said so (bounded)."""
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        assert proc.poll() is None, f"viz exited ({proc.returncode}):\n{log.read_text()}"
        assert time.monotonic() < deadline, f"viz not serving in {START_TIMEOUT_S} s:\n" \
                                            + log.read_text()
        try:
            urllib.request.urlopen(url, timeout=5).close()
            if f"serving baseline at {url}" in log.read_text():
                return
        except OSError:
            pass
        time.sleep(0.2)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP],
                         ids=["SIGTERM", "SIGINT", "SIGHUP"])
def test_a_signal_stops_viz_and_every_process_it_started(tmp_path, sig):
    port, log = free_port(), tmp_path / "viz.log"
    proc = start_viz(port, log)
    tree = []
    try:
        wait_serving(proc, port, log)
        tree = descendants(proc.pid)
        assert any("solara" in p.command for p in tree), tree
        served = log.read_text()
        os.kill(proc.pid, sig)
        code = proc.wait(timeout=EXIT_TIMEOUT_S)
        assert [str(p) for p in tree if alive(p.pid)] == [], "left running"
        assert not port_open(port), "the server still accepts connections"
        assert code == 0, log.read_text()
        name = "Ctrl-C" if sig == signal.SIGINT else signal.Signals(sig).name
        assert log.read_text()[len(served):].splitlines() == [f"gpumarket viz: stopped ({name})"]
    finally:
        for p in tree:                     # the old code orphaned the server: clean up here
            if alive(p.pid):
                os.kill(p.pid, signal.SIGKILL)
        if proc.poll() is None:
            stop_process_group(proc)


def test_viz_refuses_months_outside_the_scenario(tmp_path):
    done = subprocess.run([GPUMARKET, "viz", "--no-browser", "--months", "0"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        ("gpumarket: error: Invalid value for '--months': must be between 1 and 108 "
         "(the scenario's length), got 0")]


def test_stop_process_group_stops_a_child_that_left_the_group(tmp_path):
    # a shell that starts a grandchild in a session of its own (out of reach of killpg)
    script = "setsid sleep 300 & sleep 300"
    proc = subprocess.Popen(["sh", "-c", script], start_new_session=True)
    deadline = time.monotonic() + 10
    while len(tree := descendants(proc.pid)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(tree) == 2, tree
    stop_process_group(proc, timeout_s=5)
    assert [p for p in tree if alive(p.pid)] == []


def test_the_leftover_check_names_a_live_child_and_ignores_a_zombie():
    child = subprocess.Popen(["sleep", "300"])
    zombie = subprocess.Popen(["true"])
    try:
        deadline = time.monotonic() + 10
        while zombie.pid in {p.pid for p in leftover_processes()} \
                and time.monotonic() < deadline:     # `true` exits at once, then stays a zombie
            time.sleep(0.05)
        left = leftover_processes()
        assert [p.pid for p in left] == [child.pid]
        assert f"pid {child.pid} (sleep 300)" == str(left[0])
    finally:
        child.kill()
        child.wait()
        zombie.wait()
    assert wait_for_no_leftovers(timeout_s=5) == []


def test_the_session_check_fails_a_test_run_that_leaves_a_process(tmp_path):
    """A pytest run (a real one, in a subprocess) whose test leaves `sleep` running ends with
    an error naming it."""
    (tmp_path / "conftest.py").write_text(
        "import tests.conftest as suite\n"
        "from tests.conftest import no_processes_left_behind  # noqa: F401\n"
        "suite.LEFTOVER_WAIT_S = 1.0\n")
    (tmp_path / "test_leak.py").write_text(
        "import subprocess\n"
        "def test_leaks(tmp_path_factory):\n"
        "    p = subprocess.Popen(['sleep', '300'])\n"
        f"    open({str(tmp_path / 'pid')!r}, 'w').write(str(p.pid))\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(Path(__file__).resolve().parent.parent), os.environ.get("PYTHONPATH", "")]))
    try:
        done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                               str(tmp_path)], cwd=tmp_path, env=env, capture_output=True,
                              text=True, timeout=120, check=False)
    finally:
        pid = int((tmp_path / "pid").read_text())
        if alive(pid):
            os.kill(pid, signal.SIGKILL)
    assert done.returncode != 0, done.stdout
    assert f"the test session left 1 process(es) running: pid {pid} (sleep 300)" in done.stdout
