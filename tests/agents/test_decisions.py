"""Decisions that live with their agents, exercised from plain inputs (no model)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from agents.buyers import sourcing_plan
from agents.cloud import investment_order_h100e, order_decision_h100e
from agents.lab import build_order_h100e
from agents.nation import announced_rules
from agents.strategies import (
    adaptive_expectation,
    discount_years,
    expected_pv_usd_per_h100e,
    financing_allowance_usd,
    investment_rate_per_year,
    power_room_h100e,
)
from market.controls import load_rules
from market.timeline import parse_month

# --------------------------------------------------------------- cloud investment ---

#: A new chip's H100e at the numbers of [CAL 7.2]: USD 0.13 of energy an hour, 8,328 offered
#: hours a year (95% availability), a six-year life, three months' lead, prices expected to
#: fall 27.6% a year.
CHIP = {"energy_usd_per_h100e_hour": 0.13, "offered_hours_per_year": 8_328.0,
        "price_decline_per_year": 0.276, "life_years": 6.0, "lead_years": 0.25}


def _order(expected, cost=35_000.0, wacc=0.085, committed=100_000.0, room=1e9, response=1.0):
    return order_decision_h100e(committed, room, expected, CHIP["energy_usd_per_h100e_hour"],
                                cost, CHIP["offered_hours_per_year"],
                                CHIP["price_decline_per_year"], wacc, CHIP["life_years"],
                                CHIP["lead_years"], response)


def test_adaptive_expectations_move_a_memory_fraction_towards_what_was_seen():
    """First observation sets it; with a 4-month memory, 2 -> 6 moves a quarter: 3; a
    memory of one month believes last month."""
    assert adaptive_expectation(None, 2.0, 4.0) == 2.0
    assert adaptive_expectation(2.0, 6.0, 4.0) == pytest.approx(3.0)
    assert adaptive_expectation(2.0, 6.0, 1.0) == 6.0


def test_present_value_is_the_discounted_declining_annuity():
    """No discounting, no decline: PV = hours x (earnings - energy) x life; discounting and
    decline each lower it, and so does a later delivery when cash is discounted."""
    flat = expected_pv_usd_per_h100e(3.0, 0.1, 8_000.0, 0.0, 0.0, 6.0, 0.0)
    assert flat == pytest.approx(8_000.0 * 2.9 * 6.0)
    assert discount_years(0.1, 6.0, 0.0) == pytest.approx((1 - np.exp(-0.6)) / 0.1)
    discounted, declining, later = (expected_pv_usd_per_h100e(3.0, 0.1, 8_000.0, d, w, 6.0, lead)
                                    for d, w, lead in ((0.0, 0.1, 0.0), (0.3, 0.0, 0.0),
                                                       (0.0, 0.1, 0.5)))
    assert discounted < flat and declining < flat and later < discounted


def test_a_cloud_orders_when_the_expected_value_exceeds_the_owned_cost():
    """At USD 4 an offered hour (2023-like) a new H100e is worth more than its USD 35k, so
    the committed fleet grows: a month of (PV / cost - 1) a year; at USD 1.5 (a glut) it
    is worth less and the cloud orders nothing."""
    pv = expected_pv_usd_per_h100e(4.0, wacc_per_year=0.085, **CHIP)
    assert pv > 35_000.0
    assert _order(4.0) == pytest.approx(100_000.0 * (pv / 35_000.0 - 1.0) / 12.0)
    assert expected_pv_usd_per_h100e(1.5, wacc_per_year=0.085, **CHIP) < 35_000.0
    assert _order(1.5) == 0.0
    assert investment_rate_per_year(30_000.0, 35_000.0, 1.0) == 0.0


def test_a_higher_cost_of_capital_means_a_smaller_order():
    hyperscaler, neocloud, distressed = (_order(4.0, wacc=w) for w in (0.085, 0.13, 0.30))
    assert hyperscaler > neocloud > distressed >= 0.0


def test_power_caps_the_order_at_the_new_chips_that_fit():
    """Free power holds 2,000 H100e: the order stops there whatever the return."""
    assert _order(6.0) > 2_000.0
    assert _order(6.0, room=2_000.0) == 2_000.0
    assert investment_order_h100e(100_000.0, 0.5, 0.0) == 0.0


def test_a_cloud_without_a_fleet_grows_from_what_its_power_holds():
    """Nothing installed or on order, room for 12,000 H100e, a rate of 0.5 a year: a month's
    growth of the room, 500 H100e."""
    assert investment_order_h100e(0.0, 0.5, 12_000.0) == pytest.approx(500.0)


def test_the_power_cap_counts_the_mixed_fleets_megawatts():
    """A 100 MW site with 40 MW of installed chips and 10 MW on its way has 50 MW free; a new
    chip needing 2 kW of facility power per H100e fits 25,000 H100e there, not the 50,000
    that dividing the whole site by the new chip's MW per H100e would give."""
    assert power_room_h100e(100.0, 40.0, 10.0, 0.002) == pytest.approx(25_000.0)
    assert power_room_h100e(100.0, 90.0, 20.0, 0.002) == 0.0


