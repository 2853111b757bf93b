"""Output directories of `run` and `compare` and the file of `report` (issue 10): what --force
may replace, races between two real processes, names derived from scenarios, unusable places,
full disks, leftovers of killed writers, modes, and --json. Real files, real processes."""

import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from market.cli import cli
from market.errors import GpumarketError
from market.outputs import OutputClaim, rename_noreplace

#: The CLI in a child process, with this worktree's code (PYTHONPATH is inherited).
GPUMARKET = [sys.executable, "-c", "from market.cli import main; main()"]

#: Upper bound on any child process of these tests [s]: a hung child fails, never blocks.
CHILD_TIMEOUT_S = 300


def gm(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def spawn(*args, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([*GPUMARKET, *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kwargs)


def finish(proc: subprocess.Popen) -> tuple[int, str, str]:
    try:
        out, err = proc.communicate(timeout=CHILD_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise
    return proc.returncode, out, err


def one_error_line(stderr: str) -> str:
    """The single line a user error prints (and no traceback)."""
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gpumarket: error: "), stderr
    return lines[0]


def dead_pid() -> int:
    """The id of a process that has exited (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait(timeout=CHILD_TIMEOUT_S)
    return proc.pid


@pytest.fixture
def model_must_not_run(monkeypatch):
    """A tripwire on the model: the output location is checked before any model time."""
    import market.outputs

    def tripwire(*args, **kwargs):
        raise AssertionError("the model ran before the output location was checked")

    monkeypatch.setattr(market.outputs, "run_tables", tripwire)


def mount_tmpfs(where: Path, options: str) -> None:
    where.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)],
                          capture_output=True, timeout=CHILD_TIMEOUT_S)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")


@pytest.fixture
def tmpfs(tmp_path):
    """Mount a tmpfs with the given options (skip where mounting is not permitted)."""
    mounted = []

    def mount(options: str) -> Path:
        where = tmp_path / f"mnt{len(mounted)}"
        mount_tmpfs(where, options)
        mounted.append(where)
        return where

    yield mount
    for where in mounted:
        subprocess.run(["umount", str(where)], check=True, timeout=CHILD_TIMEOUT_S)


def write_scenario(path: Path, name: str, end: str = "2022-04") -> Path:
    path.write_text(f'extends = "baseline"\nname = {json.dumps(name)}\nend = "{end}"\n')
    return path


# ---------------------------------------------------------------- 1: --force replaces ---

def test_run_force_refuses_a_directory_of_the_users_files(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "thesis.docx").write_bytes(b"years of work")
    r = gm("run", "baseline", "--months", 2, "--out", docs, "--force")
    assert r.exit_code == 2
    line = one_error_line(r.stderr)
    assert "not replaced" in line and "thesis.docx" in line and "--out" in line
    assert [p.name for p in docs.iterdir()] == ["thesis.docx"]
    assert (docs / "thesis.docx").read_bytes() == b"years of work"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["docs"]


def test_run_force_refuses_a_gpumarket_directory_the_user_added_to(tmp_path):
    out = tmp_path / "out"
    assert gm("run", "baseline", "--months", 2, "--out", out, "--quiet").exit_code == 0
    (out / "notes.txt").write_text("mine")
    r = gm("run", "baseline", "--months", 3, "--out", out, "--force", "--quiet")
    assert r.exit_code == 2 and "notes.txt" in one_error_line(r.stderr)
    assert (out / "notes.txt").read_text() == "mine"
    assert json.loads((out / "manifest.json").read_text())["months"] == 2


def test_run_force_replaces_its_own_output_and_a_0_5_0_run_directory(tmp_path):
    out = tmp_path / "out"
    assert gm("run", "baseline", "--months", 2, "--out", out, "--quiet").exit_code == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert sorted(manifest["entries"]) == sorted(p.name for p in out.iterdir())
    assert gm("run", "baseline", "--months", 3, "--out", out, "--force",
              "--quiet").exit_code == 0
    assert json.loads((out / "manifest.json").read_text())["months"] == 3
    # 0.5.0 listed no entries: its known table files, scenario.toml and manifest.json qualify
    manifest = json.loads((out / "manifest.json").read_text())
    del manifest["entries"], manifest["kind"]
    (out / "manifest.json").write_text(json.dumps(manifest))
    (out / "labs.parquet").unlink()
    assert gm("run", "baseline", "--months", 4, "--out", out, "--force",
              "--quiet").exit_code == 0
    assert json.loads((out / "manifest.json").read_text())["months"] == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_run_force_refuses_a_link_and_a_0_5_0_lookalike_with_other_files(tmp_path):
    out = tmp_path / "out"
    assert gm("run", "baseline", "--months", 2, "--out", out, "--quiet").exit_code == 0
    manifest = json.loads((out / "manifest.json").read_text())
    del manifest["entries"]
    (out / "manifest.json").write_text(json.dumps(manifest))
    (out / "draft.txt").write_text("mine")
    r = gm("run", "baseline", "--months", 2, "--out", out, "--force")
    assert r.exit_code == 2 and "draft.txt" in one_error_line(r.stderr)
    (out / "draft.txt").unlink()
    link = tmp_path / "link"
    link.symlink_to(out)
    r = gm("run", "baseline", "--months", 2, "--out", link, "--force")
    assert r.exit_code == 2 and "symbolic link" in one_error_line(r.stderr)
    assert link.is_symlink() and (out / "manifest.json").exists()


def test_run_force_refuses_a_hand_written_manifest_that_lists_the_users_file(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text("<h1>mine</h1>")
    (site / "manifest.json").write_text(json.dumps(
        {"kind": "run", "gpumarket_version": "0.1", "entries": ["index.html", "manifest.json"]}))
    r = gm("run", "baseline", "--months", 2, "--out", site, "--force")
    assert r.exit_code == 2
    line = one_error_line(r.stderr)
    assert "not replaced" in line and "(index.html)" in line
    assert (site / "index.html").read_text() == "<h1>mine</h1>"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["site"]


def test_run_force_refuses_a_file_changed_since_gpumarket_wrote_it(tmp_path):
    out = tmp_path / "out"
    assert gm("run", "baseline", "--months", 2, "--out", out, "--quiet").exit_code == 0
    hashes = json.loads((out / "manifest.json").read_text())["files_sha256"]
    assert sorted(hashes) == sorted(p.name for p in out.iterdir() if p.name != "manifest.json")
    with (out / "scenario.toml").open("a") as fh:
        fh.write("# my notes\n")
    r = gm("run", "baseline", "--months", 3, "--out", out, "--force", "--quiet")
    assert r.exit_code == 2 and "(scenario.toml)" in one_error_line(r.stderr)
    assert (out / "scenario.toml").read_text().endswith("# my notes\n")

def test_run_force_with_an_older_manifest_replaces_only_the_scenario_toml_it_wrote(tmp_path):
    """A run manifest of 0.18.0 or older hashed the tables, not scenario.toml: the file counts
    as gpumarket's only while it is the resolved scenario as gpumarket writes it."""
    out = tmp_path / "out"
    assert gm("run", "baseline", "--months", 2, "--out", out, "--quiet").exit_code == 0
    written = (out / "scenario.toml").read_bytes()
    manifest = json.loads((out / "manifest.json").read_text())
    del manifest["files_sha256"]
    (out / "manifest.json").write_text(json.dumps(manifest))
    # the user's own scenario put in its place, and the same scenario with a note added
    for mine in (b'name = "baseline"\nstart = "2022-01"  # mine\n', written + b"# mine\n",
                 written.replace(b'name = "baseline"', b'name = "my-world"')):
        (out / "scenario.toml").write_bytes(mine)
        r = gm("run", "baseline", "--months", 3, "--out", out, "--force", "--quiet")
        assert r.exit_code == 2 and "(scenario.toml)" in one_error_line(r.stderr)
        assert (out / "scenario.toml").read_bytes() == mine
    (out / "scenario.toml").write_bytes(written)
    assert gm("run", "baseline", "--months", 3, "--out", out, "--force",
              "--quiet").exit_code == 0
    assert json.loads((out / "manifest.json").read_text())["months"] == 3


def test_compare_force_refuses_the_users_directory_and_replaces_its_own(tmp_path):
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "thesis.docx").write_text("mine")
    r = gm("compare", "baseline", "no-controls", "--dates", "2022-03", "--out", notes,
           "--force")
    assert r.exit_code == 2 and "thesis.docx" in one_error_line(r.stderr)
    assert [p.name for p in notes.iterdir()] == ["thesis.docx"]
    out = tmp_path / "cmp"
    a = write_scenario(tmp_path / "a.toml", "a")
    b = write_scenario(tmp_path / "b.toml", "b")
    assert gm("compare", a, b, "--dates", "2022-03", "--out", out).exit_code == 0
    top = json.loads((out / "manifest.json").read_text())
    assert top["kind"] == "compare" and sorted(top["entries"]) == [
        "a/", "b/", "comparison.csv", "manifest.json", "trajectories.png"]
    assert gm("compare", a, b, "--dates", "2022-03", "--out", out, "--force").exit_code == 0
    (out / "b" / "my-plot.png").write_bytes(b"png")
    r = gm("compare", a, b, "--dates", "2022-03", "--out", out, "--force")
    assert r.exit_code == 2 and "b/my-plot.png" in one_error_line(r.stderr)
    assert (out / "b" / "my-plot.png").exists()
    (out / "b" / "my-plot.png").unlink()
    (out / "comparison.csv").write_text("my edits")            # a file gpumarket wrote, changed
    r = gm("compare", a, b, "--dates", "2022-03", "--out", out, "--force")
    assert r.exit_code == 2 and "(comparison.csv)" in one_error_line(r.stderr)
    assert (out / "comparison.csv").read_text() == "my edits"


# ---------------------------------------------------------------------- 2: races ---

def test_two_runs_into_one_new_directory_one_wins_and_the_other_says_so(tmp_path):
    """Two real processes started together, three times: exactly one succeeds, the other
    exits 2 with one line, and the directory holds the winner's complete result."""
    for trial in range(3):
        out = tmp_path / f"s{trial}"
        procs = {seed: spawn("run", "baseline", "--seed", seed, "--out", out, "--quiet")
                 for seed in (1, 2)}
        results = {seed: finish(p) for seed, p in procs.items()}
        codes = sorted(rc for rc, _, _ in results.values())
        assert codes == [0, 2], results
        winner = next(seed for seed, (rc, _, _) in results.items() if rc == 0)
        loser = next(r for r in results.values() if r[0] == 2)
        assert re.search(r"another gpumarket process|already exists|appeared",
                         one_error_line(loser[2]))
        manifest = json.loads((out / "manifest.json").read_text())
        assert manifest["seed"] == winner
        assert sorted(manifest["entries"]) == sorted(p.name for p in out.iterdir())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s0", "s1", "s2"]


def test_a_claimed_directory_is_refused_before_the_model_runs(tmp_path):
    out = tmp_path / "s"
    with OutputClaim(out) as claim:
        rc, stdout, stderr = finish(spawn("run", "baseline", "--out", out))
        assert rc == 2 and stdout == ""
        line = one_error_line(stderr)
        assert f"another gpumarket process (pid {os.getpid()}) is writing it" in line
        assert not out.exists() and claim.tmp.is_dir()
    assert list(tmp_path.iterdir()) == []          # the claim leaves nothing behind
    rc, _, stderr = finish(spawn("run", "baseline", "--months", 2, "--out", out, "--quiet"))
    assert rc == 0, stderr


def test_a_claim_of_a_killed_process_does_not_block(tmp_path):
    out = tmp_path / "s"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from market.outputs import OutputClaim\n"
         f"with OutputClaim({str(out)!r}):\n    print('claimed', flush=True)\n"
         "    time.sleep(600)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "claimed"
        rc, _, stderr = finish(spawn("run", "baseline", "--months", 2, "--out", out))
        assert rc == 2 and "another gpumarket process" in one_error_line(stderr)
    finally:
        holder.kill()
        holder.wait(timeout=CHILD_TIMEOUT_S)
        holder.stdout.close()
    assert any(p.name.endswith(".tmp") for p in tmp_path.iterdir())
    rc, _, stderr = finish(spawn("run", "baseline", "--months", 2, "--out", out, "--quiet"))
    assert rc == 0, stderr
    assert [p.name for p in tmp_path.iterdir()] == ["s"]


def test_publishing_never_replaces_a_directory_that_appeared_meanwhile(tmp_path):
    out = tmp_path / "s"
    with pytest.raises(GpumarketError, match="appeared while this run was computing"):
        with OutputClaim(out) as claim:
            (claim.tmp / "prices.parquet").write_bytes(b"result")
            out.mkdir()                     # another program, while we computed
            claim.publish()
    assert out.is_dir() and list(out.iterdir()) == []
    assert [p.name for p in tmp_path.iterdir()] == ["s"]


def test_force_never_replaces_a_directory_the_user_wrote_into_meanwhile(tmp_path):
    out = tmp_path / "s"
    assert gm("run", "baseline", "--months", 2, "--out", out, "--quiet").exit_code == 0
    with pytest.raises(GpumarketError, match=r"not replaced: .*notes\.txt"):
        with OutputClaim(out, force=True) as claim:
            (claim.tmp / "prices.parquet").write_bytes(b"result")
            (out / "notes.txt").write_text("mine")       # the user, while we computed
            claim.publish()
    assert (out / "notes.txt").read_text() == "mine" and (out / "labs.parquet").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["s"]


def test_rename_noreplace_refuses_an_empty_directory_also_without_renameat2(tmp_path,
                                                                            monkeypatch):
    """os.rename would silently put a directory in place of an empty one."""
    import market.files

    for fallback in (False, True):
        if fallback:
            monkeypatch.setattr(market.files, "renameat2_func", None)
        src, dst = tmp_path / f"src{fallback}", tmp_path / f"dst{fallback}"
        src.mkdir()
        (src / "f").write_text("x")
        dst.mkdir()
        assert rename_noreplace(src, dst) is False
        assert (src / "f").exists() and list(dst.iterdir()) == []
        dst.rmdir()
        assert rename_noreplace(src, dst) is True
        assert (dst / "f").exists() and not src.exists()


def test_force_without_renameat2_replaces_only_gpumarket_output(tmp_path, monkeypatch):
    """The portable path (rename aside, then a no-replace rename) keeps the same rules."""
    import market.files

    monkeypatch.setattr(market.files, "renameat2_func", None)
    out = tmp_path / "s"
    assert gm("run", "baseline", "--months", 2, "--out", out, "--quiet").exit_code == 0
    assert gm("run", "baseline", "--months", 3, "--out", out, "--force",
              "--quiet").exit_code == 0
    assert json.loads((out / "manifest.json").read_text())["months"] == 3
    (out / "mine.txt").write_text("mine")
    r = gm("run", "baseline", "--months", 2, "--out", out, "--force")
    assert r.exit_code == 2 and "mine.txt" in one_error_line(r.stderr)
    assert (out / "mine.txt").exists() and [p.name for p in tmp_path.iterdir()] == ["s"]


def test_concurrent_forced_runs_leave_one_complete_gpumarket_directory(tmp_path):
    out = tmp_path / "s"
    assert gm("run", "baseline", "--months", 2, "--out", out, "--quiet").exit_code == 0
    procs = {seed: spawn("run", "baseline", "--seed", seed, "--out", out, "--force", "--quiet")
             for seed in (1, 2)}
    results = {seed: finish(p) for seed, p in procs.items()}
    for rc, _, stderr in results.values():
        assert rc == 0 or (rc == 2 and "another gpumarket process" in one_error_line(stderr))
    manifest = json.loads((out / "manifest.json").read_text())
    assert results[manifest["seed"]][0] == 0
    assert sorted(manifest["entries"]) == sorted(p.name for p in out.iterdir())
    assert [p.name for p in tmp_path.iterdir()] == ["s"]


# ------------------------------------------------------- 3: compare's folder names ---

def test_compare_keeps_path_like_scenario_names_inside_out(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    outside = tmp_path / "where"
    up = write_scenario(tmp_path / "up.toml", "../x")
    absolute = write_scenario(tmp_path / "abs.toml", str(outside))
    out = work / "notes"
    r = gm("compare", up, absolute, "--dates", "2022-03", "--out", out)
    assert r.exit_code == 0, r.output
    assert not outside.exists() and sorted(p.name for p in tmp_path.iterdir()) == [
        "abs.toml", "up.toml", "work"]
    assert [p.name for p in work.iterdir()] == ["notes"]
    folder = str(outside).strip("/").replace("/", "-")
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["x", folder, "comparison.csv", "trajectories.png", "manifest.json"])
    assert json.loads((out / "x" / "manifest.json").read_text())["scenario"] == "../x"
    assert json.loads((out / "manifest.json").read_text())["scenarios"] == {
        "x": "../x", folder: str(outside)}


def test_compare_refuses_names_that_would_share_a_folder(tmp_path, model_must_not_run):
    a = write_scenario(tmp_path / "a.toml", "a/b")
    b = write_scenario(tmp_path / "b.toml", "a-b")
    c = write_scenario(tmp_path / "c.toml", "a-b")
    out = tmp_path / "out"
    r = gm("compare", a, b, "--out", out)
    assert r.exit_code == 2 and "would both be written to 'a-b'" in one_error_line(r.stderr)
    r = gm("compare", b, c)
    assert r.exit_code == 2 and "are both named 'a-b'" in one_error_line(r.stderr)
    assert not out.exists()


# -------------------------------------------------- 4: unusable output locations ---

def _unusable(tmp_path: Path) -> list[Path]:
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    return [Path("/proc/x"), Path("/sys/x"), a_file / "x"]


@pytest.mark.parametrize("command", [
    ["run", "baseline"],
    ["compare", "baseline", "no-controls"],
])
def test_unwritable_out_is_one_line_before_any_model_time(tmp_path, command,
                                                          model_must_not_run):
    for out in _unusable(tmp_path):
        r = gm(*command, "--out", out)
        assert r.exit_code == 2 and r.stdout == "", r.output
        assert str(out) in one_error_line(r.stderr)
        assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["a-file"]


@pytest.mark.parametrize("command", [
    ["run", "baseline"],
    ["compare", "baseline", "no-controls"],
])
def test_read_only_file_system_is_one_line_before_any_model_time(tmp_path, tmpfs, command,
                                                                 model_must_not_run):
    read_only = tmpfs("ro,size=1m")
    r = gm(*command, "--out", read_only / "out")
    assert r.exit_code == 2 and "Read-only file system" in one_error_line(r.stderr)
    assert list(read_only.iterdir()) == []


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    """A small real Monte Carlo batch to report on."""
    out = tmp_path_factory.mktemp("batch") / "mc"
    r = gm("montecarlo", "baseline", "--runs", 2, "--months", 6, "--workers", 0, "--out", out)
    assert r.exit_code == 0, r.output
    return out


def test_report_out_checked_before_any_work(tmp_path, batch, tmpfs, monkeypatch):
    import analysis.report

    def tripwire(*args, **kwargs):
        raise AssertionError("the report read the batch before checking --out")

    monkeypatch.setattr(analysis.report, "read_tables", tripwire)
    (tmp_path / "thesis.docx").write_text("mine")
    read_only = tmpfs("ro,size=1m")
    cases = [(tmp_path, "is a directory"), (Path("/proc/x/r.html"), "does not exist"),
             (Path("/sys/r.html"), "cannot write there"),
             (tmp_path / "thesis.docx" / "r.html", "is not a directory"),
             (tmp_path / "thesis.docx", "not written by gpumarket"),
             (read_only / "r.html", "Read-only file system")]
    for out, message in cases:
        r = gm("report", batch, "--out", out)
        assert r.exit_code == 2 and message in one_error_line(r.stderr), (out, r.output)
    assert (tmp_path / "thesis.docx").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mnt0", "thesis.docx"]
    assert list(read_only.iterdir()) == []


def test_report_replaces_its_own_file(tmp_path, batch):
    out = tmp_path / "r.html"
    assert gm("report", batch, "--out", out).exit_code == 0
    assert gm("report", batch, "--out", out).exit_code == 0
    assert "<title>gpumarket batch report:" in out.read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["r.html"]


# --------------------------------------------------------------------- 5: full disk ---

def test_run_on_a_full_disk_is_one_line_and_leaves_nothing(tmpfs):
    small = tmpfs("size=64k")
    r = gm("run", "baseline", "--months", 12, "--out", small / "out")
    assert r.exit_code == 2
    assert "No space left on device" in one_error_line(r.stderr)
    assert list(small.iterdir()) == []


def _file_size_limit(limit_bytes: int):
    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)   # writes fail with EFBIG instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))
    return limit


@pytest.mark.parametrize("command", [
    ["run", "baseline", "--months", "12"],
    ["compare", "baseline", "no-controls", "--dates", "2022-03"],
])
def test_a_failed_write_is_one_line_and_leaves_nothing(tmp_path, command):
    """RLIMIT_FSIZE stands in for a full disk: every write past 16 KiB fails (EFBIG)."""
    out = tmp_path / "out"
    rc, stdout, stderr = finish(spawn(*command, "--out", out,
                                      preexec_fn=_file_size_limit(16 * 1024)))
    assert rc == 2 and stdout == ""
    line = one_error_line(stderr)
    assert "File too large" in line and "nothing was written" in line
    assert list(tmp_path.iterdir()) == []


def test_report_on_a_full_disk_is_one_line_and_leaves_nothing(tmp_path, batch):
    out = tmp_path / "r.html"
    rc, _, stderr = finish(spawn("report", batch, "--out", out,
                                 preexec_fn=_file_size_limit(16 * 1024)))
    assert rc == 2 and "File too large" in one_error_line(stderr)
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------- 6: leftovers of kills ---

def test_a_killed_run_leaves_pid_named_leftovers_the_next_run_removes(tmp_path):
    out = tmp_path / "s"
    for _ in range(20):                     # until a kill lands while the run computes
        proc = spawn("run", "baseline", "--out", out, "--quiet")
        pattern = re.compile(rf"\.s\.{proc.pid}\.[0-9a-f]+\.tmp")
        while proc.poll() is None and not any(pattern.fullmatch(p.name)
                                              for p in tmp_path.iterdir()):
            time.sleep(0.005)
        proc.kill()
        finish(proc)
        if not out.exists():
            break
        shutil.rmtree(out)                  # it finished first: try again
    left = sorted(p.name for p in tmp_path.iterdir())
    assert any(pattern.fullmatch(name) for name in left), left
    # planted: a live process's build, a dead one's 0.5.0-style replaced run, a dead one's
    # replaced directory holding a user's file, and a name gpumarket never gives
    live = tmp_path / f".s.{os.getpid()}.00c0ffee.tmp"
    live.mkdir()
    dead = dead_pid()
    assert gm("run", "baseline", "--months", 2, "--out", tmp_path / "donor",
              "--quiet").exit_code == 0
    (tmp_path / "donor").rename(tmp_path / f".s.old-{dead}")
    kept = tmp_path / f".s.{dead}.0badf00d.old"
    kept.mkdir()
    (kept / "thesis.docx").write_text("mine")
    (tmp_path / ".s.backup").mkdir()
    r = gm("run", "baseline", "--months", 2, "--out", out, "--quiet")
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [".s.backup", kept.name, live.name, "s"])
    assert (kept / "thesis.docx").read_text() == "mine"


# -------------------------------------------------------------------------- 7: umask ---

@pytest.mark.parametrize("umask, dir_mode, file_mode", [(0o022, 0o755, 0o644),
                                                         (0o077, 0o700, 0o600)])
def test_outputs_follow_the_umask(tmp_path, umask, dir_mode, file_mode):
    previous = os.umask(umask)
    try:
        assert gm("run", "baseline", "--months", 2, "--out", tmp_path / "run",
                  "--quiet").exit_code == 0
        assert gm("compare", "baseline", "no-controls", "--dates", "2022-03", "--out",
                  tmp_path / "cmp").exit_code == 0
    finally:
        os.umask(previous)
    for directory in (tmp_path / "run", tmp_path / "cmp", tmp_path / "cmp" / "baseline"):
        assert directory.stat().st_mode & 0o777 == dir_mode
        assert (directory / "manifest.json").stat().st_mode & 0o777 == file_mode


# --------------------------------------------------------------------------- 8: --json ---

def test_run_json_has_key_outcomes_with_units_and_nothing_else(tmp_path):
    out = tmp_path / "out"
    r = gm("run", "baseline", "--months", 18, "--seed", 3, "--out", out, "--json")
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["scenario"] == "baseline" and data["seed"] == 3 and data["months"] == 18
    assert data["dates"] == ["2023-06"] and data["end"] == "2023-06"
    assert data["out"] == str(out) and "manifest.json" in data["files"]
    index = pd.read_parquet(out / "price_index.parquet")
    row = index[(index["date"] == "2023-06-01") & (index["region"] == "US")
                & (index["tier"] == "neocloud") & (index["instrument"] == "spot")]
    outcomes = data["outcomes"]
    assert outcomes["price_usd_per_h100e_hour"]["US"]["neocloud"]["spot"]["2023-06"] == \
        pytest.approx(row["price_usd_per_h100e_hour"].item(), rel=1e-12)
    compute = pd.read_parquet(out / "compute.parquet")
    share = compute[(compute["date"] == "2023-06-01") & (compute["nation"] == "China")]
    assert outcomes["share_of_installed_h100e"]["China"]["2023-06"] == \
        pytest.approx(share["share"].item(), rel=1e-12)
    shares = outcomes["vendor_share_of_shipped_h100e_trailing_12_months"]
    assert sum(v["2023-06"] for v in shares.values()) == pytest.approx(1.0)
    r = gm("run", "baseline", "--months", 3, "--json")
    assert json.loads(r.stdout)["out"] is None


def test_compare_json_per_scenario_with_folders(tmp_path):
    out = tmp_path / "cmp"
    # 2023-03: clouds order chips when a new chip's expected value exceeds its cost, which in
    # the model's flat 2022 market it does only from late 2022 (H100 launch, demand surge)
    r = gm("compare", "baseline", "no-controls", "--dates", "2023-03", "--out", out, "--json")
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["seed"] == 0 and data["dates"] == ["2023-03"] and data["out"] == str(out)
    by_name = {s["name"]: s for s in data["scenarios"]}
    assert by_name["no-controls"]["directory"] == "no-controls"
    outcomes = by_name["baseline"]["outcomes"]
    for key in ("price_usd_per_h100e_hour", "share_of_installed_h100e",
                "vendor_revenue_usd_trailing_12_months", "largest_completed_run_flop",
                "chips_diverted_h100e_trailing_12_months",
                "compute_china_labs_rent_abroad_h100e"):
        assert key in outcomes
    assert outcomes["vendor_revenue_usd_trailing_12_months"]["nvidia"]["2023-03"] > 1e8


def test_force_refuses_an_older_manifest_without_hashes_and_says_why(tmp_path):
    """A compare or backtest directory of 0.18.0 or older records no SHA-256 of its files:
    `--force` cannot tell them from a user's, so it refuses and says that (not that they
    changed), deleting nothing."""
    import json

    from market.outputs import replace_refusal

    old = tmp_path / "old"
    old.mkdir()
    (old / "comparison.csv").write_text("scenario,date\n")
    (old / "manifest.json").write_text(json.dumps(
        {"gpumarket_version": "0.18.0", "kind": "compare",
         "entries": ["comparison.csv", "manifest.json"]}))
    reason = replace_refusal(old)
    assert reason is not None and "records no SHA-256" in reason and "comparison.csv" in reason
    assert sorted(p.name for p in old.iterdir()) == ["comparison.csv", "manifest.json"]
