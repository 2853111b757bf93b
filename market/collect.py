"""The collect phase: the month's records and Mesa's DataCollector reporters.

Reads the model's state through the `model` argument; imports nothing from its caller.
Units: compute in H100e, training work in FLOP, compute bought in H100e-hours, money in USD.
"""

from __future__ import annotations

import mesa
import numpy as np


# Model-level reporters for Mesa's DataCollector: named functions with units in the name (they
# must pickle, so no lambdas).
def price_index_us_neocloud_usd_per_h100e_hour(model: mesa.Model) -> float:
    return model.latest_price_index.get(("US", "neocloud"), float("nan"))


def price_index_us_hyperscaler_usd_per_h100e_hour(model: mesa.Model) -> float:
    return model.latest_price_index.get(("US", "hyperscaler"), float("nan"))


def china_share_of_installed_h100e(model: mesa.Model) -> float:
    return model.latest_share.get("China", float("nan"))


def us_share_of_installed_h100e(model: mesa.Model) -> float:
    return model.latest_share.get("US", float("nan"))


def datacollector() -> mesa.DataCollector:
    """Mesa's DataCollector with the model-level reporters above."""
    return mesa.DataCollector(model_reporters={
        "price_index_us_neocloud_usd_per_h100e_hour": price_index_us_neocloud_usd_per_h100e_hour,
        "price_index_us_hyperscaler_usd_per_h100e_hour":
            price_index_us_hyperscaler_usd_per_h100e_hour,
        "china_share_of_installed_h100e": china_share_of_installed_h100e,
        "us_share_of_installed_h100e": us_share_of_installed_h100e,
    })


def collect(model) -> None:
    """The month's records: installed compute and shares by nation, labs' compute, spend and
    capex; then Mesa's DataCollector."""
    installed = np.zeros(len(model.nation_ids))
    for site in model.sites:
        installed[site.nation] += float(site.fleet.units_by_chip() @ model.h100e)
    total = installed.sum()
    book = model.book
    frontier = np.zeros(len(model.nation_ids))
    np.maximum.at(frontier, book.nation, book.largest_run_flop)
    demand = np.bincount(book.nation, weights=book.need_h100e_hours,
                         minlength=len(model.nation_ids))
    got = np.bincount(book.nation, weights=book.own_h100e_hours + book.bought_h100e_hours,
                      minlength=len(model.nation_ids))
    model.latest_share = {}
    for i, nation in enumerate(model.nation_ids):
        share = installed[i] / total if total > 0 else 0.0
        model.latest_share[nation] = share
        model.records["compute"].append((model.step_index, nation, installed[i], share,
                                        frontier[i], demand[i], max(demand[i] - got[i], 0.0)))
    named = slice(0, book.n_named)
    training = book.training_h100e_hours[named]
    by_nation = np.bincount(book.nation[named], weights=training,
                            minlength=len(model.nation_ids))
    total_training = by_nation.sum()
    model.frontier_share = {n: (by_nation[i] / total_training if total_training > 0 else 0.0)
                           for i, n in enumerate(model.nation_ids)}
    model.records["labs"].append((model.step_index, book.own_h100e_hours + book.bought_h100e_hours,
                                 book.spend_usd.copy(), book.capex_usd.copy(),
                                 book.resale_usd.copy()))
    model.datacollector.collect(model)
