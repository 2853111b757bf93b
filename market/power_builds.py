"""Datacenter power as an outcome: owners start power projects, their nations' grids bound
them (docs/model.md, "Power").

A cloud (phase 8) or a building lab (phase 6) wants power for the fleet it will have when a
project started now comes online (`agents.strategies.power_to_start_mw`: its fleet
installed, shipping and on order, plus the chips it expects to want until a chip lead time
before the project is online). Its nation's grid connects datacenters at most at the
nation's `power_buildout_per_year` from what its sites had at the start: the projects asked
for in a phase share what the grid has left pro rata. A project costs `market.datacenter_capex_usd_per_mw`: a cloud pays it when it starts,
from what its financing allowance leaves after its chips; a lab rents what is built for it
(`lease_usd_per_mw_month`: the cost recovered over `market.datacenter_life_years` at its cost
of capital), from its budget every month from when the power comes online for the
datacenter's life, and takes on only the rent its budget leaves room for after its chips and
the rent it already owes. Power comes online `market.power_build_lag_months` after it is
started (`agents.fleet.Site`).
"""

from __future__ import annotations

import numpy as np

from agents.strategies import adaptive_expectation, power_to_start_mw


def grid_cap_mw(model, month: int) -> np.ndarray:
    """Datacenter power each nation's grid may have connected by `month` [MW]: its sites'
    power at the start grown at its `power_buildout_per_year`, plus the announced projects
    online by then (inputs: their grid connections are part of the programme)."""
    years = (month - model.start_month) / 12.0
    announced = np.bincount(model.site_nation,
                            weights=[site.announced_mw(month) for site in model.sites],
                            minlength=model.grid_mw0.size)
    return model.grid_mw0 * (1.0 + model.grid_growth_per_year) ** years + announced


def grid_room_mw(model) -> np.ndarray:
    """Power each nation's grid can still connect to projects started this month [MW]: its
    cap when they come online, less its sites' power online and under construction (room
    not used in a month is there the next)."""
    cap = grid_cap_mw(model, model.month + model.params.power_build_lag_months)
    committed = np.bincount(model.site_nation,
                            weights=[site.committed_mw(model.month) for site in model.sites],
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
    # a project started now serves the chips ordered until a chip lead time before it is
    # online; later orders are the next projects'
    months = max(site.build_lag_months - model.params.chip_lead_time_months, 0)
    return power_to_start_mw(fleet_mw, site.expected_order_h100e * facility_mw_per_h100e,
                             months, site.committed_mw(model.month))


def lease_months(model) -> int:
    """Months a lab rents the power built for it: the datacenter's life."""
    return max(int(round(model.params.datacenter_life_years * 12)), 1)


def lease_usd_per_mw_month(model) -> float:
    """A month's rent of a MW of datacenter power built for a lab [USD/(MW month)]: the build
    cost recovered in monthly payments over `datacenter_life_years` at the lab's cost of
    capital, r_m / (1 - (1 + r_m)^-N) with r_m = (1 + r)^(1/12) - 1 and N the months (the
    capital recovery factor; e.g. Brealey, Myers and Allen, *Principles of Corporate
    Finance*, ch. 2), as build-to-suit leases price it."""
    p = model.params
    r_m = (1.0 + p.lab_cost_of_capital) ** (1.0 / 12.0) - 1.0
    n = lease_months(model)
    recovery = 1.0 / n if r_m <= 0 else r_m / (1.0 - (1.0 + r_m) ** -n)
    return p.datacenter_capex_usd_per_mw * recovery


def start_power(model, requests: list[tuple[int, float, float, float]]
                ) -> list[tuple[float, float]]:
    """Start the projects asked for: (site, MW, money it may spend [USD], what a MW costs it
    now [USD/MW]) each, cut pro rata to what each nation's grid has left, then to the money;
    returns (MW started, USD spent now) for each."""
    if not requests:
        return []
    room = grid_room_mw(model)
    nation = np.array([model.sites[r[0]].nation for r in requests], dtype=np.int64)
    asked = np.array([r[1] for r in requests], dtype=float)
    total = np.bincount(nation, weights=asked, minlength=room.size)
    grid = np.minimum(1.0, np.divide(room, total, out=np.ones_like(room), where=total > 0))
    spent = []
    for (site_i, _, money, usd_per_mw), mw in zip(requests, asked * grid[nation]):
        if usd_per_mw > 0:
            mw = min(mw, max(money, 0.0) / usd_per_mw)
        model.sites[site_i].start_build(model.month, mw)
        spent.append((mw, mw * usd_per_mw))
    return spent
