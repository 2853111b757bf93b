"""Observables: what a run's tables say about each observed series.

One declared mapping, `OBSERVABLES`, from each family of `market/data/observed/series.toml` to
a function of a run's tables (and its scenario) that returns the model's *monthly* values for
one series (a `pandas.Series` indexed by the month's first day), or, for a share, the monthly
numerator and denominator (a DataFrame with `num` and `den`). `backtest` aggregates the months
of an observation's period as the family declares (`sum`, `mean`, `end`, `max`; a share is the
ratio of the period's sums). A series the model cannot produce raises `NotModelled` with the
reason, so the backtest lists it instead of dropping it.

The names the observed sources use (Epoch's chip names, buyers such as "Microsoft") are mapped
to the scenario's ids in `CHIPS`, `NVIDIA_OWNERS` and `BUYERS` below; each mapping says why.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

import numpy as np
import pandas as pd

from market.world import HEADLINE_INSTRUMENT


#: The output tables the observables and the scripted-outcome diagnostics read (an ensemble
#: loads only these).
TABLES_USED = ("shipments", "vendors", "price_index", "prices", "compute", "labs", "clouds",
               "orders")


class NotModelled(Exception):
    """The model has no output for this series (the message says why)."""


#: Epoch's chip names -> catalog chip ids (market/data/chips.toml). Chips the catalog lacks
#: (TPU v4i, Instinct MI250X and MI300A) are not modelled.
CHIPS = {"A100": ["a100"], "A800": ["a800"], "H100": ["h100-sxm"], "H800": ["h800"],
         "H20": ["h20"], "B200": ["b200"], "Instinct_MI300X": ["mi300x"],
         "TPU_v4": ["tpu-v4"], "TPU_v5e": ["tpu-v5e"], "TPU_v5p": ["tpu-v5p"],
         "TPU_v6e": ["tpu-v6e"]}

#: Hopper-class chips (Omdia's "Hopper" purchases count H100, H800, H20 and H200).
HOPPER = ["h100-sxm", "h800", "h20", "h200"]

#: Epoch's NVIDIA owners -> the scenario's buyers (clouds and labs that order chips). GPUs
#: Microsoft bought for OpenAI count as Microsoft's, Amazon's for Anthropic as Amazon's and
#: Google's for DeepMind as Google's: in the scenario those labs are separate buyers.
NVIDIA_OWNERS = {"Microsoft": ["azure", "openai"], "Meta": ["meta"],
                 "Amazon": ["aws", "anthropic"], "Google": ["gcp", "google-deepmind"],
                 "Oracle": ["oracle"]}

#: Omdia's 2024 buyers -> the scenario's buyers (as above; Tencent's cloud buys for it).
BUYERS = dict(NVIDIA_OWNERS, ByteDance=["bytedance"], Tencent=["tencent-cloud"])

#: Vendors whose accelerators are GPUs (TechInsights' "data-centre GPU" market excludes TPUs
#: and China's own accelerators).
GPU_VENDORS = ["nvidia", "amd", "others"]


@dataclass(frozen=True)
class Observable:
    """How one family of observed series is read off a run: `fn(tables, keys, scenario)`
    returns monthly values (or `num`/`den` for a share); `what` says it in words."""

    fn: Callable[[dict[str, pd.DataFrame], tuple[str, ...], object], pd.Series | pd.DataFrame]
    what: str


def _monthly(frame: pd.DataFrame, column: str, index: pd.DatetimeIndex) -> pd.Series:
    """Sum of `column` per month over `index` (months with no rows are 0)."""
    return frame.groupby("date")[column].sum().reindex(index, fill_value=0.0).astype(float)


def _months(tables: dict[str, pd.DataFrame]) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(sorted(tables["compute"]["date"].unique()))


def _chip_ids(name: str) -> list[str] | None:
    """Catalog ids of an observed chip name (None for `all`); NotModelled if it has none."""
    if name == "all":
        return None
    if name not in CHIPS:
        raise NotModelled(f"chip {name!r} is not in the catalog")
    return CHIPS[name]


def _buyers(name: str, mapping: dict[str, list[str]], scenario) -> list[str]:
    """The scenario's buyers (clouds or labs) standing for an observed buyer's name."""
    ids = mapping.get(name)
    if ids is None:
        raise NotModelled(f"no buyer of the scenario stands for {name!r}")
    if not set(ids) & (set(scenario.clouds) | set(scenario.labs)):
        raise NotModelled(f"the scenario has none of {', '.join(ids)} (standing for {name})")
    return ids


def shipped(measure: str):
    def fn(tables, keys, scenario):
        vendor, chip = keys
        sh = tables["shipments"]
        rows = sh[sh["vendor"] == vendor]
        chips = _chip_ids(chip)
        if chips is not None:
            rows = rows[rows["chip"].isin(chips)]
        if vendor not in scenario.vendors:
            raise NotModelled(f"the scenario has no vendor {vendor!r}")
        return _monthly(rows, measure, _months(tables))
    return fn


def nvidia_bought(measure: str):
    def fn(tables, keys, scenario):
        (owner,) = keys
        sh = tables["shipments"]
        rows = sh[sh["vendor"] == "nvidia"]
        if owner == "China":
            # sales to Chinese buyers, as NVIDIA books them: smuggled chips are not
            rows = rows[(rows["nation"] == "China") & (rows["channel"] != "diversion")]
        else:
            rows = rows[rows["buyer"].isin(_buyers(owner, NVIDIA_OWNERS, scenario))]
        return _monthly(rows, measure, _months(tables))
    return fn


def smuggled_units(tables, keys, scenario):
    (destination,) = keys
    sh = tables["shipments"]
    rows = sh[(sh["nation"] == destination) & (sh["channel"] == "diversion")]
    return _monthly(rows, "units", _months(tables))


def vendor_column(column: str):
    def fn(tables, keys, scenario):
        (vendor,) = keys
        if vendor not in scenario.vendors:
            raise NotModelled(f"the scenario has no vendor {vendor!r}")
        v = tables["vendors"]
        return _monthly(v[v["vendor"] == vendor], column, _months(tables))
    return fn


def nvidia_revenue(tables, keys, scenario):
    (segment,) = keys
    if segment != "datacenter_compute":
        raise NotModelled(f"NVIDIA's {segment} revenue: the model sells accelerators only (no "
                          "networking, gaming or other segments)")
    return vendor_column("revenue_usd")(tables, ("nvidia",), scenario)


#: Observed price tiers -> (model tier, instrument) of the `price_index` table.
PRICE_TIERS = {"hyperscaler_on_demand": ("hyperscaler", "list"),
               "hyperscaler_reserved_1y": ("hyperscaler", "contract"),
               "neocloud_on_demand": ("neocloud", "spot"),
               "reserved_cluster": ("neocloud", "contract")}


def rental_price(tables, keys, scenario):
    """The US price of one chip's hour in a tier (the family without a region)."""
    return regional_rental_price(tables, ("US",) + tuple(keys), scenario)