def test_financing_is_cash_flow_plus_outside_money_plus_the_debt_room_left():
    """USD 1B of cash flow + 0.5B outside + (4 x 2B of revenue - 5B debt) = 4.5B; a negative
    cash flow adds nothing, and a cloud at its debt limit borrows nothing more."""
    assert financing_allowance_usd(1e9, 0.5e9, 8e9, 5e9) == pytest.approx(4.5e9)
    assert financing_allowance_usd(-1e9, 0.5e9, 8e9, 9e9) == pytest.approx(0.5e9)


def test_an_order_above_the_financing_allowance_is_cut_to_it():
    """The cloud wants USD 50 x 30k = 1.5M of chips but may spend 0.6M: every vendor's part
    is scaled by 0.4."""
    vendor = SimpleNamespace(list_price=np.array([30_000.0]))
    _, cost, scale = sourcing_plan(50.0, 0.6e6, np.array([1.0]), [(0, 0, 30_000.0)],
                                   [vendor], np.array([1.0]), np.array([1.0]), 1.0)
    assert cost == pytest.approx(1.5e6)
    assert scale == pytest.approx(0.4)


# ---------------------------------------------------------------- build or rent ---

def _build(rent, **kw):
    args = dict(future_need_h100e=1_000.0, have_h100e=300.0, backlog_h100e=100.0,
                h100e_per_chip=1.0, server_price_usd=30_000.0,
                energy_usd_per_chip_month=500.0, rent_usd_per_h100e_hour=rent,
                horizon_months=12.0)
    args.update(kw)
    return build_order_h100e(**args)


def test_a_lab_builds_when_owning_breaks_even_within_its_horizon():
    """Gap 1,000 - 300 - 100 = 600 H100e. Renting at USD 9/h at 80% costs 9 x 730.5 x 0.8
    = 5,259.6 a month against 500 of energy: a USD 30,000 chip pays back in 30,000 /
    4,759.6 = 6.3 months <= 12, so it builds and orders a third of the gap: 200 H100e."""
    assert _build(9.0) == pytest.approx(200.0)


def test_a_lab_rents_when_building_pays_back_too_slowly():
    """At USD 2/h the chip pays back in 30,000 / (2 x 730.5 x 0.8 - 500) = 44.9 months
    > 12: it rents (orders nothing)."""
    assert _build(2.0) == 0.0


def test_a_lab_without_a_gap_or_a_rental_price_orders_nothing():
    assert _build(9.0, have_h100e=900.0) == 0.0
    assert _build(None) == 0.0


# ------------------------------------------------------------ announced rules ---

def test_rules_announced_before_they_bind_open_a_stockpiling_window():
    """The Oct 2023 rule was announced 2023-10 and took effect 2023-11 (rule data): imposed
    in 2023-11, buyers may stockpile in 2023-10 only. A lift opens no window."""
    rules = load_rules()
    impose = SimpleNamespace(kind="export_control", action="impose", rule="oct2023",
                             issuer="US", date="2023-11")
    lift = SimpleNamespace(kind="export_control", action="lift", rule="oct2023",
                           issuer="US", date="2024-11")
    month = parse_month("2023-11")
    assert announced_rules([impose, lift], rules) == [(month - 1, month, "US", "oct2023")]


# -------------------------------------------------------------------- sourcing ---

def test_an_order_splits_by_preference_and_scales_to_the_budget():
    """Weights 3:1 over two vendors at list price (no price response): 400 H100e wanted is
    300 chips of A (1 H100e, USD 10,000) and 50 of B (2 H100e, USD 20,000); with server
    multiplier 1 that costs 3,000,000 + 1,000,000 = 4,000,000, so a budget of 1,000,000
    scales every row by 0.25. A vendor without an allowed offer gets nothing."""
    a = SimpleNamespace(list_price=np.array([10_000.0]))
    b = SimpleNamespace(list_price=np.array([20_000.0]))
    c = SimpleNamespace(list_price=np.array([1.0]))
    plan, cost, scale = sourcing_plan(
        400.0, 1_000_000.0, np.array([3.0, 1.0, 5.0]),
        [(0, 0, 10_000.0), (0, 1, 20_000.0), None], [a, b, c],
        h100e=np.array([1.0, 2.0]), server_price=np.array([1.0, 1.0]), elasticity=1.5)
    assert [(v, units) for v, _, units, _ in plan] == [(a, 300.0), (b, 50.0)]
    assert cost == 4_000_000.0 and scale == 0.25
