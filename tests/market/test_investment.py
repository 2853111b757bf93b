"""Clouds' investment in a real run: capex is an outcome of expected returns and financing.

The baseline with seed 1 (as `gpumarket run baseline --seed 1`), against the same world with a
demand shock, a glut, or no money to invest. No figure here is an input: orders follow from
what the clouds' hours earn, the cost of capital and what they can finance.
"""

from __future__ import annotations

import tomllib

import pandas as pd
import pytest

from market.outputs import COLUMNS, run_tables
from scenarios.loader import builtin_dir, load_scenario
from scenarios.schema import Cloud, DemandShockEvent

SEED = 1
#: 2022-01 to 2027-12: enough for the shocks below and their effect on orders.
MONTHS = 72


@pytest.fixture(scope="module")
def baseline():
    return load_scenario("baseline").scenario


@pytest.fixture(scope="module")
def base_tables(baseline):
    return run_tables(baseline, SEED, months=MONTHS)


def _shocked(scenario, date: str, factor: float):
    event = DemandShockEvent(kind="demand_shock", date=date, factor=factor)
    return scenario.model_copy(update={"events": [*scenario.events, event]})


def _cloud_capex(tables, first: str, last: str) -> float:
    c = tables["clouds"]
    return float(c.loc[(c.date >= pd.Timestamp(first + "-01"))
                       & (c.date <= pd.Timestamp(last + "-01")), "capex_usd"].sum())


def test_no_capex_path_in_the_cloud_schema_or_any_built_in_scenario(baseline):
    assert "capex_usd_per_year" not in Cloud.model_fields
    assert all("capex_usd_per_year" not in c.model_dump() for c in baseline.clouds.values())
    for path in sorted(builtin_dir().glob("*.toml")):
        clouds = tomllib.loads(path.read_text()).get("clouds", {})
        assert all("capex_usd_per_year" not in spec for spec in clouds.values()), path.name


def test_capex_is_an_output_column_equal_to_the_clouds_committed_orders(baseline, base_tables):
    """`clouds.capex_usd` is what each cloud committed to chips that month (the sum of its
    regular and grey-market orders in the `orders` table) and to datacenter power
    (`power_capex_usd`), and it varies (it is no input path)."""
    assert COLUMNS["clouds"][-1] == "capex_usd"
    clouds = base_tables["clouds"]
    orders = base_tables["orders"]
    mine = orders[orders.buyer.isin(set(baseline.clouds))
                  & orders.order_kind.isin(["regular", "grey_market"])]
    chips = clouds["capex_usd"] - clouds["power_capex_usd"]
    assert chips.sum() == pytest.approx(mine["committed_usd"].sum(), rel=1e-9)
    assert 0 < clouds["power_capex_usd"].sum() < chips.sum()
    yearly = clouds.groupby(clouds.date.dt.year)["capex_usd"].sum()
    assert (yearly > 0).all() and yearly.nunique() == len(yearly)
    assert (clouds["capex_usd"] <= clouds["financing_allowance_usd"] * (1 + 1e-9)).all()


def test_financing_binds_only_sometimes(baseline, base_tables):
    """The allowance (cash flow + outside money + debt room) cuts some cloud orders to 2024-12
    but not most: volumes follow returns, not a budget."""
    o = base_tables["orders"]
    o = o[o.buyer.isin(set(baseline.clouds)) & (o.order_kind == "regular")
          & (o.date <= pd.Timestamp("2024-12-01"))]
    assert len(o) > 100
    assert o["budget_binds"].mean() < 0.5


def test_without_outside_money_or_debt_clouds_invest_less(baseline, base_tables):
    """Clouds left with their own cash flow alone (no outside money, no borrowing) spend less
    on chips by 2024 and their financing binds more often."""
    poor = baseline.model_copy(update={"clouds": {
        cid: c.model_copy(update={"financing_usd_per_year": c.financing_usd_per_year.model_copy(
            update={"points": {"2022-01": 0.0}}), "debt_to_revenue": 0.0})
        for cid, c in baseline.clouds.items()}})
    tables = run_tables(poor, SEED, months=36)
    assert _cloud_capex(tables, "2022-01", "2024-12") \
        < 0.8 * _cloud_capex(base_tables, "2022-01", "2024-12")
    binds = tables["orders"]
    binds = binds[binds.buyer.isin(set(baseline.clouds)) & (binds.order_kind == "regular")]
    assert binds["budget_binds"].mean() > 0.5