def regional_rental_price(tables, keys, scenario):
    region, chip, tier = keys
    if tier not in PRICE_TIERS:
        raise NotModelled(f"price tier {tier}: the model has hyperscaler list and one-year "
                          "committed use, neocloud spot and one-year contracts (no three-year, "
                          "capacity-block or marketplace instrument)")
    model_tier, instrument = PRICE_TIERS[tier]
    chips = {"h100": "h100-sxm", "a100": "a100"}
    catalog_h100e = scenario_chip_h100e(scenario)
    if chip not in chips or chips[chip] not in catalog_h100e:
        raise NotModelled(f"no {chip} in this run's catalog")
    months = _months(tables)
    # the index is per market H100e-hour; an hour of the chip is worth what the model's
    # `prices` table says it sold for over the tier's headline index that month (its hour
    # value, `market.hour_value`); the instrument's price scales by the same worth
    p = tables["price_index"]
    if region not in set(p["region"]):
        raise NotModelled(f"the run has no prices in region {region!r}")
    here = p[(p["region"] == region) & (p["tier"] == model_tier)]
    index = here[here["instrument"] == instrument].set_index("date")["price_usd_per_h100e_hour"]
    headline = here[here["instrument"] == HEADLINE_INSTRUMENT[model_tier]].set_index("date")[
        "price_usd_per_h100e_hour"]
    per_chip = tables["prices"]
    per_chip = per_chip[(per_chip["region"] == region) & (per_chip["tier"] == model_tier)
                        & (per_chip["chip"] == chips[chip])].set_index("date")[
        "price_usd_per_gpu_hour"]
    worth = (per_chip / headline).reindex(months)
    return (index.reindex(months) * worth)


def scenario_chip_h100e(scenario) -> dict[str, float]:
    """H100e of the catalog chips [H100e per chip]."""
    from market.catalog import load_catalog

    catalog = load_catalog()
    return {cid: catalog[cid].h100e for cid in catalog}


def not_modelled(reason: str):
    def fn(tables, keys, scenario):
        raise NotModelled(reason)
    return fn


