"""Labs' demand curves and the price institutions (list, contract, spot choice): pure
functions on worked examples and properties, without a model."""

from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from agents.demand import DemandCurves, MarketDemand, serving_hours, training_hours
from agents.pricing import (HYPER_CONTRACT, LIST, NEO_CONTRACT, REMOTE, SPOT,
                            adapt_expectation, choose_options, forward_price, list_target,
                            revise_list_price)
from market.gpu_hours import clear_contracts
from market.hour_prices import option_costs


def test_serving_demand_is_iso_elastic_in_the_price_per_token():
    """Potential 1,000 H100e-h at 3 USD: at 6 USD (twice the price) an elasticity of 1 halves
    it; a fleet that serves twice the tokens per H100e (v = 2) needs half the hours at the
    same token price, and its token price halves: 1,000 / 2 x (6 / (2 x 3))^-1 = 500."""
    assert serving_hours(6.0, 1_000.0, 3.0, 1.0) == pytest.approx(500.0)
    assert serving_hours(3.0, 1_000.0, 3.0, 0.5) == pytest.approx(1_000.0)
    assert serving_hours(6.0, 1_000.0, 3.0, 1.0, serving_value=2.0) == pytest.approx(500.0)
    assert serving_hours(6.0, 1_000.0, 3.0, 2.0, serving_value=2.0) == pytest.approx(500.0)
    assert serving_hours(12.0, 1_000.0, 3.0, 2.0) == pytest.approx(1_000.0 / 16)


def test_a_fleet_that_serves_nothing_sells_no_serving_hours():
    """Where no chip meets the workload's latency bound the fleet's serving value is 0: no
    serving hours are bought (not an infinite number), and the curves stay finite (a case
    hypothesis found: `market.serving` at bandwidth_efficiency 0.3 and max_step_seconds
    0.02)."""
    assert serving_hours(3.0, 1_000.0, 3.0, 0.8, serving_value=0.0) == 0.0
    curves = DemandCurves(np.array([1_000.0, 1_000.0]), np.zeros(2), np.full(2, 3.0),
                          np.full(2, 3.0), np.full(2, 0.8), np.full(2, 1.0), np.zeros(2),
                          serving_value=np.array([0.0, 1.0]))
    serve, _ = curves.split(np.full(2, 3.0))
    assert serve[0] == 0.0 and serve[1] == pytest.approx(1_000.0)
    assert np.isfinite(curves._serve_scale).all()


def test_training_demand_spends_the_budget_up_to_what_the_lab_would_use():
    """Budget 3,000 USD: at 1 USD it could buy 3,000 h but uses only 1,000 x (1/3)^-1 = 3,000
    -> 3,000; at 3 USD both give 1,000; at 6 USD the budget buys 500 and it wants 500."""
    assert training_hours(1.0, 1_000.0, 3.0, 1.0, 3_000.0) == pytest.approx(3_000.0)
    assert training_hours(3.0, 1_000.0, 3.0, 1.0, 3_000.0) == pytest.approx(1_000.0)
    assert training_hours(6.0, 1_000.0, 3.0, 0.5, 3_000.0) == pytest.approx(500.0)
    assert training_hours(2.0, 1_000.0, 3.0, 1.0, 0.0) == 0.0


@settings(max_examples=50, deadline=None)
@given(st.floats(0.1, 50), st.floats(0.1, 50), st.floats(0.2, 3), st.floats(0, 1e5),
       st.floats(0.3, 3))
def test_demand_never_rises_with_the_price(p1, p2, eps, budget, value):
    lo, hi = min(p1, p2), max(p1, p2)
    curves = DemandCurves([1_000.0], [800.0], [3.0], [3.0], [eps], [eps], [budget], [value])
    assert curves.total(np.array([hi]))[0] <= curves.total(np.array([lo]))[0] * (1 + 1e-12)


def test_adaptive_expectation_moves_one_memory_th_and_ignores_missing_prices():
    e = adapt_expectation(np.array([10.0, 10.0, np.nan]), np.array([4.0, np.nan, 5.0]), 6.0)
    np.testing.assert_allclose(e, [9.0, 10.0, 5.0])


