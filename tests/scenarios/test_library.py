"""The scenario library: every built-in scenario runs, and each does what it says.

Each scenario runs once per test session with seed 0 (common random numbers), the way
`gpumarket compare` runs them; the assertions compare outcomes between scenarios, so they test
behaviour, not hard-coded figures.
"""

from functools import lru_cache

import numpy as np
import pandas as pd
import pytest

from market.controls import load_rules
from market.model import ComputeMarket
from market.outputs import release, run_tables
from market.timeline import format_month, parse_month
from scenarios.loader import builtin_names, load_scenario

LIBRARY = ["history", "no-controls", "oct2022-only", "diffusion-rule-kept",
           "cloud-loophole-closed", "taiwan-shock-2027", "huawei-ramp-fast", "gulf-buildout",
           "efficiency-shock"]


@lru_cache(maxsize=None)
def tables(name: str) -> dict[str, pd.DataFrame]:
    return run_tables(load_scenario(name).scenario, 0)


def between(frame: pd.DataFrame, first: str, last: str) -> pd.DataFrame:
    return frame[(frame["date"] >= pd.Timestamp(first + "-01"))
                 & (frame["date"] <= pd.Timestamp(last + "-01"))]


def share(name: str, nation: str, first: str, last: str) -> float:
    c = between(tables(name)["compute"], first, last)
    return float(c.loc[c["nation"] == nation, "share"].mean())


def price(name: str, region: str, first: str, last: str, instrument: str = "spot") -> float:
    """Mean price of one instrument in a region over the months [USD per H100e-hour]
    (`spot` and neocloud `contract` are the neocloud tier's; `list` the hyperscalers')."""
    p = between(tables(name)["price_index"], first, last)
    tier = "hyperscaler" if instrument == "list" else "neocloud"
    rows = p[(p["region"] == region) & (p["tier"] == tier) & (p["instrument"] == instrument)]
    return float(rows["price_usd_per_h100e_hour"].mean())


def test_library_is_shipped_with_descriptions():
    assert set(LIBRARY) <= set(builtin_names())
    for name in LIBRARY:
        s = load_scenario(name).scenario
        assert s.description and s.extends in ("baseline", "history")


@pytest.mark.parametrize("name", LIBRARY)
def test_every_library_scenario_runs(name):
    t = tables(name)
    s = load_scenario(name).scenario
    assert t["price_index"]["step"].max() == s.months
    assert (t["price_index"]["price_usd_per_h100e_hour"] > 0).all()


def test_history_follows_the_dated_rule_history():
    """The model's US regime each month equals the rule data's real timeline."""
    s = load_scenario("history").scenario
    book = load_rules()
    model = ComputeMarket(s, 0)
    try:
        for _ in range(s.months):
            model.step()
            assert model.nations["US"].regime == book.regime_at(model.month), \
                format_month(model.month)
    finally:
        release(model)
    assert s.end == "2026-06"


def test_no_controls_gives_china_more_compute_in_2025():
    assert share("no-controls", "China", "2025-01", "2025-12") > \
        1.3 * share("history", "China", "2025-01", "2025-12")
    flows = tables("no-controls")["flows"]
    assert not flows["channel"].isin(["diversion", "stockpiling"]).any()


def test_oct2022_only_lies_between_no_controls_and_history():
    """The 2022 rule's interconnect prong leaves A800/H800-class chips free to ship."""
    assert share("history", "China", "2025-01", "2025-12") < \
        share("oct2022-only", "China", "2025-01", "2025-12") <= \
        share("no-controls", "China", "2025-01", "2025-12") + 0.01
    policy = tables("oct2022-only")["policy"]
    assert policy["what"].str.contains("launches h800 for D5").any()


def test_history_launches_the_real_china_variants_in_order():
    policy = tables("history")["policy"]
    launches = policy[policy["kind"] == "vendor"]
    first = {chip: launches[launches["what"].str.contains(f"launches {chip} ")]["date"].min()
             for chip in ("a800", "h800", "h20")}
    assert first["a800"] <= first["h800"] < pd.Timestamp("2023-11-01") <= first["h20"]


