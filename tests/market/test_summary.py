"""The run summary marks price cells that are not prices set by trade (issue 10, "Misleading
numbers"): a value on a bid level of the scenario, or a month without trades."""

import pytest
from click.testing import CliRunner

from market.cli import cli
from market.outputs import run_tables
from market.summary import (MARKERS, bid_levels, flag_note, key_outcome_flags, price_flag,
                            price_flags)
from scenarios.loader import load_scenario


@pytest.fixture(scope="module")
def baseline():
    s = load_scenario("baseline").scenario
    return s, run_tables(s, 0, 36)          # 2022-01 .. 2024-12


def test_bid_levels_of_the_baseline_worked_by_hand(baseline):
    """Serving WTP 9.0 x hyperscaler premium 1.5 = 13.50; training cap 6.0 x 1.5 = 9.0;
    experiments 1.6 x 1.5 = 2.40; the long tail's training budget 12,000 USD per H100e-year
    over 8,766 h x (1 - 0.6) = 3.42 on a neocloud, x 1.5 = 5.13 on a hyperscaler; abroad, the
    same bids less the 0.40 remote friction (9.0 - 0.4 = 8.6 in the US, where China rents)."""
    s, _ = baseline
    levels = bid_levels(s)
    china_hyper = levels[("China", "hyperscaler")]
    for expected in (13.5, 9.0, 2.4, 12_000 / 8_766 / 0.4 * 1.5):
        assert min(abs(v - expected) for v in china_hyper) < 1e-9
    us_neo = levels[("US", "neocloud")]
    for expected in (9.0, 6.0, 1.6, 12_000 / 8_766 / 0.4, 8.6):
        assert min(abs(v - expected) for v in us_neo) < 1e-9
    # OpenAI: 0.42e9 USD/yr over 25,000 H100e x 8,766 h x (1 - 0.45), budget and demand
    # growing alike
    assert min(abs(v - 0.42e9 / (25_000 * 8_766 * 0.55)) for v in us_neo) < 1e-9


def test_price_flag_rules():
    assert price_flag(13.52, [13.5], 10.0) == "bid_level"            # within 0.5%
    assert price_flag(13.60, [13.5], 10.0) is None                  # 0.7% away
    assert price_flag(2.0, [13.5], 0.0) == "no_trades"
    assert price_flag(float("nan"), [13.5], None) == "blank"


def test_china_hyperscaler_on_its_cap_is_flagged_and_a_cleared_us_price_is_not(baseline):
    s, frames = baseline
    flags = price_flags(frames, s, ["2024-12"])
    pi = frames["price_index"]
    at = pi[pi["date"] == "2024-12-01"].set_index(["region", "tier"])["price_usd_per_h100e_hour"]
    assert at[("China", "hyperscaler")] == pytest.approx(13.5)
    assert flags.loc[("China", "hyperscaler"), "2024-12"] == "bid_level"
    # the US hyperscaler index is set where asks meet bids, on no bid level
    assert flags.loc[("US", "hyperscaler"), "2024-12"] == ""
    assert min(abs(at[("US", "hyperscaler")] - v) / v
               for v in bid_levels(s)[("US", "hyperscaler")]) > 0.005
    # the Gulf's neoclouds sell nothing in 2024: their index is the cheapest ask
    assert flags.loc[("Gulf", "neocloud"), "2024-12"] == "no_trades"
    labels = key_outcome_flags(frames, s, ["2024-12"])
    assert labels[("price China hyperscaler [USD/H100e-h]", "2024-12")] == "bid_level"
    assert ("price US hyperscaler [USD/H100e-h]", "2024-12") not in labels


def test_flag_note_is_one_line_for_the_markers_shown():
    note = flag_note({"bid_level", "blank"})
    assert "\n" not in note and note.startswith(MARKERS["bid_level"])
    assert "blank" in note and MARKERS["no_trades"] not in note
    assert flag_note({""}) == ""


def _line(output: str, start: str) -> str:
    return next(line for line in output.splitlines() if line.startswith(start))


def test_run_marks_caps_and_months_without_trades_under_the_table():
    r = CliRunner().invoke(cli, ["run", "baseline", "--months", "36", "--dates", "2024-12"])
    assert r.exit_code == 0, r.output
    assert _line(r.output, "price China hyperscaler").endswith("13.50*")
    assert _line(r.output, "price Gulf neocloud").endswith("#")
    assert _line(r.output, "price US hyperscaler").rstrip()[-1].isdigit()
    note = _line(r.output, "* equals a bid level")
    assert "# no compute traded" in note


def test_compare_marks_caps_per_scenario():
    r = CliRunner().invoke(cli, ["compare", "baseline", "history", "--dates", "2024-12"])
    assert r.exit_code == 0, r.output
    assert _line(r.output, "price China hyperscaler").split()[-2:] == ["13.50*", "13.50*"]
    assert "* equals a bid level" in r.output