def test_a_demand_shock_of_half_from_2026_cuts_cloud_orders_by_a_fifth(baseline, base_tables):
    shocked = run_tables(_shocked(baseline, "2026-01", 0.5), SEED, months=MONTHS)
    before = _cloud_capex(base_tables, "2026-01", "2027-12")
    after = _cloud_capex(shocked, "2026-01", "2027-12")
    assert before > 0
    assert after <= 0.8 * before, (after, before)


def test_a_glut_cuts_orders(baseline, base_tables):
    """Demand cut to a fifth from 2025-01 leaves the installed fleet far above what sells at
    the old prices: idle hours go to spot near their energy cost, so an offered hour earns a
    fraction of what it earns in the baseline; once the clouds' expectations have caught up,
    they order a fraction of the baseline's chips. Not none: in the glut the vendors cut chip
    prices towards their floor, so a new chip can still pay where an hour earns little (both
    are outcomes)."""
    tables = run_tables(_shocked(baseline, "2025-01", 0.2), SEED, months=MONTHS)

    def earned_per_offered_hour(frames):
        c = frames["clouds"]
        late = c[(c.date >= pd.Timestamp("2025-10-01")) & (c.date <= pd.Timestamp("2026-06-01"))]
        return late["revenue_usd"].sum() / late["offered_h100e_hours"].sum()
    assert earned_per_offered_hour(tables) < 0.4 * earned_per_offered_hour(base_tables)
    assert _cloud_capex(tables, "2025-10", "2026-06") \
        < 0.5 * _cloud_capex(base_tables, "2025-10", "2026-06")


def test_a_vendor_behind_a_queue_is_compared_at_its_full_price(baseline):
    """Buyers compare vendors at money plus waiting: a lead time of L months adds L months of
    a market H100e's hours at the region's expected spot price to that vendor's cost per
    H100e, and to no other's; an infinite wait counts as the run's length."""
    import numpy as np

    from market.chip_trade import offer_costs_usd_per_h100e, vendor_offers
    from market.model import ComputeMarket
    from market.world import HOURS_PER_MONTH

    m = ComputeMarket(baseline, seed=SEED)
    for _ in range(6):
        m.step()
    site = next(i for i, s in enumerate(m.sites) if m.nation_ids[s.nation] == "US")
    r = m.sites[site].nation
    offers = vendor_offers(m, site)
    vendors = list(m.vendors.values())
    for v in vendors:
        v.lead_time = 0.0
    before = offer_costs_usd_per_h100e(m, site, offers)
    k = next(i for i, o in enumerate(offers) if o is not None)
    month_usd = HOURS_PER_MONTH * m.params.availability * m.hour_market.expected_spot[r]
    assert np.isfinite(month_usd) and month_usd > 0
    vendors[k].lead_time = 6.0
    after = offer_costs_usd_per_h100e(m, site, offers)
    assert after[k] == pytest.approx(before[k] + 6.0 * month_usd)
    others = [i for i, o in enumerate(offers) if o is not None and i != k]
    np.testing.assert_allclose(after[others], before[others])
    vendors[k].lead_time = float("inf")
    assert offer_costs_usd_per_h100e(m, site, offers)[k] == \
        pytest.approx(before[k] + m.n_months * month_usd)


def test_older_chips_go_on_selling_beside_the_flagship():
    """In `history` NVIDIA sells its whole line: A100s ship in every quarter of 2023 beside
    the H100 (Epoch counts 55-65k a quarter to 2023-Q3), and the H100 takes the larger part of
    NVIDIA's H100e. Before 0.13.0 a vendor sold only its best product per dollar, so the
    A100 stopped when the H100 launched."""
    t = run_tables(load_scenario("history").scenario, SEED, months=24)
    s = t["shipments"]
    s = s[(s["vendor"] == "nvidia") & (s["date"].dt.year == 2023)]
    quarterly = s[s["chip"] == "a100"].groupby(s["date"].dt.quarter)["units"].sum()
    assert len(quarterly) == 4 and (quarterly > 1_000).all()
    by_chip = s.groupby("chip")["h100e"].sum()
    assert by_chip["h100-sxm"] > by_chip["a100"]
