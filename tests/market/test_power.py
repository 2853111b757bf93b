"""Datacenter power as an outcome: owners build it, their nations' grids bound it.

Pure functions and a `Site` on worked numbers, then real runs of the baseline (seed 1): the
power online comes only from the projects under way at the start and the owners' builds,
never exceeds what the grid allows, costs what the scenario says a MW costs, and a slower
grid leaves a nation with less power and fewer chips installed.
"""

from __future__ import annotations

import numpy as np
import pytest

from agents.fleet import Site
from agents.strategies import power_to_start_mw
from market.model import ComputeMarket
from market.outputs import collect_tables, release, run_tables
from market.power_builds import grid_cap_mw, grid_room_mw
from market.timeline import parse_month
from scenarios.loader import load_scenario


def test_an_owner_builds_for_its_fleet_and_the_orders_it_expects_over_the_lag():
    # fleet draws 100 MW; it expects to want 5 MW of chips a month for 12 months: 160 MW
    # needed, 120 online and under way: it starts 40
    assert power_to_start_mw(100.0, 5.0, 12, 120.0) == pytest.approx(40.0)
    assert power_to_start_mw(100.0, 5.0, 12, 200.0) == 0.0
    assert power_to_start_mw(100.0, -3.0, 12, 90.0) == pytest.approx(10.0)


def test_a_site_brings_its_projects_online_after_the_lag():
    site = Site("x", 0, power_mw=100.0, pue=1.2, n_chips=1, start_month=0,
                pipeline_growth_per_year=1.0, build_lag_months=12, projects_mw={30: 50.0})
    # the projects under way at the start double it over the first year, then stop
    assert site.capacity_mw(0) == pytest.approx(100.0)
    assert site.capacity_mw(6) == pytest.approx(100.0 * 2 ** 0.5)
    assert site.capacity_mw(12) == pytest.approx(200.0)
    assert site.capacity_mw(29) == pytest.approx(200.0)
    assert site.capacity_mw(30) == pytest.approx(250.0)          # the announced project
    site.start_build(20, 40.0)
    assert site.capacity_mw(31) == pytest.approx(250.0)
    assert site.capacity_mw(32) == pytest.approx(290.0)          # 20 + 12 months
    assert site.committed_mw(20) == pytest.approx(290.0)
    # the announced project is under way only from a lag before it comes online
    assert site.committed_mw(10) == pytest.approx(200.0)
    assert site.committed_mw(18) == pytest.approx(250.0)
    site.power_factor = 0.5                                       # a power-constraint shock
    assert site.capacity_mw(40) == pytest.approx(145.0)


@pytest.fixture(scope="module")
def run():
    scenario = load_scenario("baseline").scenario
    m = ComputeMarket(scenario, seed=1)
    rooms = []
    try:
        for _ in range(72):
            m.step()
            rooms.append(grid_room_mw(m))
        yield m, collect_tables(m), np.array(rooms)
    finally:
        release(m)


def test_power_grows_by_the_owners_builds_within_the_grid(run):
    m, t, rooms = run
    assert np.all(rooms >= 0)
    cap = grid_cap_mw(m, m.month + m.params.power_build_lag_months)
    committed = np.bincount(m.site_nation, weights=[s.committed_mw(m.month) for s in m.sites],
                            minlength=cap.size)
    # what the projects under way at the start brought is within the cap too
    assert np.all(committed <= cap * (1 + 1e-9) + 1e-6)
    clouds = t["clouds"]
    started = clouds.groupby("cloud").power_started_mw.sum()
    assert started.sum() > 0
    # every cloud's power online: its start, its pipeline and what it started a lag before
    lag = m.params.power_build_lag_months
    for cloud in m.clouds:
        site = m.sites[cloud.site]
        mine = clouds[clouds.cloud == cloud.cloud_id].set_index("step")
        own = mine.power_started_mw[mine.index <= m.step_index - lag].sum()
        pipeline = sum(mw for first, mw in site.builds[:lag])
        assert site.capacity_mw(m.month) == pytest.approx(site.power_mw0 + pipeline + own,
                                                          rel=1e-9)


def test_power_costs_what_a_mw_costs_and_counts_in_capex(run):
    m, t, _ = run
    c = t["clouds"]
    assert np.allclose(c.power_capex_usd, c.power_started_mw * m.params.datacenter_capex_usd_per_mw)
    assert np.all(c.capex_usd >= c.power_capex_usd - 1e-6)
    assert c.power_capex_usd.sum() > 0


def test_a_slower_grid_leaves_a_nation_less_power_and_fewer_chips():
    def us(sets):
        t = run_tables(load_scenario("baseline", sets).scenario, 1, months=60)
        c, comp = t["clouds"], t["compute"]
        last = c.date.max()
        power = c[(c.region == "US") & (c.date == last)].power_mw.sum()
        installed = comp[(comp.nation == "US") & (comp.date == last)].installed_h100e.sum()
        return power, installed
    fast, slow = us([]), us(["nations.US.power_buildout_per_year=0.3"])
    assert slow[0] < 0.8 * fast[0] and slow[1] < fast[1]