def test_products_first_ship_in_their_available_month_and_never_after_their_end():
    """Buyers order against next month's products (an order ships from next month's
    production), so a launch's first deliveries land in its `available` month (the catalog's
    launch): the A800, H800 and H20 in the month the vendor declares, the H100 too."""
    sh = tables("history")["shipments"]
    products = {p.chip: p for p in load_scenario("history").scenario.vendors["nvidia"].products}
    for chip in ("a800", "h800", "h20", "h100-sxm", "h200"):
        rows = sh[(sh["vendor"] == "nvidia") & (sh["chip"] == chip) & (sh["units"] > 0)]
        assert format_month(parse_month(str(rows["date"].min())[:7])) == \
            products[chip].available, chip
        if chip in ("a800", "h800"):      # the others' `end` is at or after history's end
            assert rows["date"].max() <= pd.Timestamp(products[chip].end + "-01"), chip


def test_diffusion_rule_kept_caps_tier2_shipments():
    def tier2(name):
        f = between(tables(name)["flows"], "2025-05", "2027-12")
        return f.loc[(f["channel"] == "shipments")
                     & f["destination"].isin(["India", "RoW", "Gulf"]), "h100e"].sum()
    kept, base = tier2("diffusion-rule-kept"), tier2("baseline")
    assert kept < 0.5 * base
    # the Tier 2 cap counts TPP-based H100e: ~49,901 per country over 36 months (plus the
    # per-customer exemptions), so India's shipments of capped chips stay near it
    f = between(tables("diffusion-rule-kept")["flows"], "2025-05", "2028-04")
    india = f.loc[(f["channel"] == "shipments") & (f["destination"] == "India"), "h100e"].sum()
    assert india < 49901 * 3


def test_cloud_loophole_closed_cuts_chinas_labs_compute():
    def china_compute(name):
        labs = between(tables(name)["labs"], "2026-01", "2026-06")
        return labs.loc[labs["nation"] == "China", "compute_h100e_hours"].sum()

    def rented_by_china(name):
        flows = between(tables(name)["flows"], "2026-01", "2026-06")
        return flows.loc[(flows["channel"] == "remote_access")
                         & (flows["destination"] == "China"), "h100e"].sum()
    # with the loophole open China's labs rent abroad within the foreign clouds' KYC room
    # (a few per cent of what they ask there; the rest bids at home, 0.9.0); closing it takes
    # those hours away, and China's own clouds cannot make them up within the half-year
    # (-6% in 2026-H1, seed 1, at 0.9.0; -0.9% at 0.13.0, where H20s and China's own power
    # leave its labs renting far less abroad: 9k H100e in 2026-06 against 27k, README compare figures)
    assert rented_by_china("history") > 0
    assert rented_by_china("cloud-loophole-closed") == 0
    assert china_compute("cloud-loophole-closed") < china_compute("history")


def test_taiwan_shock_binds_and_raises_prices():
    """CoWoS at 30% through 2027: far fewer chips shipped, higher US spot and contract prices
    in 2027-28 than the baseline's (same seed). (Issue 12's thresholds, +30% spot and +15%
    contract in 2027 and prices back within 15% of the baseline's by 2029-H2, are measured by
    `scripts/core_measures.py`; at 0.9.0 seed 1 gives +38% / +16%, seeds 0-3 +27% to +56%
    spot, but 2029-H2 +82% to +220%: CoWoS runs at capacity in both runs, so the lost
    output is made up only by the lines the shocked foundry starts after it, 18 months
    later.)"""
    shocked, base = "taiwan-shock-2027", "baseline"
    for instrument in ("spot", "contract"):
        assert price(shocked, "US", "2027-01", "2028-12", instrument) > \
            price(base, "US", "2027-01", "2028-12", instrument)
    year = lambda n: between(tables(n)["vendors"], "2027-01", "2027-12").query(  # noqa: E731
        "vendor == 'nvidia'")["shipped_h100e"].sum()
    assert year(shocked) < 0.7 * year(base)


def test_huawei_ramp_fast_ships_more_ascends_and_raises_chinas_share():
    def huawei(name):
        v = between(tables(name)["vendors"], "2026-01", "2028-12")
        return v.loc[v["vendor"] == "huawei", "shipped_h100e"].sum()
    assert huawei("huawei-ramp-fast") > 1.5 * huawei("baseline")
    assert share("huawei-ramp-fast", "China", "2028-01", "2028-12") > \
        share("baseline", "China", "2028-01", "2028-12")


