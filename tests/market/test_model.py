"""ComputeMarket: the baseline's stylized facts, market invariants, determinism, pickling, scale.

The stylized facts are outcomes of a fixed seed of the baseline; they pass only if scarcity,
supply growth and the agents' decisions produce them (no price path is an input).
"""

import pickle

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st

from market.model import ComputeMarket
from market.outputs import collect_tables, release, run_tables
from market.world import HEADLINE_INSTRUMENT
from scenarios.loader import load_scenario

SEED = 0


@pytest.fixture(scope="module")
def baseline():
    return load_scenario("baseline").scenario


@pytest.fixture(scope="module")
def frames(baseline):
    return run_tables(baseline, SEED)


HEADLINE = HEADLINE_INSTRUMENT


def _series(frames, region, tier, instrument=None):
    pi = frames["price_index"]
    rows = pi[(pi.region == region) & (pi.tier == tier)
              & (pi.instrument == (instrument or HEADLINE[tier]))]
    return rows.set_index("date")["price_usd_per_h100e_hour"]


def _h100_price(frames, region, tier):
    p = frames["prices"]
    rows = p[(p.region == region) & (p.tier == tier) & (p.chip == "h100-sxm")]
    return rows.set_index("date")["price_usd_per_gpu_hour"]


def test_2023_scarcity_price_well_above_late_2024(frames):
    """H100-hour price in 2023 well above its late-2024 level ([CAL 3.1]: ~USD 4.7-8 at
    the 2023 peak, ~USD 3 after a ~30% cut in late 2024)."""
    neo = _h100_price(frames, "US", "neocloud")
    mean_2023 = neo["2023-01-01":"2023-12-01"].mean()
    late_2024 = neo["2024-10-01":"2024-12-01"].mean()
    assert mean_2023 > 1.3 * late_2024, (mean_2023, late_2024)
    assert neo["2023-01-01":"2023-12-01"].max() > 1.6 * late_2024


def test_h100_price_levels_in_range(frames):
    neo = _h100_price(frames, "US", "neocloud")
    assert neo["2023-01-01":"2023-12-01"].between(2, 12).all()
    assert neo["2024-10-01":"2024-12-01"].between(1.5, 5).all()


def test_cowos_capacity_roughly_doubles_per_year_while_prices_fall(baseline):
    from market.timeline import TimePath, parse_month
    cap = baseline.foundries["tsmc-cowos"].capacity_wafers_per_month
    path = TimePath(cap.points, cap.growth_after_per_year)
    growth = path.at(parse_month("2024-12")) / path.at(parse_month("2023-12"))
    assert 2.0 < growth < 3.5


def test_hyperscaler_tier_above_neocloud_tier(frames):
    """Every month of 2022-2024 in the US (the market of [CAL 3]), yearly averages
    in every region with both tiers in 2022-2024, and US yearly averages through 2030."""
    pi = frames["price_index"]
    pi = pi[pi.instrument == pi.tier.map(HEADLINE)]
    wide = pi.pivot_table(index="date", columns=["region", "tier"],
                          values="price_usd_per_h100e_hour")
    calibration = wide.loc["2022-01-01":"2024-12-01"]
    gap = calibration[("US", "hyperscaler")] - calibration[("US", "neocloud")]
    assert (gap > 0).all(), gap[gap <= 0]
    for region in {r for r, _ in wide.columns}:
        if (region, "hyperscaler") in wide and (region, "neocloud") in wide:
            yearly = calibration.groupby(calibration.index.year).mean()
            assert (yearly[(region, "hyperscaler")] > yearly[(region, "neocloud")]).all(), region
    yearly = wide.groupby(wide.index.year).mean()
    assert (yearly[("US", "hyperscaler")] > yearly[("US", "neocloud")]).all()


def test_nvidia_share_of_shipped_h100e_near_epochs_in_2023_2024(frames):
    """NVIDIA's share of the H100e NVIDIA, AMD and Google shipped: Epoch's medians are 0.85
    (2023) and 0.72 (2024, TPUs ramping), read from the observed data. The model's falls
    from 2023 to 2024 as theirs does, within 0.15 of each (0.92 and 0.83 at 0.8.0: Google's
    TPUs come out at ~0.6 of Epoch's 2024 H100e, a miss the calibration issue owns)."""
    from market.observed import load_observed

    obs = load_observed()
    obs = obs[obs.series.isin([f"shipped_h100e:{v}:all" for v in ("nvidia", "amd", "google")])]
    obs = obs.assign(year=pd.to_datetime(obs.start).dt.year, vendor=obs.series.str.split(":").str[1])
    observed = obs.groupby(["year", "vendor"])["value"].sum().unstack()
    v = frames["vendors"]
    window = v[(v.date >= "2023-01-01") & (v.date <= "2024-12-01")
               & v.vendor.isin(["nvidia", "amd", "google"])]
    by_year = window.groupby([window.date.dt.year, "vendor"])["shipped_h100e"].sum().unstack()
    share = by_year["nvidia"] / by_year.sum(axis=1)
    expected = (observed["nvidia"] / observed.sum(axis=1)).loc[[2023, 2024]]
    assert (abs(share - expected) < 0.15).all(), (share, expected)
    assert share[2024] < share[2023] - 0.04, share