def gpu_unit_share(tables, keys, scenario):
    (vendor,) = keys
    v = tables["vendors"]
    months = _months(tables)
    return pd.DataFrame({"num": _monthly(v[v["vendor"] == vendor], "shipped_units", months),
                         "den": _monthly(v[v["vendor"].isin(GPU_VENDORS)], "shipped_units",
                                         months)})


def nvidia_china_revenue_share(tables, keys, scenario):
    sh, v = tables["shipments"], tables["vendors"]
    months = _months(tables)
    china = sh[(sh["vendor"] == "nvidia") & (sh["nation"] == "China")]
    return pd.DataFrame({"num": _monthly(china, "revenue_usd", months),
                         "den": _monthly(v[v["vendor"] == "nvidia"], "revenue_usd", months)})


def chip_units(chips: list[str]):
    def fn(tables, keys, scenario):
        sh = tables["shipments"]
        return _monthly(sh[sh["chip"].isin(chips)], "units", _months(tables))
    return fn


def bought_units(vendor: str, chips: list[str] | None):
    def fn(tables, keys, scenario):
        (buyer,) = keys
        sh = tables["shipments"]
        rows = sh[(sh["vendor"] == vendor) & sh["buyer"].isin(_buyers(buyer, BUYERS, scenario))]
        if chips is not None:
            rows = rows[rows["chip"].isin(chips)]
        return _monthly(rows, "units", _months(tables))
    return fn


def own_accelerators(tables, keys, scenario):
    return shipped("units")(tables, (keys[0], "all"), scenario)


def domestic_share(tables, keys, scenario):
    sh = tables["shipments"]
    months = _months(tables)
    to_china = sh[sh["nation"] == "China"]
    domestic = [v for v, spec in scenario.vendors.items() if spec.nation == "China"]
    return pd.DataFrame({"num": _monthly(to_china[to_china["vendor"].isin(domestic)], "units",
                                         months),
                         "den": _monthly(to_china, "units", months)})


def nation_column(column: str):
    """A nation's monthly value of a `compute` column (a share, a running maximum)."""
    def fn(tables, keys, scenario):
        (nation,) = keys
        c = tables["compute"]
        rows = c[c["nation"] == nation]
        if rows.empty:
            raise NotModelled(f"the scenario has no nation {nation!r}")
        return rows.set_index("date")[column].reindex(_months(tables)).astype(float)
    return fn


OBSERVABLES: dict[str, Observable] = {
    "shipped_units": Observable(shipped("units"), "shipments table: units of the vendor's chip "
                                "(all channels) summed over the period"),
    "shipped_h100e": Observable(shipped("h100e"), "shipments table: H100e of the vendor's chip "
                                "summed over the period"),
    "nvidia_bought_units": Observable(nvidia_bought("units"), "shipments table: NVIDIA units "
                                      "delivered to the owner's buyers (China: every buyer in "
                                      "China, diverted chips aside) summed over the period"),
    "nvidia_bought_h100e": Observable(nvidia_bought("h100e"), "as nvidia_bought_units, in "
                                      "H100e"),
    "nvidia_revenue_usd": Observable(nvidia_revenue, "vendors table: NVIDIA's revenue summed "
                                     "over the fiscal quarter's months (data-centre compute "
                                     "only)"),
    "rental_price_usd_per_gpu_hour": Observable(rental_price, "price_index table: US price of "
                                                "the tier's instrument x the chip's H100e, mean "
                                                "over the period"),
    "regional_rental_price_usd_per_gpu_hour": Observable(
        regional_rental_price, "as rental_price_usd_per_gpu_hour, in the region's own "
        "markets"),
    "cowos_capacity_wafers_per_month": Observable(not_modelled(
        "CoWoS capacity to the last announced point is a scenario input path "
        "(foundries.tsmc-cowos), not an outcome; the foundry's own expansion after it is in "
        "the foundries table"), "-"),
    "dc_gpu_units": Observable(vendor_column("shipped_units"), "vendors table: units shipped "
                               "summed over the year"),
    "dc_gpu_revenue_usd": Observable(vendor_column("revenue_usd"), "vendors table: revenue "
                                     "summed over the year"),
    "dc_gpu_unit_share": Observable(gpu_unit_share, "vendors table: the vendor's units over "
                                    "all GPU vendors' units (NVIDIA, AMD, others) in the period"),
    "accelerator_revenue_usd": Observable(vendor_column("revenue_usd"), "vendors table: "
                                          "revenue summed over the period"),
    "nvidia_china_revenue_share": Observable(nvidia_china_revenue_share, "shipments and "
                                             "vendors tables: NVIDIA's revenue from buyers in "
                                             "China over all its revenue in the fiscal year"),
    "smuggled_units": Observable(smuggled_units, "shipments table: units delivered to "
                                 "buyers in the destination by diversion (grey-market orders "
                                 "and the diverted part of blocked ones) in the period"),
    "h20_units": Observable(chip_units(["h20"]), "shipments table: H20 units summed over the "
                            "period"),
    "hopper_bought_units": Observable(bought_units("nvidia", HOPPER), "shipments table: "
                                      "Hopper-class units (H100, H800, H20, H200) delivered "
                                      "to the buyer in the period"),
    "amd_bought_units": Observable(bought_units("amd", None), "shipments table: AMD units "
                                   "delivered to the buyer in the period"),
    "custom_accelerators_deployed_units": Observable(
        own_accelerators, "shipments table: the vendor's own accelerators delivered in the period"),
    "huawei_910c_orders_units": Observable(chip_units(["ascend-910c"]), "shipments table: "
                                           "Ascend 910C units delivered in the period (the "
                                           "source counts what could be ordered)"),
    "huawei_910b_units": Observable(chip_units(["ascend-910b"]), "shipments table: Ascend "
                                    "910B units delivered in the period (Huawei ships what it "
                                    "makes: its backlog never clears)"),
    "china_domestic_accelerator_share": Observable(domestic_share, "shipments table: units "
                                                   "from Chinese vendors over all units "
                                                   "delivered to buyers in China"),
    "compute_share": Observable(nation_column("share"), "compute table: the nation's share of "
                                "installed H100e at the end of the period"),
    "largest_cluster_gpus": Observable(not_modelled(
        "the model has no cluster-level state: a lab's hours in every region pool into one "
        "run"), "-"),
    "cloud_gpus_installed": Observable(not_modelled(
        "no output table gives a cloud's installed units"), "-"),
    "lab_gpus_installed": Observable(not_modelled(
        "no output table gives a lab's installed units"), "-"),
    "largest_run_to_date_flop": Observable(nation_column("frontier_run_flop"), "compute "
                                           "table: the largest training run the nation's "
                                           "labs had finished by the end of the period"),
}