def test_chinas_other_vendors_make_what_smics_wafers_allow_for_domestic_buyers():
    """Cambricon, Hygon and Kunlunxin ship only to China, only products on sale, and in
    2024 no more than their SMIC wafers x the yield x packages per wafer allow; doubling
    Cambricon's share of SMIC's lines (taken from Huawei) raises its 2024 output."""
    domestic = ("cambricon", "hygon", "kunlun")
    t = tables("history")
    sold = t["shipments"][t["shipments"]["vendor"].isin(domestic)]
    assert len(sold) and set(sold["nation"]) == {"China"}
    first = sold.groupby("chip")["date"].min()
    assert first["mlu590"] >= pd.Timestamp("2024-01-01")
    assert first["kunlun-p800"] >= pd.Timestamp("2024-07-01")
    v = between(t["vendors"], "2024-01", "2024-12")
    for vid in domestic:
        rows = v[v["vendor"] == vid]
        assert (rows["wafers_used"] <= rows["wafers_allotted"] + 1e-9).all()
        assert rows["shipped_units"].sum() > 0

    def cambricon_2024(overrides):
        frames = run_tables(load_scenario("history", overrides).scenario, 0)
        rows = between(frames["vendors"], "2024-01", "2024-12")
        return rows.loc[rows["vendor"] == "cambricon", "produced_units"].sum()
    more = cambricon_2024(["foundries.smic.vendor_shares={huawei=0.86, cambricon=0.08, "
                           "hygon=0.03, kunlun=0.03}"])
    assert more > 1.5 * cambricon_2024([])


def test_chinas_purchase_ban_is_a_hard_limit_on_the_named_buyers():
    """From 2025-09 China bans the H20 to ByteDance and Alibaba (baseline): no H20 reaches
    them by any channel from then, while China's other buyers may still buy it; without
    the ban they go on buying it."""
    def h20_to(frames, buyers, first):
        s = frames["shipments"]
        rows = s[(s["chip"] == "h20") & s["buyer"].isin(buyers) & (s["date"] >= first)]
        return float(rows["units"].sum())
    named = ["alibaba-cloud", "bytedance"]
    since = pd.Timestamp("2025-09-01")
    scenario = load_scenario("baseline").scenario
    (ban,) = [i for i, e in enumerate(scenario.events)
              if e.kind == "domestic_policy" and e.banned_chips]
    assert scenario.events[ban].date == "2025-09"
    assert h20_to(tables("baseline"), named, since) == 0.0
    assert h20_to(tables("baseline"), ["tencent-cloud", "china-neoclouds"], since) > 0
    unbanned = run_tables(load_scenario("baseline", [f"events.{ban}.banned_chips=[]",
                                                     f"events.{ban}.banned_buyers=[]"]
                                        ).scenario, 0)
    assert h20_to(unbanned, named, since) > 0


def test_gulf_buildout_makes_the_gulf_a_compute_holder():
    assert share("gulf-buildout", "Gulf", "2027-01", "2028-12") > \
        10 * max(share("baseline", "Gulf", "2027-01", "2028-12"), 1e-4)


def test_an_entrants_spend_stays_within_its_money():
    """The Gulf programmes enter in 2025-06 with USD 0.68B x the financing index a year of
    outside money: what they spend in a month stays within three months of it however the
    Gulf's thin market moves (serving margins count tokens sold per hour served, at most what
    users ask at the posted price: before 0.17.0 a margin counted per dollar paid at a
    planned price ~10,000x the spot lifted the budget to trillions of USD a month), and no
    Gulf price reaches the search cap (before, its spot sat on it for months)."""
    from market.hour_prices import SPOT_PRICE_SEARCH_CAP
    from market.timeline import TimePath

    scenario = load_scenario("gulf-buildout").scenario
    lab = scenario.labs["gulf-sovereign"]
    path = TimePath(scenario.market.financing_index.points,
                    scenario.market.financing_index.growth_after_per_year)
    t = tables("gulf-buildout")
    rows = t["labs"][(t["labs"]["lab"] == "gulf-sovereign")
                     & (t["labs"]["date"] >= pd.Timestamp(lab.start + "-01"))]
    financing = np.array([lab.financing_usd_per_year * path.at(parse_month(f"{d:%Y-%m}"))
                          / 12.0 for d in rows["date"]])
    assert len(rows) and (rows["spend_usd"].to_numpy() <= 3.0 * financing).all()
    gulf = t["price_index"][t["price_index"]["region"] == "Gulf"]
    assert (gulf["price_usd_per_h100e_hour"] < SPOT_PRICE_SEARCH_CAP).all()


