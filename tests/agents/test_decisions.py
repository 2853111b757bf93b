"""Decisions that live with their agents, exercised from plain inputs (no model)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from agents.buyers import sourcing_plan
from agents.cloud import investment_order_h100e, order_decision_h100e
from agents.lab import build_order_h100e, build_share, owned_cost_usd_per_h100e_hour
from agents.nation import announced_rules
from agents.strategies import (
    PRICING,
    MarkupSignals,
    adaptive_expectation,
    added_hour_earnings_usd,
    damped_trend_growth,
    demand_growth_factor,
    discount_years,
    effective_chip_cost,
    expected_load_at_delivery,
    expected_pv_usd_per_h100e,
    financing_allowance_usd,
    investment_rate_per_year,
    power_room_h100e,
    pricing_strategy,
    vendor_shares,
)
from market.controls import load_rules
from market.errors import UnknownNameError
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
    # gross investment: a sixth of the fleet retires each year (six-year life) and is
    # replaced, plus (PV / cost - 1) a year
    assert _order(4.0) == pytest.approx(100_000.0 * (1 / 6 + pv / 35_000.0 - 1.0) / 12.0)
    assert expected_pv_usd_per_h100e(1.5, wacc_per_year=0.085, **CHIP) < 35_000.0 * 5 / 6
    assert _order(1.5) == 0.0
    assert investment_rate_per_year(30_000.0, 35_000.0, 1.0) == 0.0
    # at q = 1 a cloud replaces what retires, no more; below, less
    assert investment_rate_per_year(35_000.0, 35_000.0, 1.0, 0.2) == pytest.approx(0.2)
    assert investment_rate_per_year(31_500.0, 35_000.0, 1.0, 0.2) == pytest.approx(0.1)


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
                                   [vendor], np.array([1.0]), np.array([1.0]), 1.0,
                                   np.array([30_000.0]), 2.0, 3.0)
    assert cost == pytest.approx(1.5e6)
    assert scale == pytest.approx(0.4)


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


def test_the_build_share_is_a_logit_over_owning_and_renting():
    """At equal costs a lab wants half its compute on its own site; at beta 6, owning at 2.35
    against a 3.0 contract: 1 / (1 + (2.35 / 3)^6) = 0.81 of 1,000 H100e, less 400 it has,
    a third of the gap ordered; the share rises with the rent and tends to the all-or-nothing
    rule as beta grows."""
    assert build_share(2.0, 2.0, 6.0) == pytest.approx(0.5)
    share = 1.0 / (1.0 + (2.35 / 3.0) ** 6)
    assert build_share(2.35, 3.0, 6.0) == pytest.approx(share)
    assert build_order_h100e(1_000.0, 400.0, 2.35, 3.0, 0.33, 6.0) == pytest.approx(
        (share * 1_000.0 - 400.0) * 0.33)
    assert build_share(2.35, 2.0, 6.0) < 0.5 < build_share(2.35, 3.0, 6.0) \
        < build_share(2.35, 4.0, 6.0)
    assert build_share(2.35, 3.0, 200.0) == pytest.approx(1.0)
    assert build_share(2.35, None, 6.0) == 0.0


# ------------------------------------------------------------ announced rules ---

def test_rules_known_before_they_bind_open_a_stockpiling_window():
    """The Oct 2023 rule was announced 2023-10 and took effect 2023-11, and buyers acted on
    reports of it from 2023-08 (rule data: `expected`): imposed in 2023-11, buyers may
    stockpile from 2023-08; without `expected`, in 2023-10 only. A lift opens no window."""
    rules = load_rules()
    impose = SimpleNamespace(kind="export_control", action="impose", rule="oct2023",
                             issuer="US", date="2023-11")
    lift = SimpleNamespace(kind="export_control", action="lift", rule="oct2023",
                           issuer="US", date="2024-11")
    month = parse_month("2023-11")
    assert rules["oct2023"].expected == "2023-08"
    assert announced_rules([impose, lift], rules) == [(month - 3, month, "US", "oct2023")]
    unexpected = dict(rules.rules, oct2023=rules["oct2023"].model_copy(update={"expected": None}))
    assert announced_rules([impose], unexpected) == [(month - 1, month, "US", "oct2023")]


# -------------------------------------------------------------------- sourcing ---

def test_an_order_splits_by_value_and_scales_to_the_budget():
    """Two vendors with the same effective cost (A: USD 10,000 a chip of 1 H100e; B: 20,000
    for 2, no switching cost) share 400 H100e equally whatever the weights: 200 chips of A
    and 100 of B at list (no price response), USD 4,000,000 with server multiplier 1, so a
    budget of 1,000,000 scales every row by 0.25. A vendor without an allowed offer gets
    nothing."""
    a = SimpleNamespace(list_price=np.array([10_000.0]))
    b = SimpleNamespace(list_price=np.array([20_000.0]))
    c = SimpleNamespace(list_price=np.array([1.0]))
    plan, cost, scale = sourcing_plan(
        400.0, 1_000_000.0, np.array([3.0, 1.0, 5.0]),
        [(0, 0, 10_000.0), (0, 1, 20_000.0), None], [a, b, c],
        h100e=np.array([1.0, 2.0]), server_price=np.array([1.0, 1.0]), elasticity=1.5,
        cost_usd_per_h100e=np.array([10_000.0, 10_000.0, np.nan]), switching_cost=0.0,
        sensitivity=3.0)
    assert [(v, units) for v, _, units, _ in plan] == [(a, pytest.approx(200.0)),
                                                        (b, pytest.approx(100.0))]
    assert cost == pytest.approx(4_000_000.0) and scale == pytest.approx(0.25)


def test_a_vendors_part_spreads_over_its_line_by_value():
    """One vendor with two products: a flagship at USD 20,000 for 1 H100e and an older chip
    at 5,000 for 0.2 H100e, USD 25,000 per H100e (cost ratio 1.25). At sensitivity 3 the
    flagship takes 1.25^3 / (1 + 1.25^3) = 66.1% of the 100 H100e and the older chip the
    rest, each sized in its own units and priced at its own price; without a line the
    whole part goes to the best offer."""
    vendor = SimpleNamespace(list_price=np.array([20_000.0, 5_000.0]))
    args = dict(h100e=np.array([1.0, 0.2]), server_price=np.array([1.0, 1.0]), elasticity=1.0,
                cost_usd_per_h100e=np.array([20_000.0]), switching_cost=0.0, sensitivity=3.0)
    line = [(0, 0, 20_000.0, 20_000.0), (1, 1, 5_000.0, 25_000.0)]
    plan, cost, scale = sourcing_plan(100.0, 1e9, np.array([1.0]), [(0, 0, 20_000.0)],
                                      [vendor], lines=[line], **args)
    top = 1.25 ** 3 / (1 + 1.25 ** 3)
    assert [(prod, units) for _, prod, units, _ in plan] == [
        (0, pytest.approx(100.0 * top)), (1, pytest.approx(100.0 * (1 - top) / 0.2))]
    assert cost == pytest.approx(100.0 * top * 20_000.0 + 100.0 * (1 - top) * 25_000.0)
    assert scale == 1.0
    alone, _, _ = sourcing_plan(100.0, 1e9, np.array([1.0]), [(0, 0, 20_000.0)], [vendor],
                                **args)
    assert [(prod, units) for _, prod, units, _ in alone] == [(0, pytest.approx(100.0))]


def test_one_vendors_products_are_closer_substitutes_than_vendors_in_the_nested_logit():
    """The line of the test above at dissimilarity 0.5: the within-line sensitivity doubles
    to 6, so the flagship, 1.25x better value, takes 1.25^6 / (1 + 1.25^6) = 79.2% of the
    vendor's H100e instead of 66.1%; the split between vendors does not change."""
    vendor = SimpleNamespace(list_price=np.array([20_000.0, 5_000.0]))
    line = [(0, 0, 20_000.0, 20_000.0), (1, 1, 5_000.0, 25_000.0)]
    args = dict(h100e=np.array([1.0, 0.2]), server_price=np.array([1.0, 1.0]), elasticity=1.0,
                cost_usd_per_h100e=np.array([20_000.0]), switching_cost=0.0, sensitivity=3.0,
                lines=[line])
    loose, _, _ = sourcing_plan(100.0, 1e9, np.array([1.0]), [(0, 0, 20_000.0)], [vendor],
                                **args)
    nested, _, _ = sourcing_plan(100.0, 1e9, np.array([1.0]), [(0, 0, 20_000.0)], [vendor],
                                 line_dissimilarity=0.5, **args)
    top = 1.25 ** 6 / (1 + 1.25 ** 6)
    assert [(prod, units) for _, prod, units, _ in nested] == [
        (0, pytest.approx(100.0 * top)), (1, pytest.approx(100.0 * (1 - top) / 0.2))]
    assert nested[0][2] > loose[0][2] and nested[1][2] < loose[1][2]


