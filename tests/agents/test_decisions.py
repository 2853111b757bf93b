"""Decisions that live with their agents, exercised from plain inputs (no model)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

import numpy as np

from agents.buyers import sourcing_plan
from agents.cloud import investment_order_h100e
from agents.lab import build_order_h100e, owned_cost_usd_per_h100e_hour
from agents.nation import announced_rules
from market.controls import load_rules
from market.timeline import parse_month

# --------------------------------------------------------------- cloud investment ---


def test_a_cloud_earning_its_cost_orders_nothing_beyond_its_pipeline():
    """Earned = new cost: return 0, growth rate 0, so it wants its installed fleet and orders
    nothing (installed 100, nothing on order)."""
    assert investment_order_h100e(100.0, 0.0, 1_000.0, 2.0, 9.9, 0.7, 2.0, 1.0) == 0.0


def test_a_profitable_cloud_grows_and_fills_half_its_power():
    """Earned 3 vs cost 2: return 0.5, rate = 1.0 x 0.5 per year, so 100 x 1.5 = 150 H100e;
    half of its 1,000 H100e of power is more, so it aims at 500 and orders 500 - 100 - 50
    on order = 350 H100e."""
    assert investment_order_h100e(100.0, 50.0, 1_000.0, 3.0, 0.0, 0.7, 2.0, 1.0) == \
        pytest.approx(350.0)


def test_a_new_cloud_expects_the_going_rate_at_its_target_utilization():
    """No sales yet: earned = going rate 4.0 x target 0.5 = 2.0 = the new chip's cost, so no
    growth; a going rate of 6.0 (earned 3.0) makes it fill half its power: 500 H100e."""
    assert investment_order_h100e(0.0, 0.0, 1_000.0, None, 4.0, 0.5, 2.0, 1.0) == 0.0
    assert investment_order_h100e(0.0, 0.0, 1_000.0, None, 6.0, 0.5, 2.0, 1.0) == 500.0


def test_power_caps_the_fleet_a_cloud_wants():
    """A return of 9 would triple the fleet (rate capped at 3/yr: 100 x 4 = 400) but its
    power holds 300 H100e: it orders 300 - 100 = 200."""
    assert investment_order_h100e(100.0, 0.0, 300.0, 20.0, 0.0, 0.7, 2.0, 1.0) == 200.0


# ---------------------------------------------------------------- build or rent ---

def test_owned_cost_is_the_user_cost_of_capital_plus_energy():
    """A USD 30,000 chip (with server) of 1 H100e: 30,000 / (1 - 0.19) interconnect x (10%
    WACC + 32.2%/yr value decline) / 8,766 h = 1.78, plus 0.10 of energy, over 80% use:
    2.35 USD per H100e-hour (Jorgenson's user cost on the cost core's decline rate)."""
    got = owned_cost_usd_per_h100e_hour(30_000.0, 1.0, 0.10, 0.10, 0.8)
    expected = (30_000 / 0.81 * (0.10 + 0.14 * np.log(10)) / 8_766 + 0.10) / 0.8
    assert got == pytest.approx(expected)
    assert 2.3 < got < 2.4
    # a dearer cost of capital or idler cluster makes owning dearer
    assert owned_cost_usd_per_h100e_hour(30_000.0, 1.0, 0.10, 0.15, 0.8) > got
    assert owned_cost_usd_per_h100e_hour(30_000.0, 1.0, 0.10, 0.10, 0.6) > got


def test_a_lab_builds_when_owning_is_cheaper_than_renting():
    """Wanted 1,000 H100e, 400 installed or on order: owning at 2.35 beats a 3.0 contract,
    so it orders a third of the 600 gap: 198 H100e at a closure of 0.33 a month."""
    assert build_order_h100e(1_000.0, 400.0, 2.35, 3.0, 0.33) == pytest.approx(198.0)


def test_a_lab_rents_when_owning_is_dearer_or_nothing_is_missing():
    assert build_order_h100e(1_000.0, 400.0, 2.35, 2.0, 0.33) == 0.0
    assert build_order_h100e(1_000.0, 1_200.0, 2.35, 3.0, 0.33) == 0.0
    assert build_order_h100e(1_000.0, 400.0, 2.35, None, 0.33) == 0.0


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