def test_us_share_far_above_others_china_among_the_first_three(frames):
    """The US holds most of the world's AI compute, China is among the next holders. (Observed,
    China is second with 15-20% [CAL 5]; this core gives it ~4%, behind the EU, because its
    clouds value the H20 and other compliant chips by training FLOP alone: issue 13.)"""
    c = frames["compute"]
    for month in ("2023-06-01", "2024-12-01"):
        shares = c[c.date == month].set_index("nation")["share"].sort_values(ascending=False)
        assert shares.index[0] == "US" and "China" in shares.index[1:3], shares
        assert shares["US"] > 3 * shares.iloc[1]
        assert shares.sum() == pytest.approx(1.0)


def test_tables_have_the_contract_columns_and_108_months(frames):
    from market.outputs import COLUMNS
    for name, cols in COLUMNS.items():
        assert list(frames[name].columns[:len(cols)]) == cols, name
    assert frames["price_index"]["step"].max() == 108
    assert frames["compute"]["date"].min() == pd.Timestamp("2022-01-01")
    assert frames["compute"]["date"].max() == pd.Timestamp("2030-12-01")
    assert set(frames["price_index"]["tier"]) == {"hyperscaler", "neocloud"}
    assert set(frames["price_index"]["instrument"]) == {"list", "contract", "spot"}
    assert {"shipments", "remote_access"} <= set(frames["flows"]["channel"])


def test_frontier_runs_complete_and_grow(frames):
    c = frames["compute"]
    us = c[c.nation == "US"].set_index("date")["frontier_run_flop"]
    assert us["2023-12-01"] >= 2e25            # at least GPT-4 scale by end-2023
    assert us["2030-12-01"] > 10 * us["2023-12-01"]


# -------------------------------------------------------------------------- invariants ---

@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 10_000), count=st.integers(0, 60),
       demand=st.floats(0.3, 3.0), shock=st.floats(0.0, 1.0),
       rationing=st.sampled_from(["pro_rata", "first_come"]), remote=st.booleans(),
       lead=st.integers(0, 6), elasticity=st.floats(0.3, 2.5), switching=st.floats(0.0, 4.0),
       dissimilarity=st.floats(0.05, 1.0), opening=st.floats(0.0, 2e5))
def test_market_invariants_on_random_small_worlds(seed, count, demand, shock, rationing,
                                                  remote, lead, elasticity, switching,
                                                  dissimilarity, opening):
    """Random worlds within the schema's bounds: prices finite and positive, shares in [0, 1]
    summing to 1, sold <= offered, money conserved (labs' spend = clouds' revenue), chips
    never shipped beyond what was made."""
    scenario = load_scenario("baseline", [
        f"long_tail.count={count}", f"market.rationing=\"{rationing}\"",
        f"market.remote_access_allowed={str(remote).lower()}",
        f"market.chip_lead_time_months={lead}", f"market.serving_elasticity={elasticity}",
        f"market.switching_cost={switching}",
        f"market.demand_index.points.2023-06={3.5 * demand}",
        f"foundries.tsmc-cowos.vendor_shares.nvidia={0.62 * shock}",
        f"market.line_dissimilarity={dissimilarity}",
        f"vendors.nvidia.opening_orders_units={{a100={opening}}}"]).scenario
    m = ComputeMarket(scenario, seed=seed)
    try:
        for _ in range(24):
            m.step()
            for site in m.sites:
                assert site.installed_mw(m.mw_per_chip) <= site.capacity_mw(m.month) + 1e-6
            for cloud in m.clouds:
                assert cloud.sold_h100e_hours <= cloud.offered_h100e_hours * (1 + 1e-9) + 1e-6
            shares = m.hour_market.shares
            assert np.all(shares >= -1e-12) and np.all(shares <= 1 + 1e-12)
            assert np.allclose(shares.sum(axis=1), 1.0)
        t = collect_tables(m)
    finally:
        release(m)
    prices = t["price_index"]["price_usd_per_h100e_hour"]
    assert np.isfinite(prices).all() and (prices > 0).all()
    assert np.isfinite(t["prices"]["price_usd_per_gpu_hour"]).all()
    assert t["prices"]["utilization"].between(0, 1 + 1e-9).all()
    assert t["compute"].groupby("step")["share"].sum().sub(1.0).abs().max() < 1e-9
    v = t["vendors"].sort_values("step")
    cum = v.groupby("vendor")[["shipped_units", "produced_units"]].cumsum()
    assert (cum["shipped_units"] <= cum["produced_units"] * (1 + 1e-9) + 1e-6).all()
    labs = t["labs"].groupby("step")
    # what labs paid, less what they earned reselling contracted hours to each other
    spend = labs["spend_usd"].sum() - labs["resale_usd"].sum()
    revenue = t["clouds"].groupby("step")["revenue_usd"].sum()
    assert np.allclose(spend.to_numpy(), revenue.to_numpy(), rtol=1e-9, atol=1e-3)