def test_buyers_choose_vendors_by_value_with_preference_as_a_switching_cost():
    """A logit in log effective cost: at equal weights the chip half as dear per H100e gets
    2^3 = 8 times the share (sensitivity 3); at equal cost, a vendor with half the top
    weight costs 1 + 2 x 0.5 = 2x (switching cost 2), so it gets 1/8 of the other's share;
    a vendor without an offer or without weight gets nothing, and the best offer is the
    lowest effective cost."""
    even = vendor_shares(np.array([1.0, 2.0]), np.array([1.0, 1.0]), 2.0, 3.0)
    assert even == pytest.approx([8 / 9, 1 / 9])
    preferred = vendor_shares(np.array([1.0, 1.0]), np.array([1.0, 0.5]), 2.0, 3.0)
    assert preferred == pytest.approx([8 / 9, 1 / 9])
    assert vendor_shares(np.array([1.0, np.nan, 0.5]), np.array([1.0, 1.0, 0.0]), 2.0,
                         3.0) == pytest.approx([1.0, 0.0, 0.0])
    assert not vendor_shares(np.array([np.nan]), np.array([1.0]), 2.0, 3.0).any()
    # a cheap non-preferred chip beats a dear preferred one once it is cheap enough
    cost = effective_chip_cost(np.array([30_000.0, 12_000.0]), np.array([0.85, 0.15]), 1.0)
    assert cost[1] < cost[0]
    assert effective_chip_cost(np.array([30_000.0, 12_000.0]), np.array([0.85, 0.15]),
                               2.0)[1] > 30_000.0


