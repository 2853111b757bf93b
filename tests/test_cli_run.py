"""`gpumarket run`, `scenarios` and `validate` through click's CliRunner."""

import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from market.cli import cli
from market.outputs import COLUMNS

FIXTURES = Path(__file__).parent / "fixtures" / "scenarios"


def run(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_run_writes_every_table_with_contract_columns(tmp_path):
    out = tmp_path / "out"
    r = run("run", "baseline", "--months", "18", "--seed", "3", "--out", str(out))
    assert r.exit_code == 0, r.output
    assert "price US neocloud" in r.stdout and "share of installed H100e US" in r.stdout
    for name, cols in COLUMNS.items():
        frame = pd.read_parquet(out / f"{name}.parquet")
        assert list(frame.columns[:len(cols)]) == cols
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["seed"] == 3 and manifest["months"] == 18 and manifest["end"] == "2023-06"
    assert set(manifest["sha256"]) == {f"{n}.parquet" for n in COLUMNS}
    assert (out / "scenario.toml").exists()


def test_same_seed_gives_byte_identical_tables_and_rerun_from_resolved_scenario(tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    assert run("run", "baseline", "--months", "12", "--out", str(a), "--quiet").exit_code == 0
    assert run("run", "baseline", "--months", "12", "--out", str(b), "--quiet").exit_code == 0
    assert run("run", str(a / "scenario.toml"), "--months", "12", "--out", str(c),
               "--quiet").exit_code == 0
    ha = json.loads((a / "manifest.json").read_text())["sha256"]
    assert ha == json.loads((b / "manifest.json").read_text())["sha256"]
    assert ha == json.loads((c / "manifest.json").read_text())["sha256"]
    d = tmp_path / "d"
    run("run", "baseline", "--months", "12", "--seed", "1", "--out", str(d), "--quiet")
    assert json.loads((d / "manifest.json").read_text())["sha256"]["labs.parquet"] != \
        ha["labs.parquet"]


def test_csv_format(tmp_path):
    out = tmp_path / "csv"
    assert run("run", "baseline", "--months", "3", "--format", "csv", "--out", str(out),
               "--quiet").exit_code == 0
    frame = pd.read_csv(out / "price_index.csv")
    assert frame["date"].iloc[0] == "2022-01-01"


def test_existing_out_refused_unless_force_and_force_replaces_only_gpumarket_output(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    r = run("run", "baseline", "--months", "2", "--out", str(out))
    assert r.exit_code == 2 and "already exists; pass --force" in r.stderr
    r = run("run", "baseline", "--months", "2", "--out", str(out), "--force", "--quiet")
    assert r.exit_code == 2 and "not replaced" in r.stderr and "keep.txt" in r.stderr
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]
    mine = tmp_path / "mine"
    assert run("run", "baseline", "--months", "2", "--out", str(mine), "--quiet").exit_code == 0
    assert run("run", "baseline", "--months", "3", "--out", str(mine), "--force",
               "--quiet").exit_code == 0
    assert json.loads((mine / "manifest.json").read_text())["months"] == 3


@pytest.mark.parametrize("args, message", [
    (["run", str(FIXTURES / "unknown_field.toml")], "field market.mfu2: unknown field"),
    (["run", str(FIXTURES / "syntax_error.toml")], "TOML syntax error"),
    (["run", "baseline", "--set", "clouds.nowhere.power_mw=1"], "no table 'nowhere'"),
    (["run", "baselin"], "unknown scenario 'baselin'"),
    (["run", "baseline", "--months", "500"], "between 1 and 108"),
    (["run", "baseline", "--dates", "2024-13"], "YYYY-MM"),
    # a date the run does not cover is refused before any model time is spent
    (["run", "baseline", "--dates", "2040-01"],
     "'--dates': 2040-01; expected a month within this run, 2022-01 to 2030-12"),
    (["run", "baseline", "--months", "6", "--dates", "2023-06"], "this run, 2022-01 to 2022-06"),
    # one such date among good ones is refused too, not silently left out of the summary
    (["run", "baseline", "--dates", "2023-06,2040-01"],
     "'--dates': 2040-01; expected months within this run, 2022-01 to 2030-12"),
    (["run", "baseline", "--dates", "2023-6"], "'2023-6' is not a month written YYYY-MM"),
])
def test_bad_input_exits_2_and_writes_nothing(tmp_path, args, message):
    out = tmp_path / "never"
    r = run(*args, "--out", str(out))
    assert r.exit_code == 2, r.output
    assert message in r.stderr and "Traceback" not in r.output
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_scenarios_and_validate():
    r = run("scenarios")
    assert r.exit_code == 0 and "baseline" in r.stdout
    r = run("validate", "baseline")
    assert r.exit_code == 0 and r.stdout.startswith("ok: baseline")
    r = run("validate", str(FIXTURES / "out_of_range.toml"))
    assert r.exit_code == 2 and "out_of_range.toml: field market.mfu" in r.stderr
