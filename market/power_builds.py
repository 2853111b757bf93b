"""Datacenter power as an outcome: owners start power projects, their nations' grids bound
them (docs/model.md, "Power").

A cloud (phase 7) or a building lab (phase 6) wants power for the fleet it will have when a
project started now comes online (`agents.strategies.power_to_start_mw`: its fleet
installed, shipping and on order, plus the chips it expects to want meanwhile). Its nation's
grid connects datacenters at most at the nation's `power_buildout_per_year` from what its
sites had at the start: the projects asked for in a phase share what the grid has left
pro rata. Each project costs `market.datacenter_capex_usd_per_mw` and is paid from what the
owner's money left after its chips (a cloud's financing allowance, a lab's budget); it comes
online `market.power_build_lag_months` later (`agents.fleet.Site`).
"""

from __future__ import annotations

import numpy as np

from agents.strategies import adaptive_expectation, power_to_start_mw


def grid_room_mw(model) -> np.ndarray:
    """Power each nation's grid can still connect to projects started this month [MW]: its
    cap when they come online, less its sites' power online and under construction."""
    p = model.params
    years = (model.month + p.power_build_lag_months - model.start_month) / 12.0
    cap = model.grid_mw0 * (1.0 + model.grid_growth_per_year) ** years
    committed = np.bincount(model.site_nation,
                            weights=[site.committed_mw() for site in model.sites],
                            minlength=cap.size)
    return np.maximum(cap - committed, 0.0)


def power_request_mw(model, site_i: int, wanted_order_h100e: float, backlog_h100e: float,
                     facility_mw_per_h100e: float) -> float:
    """Power the owner of site `site_i` asks to start this month [MW], having wanted to order
    `wanted_order_h100e` this month (before its power room cut it), with `backlog_h100e` on
    order at the vendors, at the facility MW per H100e of the chip it buys."""
    site = model.sites[site_i]
    site.expected_order_h100e = adaptive_expectation(site.expected_order_h100e,
                                                     wanted_order_h100e,
                                                     model.params.power_planning_memory_months)
    pipeline_mw = float(site.fleet.pipeline_by_chip() @ model.mw_per_chip) * site.pue
    fleet_mw = site.installed_mw(model.mw_per_chip) + pipeline_mw \
        + (backlog_h100e + wanted_order_h100e) * facility_mw_per_h100e
    return power_to_start_mw(fleet_mw, site.expected_order_h100e * facility_mw_per_h100e,
                             site.build_lag_months, site.committed_mw())


def start_power(model, requests: list[tuple[int, float, float]]
                ) -> list[tuple[float, float]]:
    """Start the projects asked for: (site, MW, money it may spend [USD]) each, cut pro rata
    to what each nation's grid has left, then to the money; returns (MW started, USD spent)
    for each."""
    if not requests:
        return []
    room = grid_room_mw(model)
    nation = np.array([model.sites[s].nation for s, _, _ in requests], dtype=np.int64)
    asked = np.array([mw for _, mw, _ in requests], dtype=float)
    total = np.bincount(nation, weights=asked, minlength=room.size)
    grid = np.minimum(1.0, np.divide(room, total, out=np.ones_like(room), where=total > 0))
    usd_per_mw = model.params.datacenter_capex_usd_per_mw
    spent = []
    for (site_i, _, money), mw in zip(requests, asked * grid[nation]):
        if usd_per_mw > 0:
            mw = min(mw, max(money, 0.0) / usd_per_mw)
        model.sites[site_i].start_build(model.month, mw)
        spent.append((mw, mw * usd_per_mw))
    return spent
