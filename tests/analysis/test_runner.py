"""Batches: files as they arrive, resume, failures, kill-and-resume, equality across executors
(sequential, local Dask cluster, a Dask scheduler and worker started as separate processes)."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from analysis.design import make_design
from analysis.runner import Task, execute, read_table, run_files
from market.cli import cli
from market.processes import stop_process_group
from market.outputs import TABLES
from scenarios.loader import load_scenario

BIN = Path(sys.executable).parent


def gm(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def tables_of(directory: Path) -> dict[str, pd.DataFrame]:
    return {t: read_table(directory, t).sort_values(["run_id"], kind="stable")
            .reset_index(drop=True) for t in TABLES}


def assert_same_tables(a: Path, b: Path) -> None:
    ta, tb = tables_of(a), tables_of(b)
    for name in TABLES:
        pd.testing.assert_frame_equal(ta[name], tb[name], check_exact=True, obj=name)


def test_batch_writes_a_file_per_run_and_a_manifest(tmp_path):
    out = tmp_path / "mc"
    r = gm("montecarlo", "baseline", "--runs", 3, "--months", 6, "--workers", 0, "--out", out)
    assert r.exit_code == 0, r.output
    assert "3 of 3 runs complete, 0 failed" in r.output and "median [5%, 95%]" in r.output
    assert [p.name for p in run_files(out)] == [f"run-{k:06d}.parquet" for k in range(3)]
    manifest = json.loads((out / "batch.json").read_text())
    assert manifest["completed"] == 3 and manifest["failed"] == 0 and manifest["expected"] == 3
    assert manifest["scenario"] == "baseline" and manifest["root_seed"] == 0
    assert manifest["design"]["method"] == "lhs" and len(manifest["per_run"]) == 3
    assert all(s["status"] == "done" and s["seconds"] > 0 for s in manifest["per_run"].values())
    prices = read_table(out, "price_index")
    assert set(prices["run_id"]) == {0, 1, 2}
    assert {c for c in prices if c.startswith("param.")} == \
        {f"param.{p}" for p in load_scenario("baseline").scenario.uncertain}
    design = pd.read_parquet(out / "design.parquet")
    assert list(design["run_id"]) == [0, 1, 2]
    assert (prices.groupby("run_id")["seed"].first().to_numpy() == design["seed"].to_numpy()).all()


def test_run_k_alone_equals_run_k_in_a_batch(tmp_path):
    out = tmp_path / "mc"
    assert gm("montecarlo", "baseline", "--runs", 3, "--months", 4, "--workers", 0,
              "--seed", 5, "--out", out).exit_code == 0
    loaded = load_scenario("baseline")
    run = make_design(loaded.scenario, 3, "lhs", 5).runs[2]
    alone = execute(Task(2, run.seed, run.params, 4,
                         json.dumps(loaded.scenario.model_dump(mode="json"))))
    assert alone.status == "done"
    assert alone.payload == (out / "runs" / "run-000002.parquet").read_bytes()


def test_rerun_skips_finished_runs_and_redoes_missing_ones(tmp_path):
    out = tmp_path / "mc"
    args = ("montecarlo", "baseline", "--runs", 4, "--months", 3, "--workers", 0, "--out", out)
    assert gm(*args).exit_code == 0
    stamps = {p.name: p.stat().st_mtime_ns for p in run_files(out)}
    (out / "runs" / "run-000001.parquet").unlink()
    (out / "runs" / "run-000003.parquet.123.tmp").write_bytes(b"half a file")
    r = gm(*args)
    assert r.exit_code == 0, r.output
    assert "1 runs in" in r.output
    after = {p.name: p.stat().st_mtime_ns for p in run_files(out)}
    assert set(after) == set(stamps)
    assert all(after[n] == stamps[n] for n in stamps if n != "run-000001.parquet")
    assert not list((out / "runs").glob("*.tmp"))
    log = [json.loads(x) for x in (out / "runs.jsonl").read_text().splitlines()]
    assert sorted(x["run_id"] for x in log) == [0, 1, 1, 2, 3]


def test_a_failing_run_is_recorded_and_the_batch_goes_on(tmp_path):
    out = tmp_path / "mc"
    scen = tmp_path / "s.toml"
    scen.write_text('name = "flaky"\ndescription = "one input breaks some runs"\n'
                    'extends = "baseline"\n\n[uncertain."market.rationing"]\ndist = "choice"\n'
                    'values = ["pro_rata", "lottery"]\nrationale = "test"\n')
    r = gm("montecarlo", scen, "--runs", 6, "--months", 3, "--workers", 0, "--design", "mc",
           "--out", out)
    manifest = json.loads((out / "batch.json").read_text())
    assert r.exit_code == 1
    assert manifest["failed"] > 0 and manifest["completed"] > 0
    assert manifest["completed"] + manifest["failed"] == manifest["expected"] == 6
    errors = [s["error"] for s in manifest["per_run"].values() if s["status"] == "failed"]
    assert all("lottery" in e for e in errors)
    assert f"{manifest['failed']} runs failed" in r.output


def test_killed_batch_resumes_without_redoing_or_duplicating(tmp_path):
    out = tmp_path / "mc"
    cmd = [str(BIN / "gpumarket"), "montecarlo", "baseline", "--runs", "10", "--months", "30",
           "--workers", "0", "--out", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while len(run_files(out)) < 3 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert proc.poll() is None, "the batch finished before it could be killed"
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    before = {p.name: p.stat().st_mtime_ns for p in run_files(out)}
    assert 3 <= len(before) < 10
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    after = {p.name: p.stat().st_mtime_ns for p in run_files(out)}
    assert len(after) == 10
    assert all(after[n] == t for n, t in before.items())        # finished runs not redone
    manifest = json.loads((out / "batch.json").read_text())
    assert manifest["completed"] == 10 and manifest["failed"] == 0
    prices = read_table(out, "price_index")
    assert not prices.duplicated(["run_id", "step", "region", "tier", "instrument"]).any()
    assert prices.groupby("run_id")["step"].max().eq(30).all()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_equal_tables_sequential_local_dask_and_separate_scheduler(tmp_path):
    common = ("montecarlo", "baseline", "--runs", 3, "--months", 8, "--seed", 11)
    seq, local, remote = tmp_path / "seq", tmp_path / "local", tmp_path / "remote"
    assert gm(*common, "--workers", 0, "--out", seq).exit_code == 0
    r = gm(*common, "--workers", 2, "--out", local)
    assert r.exit_code == 0, r.output
    assert_same_tables(seq, local)
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    scheduler = subprocess.Popen(
        [str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(port),
         "--no-dashboard"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True, env=env)
    worker = None
    try:
        worker = subprocess.Popen(
            [str(BIN / "dask"), "worker", address, "--nworkers", "1", "--nthreads", "1",
             "--no-dashboard", "--host", "127.0.0.1"], stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True, env=env)
        from distributed import Client
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with Client(address, timeout="2s") as client:
                    if client.scheduler_info()["workers"]:
                        break
            except OSError:
                pass
            time.sleep(0.3)
        r = gm(*common, "--scheduler", address, "--out", remote)
        assert r.exit_code == 0, r.output
        assert "dask" in json.loads((remote / "batch.json").read_text())["last_session"]["executor"]
        assert_same_tables(seq, remote)
    finally:
        for proc in (worker, scheduler):
            if proc is not None:
                stop_process_group(proc, timeout_s=20)


@pytest.mark.parametrize("args,message", [
    (["--runs", "0"], "must be at least 1"),
    (["--runs", "2", "--scheduler", "tcp://127.0.0.1:9"], "cannot reach the Dask scheduler"),
    (["--runs", "2", "--workers", "-1"], "must be >= 0"),
    (["--runs", "2", "--lever", "leakage.enforcement=[0.2, 7]"], "leakage.enforcement = 7"),
    # an unknown lever field in the words --set uses, with the fields allowed there
    (["--runs", "2", "--lever", "market.nosuch=[0.3, 0.4]"],
     "'--lever': market.nosuch = 0.3: unknown field; nearest known: "),
    (["--runs", "2", "--design", "sobol"], "--design"),
    # a summary month the runs do not cover is refused, not silently left out
    (["--runs", "2", "--dates", "2022-02,2024-12"],
     "'--dates': 2024-12; expected months within the runs, 2022-01 to 2022-02"),
])
def test_bad_batch_input_exits_2_and_writes_nothing(tmp_path, args, message):
    out = tmp_path / "mc"
    r = gm("montecarlo", "baseline", *args, "--months", 2, "--out", out)
    assert r.exit_code == 2, r.output
    assert message in r.output and "Traceback" not in r.output
    assert not out.exists()


def test_out_holding_another_batch_is_refused(tmp_path):
    out = tmp_path / "mc"
    assert gm("montecarlo", "baseline", "--runs", 2, "--months", 2, "--workers", 0,
              "--out", out).exit_code == 0
    before = sorted(p.name for p in out.rglob("*"))
    r = gm("montecarlo", "history", "--runs", 2, "--months", 2, "--workers", 0, "--out", out)
    assert r.exit_code == 2 and "holds a batch of a different scenario" in r.output
    r = gm("montecarlo", "baseline", "--runs", 3, "--months", 2, "--workers", 0, "--out", out)
    # the field that differs, its value in the batch and the value asked for (not JSON cut)
    assert r.exit_code == 2 and r.output.strip().splitlines() == [
        f"gpumarket: error: {out}: holds a batch of a different design: design.samples is 2 "
        "there, 3 asked for; use another --out or the same command"]
    assert sorted(p.name for p in out.rglob("*")) == before
    other = tmp_path / "notes"
    other.mkdir()
    (other / "x.txt").write_text("mine")
    r = gm("montecarlo", "baseline", "--runs", 2, "--months", 2, "--workers", 0, "--out", other)
    assert r.exit_code == 2 and "not a gpumarket batch" in r.output
