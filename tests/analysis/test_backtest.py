"""The backtest: alignment on a hand-made run, metrics and baselines on worked examples, the
`--until` line, and the command on the real `history` scenario."""

import json
import math
import re

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from analysis.backtest import (align, bias, coverage, direction_accuracy, in_source_interval,
                               male, persistence_forecast, score, trend_forecast)
from analysis.observables import aggregate, period_months
from market.cli import cli
from market.observed import COLUMNS
from scenarios.loader import load_scenario

HEADER = ",".join(COLUMNS)


def _obs(rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame([{**{c: "" for c in COLUMNS}, "source": "test", "confidence": "M",
                           **r} for r in rows])
    for col in ("value", "low", "high"):
        frame[col] = pd.to_numeric(frame[col].replace("", None), errors="coerce").astype(float)
    frame["start"], frame["end"] = pd.to_datetime(frame["start"]), pd.to_datetime(frame["end"])
    return frame


def _two_month_run(h100_units=(10.0, 30.0), price=(4.0, 2.0)) -> dict[str, pd.DataFrame]:
    """A run of two months (2023-01, 2023-02) written by hand, with only what the
    observables below read."""
    dates = pd.to_datetime(["2023-01-01", "2023-02-01"])
    shipments = pd.DataFrame({
        "date": [dates[0], dates[1], dates[1]], "step": [1, 2, 2],
        "vendor": ["nvidia"] * 3, "chip": ["h100-sxm", "h100-sxm", "a100"],
        "buyer": ["azure", "azure", "meta"], "nation": ["US"] * 3,
        "channel": ["shipments"] * 3,
        "units": [h100_units[0], h100_units[1], 5.0], "h100e": [h100_units[0], h100_units[1],
                                                                1.5],
        "revenue_usd": [1.0, 3.0, 0.5]})
    compute = pd.DataFrame({"date": np.repeat(dates, 2), "step": [1, 1, 2, 2],
                            "nation": ["US", "China"] * 2, "installed_h100e": [9, 1, 18, 2],
                            "share": [0.9, 0.1, 0.9, 0.1], "frontier_run_flop": [1e24, 0, 2e24,
                                                                                 1e23]})
    price_index = pd.DataFrame({"date": dates, "step": [1, 2], "region": ["US"] * 2,
                                "tier": ["neocloud"] * 2, "instrument": ["spot"] * 2,
                                "price_usd_per_h100e_hour": list(price)})
    empty = pd.DataFrame({"cloud": pd.Series(dtype=object)})
    labs = pd.DataFrame({"lab": ["meta"]})
    vendors = pd.DataFrame({"date": dates, "vendor": ["nvidia"] * 2,
                            "shipped_units": [10.0, 35.0], "revenue_usd": [1.0, 3.5]})
    return {"shipments": shipments, "compute": compute, "price_index": price_index,
            # an H100 hour is worth one market H100e-hour: its price is the index
            "prices": pd.DataFrame({"date": dates, "region": ["US"] * 2,
                                    "tier": ["neocloud"] * 2, "instrument": ["spot"] * 2,
                                    "chip": ["h100-sxm"] * 2,
                                    "price_usd_per_gpu_hour": list(price)}),
            "clouds": empty, "labs": labs, "vendors": vendors}


def test_alignment_on_a_hand_made_two_month_run():
    scenario = load_scenario("history").scenario
    observed = _obs([
        {"series": "shipped_units:nvidia:H100", "period": "2023-01", "start": "2023-01-01",
         "end": "2023-01-31", "value": 10, "unit": "units"},
        {"series": "shipped_units:nvidia:H100", "period": "Jan-Feb", "start": "2023-01-01",
         "end": "2023-02-28", "value": 40, "unit": "units"},
        {"series": "nvidia_bought_units:Microsoft", "period": "2023-02", "start": "2023-02-01",
         "end": "2023-02-28", "value": 30, "unit": "units"},
        {"series": "rental_price_usd_per_gpu_hour:h100:neocloud_on_demand", "period": "JF",
         "start": "2023-01-01", "end": "2023-02-28", "value": 3, "unit": "USD/GPU-h"},
        {"series": "compute_share:China", "period": "2023-02", "start": "2023-02-01",
         "end": "2023-02-28", "value": 0.1, "unit": "fraction"},
        # a period the run does not cover is not scored
        {"series": "shipped_units:nvidia:H100", "period": "2023Q1", "start": "2023-01-01",
         "end": "2023-03-31", "value": 40, "unit": "units"},
        {"series": "cowos_capacity_wafers_per_month:tsmc", "period": "2023-01",
         "start": "2023-01-01", "end": "2023-01-31", "value": 8000, "unit": "wafers/month"},
    ])
    aligned, missing = align(observed, [_two_month_run()], scenario)
    got = aligned.set_index(["series", "period"])["model_median"]
    assert got[("shipped_units:nvidia:H100", "2023-01")] == 10          # sum of one month
    assert got[("shipped_units:nvidia:H100", "Jan-Feb")] == 40          # sum of two
    assert got[("nvidia_bought_units:Microsoft", "2023-02")] == 30      # azure stands for it
    assert got[("rental_price_usd_per_gpu_hour:h100:neocloud_on_demand", "JF")] == 3  # mean
    assert got[("compute_share:China", "2023-02")] == pytest.approx(0.1)  # end of period
    assert math.isnan(got[("shipped_units:nvidia:H100", "2023Q1")])
    assert missing["series"].tolist() == ["cowos_capacity_wafers_per_month:tsmc"]
    assert "input" in missing["reason"].iloc[0]


def test_band_over_runs():
    scenario = load_scenario("history").scenario
    observed = _obs([{"series": "shipped_units:nvidia:H100", "period": "2023-02",
                      "start": "2023-02-01", "end": "2023-02-28", "value": 30,
                      "unit": "units"}])
    runs = [_two_month_run(h100_units=(0, v)) for v in (10.0, 20.0, 30.0, 40.0, 50.0)]
    aligned, _ = align(observed, runs, scenario)
    row = aligned.iloc[0]
    assert row["runs"] == 5 and row["model_median"] == 30
    assert row["model_p5"] == pytest.approx(12.0) and row["model_p95"] == pytest.approx(48.0)


def test_months_of_a_fiscal_quarter():
    # NVIDIA's FY24Q3 (2023-07-31 to 2023-10-29) is August, September and October
    months = period_months(pd.Timestamp("2023-07-31"), pd.Timestamp("2023-10-29"))
    assert [m.strftime("%Y-%m") for m in months] == ["2023-08", "2023-09", "2023-10"]
    monthly = pd.Series([1.0, 2.0, 3.0, 4.0],
                        index=pd.to_datetime(["2023-07-01", "2023-08-01", "2023-09-01",
                                              "2023-10-01"]))
    assert aggregate(monthly, "sum", pd.Timestamp("2023-07-31"),
                     pd.Timestamp("2023-10-29")) == 9.0
    assert aggregate(monthly, "end", pd.Timestamp("2023-07-01"),
                     pd.Timestamp("2023-10-31")) == 4.0
    assert aggregate(monthly, "max", pd.Timestamp("2023-07-01"),
                     pd.Timestamp("2023-09-30")) == 3.0


def test_a_model_equal_to_the_observations_scores_zero():
    o = np.array([3.0, 5.0, 4.0, 8.0])
    assert male(o, o) == 0.0 and bias(o, o) == 0.0
    assert direction_accuracy(o, o) == 1.0


def test_a_constant_bias_of_two_gives_log_two():
    o = np.array([1.0, 10.0, 100.0])
    # the zero offset (0.1% of each observation) moves the figure by < 1e-3
    assert male(2 * o, o) == pytest.approx(math.log(2), abs=1e-3)
    assert bias(2 * o, o) == pytest.approx(math.log(2), abs=1e-3)
    assert bias(o / 2, o) == pytest.approx(-math.log(2), abs=1e-3)


def test_a_model_of_zero_has_a_large_finite_error():
    o = np.array([100.0, 100.0])
    error = male(np.zeros(2), o)
    assert math.isfinite(error) and error == pytest.approx(math.log(1001), rel=1e-6)


def test_direction_coverage_and_source_interval():
    o = np.array([1.0, 2.0, 3.0, 2.0])
    m = np.array([1.0, 3.0, 2.0, 1.0])           # up (right), down (wrong), down (right)
    assert direction_accuracy(m, o) == pytest.approx(2 / 3)
    assert coverage([0, 1, 4, 0], [2, 3, 5, 3], o) == 0.75
    low = np.array([0.5, np.nan, np.nan, 1.5])
    high = np.array([1.5, np.nan, 2.5, np.nan])
    # first inside, second gives no interval, third under its upper bound, fourth under
    # its lower bound
    assert in_source_interval(m, low, high) == pytest.approx(2 / 3)
    assert math.isnan(in_source_interval(m, [np.nan] * 4, [np.nan] * 4))


def test_baselines_on_a_worked_example():
    o = np.array([10.0, 20.0, 40.0, 80.0, 160.0, 320.0, 640.0])
    t = np.arange(7.0)                              # doubling every year
    assert persistence_forecast(o).tolist() == [10.0] * 7
    # the first third of the span (t <= 2) is three points on the exact trend
    assert trend_forecast(t, o) == pytest.approx(o, rel=1e-3)
    assert persistence_forecast(o[:1]) is None and trend_forecast(t[:2], o[:2]) is None
    # with one point in the first third, the first two observations make the trend
    t2 = np.array([0.0, 5.0, 6.0])
    assert trend_forecast(t2, np.array([1.0, 2.0, 4.0]))[0] == pytest.approx(1.0, rel=1e-3)


def test_overall_score_weights_families_not_rows():
    aligned = pd.DataFrame({
        "series": ["a:x"] * 4 + ["b:y"], "unit": ["u"] * 5,
        "start": pd.to_datetime(["2023-01-01", "2023-04-01", "2023-07-01", "2023-10-01",
                                 "2023-01-01"]),
        "value": [1.0, 1.0, 1.0, 1.0, 1.0], "low": [np.nan] * 5, "high": [np.nan] * 5,
        "model_median": [1.0, 1.0, 1.0, 1.0, math.e], "model_p5": [1.0] * 5,
        "model_p95": [1.0] * 5})
    scores, overall = score(aligned)
    # family a (four observations, error 0) and family b (one, error ~1) weigh the same
    assert overall["score"] == pytest.approx(0.5, abs=2e-3)


def test_until_provably_hides_later_rows(tmp_path):
    """A planted row after --until, with a value no model could hit, changes nothing in the
    in-sample scores and is scored apart as out of sample."""
    runner = CliRunner()
    planted = tmp_path / "later"
    planted.mkdir()
    (planted / "later.csv").write_text(
        HEADER + "\nshipped_units:nvidia:all,2025Q1,2025-01-01,2025-03-31,9e15,,,units,"
        "planted by a test,L,\n")
    base = runner.invoke(cli, ["backtest", "--seeds", "1", "--json"])
    assert base.exit_code == 0, base.output
    planted_run = runner.invoke(cli, ["backtest", "--seeds", "1", "--json",
                                      "--observed", str(planted)])
    assert planted_run.exit_code == 0, planted_run.output
    a, b = json.loads(base.output), json.loads(planted_run.output)
    assert a["series"] == b["series"] and a["overall"] == b["overall"]
    assert b["observations_after_until"] == a["observations_after_until"] + 1
    later = {s["series"]: s for s in b["out_of_sample"]["series"]}
    assert later["shipped_units:nvidia:all"]["observations"] >= 1


def test_backtest_command_on_history(tmp_path):
    out = tmp_path / "bt"
    result = CliRunner().invoke(cli, ["backtest", "history", "--seeds", "2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    text = result.output
    assert "series scored" in text and "not modelled:" in text and "persistence" in text
    scores = pd.read_csv(out / "scores.csv")
    assert len(scores) >= 20
    assert {"male", "bias", "direction", "coverage", "in_source", "male_persistence",
            "male_trend"} <= set(scores.columns)
    meta = json.loads((out / "backtest.json").read_text())
    assert meta["overall"]["series_scored"] == len(scores)
    assert meta["not_modelled"] and all(r["reason"] for r in meta["not_modelled"])
    page = (out / "backtest.html").read_text()
    # self-contained: figures inline, nothing fetched (a base64 image may spell "http" by
    # chance, so look for references, not the letters)
    assert "data:image/png;base64," in page
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page), "external reference"
    assert len(list((out / "figures").glob("*.png"))) == len(scores)


@pytest.mark.parametrize("args, expected", [
    (["--until", "2024-13"], "'--until'"),
    (["--seeds", "0"], "'--seeds'"),
    (["--observed", "/nonexistent/dir"], "not a directory of observed CSV files"),
    (["--ensemble", "/nonexistent/dir"], "not a Monte Carlo batch"),
])
def test_bad_arguments_are_one_line(args, expected, tmp_path):
    out = tmp_path / "never"
    result = CliRunner().invoke(cli, ["backtest", *args, "--out", str(out)])
    assert result.exit_code == 2
    assert expected in result.output
    assert not out.exists()


# ------------------------------------------------------------------ what is scripted ---

def test_flat_runs_on_a_worked_example():
    from analysis.scripted import flat_mask

    values = np.array([1.0, 1.004, 0.998, 1.0, 1.001, 1.0, 2.0, 2.0, 2.0, np.nan, 3.0])
    # six months within 0.5% of 1.0, then three at 2.0 (too short), a gap, one month
    assert flat_mask(values).tolist() == [True] * 6 + [False] * 5
    assert flat_mask(values, min_months=3).tolist() == [True] * 9 + [False] * 2


def test_scripted_diagnostics_on_history():
    from analysis.scripted import diagnostics
    from market.outputs import run_tables

    scenario = load_scenario("history").scenario
    frames = run_tables(scenario, 1, 36)
    table = diagnostics(frames, scenario, "2024-12").set_index(["diagnostic", "scope"])
    # no traded price stays flat, and one only passes an input level as it moves (a month
    # within 0.5% of 3.0 on the way down is a crossing, not a price held there); posted list
    # prices hold between revisions (flat, but not counted as scripted)
    for scope in ("US neocloud spot", "US neocloud contract", "China neocloud spot"):
        assert table.loc[("price_flat_6_months", scope), "value"] == 0
        assert table.loc[("price_on_input", scope), "value"] < 0.1
    assert table.loc[("price_flat_6_months", "US hyperscaler list"), "value"] > 0.3
    assert table.loc[("price_scripted", "US hyperscaler list"), "value"] == \
        table.loc[("price_on_input", "US hyperscaler list"), "value"]
    assert 0 <= table.loc[("budget_binds", "all"), "value"] < 0.5
    # a price moved onto the reference price of potential demand is seen
    onto = dict(frames)
    pi = frames["price_index"].copy()
    spot = (pi["region"] == "US") & (pi["instrument"] == "spot")
    pi.loc[spot, "price_usd_per_h100e_hour"] = scenario.market.reference_price_usd_per_h100e_hour
    onto["price_index"] = pi
    table_onto = diagnostics(onto, scenario, "2024-12").set_index(["diagnostic", "scope"])
    assert table_onto.loc[("price_on_input", "US neocloud spot"), "value"] == 1
    # a run whose every price moves by 10% a month has nothing flat and nothing on a level
    moved = dict(frames)
    pi = frames["price_index"].copy()
    pi["price_usd_per_h100e_hour"] = 0.123 * 1.1 ** pi["step"]
    moved["price_index"] = pi
    table = diagnostics(moved, scenario, "2024-12").set_index(["diagnostic", "scope"])
    assert table.loc[("price_flat_6_months", "all"), "value"] == 0
    assert table.loc[("price_on_input", "all"), "value"] < 0.05


def test_backtest_reads_a_montecarlo_ensemble(tmp_path):
    batch = tmp_path / "mc"
    runner = CliRunner()
    made = runner.invoke(cli, ["montecarlo", "history", "--runs", "2", "--months", "37",
                               "--workers", "0", "--out", str(batch)])
    assert made.exit_code == 0, made.output
    result = runner.invoke(cli, ["backtest", "--ensemble", str(batch), "--design-runs", "0",
                                 "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert payload["runs"] == 2 and payload["overall"]["series_scored"] >= 20


def test_backtest_out_follows_the_output_rules(tmp_path):
    runner = CliRunner()
    mine = tmp_path / "notes"
    mine.mkdir()
    (mine / "thesis.docx").write_text("mine")
    refused = runner.invoke(cli, ["backtest", "--seeds", "1", "--design-runs", "0",
                                  "--out", str(mine), "--force"])
    assert refused.exit_code == 2 and "not replaced" in refused.output
    assert (mine / "thesis.docx").read_text() == "mine"
    out = tmp_path / "bt"
    for _ in range(2):            # its own output: replaced with --force
        result = runner.invoke(cli, ["backtest", "--seeds", "1", "--design-runs", "0",
                                     "--out", str(out), "--force"])
        assert result.exit_code == 0, result.output
    assert "backtest.html" in json.loads((out / "manifest.json").read_text())["entries"]
    bad = runner.invoke(cli, ["backtest", "--seeds", "1", "--out", "/proc/x"])
    assert bad.exit_code == 2 and "cannot write there" in bad.output


def test_run_diagnostics_prints_what_is_scripted():
    result = CliRunner().invoke(cli, ["run", "history", "--months", "24", "--diagnostics"])
    assert result.exit_code == 0, result.output
    assert "what is scripted" in result.output and "budget_binds" in result.output
    as_json = CliRunner().invoke(cli, ["run", "history", "--months", "24", "--diagnostics",
                                       "--json"])
    rows = json.loads(as_json.output)["scripted"]
    assert {r["diagnostic"] for r in rows} >= {"price_on_input", "price_flat_6_months",
                                               "budget_binds", "margin_at_bound"}


def test_aggregate_skips_months_without_a_value():
    from analysis.observables import aggregate

    months = pd.date_range("2023-01-01", periods=3, freq="MS")
    start, end = pd.Timestamp("2023-01-01"), pd.Timestamp("2023-03-31")
    values = pd.Series([1.0, np.nan, 3.0], months)
    assert aggregate(values, "sum", start, end) == 4.0
    assert aggregate(values, "mean", start, end) == 2.0
    assert aggregate(values, "max", start, end) == 3.0
    assert aggregate(values, "end", start, end) == 3.0
    empty = pd.Series([np.nan] * 3, months)
    assert aggregate(empty, "sum", start, end) == 0.0
    assert np.isnan(aggregate(empty, "mean", start, end))
    assert np.isnan(aggregate(values, "sum", start, pd.Timestamp("2023-05-31")))   # not covered
    share = pd.DataFrame({"num": [1.0, np.nan, 1.0], "den": [2.0, 2.0, np.nan]}, months)
    assert aggregate(share, "sum", start, end) == 0.5


@pytest.mark.parametrize("until", ["2021-06", "2026-07"])
def test_backtest_until_outside_the_run_is_one_line_before_any_run(tmp_path, monkeypatch,
                                                                   until):
    import market.outputs

    def tripwire(*args, **kwargs):
        raise AssertionError("the model ran before --until was checked")

    monkeypatch.setattr(market.outputs, "run_tables", tripwire)
    out = tmp_path / "bt"
    result = CliRunner().invoke(cli, ["backtest", "--until", until, "--seeds", "1",
                                      "--design-runs", "0", "--out", str(out)])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert lines == [f"gpumarket: error: Invalid value for '--until': {until}; expected a "
                     "month within the scenario's run, 2022-01 to 2026-06"]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("runs", ["1", "2", "-1"])
def test_backtest_design_runs_too_few_for_a_correlation_are_refused(runs):
    result = CliRunner().invoke(cli, ["backtest", "--seeds", "1", "--design-runs", runs])
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().splitlines() == [
        f"gpumarket: error: Invalid value for '--design-runs': {runs}; expected 0 (none) or "
        "at least 3"]
    help_text = CliRunner().invoke(cli, ["backtest", "--help"]).output
    assert "0 skips it, otherwise at least 3" in " ".join(help_text.split())