# ------------------------------------------------------------------------ determinism ---

def test_same_seed_identical_tables_different_seed_differs(baseline):
    a, b = run_tables(baseline, 7, months=18), run_tables(baseline, 7, months=18)
    for name in a:
        pd.testing.assert_frame_equal(a[name], b[name])
    c = run_tables(baseline, 8, months=18)
    assert not a["labs"].equals(c["labs"])


def test_model_pickles_and_continues_identically(baseline):
    m = ComputeMarket(baseline, seed=3)
    for _ in range(4):
        m.step()
    clone = pickle.loads(pickle.dumps(m))
    for _ in range(3):
        m.step()
        clone.step()
    assert m.records["price_index"] == clone.records["price_index"]
    release(m)
    release(clone)


def test_scales_to_10000_long_tail_labs():
    big = load_scenario("baseline", ["long_tail.count=10000"]).scenario
    t = run_tables(big, 1, months=3)
    assert t["labs"]["lab"].nunique() == 10_000 + len(big.labs)
    by_nation = t["labs"][t["labs"].step == 1].groupby("nation").size()
    assert by_nation["US"] > by_nation["India"]


def test_outputs_do_not_depend_on_the_hash_seed():
    """Two processes with different string-hash seeds (as Dask workers have) write identical
    tables: no sum runs over a set or another hash-ordered container."""
    import os
    import subprocess
    import sys

    code = ("import hashlib, sys\n"
            "from scenarios.loader import load_scenario\n"
            "from market.outputs import run_tables\n"
            "t = run_tables(load_scenario('baseline').scenario, 2, 18)\n"
            "print(hashlib.sha256(''.join(t[k].to_csv() for k in sorted(t)).encode())"
            ".hexdigest())\n")
    digests = set()
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                             text=True, timeout=300, check=True)
        digests.add(out.stdout.strip())
    assert len(digests) == 1


def test_an_entrant_plans_at_the_price_it_meets_and_incumbents_at_their_regions():
    """xAI enters in 2023-07 (history): until then it has no planned spot; in its first
    month it meets the price on its long-run curve and plans at it from then on (its own
    adaptive expectation), while labs there from the start plan at their region's."""
    from market.model import ComputeMarket
    from market.outputs import release
    from market.timeline import parse_month
    from scenarios.loader import load_scenario

    scenario = load_scenario("history").scenario
    model = ComputeMarket(scenario, 1)
    try:
        xai, openai = (list(scenario.labs).index(k) for k in ("xai", "openai"))
        us = model.nation_index["US"]
        hm = model.hour_market
        while model.month < parse_month("2023-07"):
            model.step()
            if model.month < parse_month("2023-07"):
                assert np.isnan(hm.planned_spot_by_lab[xai])
            assert hm.planned_spot_by_lab[openai] == hm.planned_spot[us]
        assert hm.planned_spot_by_lab[xai] == hm.spot[us]
        model.step()
        assert hm.planned_spot_by_lab[xai] != hm.planned_spot[us]
        assert hm.planned_spot_by_lab[openai] == hm.planned_spot[us]
    finally:
        release(model)


def test_remote_access_never_exceeds_the_kyc_room_of_the_clouds_rented_from():
    """Each month, what restricted labs rent in a region (the `remote_access` flows, in
    training H100e) is at most `remote_kyc_share` of that region's neocloud hours (all they
    offered: the room is a share of what was left for spot, which is less); with a tenth of
    the share they rent less."""
    from market.model import ComputeMarket
    from market.outputs import release
    from market.world import HOURS_PER_MONTH
    from scenarios.loader import load_scenario

    def rented(overrides):
        scenario = load_scenario("history", overrides).scenario
        kyc = scenario.market.remote_kyc_share
        model = ComputeMarket(scenario, 1)
        total = 0.0
        try:
            for _ in range(30):
                model.step()
                for step, channel, origin, _, h100e in model.records["flows"]:
                    if step != model.step_index or channel != "remote_access":
                        continue
                    r = model.nation_index[origin]
                    room = kyc * sum(c.offered_h100e_hours for c in model.clouds
                                     if c.tier == "neocloud" and c.region == origin)
                    assert h100e * HOURS_PER_MONTH / model.training_value[r] <= room * (1 + 1e-9)
                    total += h100e
        finally:
            release(model)
        return total

    full = rented([])
    assert full > 0
    assert rented(["market.remote_kyc_share=0.03"]) < full