def test_clouds_expect_their_regions_demand_trend_over_the_delivery_horizon():
    """Demand doubled over the 6 months remembered: over 3 months ahead it grows by
    2^(3/6); with fewer months seen it uses what it has; no history, no growth."""
    history = [np.array([100.0 * 2 ** (t / 6)]) for t in range(13)]
    assert demand_growth_factor(history, 0, 6.0, 3.0) == pytest.approx(2 ** 0.5)
    assert demand_growth_factor(history[:3], 0, 6.0, 3.0) == pytest.approx(2 ** 0.5)
    assert demand_growth_factor(history[:1], 0, 6.0, 3.0) == 1.0
    assert demand_growth_factor([np.array([0.0]), np.array([5.0])], 0, 6.0, 3.0) == 1.0


def test_the_supply_line_dilutes_the_load_a_cloud_expects():
    """Load 1 today, demand +20%, a fleet that doubles with what is on order: 0.6 if the
    cloud counts all of its supply line, 1.2 if it ignores it (Sterman's misperception)."""
    assert expected_load_at_delivery(1.0, 1.2, 100.0, 200.0, 1.0) == pytest.approx(0.6)
    assert expected_load_at_delivery(1.0, 1.2, 100.0, 200.0, 0.0) == pytest.approx(1.2)
    assert expected_load_at_delivery(1.0, 1.2, 100.0, 200.0, 0.5) == pytest.approx(0.8)


def test_an_added_hour_at_a_posted_price_sells_only_when_demand_exceeds_the_fleet():
    """At load 1 an added hour sells half the time (median forecast); well above, almost
    always; well below, it idles at the spot price of idle hours. At spot the hour's price
    scales with the load."""
    at = lambda load: added_hour_earnings_usd(5.0, load, True, 0.25, 1.0)  # noqa: E731
    assert at(1.0) == pytest.approx(0.5 * 5.0 + 0.5 * 1.0)
    assert at(3.0) == pytest.approx(5.0, rel=1e-4)
    assert at(0.3) == pytest.approx(1.0, rel=1e-4)
    assert at(0.9) < at(1.0) < at(1.1)
    assert added_hour_earnings_usd(4.0, 0.5, False, 0.25, 1.0) == pytest.approx(2.0)