def test_the_grid_shares_its_room_pro_rata_and_money_cuts_a_project():
    """Two US clouds ask for more than the US grid has left: each gets the same share of
    its request; a third whose money covers only 1 MW starts 1 MW."""
    from market.power_builds import grid_room_mw, start_power
    m = ComputeMarket(load_scenario("baseline").scenario, seed=1)
    try:
        m.step()
        us = [c.site for c in m.clouds if c.region == "US"][:3]
        room = grid_room_mw(m)[m.sites[us[0]].nation]
        usd = m.params.datacenter_capex_usd_per_mw
        got = start_power(m, [(us[0], room, 1e15, usd), (us[1], 3 * room, 1e15, usd),
                              (us[2], 1.0, 1.0 * usd, usd)])
        assert got[1][0] == pytest.approx(3 * got[0][0], rel=1e-9)
        assert got[0][0] + got[1][0] + got[2][0] <= room * (1 + 1e-9)
        assert got[2][0] <= 1.0 + 1e-9 and got[2][1] == pytest.approx(got[2][0] * usd)
        assert grid_room_mw(m)[m.sites[us[0]].nation] == pytest.approx(0.0, abs=1e-6)
    finally:
        release(m)


def test_announced_projects_raise_the_grid_cap_by_their_size():
    """An announced 5 GW project is a grid connection handed with the programme: it adds to
    the nation's cap, so the owners' own builds keep the room they had."""
    base = ComputeMarket(load_scenario("baseline").scenario, seed=1)
    big = ComputeMarket(load_scenario("baseline", [
        'clouds.g42.power_projects_mw={"2025-01" = 5000.0}']).scenario, seed=1)
    try:
        gulf = base.nation_index["Gulf"]
        for m in (base, big):
            m.step()
        assert grid_room_mw(big)[gulf] == pytest.approx(grid_room_mw(base)[gulf], rel=1e-9)
        assert big.sites[big.clouds[[c.cloud_id for c in big.clouds].index("g42")].site] \
            .capacity_mw(parse_month("2025-01")) >= 5000.0
    finally:
        release(base)
        release(big)


def test_an_announced_project_does_not_hold_back_its_owners_builds_before_it_begins():
    """CoreWeave handed 3 GW for 2029-01: until the project is under way (a build lag
    before), it builds for its fleet as it would without it."""
    def coreweave_power(sets):
        t = run_tables(load_scenario("baseline", sets).scenario, 1, months=60)
        c = t["clouds"]
        return c[(c.cloud == "coreweave") & (c.date == c.date.max())].power_mw.iloc[0]
    base = coreweave_power([])
    handed = coreweave_power(['clouds.coreweave.power_projects_mw={"2029-01" = 3000.0}'])
    assert base > 100.0 and handed == pytest.approx(base, rel=0.25)


def test_a_building_lab_rents_its_power_from_its_budget():
    """The power built for a lab is paid as a monthly rent from when it comes online (the
    build cost recovered over the datacenter's life at the lab's cost of capital): the rent a
    lab pays is its own projects online x the rent of a MW, and in every month its chips and
    rent stay within its budget."""
    from market.power_builds import lease_usd_per_mw_month
    m = ComputeMarket(load_scenario("baseline").scenario, seed=1)
    lag = m.params.power_build_lag_months
    try:
        rents = []
        for _ in range(60):
            m.step()
            rents.append([m.sites[int(m.book.site[row])].rent_usd(m.month)
                          for row in m.builders])
            for row in m.builders:
                assert m.book.capex_usd[row] <= m.book.budget_usd[row] * (1 + 1e-9) + 1e-6
        rents = np.array(rents)
        assert rents.max() > 0 and np.all(np.diff(rents, axis=0) >= -1e-9)
        row = m.builders[int(np.argmax(rents[-1]))]
        site = m.sites[int(m.book.site[row])]
        own = site.builds[lag + len(site.announced):]          # after pipeline and announced
        online = sum(mw for first, mw in own if first <= m.month)
        assert online > 0 and site.rent_usd(m.month) == pytest.approx(
            online * lease_usd_per_mw_month(m), rel=1e-9)
        # what is under construction is not paid for yet
        assert site.rent_due_usd(m.month) >= site.rent_usd(m.month)
        assert m.book.capex_usd[row] >= site.rent_usd(m.month) - 1e-6
    finally:
        release(m)


def test_the_monthly_rent_recovers_the_build_cost_over_the_datacenters_life():
    """Discounted at the lab's monthly cost of capital, the rents over the life repay the
    build cost of a MW exactly."""
    from market.power_builds import lease_months, lease_usd_per_mw_month
    m = ComputeMarket(load_scenario("baseline").scenario, seed=1)
    try:
        r_m = (1 + m.params.lab_cost_of_capital) ** (1 / 12) - 1
        n = lease_months(m)
        pv = lease_usd_per_mw_month(m) * sum((1 + r_m) ** -k for k in range(1, n + 1))
        assert pv == pytest.approx(m.params.datacenter_capex_usd_per_mw, rel=1e-9)
        assert n == 180
    finally:
        release(m)
