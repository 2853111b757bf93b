"""An hour of each chip is worth its serving and training value, weighed by the buyers' use."""

from __future__ import annotations

import numpy as np
import pytest

from agents.demand import training_hours
from market.catalog import load_catalog
from market.costs import ServingWorkload, serving_h100e
from market.hour_value import hour_value_h100e, serving_share_by_region
from market.model import ComputeMarket
from market.outputs import collect_tables
from scenarios.loader import load_scenario


def test_an_hour_is_worth_the_use_mix_of_serving_and_training_value():
    training, serving = np.array([1.0, 0.315, 0.15]), np.array([1.0, 0.61, 0.35])
    value = hour_value_h100e(training, serving, np.array([0.0, 0.5, 1.0]))
    assert value[0] == pytest.approx(training)              # all training
    assert value[2] == pytest.approx(serving)               # all serving
    assert value[1] == pytest.approx([1.0, 0.4625, 0.25])   # half and half
    assert (value[:, 0] == 1.0).all()                       # an H100 hour is one everywhere


def test_the_a100_to_h100_rental_ratio_follows_from_the_default_workload():
    """2023 rentals: A100 USD 1.89-2.21 an hour at neoclouds, H100 4.20-4.76 [CAL 3.1], a ratio
    of 0.44-0.47; at a serving share of ~0.55 the A100 hour is worth that share of an H100's,
    where training H100e alone (0.32) would price it a third lower."""
    catalog = load_catalog()
    chips = [catalog["h100-sxm"], catalog["a100"]]
    serving = np.atleast_1d(serving_h100e(chips, ServingWorkload()))
    training = np.array([c.h100e for c in chips])
    ratio = hour_value_h100e(training, serving, np.array([0.55]))[0]
    assert 0.42 < ratio[1] / ratio[0] < 0.50
    assert training[1] < 0.35


def test_serving_share_keeps_the_previous_value_where_nobody_bought():
    share = serving_share_by_region(np.array([3.0, 1.0]), np.array([4.0, 4.0]),
                                    np.array([0, 0]), 2, np.array([0.1, 0.7]))
    assert share == pytest.approx([0.5, 0.7])


def test_training_demand_in_market_hours_buys_the_same_training_work():
    """An hour holding half an H100e of training: at the same price per unit of work the lab
    wants twice the hours, whatever its elasticity (at elasticity 2 an hour counted as a
    full H100e would be wanted four times over); a budget buys hours at their price."""
    for elasticity in (0.5, 1.0, 2.0):
        per_h100e = training_hours(3.0, 1_000.0, 3.0, elasticity, 1e12, training_value=1.0)
        per_half = training_hours(1.5, 1_000.0, 3.0, elasticity, 1e12, training_value=0.5)
        assert per_half == pytest.approx(2 * per_h100e)
    assert training_hours(1.5, 1_000.0, 3.0, 1.0, 600.0, training_value=0.5) == \
        pytest.approx(400.0)


def test_rental_prices_per_gpu_hour_carry_the_hour_value():
    """The `prices` table prices an A100 hour at the tier index times its hour value in the
    region that month: its serving and training H100e weighed by the region's serving
    share (an outcome), strictly inside the two."""
    model = ComputeMarket(load_scenario("history").scenario, seed=1)
    model.run(13)
    frames = collect_tables(model)
    p, pi = frames["prices"], frames["price_index"]
    row = p[(p.region == "US") & (p.tier == "neocloud") & (p.chip == "a100")].iloc[-1]
    index = pi[(pi.region == "US") & (pi.tier == "neocloud") & (pi.instrument == "spot")
               & (pi.date == row.date)].price_usd_per_h100e_hour.iloc[0]
    us, a100 = model.nation_index["US"], model.chip_index["a100"]
    assert row.price_usd_per_gpu_hour / index == pytest.approx(model.hour_h100e[us, a100])
    share = model.hour_h100e[us, a100] - model.h100e[a100]
    share /= model.serving_h100e[a100] - model.h100e[a100]
    assert 0.2 < share < 0.9
