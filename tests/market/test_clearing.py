"""GPU-hour clearing and chip rationing on worked examples, plus invariants over random input."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from market.clearing import clear, ration
from market.errors import UnknownNameError


def test_shortage_marginal_bid_sets_price():
    """Asks 10 @ 1 and 10 @ 2; bids 15 @ 5 and 10 @ 3. Demand 25 > supply 20 at any price up to
    3: volume 20, the 3-bid is rationed (5 of 10) and sets the price at 3."""
    r = clear([15, 10], [5, 3], [10, 10], [1, 2])
    assert r.volume == pytest.approx(20)
    assert r.price == pytest.approx(3)
    assert r.bid_fill == pytest.approx([15, 5])
    assert r.ask_fill == pytest.approx([10, 10])


def test_surplus_marginal_ask_sets_price():
    """Asks 10 @ 1 and 10 @ 2; one bid 15 @ 5. Supply exceeds demand from price 2: volume 15,
    the 2-ask is rationed (5 of 10) and sets the price at 2."""
    r = clear([15], [5], [10, 10], [1, 2])
    assert r.volume == pytest.approx(15)
    assert r.price == pytest.approx(2)
    assert r.ask_fill == pytest.approx([10, 5])


def test_exact_match_takes_the_middle_of_the_gap():
    """Ask 10 @ 1, bid 10 @ 3: both clear fully; any price in [1, 3] works; the rule takes 2."""
    r = clear([10], [3], [10], [1])
    assert (r.volume, r.price) == (pytest.approx(10), pytest.approx(2))


def test_ties_at_the_margin_share_pro_rata():
    """Asks 12 @ 1; bids 10 @ 4 and 20 @ 4 tie at the margin: 12 split 4 : 8."""
    r = clear([10, 20], [4, 4], [12], [1])
    assert r.price == pytest.approx(4)
    assert r.bid_fill == pytest.approx([4, 8])


def test_ties_random_tie_break_uses_the_generator_and_fills_whole_bids_first():
    rng = np.random.default_rng(3)
    r = clear([10, 20], [4, 4], [12], [1], tie_break="random", rng=rng)
    assert r.bid_fill.sum() == pytest.approx(12)
    assert sorted(np.round(r.bid_fill, 9)) in ([2, 10], [0, 12])
    with pytest.raises(ValueError, match="generator"):
        clear([1], [2], [1], [1], tie_break="random")


def test_zero_volume_when_bids_are_below_asks():
    r = clear([10], [1], [10], [2])
    assert r.volume == 0 and r.price == pytest.approx(2)   # the lowest ask a buyer faced
    assert not r.bid_fill.any() and not r.ask_fill.any()


def test_zero_volume_without_bids_or_asks():
    assert clear([], [], [5], [1]).volume == 0
    assert np.isnan(clear([5], [1], [], []).price)


def test_unknown_tie_break_lists_the_known():
    with pytest.raises(UnknownNameError, match="known: pro_rata, random"):
        clear([1], [1], [1], [1], tie_break="coin")


def test_inputs_are_not_modified():
    bq, bp, aq, ap = (np.array([3.0, 4.0]), np.array([5.0, 2.0]), np.array([6.0]),
                      np.array([1.0]))
    copies = [a.copy() for a in (bq, bp, aq, ap)]
    clear(bq, bp, aq, ap)
    for a, c in zip((bq, bp, aq, ap), copies):
        assert np.array_equal(a, c)


quantity = st.floats(min_value=0, max_value=1e6, allow_nan=False)
price = st.floats(min_value=0.01, max_value=100, allow_nan=False)


@settings(max_examples=200)
@given(bids=st.lists(st.tuples(quantity, price), max_size=12),
       asks=st.lists(st.tuples(quantity, price), max_size=12),
       tie=st.sampled_from(["pro_rata", "random"]), seed=st.integers(0, 1000))
def test_clearing_invariants(bids, asks, tie, seed):
    bq = np.array([q for q, _ in bids]); bp = np.array([p for _, p in bids])
    aq = np.array([q for q, _ in asks]); ap = np.array([p for _, p in asks])
    r = clear(bq, bp, aq, ap, tie_break=tie, rng=np.random.default_rng(seed))
    tol = 1e-6 * (1 + r.volume)
    assert r.volume <= bq.sum() + tol and r.volume <= aq.sum() + tol
    assert np.all(r.bid_fill <= bq + tol) and np.all(r.ask_fill <= aq + tol)
    assert np.all(r.bid_fill >= -tol) and np.all(r.ask_fill >= -tol)
    assert r.bid_fill.sum() == pytest.approx(r.volume, rel=1e-9, abs=1e-6)
    assert r.ask_fill.sum() == pytest.approx(r.volume, rel=1e-9, abs=1e-6)
    if r.volume > 0:
        assert np.all(bp[r.bid_fill > tol] >= r.price - 1e-9)   # no buyer pays above its bid
        assert np.all(ap[r.ask_fill > tol] <= r.price + 1e-9)   # no seller gets below its ask
        # efficiency: no unfilled bid above the price could have met an unused ask below it
        unfilled_bid = (bq - r.bid_fill > tol) & (bp > r.price + 1e-9)
        unused_ask = (aq - r.ask_fill > tol) & (ap < r.price - 1e-9)
        assert not (unfilled_bid.any() and unused_ask.any())


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

from market.clearing import clear_segmented  # noqa: E402


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


@settings(max_examples=300, deadline=None)
@given(segmented_markets())
def test_segmented_clearing_equals_clearing_each_market(markets):
    """Clearing many markets at once gives, market by market, what `clear` gives."""
    n_seg, bs, bq, bp, as_, aq, ap = markets
    res = clear_segmented(bs.astype(int), bq, bp, as_.astype(int), aq, ap, n_seg)
    for s in range(n_seg):
        b, a = bs == s, as_ == s
        one = clear(bq[b], bp[b], aq[a], ap[a])
        assert res.volume[s] == pytest.approx(one.volume, rel=1e-9, abs=1e-9)
        if one.volume > 0 or (a.any() and np.any(aq[a] > 1e-12)):
            assert res.price[s] == pytest.approx(one.price, rel=1e-12)
        else:
            assert np.isnan(res.price[s])
        np.testing.assert_allclose(res.bid_fill[b], one.bid_fill, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(res.ask_fill[a], one.ask_fill, rtol=1e-9, atol=1e-9)


def test_segmented_worked_example_two_markets():
    """Market 0 is the shortage example of `clear` (price 3, the 3-bid gets 5 of 10);
    market 1 is a surplus: asks 10 @ 1 and 10 @ 2, one bid 5 @ 4 -> price 1, volume 5."""
    res = clear_segmented(np.array([0, 0, 1]), np.array([15.0, 10.0, 5.0]),
                          np.array([5.0, 3.0, 4.0]), np.array([0, 0, 1, 1]),
                          np.array([10.0, 10.0, 10.0, 10.0]), np.array([1.0, 2.0, 1.0, 2.0]), 3)
    assert res.price[0] == 3.0 and res.volume[0] == 20.0
    np.testing.assert_allclose(res.bid_fill, [15.0, 5.0, 5.0])
    assert res.price[1] == 1.0 and res.volume[1] == 5.0
    np.testing.assert_allclose(res.ask_fill, [10.0, 10.0, 5.0, 0.0])
    assert np.isnan(res.price[2]) and res.volume[2] == 0.0


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