def test_list_price_moves_only_past_the_menu_cost_threshold():
    """List 10: a target of 11 (10% off) stays under a 15% threshold, 12 (20%) revises."""
    new, revised = revise_list_price(np.array([10.0, 10.0, np.nan]),
                                     np.array([11.0, 12.0, 7.0]), 0.15)
    np.testing.assert_allclose(new, [10.0, 12.0, 7.0])
    assert revised.tolist() == [False, True, True]
    assert list_target(2.0, 1.5) == pytest.approx(5.0)
    assert forward_price(4.0, -0.1) == pytest.approx(3.6)


def _shares(n=1):
    s = np.zeros((n, 5))
    s[:, SPOT] = 1.0
    return s


def test_buyers_move_towards_the_cheaper_option_gradually_with_a_switching_cost():
    """All on spot at 4; list costs 2 effective: the logit pulls share to list, the more
    so without switching cost; shares stay a distribution."""
    cost = np.array([[2.0, np.nan, np.nan, 4.0, np.nan]])
    avail = np.isfinite(cost)
    sticky = choose_options(_shares(), cost, avail, 4.0, 3.0)
    free = choose_options(_shares(), cost, avail, 4.0, 0.0)
    assert 0 < sticky[0, LIST] < free[0, LIST] < 1
    assert free[0, LIST] == pytest.approx(2.0 ** 4 / (2.0 ** 4 + 1))   # (4/2)^4 : 1
    for s in (sticky, free):
        assert s.sum() == pytest.approx(1.0) and np.all(s >= 0)


def test_a_closed_option_loses_its_share_to_the_open_ones():
    shares = np.array([[0.0, 0.0, 0.0, 0.5, 0.5]])
    cost = np.array([[np.nan, np.nan, np.nan, 4.0, 5.0]])
    avail = np.array([[False, False, False, True, False]])        # remote access closed
    new = choose_options(shares, cost, avail, 4.0, 2.0)
    assert new[0, REMOTE] == 0.0 and new[0, SPOT] == pytest.approx(1.0)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(0.5, 20), min_size=5, max_size=5),
       st.lists(st.floats(0, 1), min_size=5, max_size=5), st.floats(0.1, 10), st.floats(0, 5))
def test_choice_keeps_a_distribution_over_the_open_options(costs, weights, beta, kappa):
    w = np.array([weights]) + 1e-9
    w /= w.sum()
    cost = np.array([costs])
    avail = np.array([[True, True, False, True, True]])
    new = choose_options(w, cost, avail, beta, kappa)
    assert new.sum() == pytest.approx(1.0) and new[0, 2] == 0.0 and np.all(new >= 0)


def test_an_unexpected_price_meets_the_short_run_curve_about_the_planned_one():
    """A serving-only lab with elasticity 1, short-run share 0.35, planned at 2 USD: at 2 USD
    it buys what its long-run curve says; at 4 USD it cuts by 2^-0.35, not by half; a row
    with no planned price (NaN), or no expected price given, stays on the long-run curve."""
    curves = DemandCurves([1_000.0, 1_000.0], [0.0, 0.0], [3.0, 3.0], [3.0, 3.0], [1.0, 1.0],
                          [1.0, 1.0], [0.0, 0.0], [1.0, 1.0], short_run_share=0.35)
    rows, own = np.arange(2), np.zeros(2)
    long_run = curves.market_demand(rows, own)
    short_run = curves.market_demand(rows, own, np.array([2.0, np.nan]))

    def at(price):
        return np.log(np.full(2, price))
    np.testing.assert_allclose(short_run(at(2.0)), long_run(at(2.0)))
    assert short_run(at(4.0))[0] == pytest.approx(long_run(at(2.0))[0] * 2 ** -0.35)
    assert long_run(at(4.0))[0] == pytest.approx(long_run(at(2.0))[0] / 2)
    assert short_run(at(4.0))[1] == pytest.approx(long_run(at(4.0))[1])
    # with a short-run share of 1 the planned price does not matter
    same = DemandCurves([1_000.0], [0.0], [3.0], [3.0], [1.0], [1.0], [0.0], [1.0])
    assert same.market_demand(np.arange(1), np.zeros(1), np.array([2.0]))(np.log([4.0]))[0] \
        == pytest.approx(same.market_demand(np.arange(1), np.zeros(1))(np.log([4.0]))[0])