def test_efficiency_shock_lowers_prices_and_chip_orders():
    """Half the FLOP per unit of capability from 2026-01: with capacity already built, prices
    fall in the shock's first year (the hours are worth less), and clouds order fewer chips
    in 2026. (As demand grows back in 2027, the investment the glut stopped is missing and
    prices overshoot the baseline's: since 0.10.0 power, too, is built only when wanted.)"""
    assert price("efficiency-shock", "US", "2026-01", "2026-12") < \
        0.7 * price("baseline", "US", "2026-01", "2026-12")
    orders = lambda n: between(tables(n)["orders"], "2026-01", "2026-12").query(  # noqa: E731
        "order_kind == 'regular'")["committed_usd"].sum()
    assert orders("efficiency-shock") < orders("baseline")


def test_stockpiling_before_the_oct2023_rule():
    """Announced Oct 2023, effective Nov 2023: Chinese buyers pull orders forward."""
    f = tables("history")["flows"]
    pile = f[f["channel"] == "stockpiling"]
    assert pile["h100e"].sum() > 0
    assert set(pile["destination"]) == {"China"}
    assert pile["date"].max() < pd.Timestamp("2023-11-01")


def test_leakage_rises_when_enforcement_falls():
    def diverted(enforcement):
        s = load_scenario("history", [f"leakage.enforcement={enforcement}"]).scenario
        f = run_tables(s, 0)["flows"]
        return f.loc[f["channel"] == "diversion", "h100e"].sum()
    assert diverted(0.9) < diverted(0.5) < diverted(0.1)


def test_grey_market_demand_rises_when_the_rules_cut_legal_sales():
    """Grey-market demand is the part of what buyers want that the rules block: after the
    April 2025 licence requirement took the H20, the last Hopper China could buy legally, more
    reaches China by diversion in a year than in the year before, which had more than the
    year before that (Oct 2023 rule)."""
    f = tables("history")["flows"]
    div = f[f["channel"] == "diversion"]

    def diverted(first, last):
        return between(div, first, last)["h100e"].sum()

    assert diverted("2025-04", "2026-03") > diverted("2024-04", "2025-03") \
        > diverted("2023-04", "2024-03") > 0


def test_transit_capacity_bounds_grey_market_orders():
    """The transit hubs move at most `transit_capacity_units_per_month` grey-market chips a
    month: with a small capacity it binds, and it is never exceeded; with none, no buyer
    commits money to the grey market."""
    cap = 500.0
    model = ComputeMarket(load_scenario(
        "history", [f"leakage.transit_capacity_units_per_month={cap}"]).scenario, 0)
    placed = []
    for _ in range(model.n_months):
        model.step()
        placed.append(model.grey_units if model.grey_month == model.month else 0.0)
    release(model)
    assert max(placed) <= cap * (1 + 1e-9)
    assert sum(p >= cap * (1 - 1e-9) for p in placed) >= 6
    shut = run_tables(load_scenario(
        "history", ["leakage.transit_capacity_units_per_month=0"]).scenario, 0)["orders"]
    assert shut.loc[shut["order_kind"] == "grey_market", "committed_usd"].sum() == 0.0


def test_adaptive_controller_tightens_when_the_rival_gains():
    """A US policy that imposes the Oct 2023 rule once China's installed share exceeds 5%,
    in a world that starts with no rules: it fires in the first month it may."""
    s = load_scenario("no-controls", [
        'nations.US.adaptive=[{trigger = "rival_installed_share_above", rival = "China", '
        'threshold = 0.05, impose = "oct2023", not_before = "2024-01"}]']).scenario
    t = run_tables(s, 0)
    policy = t["policy"][t["policy"]["kind"] == "adaptive"]
    assert len(policy) == 1 and policy["date"].iloc[0] == pd.Timestamp("2024-01-01")
    assert "impose oct2023" in policy["what"].iloc[0]
    assert share("no-controls", "China", "2025-06", "2026-06") > \
        float(between(t["compute"], "2025-06", "2026-06").query("nation == 'China'")["share"].mean())


