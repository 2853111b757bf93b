"""Integrity of batch directories under races, kills, bad files, full disks and Ctrl-C (issue
10): one process per batch (a lock), an atomic start, verified resume, a version check, one
line and a resumable batch when a write fails or the user interrupts, no Dask web servers,
no unwritable --out, the user's umask. Races and signals use real processes."""

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from analysis.runner import DaskExecutor, read_table, run_files
from market import __version__
from market.cli import cli

BIN = Path(sys.executable).parent
GM = str(BIN / "gpumarket")
#: a small batch: 4 runs of 3 months, each run file about 55 kB
SMALL = ("montecarlo", "baseline", "--runs", "4", "--months", "3")
#: the batch's lock file (analysis.runner.LOCK)
LOCK = "batch.lock"
#: generous bound for a subprocess that should finish (not a timing assertion)
WAIT_S = 300


def gm(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def run_bytes(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in run_files(directory)}


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict[str, bytes]:
    """Run files of the small batch run once, uninterrupted, in this process."""
    out = tmp_path_factory.mktemp("ref") / "mc"
    r = gm(*SMALL, "--workers", 0, "--out", out)
    assert r.exit_code == 0, r.output
    return run_bytes(out)


def group_alive(pgid: int) -> list[int]:
    """Live (not zombie) processes of a process group."""
    alive = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            alive.append(int(entry.name))
    return alive


def wait_group_gone(pgid: int) -> list[int]:
    deadline = time.monotonic() + 60
    while group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.1)
    return group_alive(pgid)


@contextlib.contextmanager
def tmpfs(where: Path, options: str):
    """A small tmpfs mounted at `where` (skips the test where mounting is not permitted)."""
    where.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=True)


