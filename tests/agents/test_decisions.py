"""Decisions that live with their agents, exercised from plain inputs (no model)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

import numpy as np

from agents.buyers import sourcing_plan
from agents.cloud import investment_order_h100e
from agents.lab import build_order_h100e
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