def test_a_damped_trend_carries_a_bounded_number_of_months_of_growth():
    """Demand doubled in 6 months (monthly log growth ln 2 / 6). Undamped (f = 1), 12 months
    ahead is 2^2; f = 0 expects no growth; f = 0.9 carries 0.9 (1 - 0.9^12) / 0.1 = 6.35
    months of it, and never more than 0.9 / 0.1 = 9 however long the horizon."""
    assert damped_trend_growth(200.0, 100.0, 6, 12.0, 1.0) == pytest.approx(4.0)
    assert damped_trend_growth(200.0, 100.0, 6, 12.0, 0.0) == 1.0
    months = 0.9 * (1 - 0.9 ** 12) / 0.1
    assert damped_trend_growth(200.0, 100.0, 6, 12.0, 0.9) == pytest.approx(2 ** (months / 6))
    assert damped_trend_growth(200.0, 100.0, 6, 1e4, 0.9) == pytest.approx(2 ** (9 / 6))
    assert damped_trend_growth(200.0, 0.0, 6, 12.0, 0.9) == 1.0
    history = [np.array([100.0 * 2 ** (t / 6)]) for t in range(13)]
    assert demand_growth_factor(history, 0, 6.0, 12.0, 0.9) == pytest.approx(2 ** (months / 6))


# ------------------------------------------------------------- hyperscaler markups ---

def test_a_markup_moved_by_market_share_compounds_with_where_buyers_go():
    """`market_share_margin` (Dosi et al. 2010): the markup grows by the response x the
    share's relative change, falls when buyers leave, and a month's signal acts once. Over
    a path of shares it ends near margin_0 x (s_end / s_0)^v, whatever the path between."""
    rule = pricing_strategy("market_share_margin")
    params = SimpleNamespace(markup_share_response=0.5, margin_response=1.0)
    grow = MarkupSignals(utilization=1.0, target_utilization=0.8, share_growth=0.10)
    assert rule(2.0, grow, params, 0.0, 12.0) == pytest.approx(2.0 * 1.05)
    leave = MarkupSignals(utilization=1.0, target_utilization=0.8, share_growth=-0.20)
    assert rule(2.0, leave, params, 0.0, 12.0) == pytest.approx(2.0 * 0.90)
    # a full load does not move it: only the share does
    still = MarkupSignals(utilization=1.0, target_utilization=0.8)
    assert rule(2.0, still, params, 0.0, 12.0) == 2.0
    # the guards hold
    assert rule(11.9, grow, params, 0.0, 12.0) == 12.0
    shares = [0.40, 0.44, 0.41, 0.47, 0.52, 0.50]
    margin = 2.0
    for before, after in zip(shares, shares[1:]):
        margin = rule(margin, MarkupSignals(1.0, 0.8, after / before - 1.0), params, 0.0, 12.0)
    assert margin == pytest.approx(2.0 * (0.50 / 0.40) ** 0.5, rel=0.02)


def test_the_utilization_markup_and_the_posted_price_read_only_the_load():
    params = SimpleNamespace(markup_share_response=0.5, margin_response=1.0)
    busy = MarkupSignals(utilization=0.9, target_utilization=0.8, share_growth=0.5)
    assert pricing_strategy("utilization_margin")(2.0, busy, params, 0.0, 12.0) == \
        pytest.approx(2.1)
    assert pricing_strategy("utilization_margin")(2.0, busy, params, 0.0, 2.05) == 2.05
    assert pricing_strategy("posted_price")(2.0, busy, params, 0.0, 12.0) == 2.0


def test_markup_rules_are_chosen_by_name_and_an_unknown_one_lists_them():
    with pytest.raises(UnknownNameError) as err:
        pricing_strategy("gouging", "pricing strategy (market.hyperscaler_pricing)")
    message = str(err.value)
    assert "market.hyperscaler_pricing" in message and "'gouging'" in message
    assert all(name in message for name in PRICING)