def monthly_values(family: str, keys: tuple[str, ...], tables: dict[str, pd.DataFrame],
                   scenario) -> pd.Series | pd.DataFrame:
    """The model's monthly values for one series; raises `NotModelled`."""
    observable = OBSERVABLES.get(family)
    if observable is None:
        raise NotModelled(f"no observable is declared for the family {family!r}")
    return observable.fn(tables, keys, scenario)


def period_months(start: pd.Timestamp, end: pd.Timestamp) -> pd.DatetimeIndex:
    """The months of [start, end]: those whose 15th day falls inside it, so a fiscal quarter
    that ends a few days into a month takes the months it mostly covers."""
    return _period_months(pd.Timestamp(start), pd.Timestamp(end))


@lru_cache(maxsize=8192)
def _period_months(start: pd.Timestamp, end: pd.Timestamp) -> pd.DatetimeIndex:
    # observations share a few hundred periods; every run of a calibration asks for them
    months = pd.date_range(start.to_period("M").to_timestamp(), end, freq="MS")
    mid = months + pd.Timedelta(days=14)
    return months[(mid >= start) & (mid <= end)]


def aggregate(monthly: pd.Series | pd.DataFrame, how: str, start: pd.Timestamp,
              end: pd.Timestamp) -> float:
    """One figure for the period [start, end] from monthly values: `sum`, `mean`, `end` (the
    last month) or `max`; a share (`num`, `den`) is the ratio of the period's sums. NaN when
    the run does not cover every month of the period."""
    months = period_months(start, end)
    if len(months) == 0:
        return float("nan")
    at = monthly.index.get_indexer(months)
    if (at < 0).any():
        return float("nan")
    # months without a value are skipped, as pandas' reductions skip them (a sum of none
    # is 0, a mean or maximum of none is NaN)
    if isinstance(monthly, pd.DataFrame):
        den = float(np.nansum(monthly["den"].to_numpy(float)[at]))
        return float(np.nansum(monthly["num"].to_numpy(float)[at])) / den if den > 0 \
            else float("nan")
    part = monthly.to_numpy(float)[at]
    if how == "sum":
        return float(np.nansum(part))
    if how == "end":
        return float(part[-1])
    if how not in ("mean", "max"):
        raise ValueError(f"unknown aggregation {how!r}")
    part = part[~np.isnan(part)]
    if part.size == 0:
        return float("nan")
    return float(part.mean() if how == "mean" else part.max())


__all__ = ["OBSERVABLES", "NotModelled", "aggregate", "monthly_values", "period_months"]
