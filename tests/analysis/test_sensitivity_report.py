"""`gpumarket sensitivity` (SALib) and `gpumarket report` on small real batches."""

import json
import re

import pandas as pd
import pytest
from click.testing import CliRunner

from analysis import sensitivity as sa
from analysis.outcomes import exceedance
from analysis.runner import read_table
from market.cli import cli
from market.world import HEADLINE_INSTRUMENT
from scenarios.loader import load_scenario


def gm(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_salib_problem_maps_the_uncertain_block():
    uncertain = load_scenario("taiwan-shock-2027").scenario.uncertain
    problem, skipped = sa.salib_problem(uncertain)
    assert skipped == ["events.8.months"]
    i = problem["names"].index("market.order_price_elasticity")   # triangular 0.5 / 1.0 / 1.5
    assert problem["dists"][i] == "triang" and problem["bounds"][i] == pytest.approx([0.5, 1.5, 0.5])
    # every continuous input is a variable, in the block's order
    assert problem["names"] == [path for path in uncertain if path not in skipped]
    assert problem["num_vars"] == len(problem["names"]) == len(uncertain) - 1


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
    stem = out / "sensitivity-price-us-neocloud-2023-08"
    indices = pd.read_csv(stem.with_suffix(".csv"), index_col=0)
    names = load_scenario("baseline").scenario.uncertain
    assert set(indices.index) == set(names) and "mu_star" in indices
    assert (indices["mu_star"].diff().dropna() <= 0).all()           # ordered
    assert indices["mu_star"].max() > 0
    assert stem.with_suffix(".png").stat().st_size > 10_000
    assert json.loads(stem.with_suffix(".json").read_text())["outcome"] == "price:US:neocloud"
    # another outcome of the same runs: no run is redone
    r = gm("sensitivity", "baseline", "--method", "morris", "--samples", 2, "--months", 20,
           "--outcome", "share:China", "--date", "2023-08", "--workers", 0, "--out", out)
    assert r.exit_code == 0 and " runs in " not in r.output


def test_sobol_on_the_model(tmp_path):
    out = tmp_path / "sa"
    r = gm("sensitivity", "huawei-ramp-fast", "--method", "sobol", "--samples", 2, "--months",
           6, "--outcome", "share:China", "--workers", 0, "--out", out)
    assert r.exit_code == 0, r.output
    indices = pd.read_csv(out / "sensitivity-share-china-2022-06.csv", index_col=0)
    assert {"S1", "S1_conf", "ST", "ST_conf", "ci_wider_than_index"} <= set(indices.columns)
    manifest = json.loads((out / "batch.json").read_text())
    assert manifest["expected"] == 2 * (len(indices) + 2)


# ---------------------------------------------------------- issue 10: honest indices ---

def test_a_small_design_warns_prints_intervals_and_keeps_one_file_per_outcome(tmp_path):
    """Morris with 2 trajectories (the literature asks for >= 10): one warning line on stderr,
    recorded in the outcome's JSON; the intervals are printed; a second outcome gets its own
    files and leaves the first one's untouched."""
    out = tmp_path / "sa"
    args = ["sensitivity", "baseline", "--method", "morris", "--samples", 2, "--months", 24,
            "--workers", 0, "--out", out]
    r = gm(*args)
    assert r.exit_code == 0, r.output
    warning = r.stderr.strip().splitlines()
    assert len(warning) == 1 and warning[0].startswith("gpumarket: warning: ")
    assert "2 trajectories is below the 10" in warning[0]
    assert "±95%" in r.stdout and "NOT a reliable ranking" in r.stdout
    first = out / "sensitivity-price-us-neocloud-2023-12"
    meta = json.loads(first.with_suffix(".json").read_text())
    assert meta["reliable"] is False and meta["trajectories"] == 2
    assert meta["guidance"]["min_trajectories"] == sa.MIN_MORRIS_TRAJECTORIES
    assert any("below the 10" in w for w in meta["warnings"])
    before = {p.name: p.read_bytes() for p in out.glob("sensitivity-*")}
    assert len(before) == 3
    r = gm(*args, "--outcome", "share:China", "--date", "2023-06")
    assert r.exit_code == 0, r.output
    assert {p.name: p.read_bytes() for p in out.glob("sensitivity-price-*")} == before
    assert (out / "sensitivity-share-china-2023-06.csv").exists()
    assert not (out / "sensitivity.csv").exists()


def test_sobol_with_a_tiny_n_flags_indices_whose_interval_is_wider():
    """Y = 4 a + b with N = 4: S1 and ST come out far from 16/17 and 1/17 with intervals
    wider than themselves; N = 512 gives narrow intervals and no warning."""
    problem = {"num_vars": 2, "names": ["a", "b"], "bounds": [[0, 1], [0, 1]],
               "dists": ["unif", "unif"]}
    for n, reliable in ((4, False), (512, True)):
        X = sa.sample(problem, "sobol", n, 1)
        table = sa.analyze(problem, "sobol", X, 4 * X[:, 0] + X[:, 1], 1)
        reasons = sa.assess(table, "sobol", sa.base_samples("sobol", n))
        assert (not reasons) is reliable, reasons
    assert any("below the 512" in r for r in sa.assess(table, "sobol", 4))


def test_sobol_intervals_are_reproducible_with_seed_0():
    """SALib 1.6 seeds its bootstrap only for a truthy seed: seed 0 gave other intervals on
    every call."""
    problem = {"num_vars": 2, "names": ["a", "b"], "bounds": [[0, 1], [0, 1]],
               "dists": ["unif", "unif"]}
    X = sa.sample(problem, "sobol", 8, 0)
    Y = X[:, 0] * X[:, 1]
    first = sa.analyze(problem, "sobol", X, Y, 0)
    pd.testing.assert_frame_equal(first, sa.analyze(problem, "sobol", X, Y, 0), check_exact=True)


@pytest.mark.parametrize("outcome,message", [
    ("share:Mars", "has no nation 'Mars'; expected one of US, China"),
    ("installed:Atlantis", "has no nation 'Atlantis'"),
    ("price:US:cheap", "no tier 'cheap'; expected one of hyperscaler, neocloud"),
    ("price:Gulf:hyperscaler", "no hyperscaler cloud in Gulf"),
])
def test_an_outcome_the_scenario_lacks_is_refused_before_any_run(tmp_path, outcome, message):
    r = gm("sensitivity", "baseline", "--method", "morris", "--samples", 2, "--months", 12,
           "--outcome", outcome, "--workers", 0, "--out", tmp_path / "sa")
    assert r.exit_code == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "'--outcome'" in lines[0]
    assert not (tmp_path / "sa").exists()            # no batch started


def test_outcomes_are_matched_in_the_scenario_spelling(tmp_path):
    out = tmp_path / "sa"
    r = gm("sensitivity", "baseline", "--method", "morris", "--samples", 2, "--months", 12,
           "--outcome", "share:china", "--workers", 0, "--out", out, "--json")
    assert r.exit_code == 0, r.output
    result = json.loads(r.stdout)                       # nothing but JSON on stdout
    assert result["outcome"] == "share:China" and result["outcome_unit"] == \
        "fraction of installed H100e"
    assert result["reliable"] is False and r.stderr.startswith("gpumarket: warning: ")
    assert set(result["indices"]) == set(load_scenario("baseline").scenario.uncertain)
    assert {"mu_star", "mu_star_conf", "ci_wider_than_index"} <= \
        set(result["indices"]["leakage.enforcement"])
    assert result["files"]["csv"] == "sensitivity-share-china-2022-12.csv"
    assert (out / result["files"]["json"]).exists()


def test_exceedance_probabilities():
    dates = pd.to_datetime(["2025-06-01", "2025-12-01", "2026-06-01", "2026-12-01"] * 2)
    series = pd.DataFrame({"run_id": [0] * 4 + [1] * 4, "date": dates,
                           "value": [1.0, 3.0, 2.0, 2.0, 4.0, 4.0, 1.0, 1.0]})
    p = exceedance(series, [1.5, 3.5], [2025, 2026])
    assert p.loc[2025, "> 1.5"] == 1.0 and p.loc[2025, "> 3.5"] == 0.5
    assert p.loc[2026, "> 1.5"] == 0.5 and p.loc[2026, "> 3.5"] == 0.0
    dec = exceedance(series, [2.5], [2025], "december")
    assert dec.loc[2025, "> 2.5"] == 1.0


LEVER = "leakage.enforcement=[0.1, 0.9]"
DIFF = "[leakage.enforcement=0.9] - [leakage.enforcement=0.1]"


@pytest.fixture(scope="module")
def lever_batch(tmp_path_factory):
    """3 samples x 2 options of baseline, 36 months; the --json summary of the command."""
    out = tmp_path_factory.mktemp("levers") / "mc"
    r = gm("montecarlo", "baseline", "--runs", 3, "--months", 36, "--workers", 0,
           "--lever", LEVER, "--out", out, "--json")
    assert r.exit_code == 0, r.output
    return out, json.loads(r.stdout)                    # nothing but JSON on stdout


def _paired(out, region="US", tier="neocloud", month="2024-12"):
    """Per seed: option 0.9 minus option 0.1, computed here from the run files."""
    pi = read_table(out, "price_index", dates=[month])
    headline = HEADLINE_INSTRUMENT[tier]
    pi = pi[(pi["region"] == region) & (pi["tier"] == tier) & (pi["instrument"] == headline)]
    wide = pi.pivot(index="seed", columns="param.leakage.enforcement",
                    values="price_usd_per_h100e_hour")
    return wide[0.9] - wide[0.1], wide


def test_montecarlo_summarises_each_lever_option_and_their_paired_difference(lever_batch):
    out, summary = lever_batch
    assert summary["runs"] == {"expected": 6, "completed": 6, "failed": 0}
    assert summary["reference_option"] == "leakage.enforcement=0.1"
    price = summary["outcomes"]["price:US:neocloud"]
    assert price["unit"] == "USD per H100e-hour"
    assert set(price["options"]) == {"leakage.enforcement=0.1", "leakage.enforcement=0.9"}
    diff, wide = _paired(out)
    cell = price["differences"][DIFF]["2024-12"]
    assert cell["pairs"] == 3
    assert cell["median_usd_per_h100e_hour"] == pytest.approx(diff.median())
    assert cell["p5_usd_per_h100e_hour"] == pytest.approx(diff.quantile(0.05))
    assert cell["p95_usd_per_h100e_hour"] == pytest.approx(diff.quantile(0.95))
    for option, value in ((0.1, "leakage.enforcement=0.1"), (0.9, "leakage.enforcement=0.9")):
        got = price["options"][value]["2024-12"]
        assert got["runs"] == 3 and got["median_usd_per_h100e_hour"] == \
            pytest.approx(wide[option].median())
    share = summary["outcomes"]["share:China"]["options"]["leakage.enforcement=0.9"]["2024-12"]
    assert 0 < share["median_fraction"] < 1
    # the text summary of the same batch (resumed: nothing runs again)
    r = gm("montecarlo", "baseline", "--runs", 3, "--months", 36, "--workers", 0,
           "--lever", LEVER, "--out", out)
    assert r.exit_code == 0 and " runs in " not in r.stdout
    lines = r.stdout.splitlines()
    at = lines.index("price:US:neocloud [USD per H100e-hour]")
    assert lines[at + 1].split()[0] == "leakage.enforcement=0.1"
    assert lines[at + 2].split()[0] == "leakage.enforcement=0.9"
    assert lines[at + 3].strip().startswith(DIFF)
    assert lines[at + 3].split()[-3] == f"{diff.median():.2f}"
    assert "share:China [%; differences in percentage points]" in lines


def test_report_tables_and_fans_are_per_option_with_differences(lever_batch):
    out, _ = lever_batch
    r = gm("report", out, "--json")
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["path"] == str(out / "report.html")
    rows = [k for k in data["key_outcomes"] if k["outcome"] == "price:US:neocloud"
            and k["date"] == "2024-12"]
    assert [(k["kind"], k["option"]) for k in rows] == [
        ("option", "leakage.enforcement=0.1"), ("option", "leakage.enforcement=0.9"),
        ("difference", DIFF)]
    diff, _ = _paired(out)
    assert rows[2]["median_usd_per_h100e_hour"] == pytest.approx(diff.median())
    assert rows[2]["runs"] == 3
    probs = data["probabilities"]["price:US:neocloud"]["options"]
    assert set(probs) == {"leakage.enforcement=0.1", "leakage.enforcement=0.9"}
    page = (out / "report.html").read_text()
    assert page.count('<img class="wide" src="data:image/png;base64,') == 6
    assert "paired by sample" in page and DIFF in page and "lever option" in page


def test_report_is_self_contained_html(tmp_path):
    out = tmp_path / "mc"
    assert gm("montecarlo", "baseline", "--runs", 4, "--months", 30, "--workers", 0,
              "--out", out).exit_code == 0
    r = gm("report", out)
    assert r.exit_code == 0, r.output
    page = (out / "report.html").read_text()
    assert page.count('<img src="data:image/png;base64,') == 6
    assert "Provenance" in page and "baseline" in page and "P(yearly mean of" in page
    # no external assets (look for references: a base64 figure may spell "http" by chance)
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page)
    assert gm("report", tmp_path / "nothing").exit_code == 2


