"""The run summary marks price cells that are not prices set by trade: a value on a price
input of the scenario, or a month in which the tier traded nothing."""

import pytest
from click.testing import CliRunner

from market.cli import cli
from market.outputs import run_tables
from market.summary import (MARKERS, flag_note, input_price_levels, key_outcome_flags,
                            price_flag, price_flags)
from scenarios.loader import load_scenario


@pytest.fixture(scope="module")
def baseline():
    s = load_scenario("baseline").scenario
    return s, run_tables(s, 0, 36)          # 2022-01 .. 2024-12


def test_input_levels_of_the_baseline_worked_by_hand(baseline):
    """Reference price 3.0, times the hyperscaler premium (1.36, calibrated) = 4.08, and the
    remote friction 0.4 [USD per H100e-hour]: the only prices the baseline states."""
    s, _ = baseline
    assert s.market.hyperscaler_wtp_premium == pytest.approx(1.36)
    assert input_price_levels(s) == pytest.approx([0.4, 3.0, 3.0 * 1.36])


def test_price_flag_rules():
    assert price_flag(4.51, [4.5], 10.0) == "input_level"           # within 0.5%
    assert price_flag(4.51, [4.5], 10.0, previous=4.49) == "input_level"   # it sat there
    assert price_flag(4.51, [4.5], 10.0, previous=4.30) is None     # passing through it
    assert price_flag(4.55, [4.5], 10.0) is None                    # 1.1% away
    assert price_flag(2.0, [4.5], 0.0) == "no_trades"
    assert price_flag(float("nan"), [4.5], None) == "blank"


def test_no_baseline_price_sits_on_an_input_and_a_price_that_does_is_flagged(baseline):
    s, frames = baseline
    flags = price_flags(frames, s, ["2023-06", "2024-12"])
    assert not (flags == "input_level").any().any(), flags
    # the same table with the US spot price moved onto the reference price in 2024-12 only
    # passes through it; moved there for 2024-11 and 2024-12 it sits on it and is flagged
    pi = frames["price_index"].copy()
    us_spot = (pi["region"] == "US") & (pi["instrument"] == "spot")
    pi.loc[us_spot & (pi["date"] == "2024-12-01"), "price_usd_per_h100e_hour"] = \
        s.market.reference_price_usd_per_h100e_hour
    assert price_flags(dict(frames, price_index=pi), s, ["2024-12"]).loc[
        ("US", "neocloud", "spot"), "2024-12"] == ""
    pi.loc[us_spot & (pi["date"] == "2024-11-01"), "price_usd_per_h100e_hour"] = \
        s.market.reference_price_usd_per_h100e_hour
    moved = dict(frames, price_index=pi)
    assert price_flags(moved, s, ["2024-12"]).loc[("US", "neocloud", "spot"),
                                                  "2024-12"] == "input_level"
    labels = {k: f for k, f in key_outcome_flags(moved, s, ["2024-12"]).items()
              if f == "input_level"}
    assert labels == {("price US neocloud spot [USD/H100e-h]", "2024-12"): "input_level"}


def test_a_tier_without_trades_is_flagged(baseline):
    s, frames = baseline
    clouds = frames["clouds"].copy()
    gone = (clouds["date"] == "2024-12-01") & (clouds["region"] == "US") \
        & (clouds["tier"] == "neocloud")
    clouds.loc[gone, "sold_h100e_hours"] = 0.0
    flags = price_flags(dict(frames, clouds=clouds), s, ["2024-12"])
    assert flags.loc[("US", "neocloud", "spot"), "2024-12"] == "no_trades"
    assert flags.loc[("US", "hyperscaler", "list"), "2024-12"] == ""


def test_flag_note_is_one_line_for_the_markers_shown():
    note = flag_note({"input_level", "blank"})
    assert "\n" not in note and note.startswith(MARKERS["input_level"])
    assert "blank" in note and MARKERS["no_trades"] not in note
    assert flag_note({""}) == ""


def _line(output: str, start: str) -> str:
    return next(line for line in output.splitlines() if line.startswith(start))


def test_run_prints_every_instrument_and_no_marker_when_prices_are_set_by_trade():
    r = CliRunner().invoke(cli, ["run", "baseline", "--months", "36", "--dates", "2024-12"])
    assert r.exit_code == 0, r.output
    for label in ("price US hyperscaler list", "price US hyperscaler contract",
                  "price US neocloud contract", "price US neocloud spot"):
        value = _line(r.output, label).split()[-1]
        assert value[-1].isdigit() and float(value) > 0, value
    assert "sits on a price input" not in r.output