def hold_lock(path: Path) -> subprocess.Popen:
    """A real process holding an flock on `path` until its stdin closes."""
    code = textwrap.dedent(f"""
        import fcntl, os, sys
        fd = os.open({str(path)!r}, os.O_RDWR | os.O_CREAT)
        fcntl.flock(fd, fcntl.LOCK_EX)
        print("locked", flush=True)
        sys.stdin.read()
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


# ------------------------------------------------------------------- 1. one owner ---

def test_two_batches_started_into_one_new_directory_one_refuses(tmp_path):
    """Two real processes race into the same new --out within the cluster's start-up: one
    runs, the other exits 2 with one line; the results are all the winner's."""
    out = tmp_path / "mc"
    cmds = [[GM, "montecarlo", "baseline", "--runs", "6", "--months", "12", "--workers", "1",
             "--seed", str(seed), "--out", str(out)] for seed in (0, 1)]
    procs = [subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for c in cmds]
    results = [p.communicate(timeout=WAIT_S) for p in procs]
    codes = [p.returncode for p in procs]
    assert sorted(codes) == [0, 2], (codes, results)
    winner, loser = (0, 1) if codes[0] == 0 else (1, 0)
    err = results[loser][1].strip().splitlines()
    assert len(err) == 1 and str(out) in err[0], err
    # the loser meets the winner's lock (or, had it been slower than the whole batch,
    # the winner's finished batch of another design)
    assert "another gpumarket process holds" in err[0] or "different design" in err[0]
    manifest = json.loads((out / "batch.json").read_text())
    assert manifest["root_seed"] == winner and manifest["completed"] == 6
    prices = read_table(out, "price_index")
    import pandas as pd
    design = pd.read_parquet(out / "design.parquet").set_index("run_id")["seed"]
    seeds = prices.groupby("run_id")["seed"].first()
    assert (seeds == design.loc[seeds.index]).all() and len(seeds) == 6


def test_a_live_lock_refuses_and_a_dead_one_does_not_block(tmp_path):
    out = tmp_path / "mc"
    assert gm(*SMALL, "--workers", 0, "--out", out).exit_code == 0
    (out / "runs" / "run-000002.parquet").unlink()
    holder = hold_lock(out / LOCK)
    try:
        r = gm(*SMALL, "--workers", 1, "--out", out)
        assert r.exit_code == 2
        assert r.output.strip().splitlines() == [
            f"gpumarket: error: {out}: another gpumarket process holds this batch (lock "
            f"{LOCK}); wait for it to end, or use another --out"]
        assert not (out / "runs" / "run-000002.parquet").exists()
    finally:
        holder.kill()                            # dies holding the lock
        holder.communicate(timeout=WAIT_S)
    r = gm(*SMALL, "--workers", 0, "--out", out)
    assert r.exit_code == 0, r.output
    assert "1 runs in" in r.output


# ------------------------------------------------------------ 2. verified resume ---

def test_resume_redoes_empty_truncated_and_foreign_run_files(tmp_path, reference):
    out = tmp_path / "mc"
    assert gm(*SMALL, "--workers", 0, "--out", out).exit_code == 0
    runs = out / "runs"
    (runs / "run-000000.parquet").write_bytes(b"")                       # power loss
    data = (runs / "run-000001.parquet").read_bytes()
    (runs / "run-000001.parquet").write_bytes(data[: len(data) // 2])   # cut short
    (runs / "run-000003.parquet").write_bytes((runs / "run-000002.parquet").read_bytes())
    r = CliRunner().invoke(cli, [*SMALL, "--workers", "0", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert ("gpumarket: 3 run files are empty, truncated or not logged (run 0, 1, 3); "
            "redoing them") in r.output
    assert "3 runs in" in r.output and "4 of 4 runs complete" in r.output
    assert run_bytes(out) == reference


def test_resume_checks_the_logged_row_count(tmp_path, reference):
    """A readable run file of the right run whose row count is not the one logged when it
    was written (here: the log says otherwise) is redone."""
    out = tmp_path / "mc"
    assert gm(*SMALL, "--workers", 0, "--out", out).exit_code == 0
    log = out / "runs.jsonl"
    lines = [json.loads(x) for x in log.read_text().splitlines()]
    assert all(x["rows"] > 0 for x in lines)
    lines[2]["rows"] += 1
    log.write_text("".join(json.dumps(x) + "\n" for x in lines))
    r = gm(*SMALL, "--workers", 0, "--out", out)
    assert r.exit_code == 0, r.output
    assert "gpumarket: 1 run file is empty, truncated or not logged (run 2); redoing it" \
        in r.output
    assert run_bytes(out) == reference


def test_a_run_file_never_logged_is_redone(tmp_path, reference):
    out = tmp_path / "mc"
    assert gm(*SMALL, "--workers", 0, "--out", out).exit_code == 0
    log = out / "runs.jsonl"
    lines = log.read_text().splitlines()
    log.write_text("".join(x + "\n" for x in lines if json.loads(x)["run_id"] != 1))
    r = gm(*SMALL, "--workers", 0, "--out", out)
    assert r.exit_code == 0 and "not logged (run 1); redoing it" in r.output, r.output
    assert run_bytes(out) == reference


def test_reading_a_batch_with_a_truncated_run_file_is_one_line(tmp_path):
    """Before the batch is resumed, `report` meets the cut file: one line naming it and the
    repair, no traceback."""
    out = tmp_path / "mc"
    assert gm(*SMALL, "--workers", 0, "--out", out).exit_code == 0
    bad = out / "runs" / "run-000001.parquet"
    bad.write_bytes(bad.read_bytes()[:1000])
    r = gm("report", out, "--out", tmp_path / "r.html")
    assert r.exit_code == 2, r.output
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"gpumarket: error: {bad}: unreadable run "
                                                   "file (") and "rerun the batch's command" \
        in lines[0], lines


# ------------------------------------------------------------------- 3. versions ---

def test_a_batch_of_another_version_is_refused_unless_allowed(tmp_path, reference):
    out = tmp_path / "mc"
    assert gm(*SMALL, "--workers", 0, "--out", out).exit_code == 0
    manifest = json.loads((out / "batch.json").read_text())
    manifest["gpumarket_version"] = "0.4.0"
    (out / "batch.json").write_text(json.dumps(manifest))
    (out / "runs" / "run-000003.parquet").unlink()
    r = gm(*SMALL, "--workers", 0, "--out", out)
    assert r.exit_code == 2
    assert r.output.strip().splitlines() == [
        f"gpumarket: error: {out}: batch written by gpumarket 0.4.0, this is gpumarket "
        f"{__version__}; use another --out, or add --allow-version-change to continue it "
        "(both versions are then recorded)"]
    assert not (out / "runs" / "run-000003.parquet").exists()
    r = gm(*SMALL, "--workers", 0, "--out", out, "--allow-version-change")
    assert r.exit_code == 0, r.output
    manifest = json.loads((out / "batch.json").read_text())
    assert manifest["gpumarket_versions"] == ["0.4.0", __version__]
    assert run_bytes(out) == reference
    assert gm(*SMALL, "--workers", 0, "--out", out).exit_code == 0    # both recorded now


def test_sensitivity_takes_the_version_flag(tmp_path):
    r = gm("sensitivity", "baseline", "--help")
    assert "--allow-version-change" in r.output


# -------------------------------------------------------------- 4. atomic start ---

def test_a_start_killed_before_its_rename_leaves_only_a_sibling_that_is_cleaned(tmp_path):
    """What a kill during the start leaves (a hidden sibling with an unheld lock, no
    manifest) is removed by the next start; one still held by a live process is not."""
    out = tmp_path / "mc"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    stale = tmp_path / f".mc.batch-{dead}-0badc0de.new"
    (stale / "runs").mkdir(parents=True)
    (stale / LOCK).touch()
    (stale / "design.parquet").write_bytes(b"PAR1 half")
    no_lock = tmp_path / f".mc.batch-{dead}-0000beef.new"
    no_lock.mkdir()
    live = tmp_path / ".mc.batch-1-feedface.new"
    live.mkdir()
    holder = hold_lock(live / LOCK)
    try:
        r = gm(*SMALL, "--workers", 0, "--out", out)
        assert r.exit_code == 0, r.output
        assert not stale.exists() and not no_lock.exists() and live.exists()
    finally:
        holder.communicate(timeout=WAIT_S)          # closes its stdin: it lets go
    assert sorted(p.name for p in tmp_path.iterdir()) == [".mc.batch-1-feedface.new", "mc"]
    assert {p.name for p in out.iterdir()} == {"batch.json", "batch.lock", "design.parquet",
                                               "runs", "runs.jsonl"}


def test_a_directory_left_with_runs_but_no_manifest_is_started(tmp_path, reference):
    """0.5.0 killed between creating runs/ and writing batch.json left this; it was then
    refused as 'not a gpumarket batch'."""
    out = tmp_path / "mc"
    (out / "runs").mkdir(parents=True)
    (out / "runs" / "run-000000.parquet.77.tmp").write_bytes(b"half")
    r = gm(*SMALL, "--workers", 0, "--out", out)
    assert r.exit_code == 0, r.output
    assert run_bytes(out) == reference
    assert not list(out.rglob("*.tmp"))


def test_a_batch_left_without_its_design_gets_it_on_resume(tmp_path, reference):
    """0.5.0 killed after batch.json left design.parquet unwritten, for good."""
    out = tmp_path / "mc"
    assert gm(*SMALL, "--workers", 0, "--out", out).exit_code == 0
    design = (out / "design.parquet").read_bytes()
    (out / "design.parquet").unlink()
    (out / "runs" / "run-000001.parquet").unlink()
    assert gm(*SMALL, "--workers", 0, "--out", out).exit_code == 0
    assert (out / "design.parquet").read_bytes() == design
    assert run_bytes(out) == reference


def test_an_existing_empty_directory_is_started_in_place(tmp_path, reference):
    out = tmp_path / "mc"
    out.mkdir()
    assert gm(*SMALL, "--workers", 0, "--out", out).exit_code == 0
    assert run_bytes(out) == reference


def test_a_new_batch_appears_complete_or_not_at_all(tmp_path):
    """Kill a start at several moments: the directory is either absent or holds a complete
    start (manifest, design, runs/), and rerunning finishes it."""
    for k, delay_s in enumerate((0.5, 1.0, 1.5, 2.0, 3.0)):
        out = tmp_path / f"mc{k}"
        proc = subprocess.Popen([GM, *SMALL, "--workers", "0", "--out", str(out)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay_s)
        proc.kill()
        proc.wait(timeout=WAIT_S)
        if out.exists():
            assert {"batch.json", "design.parquet", "runs"} <= {p.name for p in out.iterdir()}
            json.loads((out / "batch.json").read_text())
        r = gm(*SMALL, "--workers", 0, "--out", out)
        assert r.exit_code == 0, r.output
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


# ----------------------------------------------------------------- 5. full disk ---

def limited_run(args: list[str], limit_bytes: int) -> subprocess.CompletedProcess:
    """gpumarket with a file size limit (RLIMIT_FSIZE; Python ignores SIGXFSZ, so a write
    past the limit fails with EFBIG, as on a full disk); Dask workers inherit the limit."""
    code = ("import os, resource, sys; "
            f"resource.setrlimit(resource.RLIMIT_FSIZE, ({limit_bytes}, {limit_bytes})); "
            "os.execv(sys.argv[1], sys.argv[1:])")
    return subprocess.run([sys.executable, "-c", code, GM, *args], capture_output=True,
                          text=True, timeout=WAIT_S, start_new_session=True)


@pytest.mark.parametrize("workers", ["0", "1"])
def test_a_failed_write_stops_the_batch_with_one_line_and_it_resumes(tmp_path, reference,
                                                                      workers):
    out = tmp_path / "mc"
    args = [*SMALL, "--workers", workers, "--out", str(out)]
    # room for the manifest (3 kB), design (11 kB) and log, not for a 55 kB run file
    result = limited_run(args, limit_bytes=30_000)
    assert result.returncode == 1, result.stdout + result.stderr
    err = result.stderr.strip().splitlines()
    assert len(err) == 1, result.stderr
    assert err[0].startswith(f"gpumarket: error: cannot write {out.resolve()}/runs/run-0000")
    assert ".parquet (File too large); the batch stopped with 0 of 4 runs complete: free " \
           "space and rerun the same command to resume" in err[0]
    assert "Traceback" not in result.stdout
    assert not run_files(out) and not (out / "runs.jsonl").exists()    # stopped at once
    again = subprocess.run([GM, *args], capture_output=True, text=True, timeout=WAIT_S)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "4 of 4 runs complete" in again.stdout
    assert run_bytes(out) == reference


@pytest.mark.parametrize("workers", ["0", "1"])
def test_a_full_disk_stops_the_batch_with_one_line_and_it_resumes(tmp_path, reference,
                                                                   workers):
    """The same on a real full filesystem (ENOSPC): a 64 kB tmpfs holds the start, not a
    run file; once it is given room, rerunning resumes."""
    with tmpfs(tmp_path / "disk", "size=64k") as disk:
        out = disk / "mc"
        args = [*SMALL, "--workers", workers, "--out", str(out)]
        result = subprocess.run([GM, *args], capture_output=True, text=True, timeout=WAIT_S)
        assert result.returncode == 1, result.stdout + result.stderr
        err = result.stderr.strip().splitlines()
        assert len(err) == 1 and "(No space left on device); the batch stopped with 0 of 4 " \
            "runs complete: free space and rerun the same command to resume" in err[0], err
        assert not run_files(out)
        subprocess.run(["mount", "-o", "remount,size=4m", str(disk)], check=True)
        again = subprocess.run([GM, *args], capture_output=True, text=True, timeout=WAIT_S)
        assert again.returncode == 0, again.stdout + again.stderr
        assert run_bytes(out) == reference


# ----------------------------------------------------------------------- 6. Ctrl-C ---

@pytest.mark.parametrize("workers", ["0", "1"])
def test_ctrl_c_prints_one_line_exits_130_and_leaves_no_process(tmp_path, reference, workers):
    out = tmp_path / "mc"
    args = ["montecarlo", "baseline", "--runs", "4", "--months", "3", "--workers", workers,
            "--out", str(out)]
    slow = ["montecarlo", "baseline", "--runs", "40", "--months", "36", "--workers", workers,
            "--out", str(tmp_path / "slow")]
    proc = subprocess.Popen([GM, *slow], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + WAIT_S
        while not run_files(tmp_path / "slow") and time.monotonic() < deadline \
                and proc.poll() is None:
            time.sleep(0.05)
        assert proc.poll() is None, "the batch ended before it could be interrupted"
        os.killpg(proc.pid, signal.SIGINT)                # Ctrl-C: the whole group
        stdout, stderr = proc.communicate(timeout=WAIT_S)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=WAIT_S)
    assert proc.returncode == 130, stderr
    assert stderr == "gpumarket: interrupted; rerun the same command to resume\n"
    assert wait_group_gone(proc.pid) == []
    done = len(run_files(tmp_path / "slow"))
    assert 1 <= done < 40
    # the interrupted batch resumes (a small one here, to keep the test short)
    assert subprocess.run([GM, *args], capture_output=True, timeout=WAIT_S).returncode == 0
    assert run_bytes(out) == reference


# -------------------------------------------------------------- 7. no web pages ---

def listening_ports(pid: int) -> set[int]:
    import psutil

    me = psutil.Process(pid)
    return {c.laddr.port for p in [me, *me.children(recursive=True)]
            for c in p.net_connections("tcp") if c.status == psutil.CONN_LISTEN}


def test_the_local_cluster_serves_no_web_pages():
    """Only the scheduler's, nannies' and workers' own comm ports listen: no dashboard (it
    was on 127.0.0.1:8787) and no worker HTTP server."""
    executor = DaskExecutor(workers=1)
    try:
        info = executor.client.scheduler_info()
        comm = {int(info["address"].rsplit(":", 1)[1])}
        for address, worker in info["workers"].items():
            comm.add(int(address.rsplit(":", 1)[1]))
            comm.add(int(worker["nanny"].rsplit(":", 1)[1]))
        assert info["services"] == {}
        assert listening_ports(os.getpid()) == comm
    finally:
        executor.close()


# ---------------------------------------------------------- 8. unwritable --out ---

@pytest.mark.parametrize("where", ["/proc/gpumarket-x", "/sys/gpumarket-x", "file/x"])
@pytest.mark.parametrize("command", [
    ["montecarlo", "baseline", "--runs", "2"],
    ["sensitivity", "baseline", "--samples", "1"],
])
def test_out_that_cannot_be_written_is_refused_before_any_run(tmp_path, monkeypatch, where,
                                                              command):
    monkeypatch.chdir(tmp_path)
    Path("file").write_text("a regular file")
    r = gm(*command, "--months", 2, "--workers", 1, "--out", where)
    assert r.exit_code == 2, r.output
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        f"gpumarket: error: {where}: cannot create the batch directory ("), lines
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_out_on_a_read_only_filesystem_is_refused(tmp_path):
    with tmpfs(tmp_path / "ro", "ro,size=64k") as ro:
        r = gm("montecarlo", "baseline", "--runs", 2, "--months", 2, "--workers", 1,
               "--out", ro / "mc")
        assert r.exit_code == 2
        assert r.output.strip().splitlines() == [
            f"gpumarket: error: {ro / 'mc'}: cannot create the batch directory (Read-only "
            "file system)"]


# ------------------------------------------------------------------- 9. umask ---

def test_batch_directories_follow_the_umask(tmp_path):
    out = tmp_path / "mc"
    code = "import os, sys; os.umask(0o027); os.execv(sys.argv[1], sys.argv[1:])"
    result = subprocess.run([sys.executable, "-c", code, GM, *SMALL, "--workers", "0",
                             "--out", str(out)], capture_output=True, text=True,
                            timeout=WAIT_S)
    assert result.returncode == 0, result.stderr
    assert (out.stat().st_mode & 0o777) == 0o750
    assert ((out / "runs").stat().st_mode & 0o777) == 0o750
    for path in [out / "batch.json", out / "design.parquet", *run_files(out)]:
        assert (path.stat().st_mode & 0o777) == 0o640, path