def test_a_rationed_option_costs_what_it_delivers_on_average():
    """Region 0 rents from region 1; region 2 has hyperscalers only. Spot 4 at home, 2 in
    region 1 (+0.5 friction); list 9 with a 1/3 committed-use discount, premium 1.5. Last
    month region 0's neocloud contracts signed at 3 (above its forward, 2.5: they cleared
    above the clouds' reservation), the KYC room served a quarter of the remote asks and
    region 0's hyperscalers signed half its new committed use: remote costs 0.25 x 2.5 +
    0.75 x 4 = 3.625, committed use 0.5 x 4 + 0.5 x 4 = 4, the neocloud contract (fully
    signed) 3. Region 1, where none signed yet, judges its contract at its forward, 3, and
    signed a fifth of what was asked: 0.2 x 3 + 0.8 x 2 = 2.2. Region 2, with no spot,
    judges committed use at its price, 4, and has no neocloud option."""
    params = SimpleNamespace(hyperscaler_wtp_premium=1.5, committed_use_discount=1 / 3,
                             remote_friction_usd_per_h100e_hour=0.5)
    hm = SimpleNamespace(expected_spot=np.array([4.0, 2.0, np.nan]),
                         spot=np.array([4.0, 2.0, np.nan]),
                         remote_fill=np.array([1.0, 0.25, 1.0]),
                         list_price=np.array([9.0, 9.0, 9.0]),
                         forward=np.array([2.5, 3.0, np.nan]),
                         contract_price=np.array([3.0, np.nan, np.nan]),
                         contract_fill=np.array([[0.5, 1.0], [1.0, 0.2], [0.3, 1.0]]),
                         has_tier=np.array([[True, True], [True, True], [True, False]]))
    cost, available = option_costs(SimpleNamespace(params=params), hm, np.array([1, -1, -1]))
    assert cost[0, REMOTE] == pytest.approx(3.625)
    assert cost[0, HYPER_CONTRACT] == pytest.approx(4.0)
    assert cost[0, NEO_CONTRACT] == pytest.approx(3.0)
    assert cost[0, LIST] == pytest.approx(6.0) and cost[0, SPOT] == pytest.approx(4.0)
    assert cost[1, NEO_CONTRACT] == pytest.approx(2.2)
    assert cost[1, HYPER_CONTRACT] == pytest.approx(4.0)     # all of it signed
    assert cost[2, HYPER_CONTRACT] == pytest.approx(4.0)
    assert available[0].all() and not available[1, REMOTE]
    assert available[2].tolist() == [True, True, False, False, False]


def test_neocloud_contracts_sign_at_the_forward_unless_the_asks_exceed_the_room():
    """Buyers want 100 / p H100e-hours each under contract; the forward is 2 in both regions.
    Region 0's two buyers (one holding 10 already) ask 40 + 50 = 90 at the forward against a
    room of 45: the price rises to where 200 / p - 10 = 45, p = 200 / 55. Region 1's buyer
    asks 50 against 80: it signs at the forward."""
    hm = SimpleNamespace(n_regions=2, forward=np.array([2.0, 2.0]),
                         contract_price=np.full(2, np.nan))

    # serving only, elasticity 1: 100 / p
    curve = MarketDemand(np.full(3, 100.0), np.zeros(3), np.ones(3), np.ones(3), np.zeros(3),
                         np.zeros(3), np.full(3, np.inf))
    rows, region = np.arange(3), np.array([0, 0, 1])
    price = clear_contracts(hm, curve, rows, region, np.ones(3), np.array([10.0, 0.0, 0.0]),
                            np.array([45.0, 80.0]))
    assert price[0] == pytest.approx(200.0 / 55.0, rel=1e-4)
    assert price[1] == 2.0
    # with last month's price as the search's first bracket, the same prices
    hm.contract_price = price.copy()
    again = clear_contracts(hm, curve, rows, region, np.ones(3), np.array([10.0, 0.0, 0.0]),
                            np.array([45.0, 80.0]))
    assert again == pytest.approx(price, rel=1e-4)
