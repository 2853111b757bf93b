"""Spot clearing against continuous demand and chip rationing on worked examples, plus
invariants over random input."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from market.clearing import clear_spot, ration
from market.errors import UnknownNameError


def _linear_demand(intercept, slope):
    """D(p) = max(intercept - slope p, 0) per market."""
    intercept, slope = np.asarray(intercept, float), np.asarray(slope, float)
    return lambda p: np.maximum(intercept - slope * p, 0.0)


def test_demand_crossing_a_step_sets_the_price_between_asks():
    """Asks 10 @ 1 and 10 @ 5; demand D(p) = 30 - 5p. At p in (1, 5) supply is 10 and
    D(p) = 10 at p = 4: demand sets the price, 4, between the two asks; volume 10."""
    res = clear_spot(_linear_demand([30.0], [5.0]), np.array([0, 0]), np.array([10.0, 10.0]),
                     np.array([1.0, 5.0]), 1, price_cap=1e4)
    assert res.price[0] == pytest.approx(4.0, rel=1e-5)
    assert res.volume[0] == pytest.approx(10.0, rel=1e-5)
    np.testing.assert_allclose(res.ask_fill, [10.0, 0.0], atol=1e-4)
    assert not res.short[0]


def test_marginal_ask_rationed_sets_the_price_at_its_cost():
    """Asks 10 @ 1 and 10 @ 2; D(p) = 27 - 5p: just below 2 demand (17) exceeds supply (10),
    at 2 supply (20) exceeds demand (17): the 2-ask sells 7 and its cost, 2, is the price."""
    res = clear_spot(_linear_demand([27.0], [5.0]), np.array([0, 0]), np.array([10.0, 10.0]),
                     np.array([1.0, 2.0]), 1, price_cap=1e4)
    assert res.price[0] == pytest.approx(2.0, rel=1e-5)
    np.testing.assert_allclose(res.ask_fill, [10.0, 7.0], rtol=1e-4)


def test_glut_clears_at_the_cheapest_ask_with_demand_served_in_full():
    res = clear_spot(_linear_demand([5.0], [1.0]), np.array([0]), np.array([100.0]),
                     np.array([1.0]), 1, price_cap=1e4)
    assert res.price[0] == pytest.approx(1.0) and res.volume[0] == pytest.approx(4.0)


def test_shortage_at_the_cap_is_reported_and_every_ask_sells_out():
    res = clear_spot(lambda p: np.full(p.shape, 50.0), np.array([0]), np.array([10.0]),
                     np.array([1.0]), 1, price_cap=100.0)
    assert res.short[0] and res.price[0] == 100.0 and res.ask_fill[0] == pytest.approx(10.0)


def test_markets_clear_independently_and_markets_without_asks_have_no_price():
    res = clear_spot(_linear_demand([30.0, 27.0, 5.0], [5.0, 5.0, 1.0]),
                     np.array([1, 0, 0, 1]), np.array([10.0, 10.0, 10.0, 10.0]),
                     np.array([1.0, 1.0, 5.0, 2.0]), 3, price_cap=1e4)
    assert res.price[0] == pytest.approx(4.0, rel=1e-5)
    assert res.price[1] == pytest.approx(2.0, rel=1e-5)
    assert np.isnan(res.price[2]) and res.volume[2] == 0.0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(0.01, 50), st.floats(0.1, 100)), min_size=1, max_size=8),
       st.floats(1, 500), st.floats(0.2, 3))
def test_spot_invariants(asks, scale, elasticity):
    """Iso-elastic demand D(p) = scale p^-e: sold = demanded at the price (<= supply), every
    filled ask priced at or below the price, unfilled asks above it (up to tolerance)."""
    price_ = np.array([a[0] for a in asks])
    qty = np.array([a[1] for a in asks])
    demand = lambda p: scale * np.maximum(p, 1e-12) ** -elasticity   # noqa: E731
    res = clear_spot(demand, np.zeros(len(asks), dtype=int), qty, price_, 1, price_cap=1e6)
    p = res.price[0]
    assert res.ask_fill.sum() == pytest.approx(res.volume[0], rel=1e-9, abs=1e-9)
    assert res.volume[0] <= qty.sum() * (1 + 1e-9)
    assert np.all(res.ask_fill <= qty * (1 + 1e-12))
    assert np.all(price_[res.ask_fill > 1e-9] <= p * (1 + 1e-5))
    if not res.short[0]:
        assert res.volume[0] == pytest.approx(min(demand(np.array([p]))[0], qty.sum()),
                                              rel=1e-3)


def test_rationing_pro_rata_and_first_come():
    orders, placed = np.array([60.0, 40.0]), np.array([2, 1])
    assert ration(orders, placed, 50) == pytest.approx([30, 20])
    assert ration(orders, placed, 50, "first_come") == pytest.approx([10, 40])
    assert ration(orders, placed, 500) == pytest.approx([60, 40])
    with pytest.raises(UnknownNameError, match="known: first_come, pro_rata"):
        ration(orders, placed, 5, "lottery")


@given(orders=st.lists(st.floats(0, 1e5), min_size=1, max_size=10), supply=st.floats(0, 1e6),
       rule=st.sampled_from(["pro_rata", "first_come"]))
def test_rationing_never_ships_more_than_supply_or_orders(orders, supply, rule):
    o = np.array(orders)
    sent = ration(o, np.arange(len(o)), supply, rule)
    assert sent.sum() <= min(supply, o.sum()) * (1 + 1e-9) + 1e-9
    assert np.all(sent <= o + 1e-9) and np.all(sent >= 0)


# --------------------------------------------------------------- segmented clearing ---



@st.composite
def segmented_markets(draw):
    n_seg = draw(st.integers(1, 5))
    prices = st.sampled_from([0.5, 1.0, 1.5, 2.0, 3.0, 5.0])
    qty = st.sampled_from([0.0, 1e-13, 1.0, 2.5, 10.0, 1e6])
    nb, na = draw(st.integers(0, 12)), draw(st.integers(0, 12))
    return (n_seg,
            np.array(draw(st.lists(st.integers(0, n_seg - 1), min_size=nb, max_size=nb))),
            np.array(draw(st.lists(qty, min_size=nb, max_size=nb)), dtype=float),
            np.array(draw(st.lists(prices, min_size=nb, max_size=nb)), dtype=float),
            np.array(draw(st.lists(st.integers(0, n_seg - 1), min_size=na, max_size=na))),
            np.array(draw(st.lists(qty, min_size=na, max_size=na)), dtype=float),
            np.array(draw(st.lists(prices, min_size=na, max_size=na)), dtype=float))



def test_grouped_pro_rata_equals_ration_per_group():
    from market.clearing import ration_pro_rata_by_group
    units = np.array([4.0, 6.0, 1.0, 2.0, 5.0])
    group = np.array([0, 0, 1, 1, 2])
    supply = np.array([5.0, 10.0, 0.0])
    got = ration_pro_rata_by_group(units, group, supply)
    for g in range(3):
        np.testing.assert_allclose(got[group == g], ration(units[group == g],
                                                           np.zeros(int((group == g).sum())),
                                                           supply[g], "pro_rata"))


def _counting(demand):
    calls = []

    def counted(p):
        calls.append(1)
        return demand(p)
    return counted, calls


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.floats(0.01, 5), st.floats(1, 100)), min_size=1, max_size=6),
       st.floats(10, 5000), st.floats(0.3, 2.5), st.floats(0.3, 3.0))
def test_guessed_clearing_finds_the_same_price_as_a_plain_search(asks, scale, elasticity, off):
    """A guess (last month's price, off by a factor `off`) changes how the root is found, not
    where it is: the price agrees with the unguessed search to the tolerance."""
    price_ = np.array([a[0] for a in asks])
    qty = np.array([a[1] for a in asks])
    demand = lambda p: scale * np.maximum(p, 1e-12) ** -elasticity   # noqa: E731
    plain = clear_spot(demand, np.zeros(len(asks), dtype=int), qty, price_, 1, price_cap=1e6)
    guessed = clear_spot(demand, np.zeros(len(asks), dtype=int), qty, price_, 1, price_cap=1e6,
                         guess=plain.price * off)
    assert guessed.price[0] == pytest.approx(plain.price[0], rel=2e-5)
    assert guessed.volume[0] == pytest.approx(plain.volume[0], rel=1e-4, abs=1e-9)


def test_smooth_excess_demand_is_cleared_in_far_fewer_evaluations_than_bisection():
    """Where supply is sold out and demand iso-elastic (the usual month), the interpolating
    search needs a handful of demand evaluations; bisection from the same bracket needs
    log2(width / tolerance), 17 here."""
    demand, calls = _counting(lambda p: 1000.0 * p ** -0.7)
    res = clear_spot(demand, np.array([0]), np.array([200.0]), np.array([0.1]), 1,
                     price_cap=1e4, guess=np.array([9.0]))
    assert res.price[0] == pytest.approx((1000.0 / 200.0) ** (1 / 0.7), rel=1e-5)
    bisection = int(np.ceil(np.log2(np.log(1.5 ** 2) / 1e-5)))
    assert bisection == 17 and len(calls) <= 10


def test_a_demand_asked_only_for_the_unsolved_markets_clears_the_same():
    """Three markets, one solved quickly (a steep curve), with guesses that hold the root in
    two and miss it in the third: a demand that returns garbage (NaN) for the markets it is
    not asked about clears exactly as one that always returns every market's demand, and
    once a market is solved it is no longer asked about."""
    full = _linear_demand([30.0, 27.0, 500.0], [5.0, 5.0, 1.0])
    asked = []

    def partial(p, markets=None):
        d = full(p)
        if markets is None:
            return d
        asked.append(markets.copy())
        return np.where(markets, d, np.nan)

    args = (np.array([0, 0, 1, 1, 2]), np.array([10.0, 10.0, 10.0, 10.0, 20.0]),
            np.array([1.0, 5.0, 1.0, 2.0, 3.0]), 3)
    kw = dict(price_cap=1e4, guess=np.array([4.5, 1.5, 2.0]))
    plain = clear_spot(full, *args, **kw)
    fewer = clear_spot(partial, *args, **kw, demand_of_markets=True)
    for a, b in zip((plain.price, plain.volume, plain.ask_fill, plain.short),
                    (fewer.price, fewer.volume, fewer.ask_fill, fewer.short)):
        np.testing.assert_array_equal(a, b)
    assert asked and not asked[-1].all()
