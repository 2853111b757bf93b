"""`gpumarket sensitivity` (SALib) and `gpumarket report` on small real batches."""

import json

import pandas as pd
import pytest
from click.testing import CliRunner

from analysis import sensitivity as sa
from analysis.outcomes import exceedance
from market.cli import cli
from scenarios.loader import load_scenario


def gm(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_salib_problem_maps_the_uncertain_block():
    problem, skipped = sa.salib_problem(load_scenario("taiwan-shock-2027").scenario.uncertain)
    assert skipped == ["events.7.months"]
    i = problem["names"].index("market.experiment_wtp_usd_per_h100e_hour")
    assert problem["dists"][i] == "triang" and problem["bounds"][i] == pytest.approx([1.0, 2.5, 0.4])
    assert problem["num_vars"] == len(problem["names"]) == 11


def test_sobol_recovers_a_known_function():
    """Y = 4 a + b on uniform inputs: S1(a) = 16/17, S1(b) = 1/17, no interactions."""
    problem = {"num_vars": 2, "names": ["a", "b"], "bounds": [[0, 1], [0, 1]],
               "dists": ["unif", "unif"]}
    X = sa.sample(problem, "sobol", 512, 1)
    Y = 4 * X[:, 0] + X[:, 1]
    table = sa.analyze(problem, "sobol", X, Y, 1)
    assert list(table.index) == ["a", "b"]
    assert table.loc["a", "S1"] == pytest.approx(16 / 17, abs=0.05)
    assert table.loc["b", "ST"] == pytest.approx(1 / 17, abs=0.05)


def test_morris_on_the_model_ranks_inputs_and_writes_table_and_chart(tmp_path):
    out = tmp_path / "sa"
    r = gm("sensitivity", "baseline", "--method", "morris", "--samples", 2, "--months", 20,
           "--outcome", "price:US:neocloud", "--date", "2023-08", "--workers", 0, "--out", out)
    assert r.exit_code == 0, r.output
    indices = pd.read_csv(out / "sensitivity.csv", index_col=0)
    names = load_scenario("baseline").scenario.uncertain
    assert set(indices.index) == set(names) and "mu_star" in indices
    assert (indices["mu_star"].diff().dropna() <= 0).all()           # ranked
    assert indices["mu_star"].max() > 0
    assert (out / "sensitivity.png").stat().st_size > 10_000
    assert json.loads((out / "batch.json").read_text())["sensitivity"]["outcome"] == \
        "price:US:neocloud"
    # another outcome of the same runs: no run is redone
    r = gm("sensitivity", "baseline", "--method", "morris", "--samples", 2, "--months", 20,
           "--outcome", "share:China", "--date", "2023-08", "--workers", 0, "--out", out)
    assert r.exit_code == 0 and " runs in " not in r.output


def test_sobol_on_the_model(tmp_path):
    out = tmp_path / "sa"
    r = gm("sensitivity", "huawei-ramp-fast", "--method", "sobol", "--samples", 2, "--months",
           6, "--outcome", "share:China", "--workers", 0, "--out", out)
    assert r.exit_code == 0, r.output
    indices = pd.read_csv(out / "sensitivity.csv", index_col=0)
    assert {"S1", "S1_conf", "ST", "ST_conf"} <= set(indices.columns)
    manifest = json.loads((out / "batch.json").read_text())
    assert manifest["expected"] == 2 * (len(indices) + 2)


@pytest.mark.parametrize("args,message", [
    (["--method", "fast"], "--method"),
    (["--outcome", "price:US"], "unknown outcome 'price:US'"),
    (["--date", "2040-01"], "outside the run"),
    (["--samples", "0"], "must be at least 1"),
])
def test_bad_sensitivity_input(tmp_path, args, message):
    r = gm("sensitivity", "baseline", *args, "--workers", 0, "--out", tmp_path / "sa")
    assert r.exit_code == 2 and message in r.output
    assert not (tmp_path / "sa").exists()


def test_exceedance_probabilities():
    dates = pd.to_datetime(["2025-06-01", "2025-12-01", "2026-06-01", "2026-12-01"] * 2)
    series = pd.DataFrame({"run_id": [0] * 4 + [1] * 4, "date": dates,
                           "value": [1.0, 3.0, 2.0, 2.0, 4.0, 4.0, 1.0, 1.0]})
    p = exceedance(series, [1.5, 3.5], [2025, 2026])
    assert p.loc[2025, "> 1.5"] == 1.0 and p.loc[2025, "> 3.5"] == 0.5
    assert p.loc[2026, "> 1.5"] == 0.5 and p.loc[2026, "> 3.5"] == 0.0
    dec = exceedance(series, [2.5], [2025], "december")
    assert dec.loc[2025, "> 2.5"] == 1.0


def test_report_is_self_contained_html(tmp_path):
    out = tmp_path / "mc"
    assert gm("montecarlo", "baseline", "--runs", 4, "--months", 30, "--workers", 0,
              "--lever", "leakage.enforcement=[0.2, 0.9]", "--out", out).exit_code == 0
    r = gm("report", out)
    assert r.exit_code == 0, r.output
    page = (out / "report.html").read_text()
    assert page.count('<img src="data:image/png;base64,') == 6
    assert "Provenance" in page and "baseline" in page and "P(yearly mean of" in page
    assert "one fan per lever option" in page
    assert "http" not in page.split("<body>")[1].split("Provenance")[0]   # no external assets
    assert gm("report", tmp_path / "nothing").exit_code == 2