def test_lost_revenue_trigger_relaxes_a_rule():
    """License with a revenue share when US vendors' blocked sales pass USD 1B a year."""
    s = load_scenario("history", [
        'nations.US.adaptive=[{trigger = "vendor_lost_revenue_above", threshold = 1e9, '
        'impose = "h20-aug2025", not_before = "2024-01"}]']).scenario
    t = run_tables(s, 0)
    fired = t["policy"][t["policy"]["kind"] == "adaptive"]
    assert len(fired) >= 1
    month = format_month(parse_month(fired["date"].iloc[0].strftime("%Y-%m")) - 1)
    lost = between(t["vendors"], format_month(parse_month(month) - 11), month)
    assert lost["blocked_revenue_usd"].sum() > 1e9


def test_power_constraint_and_hbm_shortage_bite():
    base = load_scenario("baseline").scenario
    power = load_scenario("baseline", ['events=[{kind = "power_constraint", date = "2025-01", '
                                       'nation = "US", factor = 0.5, months = 12}]']).scenario
    hbm = load_scenario("baseline", ['events=[{kind = "hbm_shortage", date = "2023-06", '
                                     'factor = 0.5, months = 6}]']).scenario
    b, p, h = (run_tables(s, 0, months=48) for s in (base.model_copy(update={"events": []}),
                                                      power, hbm))
    us = lambda t: between(t["compute"], "2025-06", "2025-12").query("nation == 'US'")["installed_h100e"].mean()
    assert us(p) < us(b)
    made = lambda t: between(t["vendors"], "2023-06", "2023-11")["produced_units"].sum()
    assert made(h) < 0.7 * made(b)      # in the 2023 scarcity, capacity binds


#: Paths past 2024 that are announced programmes, inputs by the project's rule.
ANNOUNCED_PATHS = {("gulf-buildout", "clouds.g42.financing_usd_per_year"):
                   "Stargate UAE and Humain, announced May 2025"}


def test_built_in_paths_stop_at_2024_and_grow_by_the_stated_rule():
    """Potential demand, investors' money and the clouds' outside financing are set from
    2022-24 only; after their last point they grow by one stated rule (half the log growth
    of their last observed year), never by a number fitted to a later fact. Every built-in
    scenario, except paths that are announced programmes (`ANNOUNCED_PATHS`)."""
    from market.timeline import extrapolated_growth_per_year

    checked = 0
    for name in builtin_names():
        scenario = load_scenario(name).scenario
        paths = {f"clouds.{cid}.financing_usd_per_year": c.financing_usd_per_year
                 for cid, c in scenario.clouds.items()}
        paths["market.demand_index"] = scenario.market.demand_index
        paths["market.financing_index"] = scenario.market.financing_index
        for path_name, path in paths.items():
            if (name, path_name) in ANNOUNCED_PATHS:
                continue
            where = f"{name}: {path_name}"
            assert max(parse_month(k) for k in path.points) <= parse_month("2024-12"), where
            assert path.growth_after_per_year == pytest.approx(
                extrapolated_growth_per_year(path.points), abs=0.005), where
            checked += 1
    assert checked > 100


def test_designed_variants_are_a_counterfactual_with_a_design_lag():
    """`history` launches only the variants vendors made (A800, H800, H20: declared in the
    scenario, on their dates); `design_variants` lets a vendor design one just under the
    thresholds where none complies, shipping `variant_design_months` after the restriction."""
    plain = ComputeMarket(load_scenario("history").scenario, seed=1)
    assert not [c for c in plain.chip_ids if "-for-" in c]
    sets = ["vendors.nvidia.design_variants=true", "vendors.nvidia.variant_design_months=7"]
    designed = ComputeMarket(load_scenario("history", sets).scenario, seed=1)
    designed.run(36)
    launches = [r for r in designed.records["policy"] if "-for-d5-" in r[3]]
    assert launches
    for step, _nation, _kind, what, _rules in launches:
        first = parse_month(what.split(" from ")[1][:7])
        assert first >= designed.start_month + step - 1 + 7, what
    # the lag is the scenario's: a designed variant ships no later than the design lag after
    # the month it responded in, unless its parent's own date is later
    assert any(parse_month(w.split(" from ")[1][:7]) == designed.start_month + st - 1 + 7
               for st, _n, _k, w, _r in launches)