def test_report_shows_each_sensitivity_outcome_with_its_warning(tmp_path):
    out = tmp_path / "sa"
    for outcome in ("price:US:neocloud", "share:China"):
        assert gm("sensitivity", "baseline", "--method", "morris", "--samples", 2, "--months",
                  12, "--outcome", outcome, "--workers", 0, "--out", out).exit_code == 0
    r = gm("report", out, "--json")
    assert r.exit_code == 0, r.output
    sens = json.loads(r.stdout)["sensitivity"]
    assert [s["outcome"] for s in sens] == ["price:US:neocloud", "share:China"]
    assert all(s["reliable"] is False and s["warnings"] for s in sens)
    page = (out / "report.html").read_text()
    assert page.count("Not a reliable ranking") == 2


def test_report_still_reads_a_sensitivity_csv_of_gpumarket_0_5(tmp_path):
    out = tmp_path / "sa"
    assert gm("montecarlo", "baseline", "--runs", 2, "--months", 6, "--workers", 0,
              "--out", out).exit_code == 0
    pd.DataFrame({"mu_star": [0.5, 0.1], "mu_star_conf": [0.2, 0.3], "sigma": [0.1, 0.1],
                  "mu": [0.5, -0.1]}, index=["a", "b"]).to_csv(out / "sensitivity.csv")
    manifest = json.loads((out / "batch.json").read_text())
    manifest["sensitivity"] = {"method": "morris", "outcome": "share:US", "date": "2022-06"}
    (out / "batch.json").write_text(json.dumps(manifest))
    r = gm("report", out, "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["sensitivity"][0]["outcome"] == "share:US"
    assert "older gpumarket" in (out / "report.html").read_text()
