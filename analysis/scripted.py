"""What is scripted: how much of a run's outcomes sit on its inputs.

An outcome that sits on an input (a price equal to a bid constant for months, a volume equal
to a budget path) says nothing about the market. These diagnostics count it, over the months
up to a line (the backtest's `--until`):

    price_on_input       share of price-index cells (region x tier x instrument x month with a
                         price) within 0.5% of a price input of the scenario
                         (`market.summary.input_price_levels`) that month and the month before
    price_flat_6_months  share of cells inside a run of 6 or more months that stays within 0.5%
                         of the run's first value
    price_scripted       share of cells on an input, or flat for 6+ months outside the
                         hyperscalers' posted prices (a list price and its committed-use
                         discount hold between revisions by design)
    budget_binds         share of chip orders the buyer's money cut: the order wanted more
                         than the month's financing allowance
    margin_at_bound      share of hyperscaler-months whose list markup sits on `min_margin` or
                         `max_margin`
    input_correlation    across a small Latin-hypercube design over the scenario's [uncertain]
                         inputs, the correlation of a headline outcome with the input nearest
                         to it (`PAIRS`); near +-1, the outcome is that input in disguise
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from market.world import HEADLINE_INSTRUMENT as HEADLINE

#: Relative distance within which a price counts as equal to a level or to its run's start.
TOLERANCE = 0.005
#: Months a price must stay within TOLERANCE to count as flat.
FLAT_MONTHS = 6
#: Regions shown apart (the rest is in "all").
REGIONS = ("US", "China", "EU")
#: (tier, instrument) of the price series, as `price_index` carries them.
INSTRUMENTS = (("hyperscaler", "list"), ("hyperscaler", "contract"), ("neocloud", "contract"),
               ("neocloud", "spot"))


def flat_mask(values: np.ndarray, tolerance: float = TOLERANCE,
              min_months: int = FLAT_MONTHS) -> np.ndarray:
    """True for the months inside a run of at least `min_months` consecutive values within
    `tolerance` (relative) of the run's first value; NaN breaks a run."""
    values = np.asarray(values, float)
    mask = np.zeros(values.size, bool)
    start = 0
    while start < values.size:
        if not np.isfinite(values[start]):
            start += 1
            continue
        end = start + 1
        ref = values[start]
        while end < values.size and np.isfinite(values[end]) \
                and abs(values[end] - ref) <= tolerance * abs(ref):
            end += 1
        if end - start >= min_months:
            mask[start:end] = True
        start = end
    return mask


def price_cells(frames: dict[str, pd.DataFrame], scenario, until: str | None) -> pd.DataFrame:
    """Every price-index cell up to `until` with its flags: `on_level`, `flat`."""
    from market.summary import input_price_levels

    pi = frames["price_index"].copy()
    if until is not None:
        pi = pi[pi["date"] <= pd.Timestamp(until + "-01")]
    pi = pi.sort_values(["region", "tier", "instrument", "date"]).reset_index(drop=True)
    price = pi["price_usd_per_h100e_hour"].to_numpy(float)
    levels = np.asarray(input_price_levels(scenario), float)
    on_level = np.zeros(len(pi), bool)
    if levels.size:
        # on a level this month and, where the series has the month before, then too: a
        # price that sits on an input, not one passing through it (`market.summary`'s rule)
        group = pi.groupby(["region", "tier", "instrument"], sort=False)
        before = group["price_usd_per_h100e_hour"].shift(1).to_numpy(float)
        month = pi["date"].dt.year * 12 + pi["date"].dt.month
        adjacent = (month - group["date"].shift(1).dt.year.mul(12)
                    .add(group["date"].shift(1).dt.month)).to_numpy() == 1
        before = np.where(adjacent, before, np.nan)

        def near(values):
            return np.abs(values[:, None] - levels[None, :]) <= TOLERANCE * levels[None, :]
        now = near(price)
        on_level = np.isfinite(price) & np.any(now & (near(before) | ~np.isfinite(before)[:, None]),
                                               axis=1)
    flat = np.zeros(len(pi), bool)
    for _, idx in pi.groupby(["region", "tier", "instrument"]).indices.items():
        flat[idx] = flat_mask(price[idx])
    pi["on_level"], pi["flat"] = on_level, flat
    return pi[np.isfinite(price)]


def _share(mask: pd.Series) -> float:
    return float(mask.mean()) if len(mask) else float("nan")


def diagnostics(frames: dict[str, pd.DataFrame], scenario, until: str | None = None
                ) -> pd.DataFrame:
    """The shares of the module docstring for one run: one row per (diagnostic, scope)."""
    rows = []
    cells = price_cells(frames, scenario, until)
    scopes = [("all", cells)] + [(f"{r} {t} {i}", cells[(cells["region"] == r)
                                                        & (cells["tier"] == t)
                                                        & (cells["instrument"] == i)])
                                 for r in REGIONS for t, i in INSTRUMENTS]
    for scope, part in scopes:
        if part.empty:
            continue
        posted = part["tier"] == "hyperscaler"     # list and committed use: posted prices
        rows += [{"diagnostic": "price_on_input", "scope": scope,
                  "value": _share(part["on_level"]), "count": len(part)},
                 {"diagnostic": "price_flat_6_months", "scope": scope,
                  "value": _share(part["flat"]), "count": len(part)},
                 {"diagnostic": "price_scripted", "scope": scope,
                  "value": _share(part["on_level"] | (part["flat"] & ~posted)),
                  "count": len(part)}]
    orders = frames["orders"]
    if until is not None:
        orders = orders[orders["date"] <= pd.Timestamp(until + "-01")]
    regular = orders[orders["order_kind"] == "regular"]
    clouds = set(scenario.clouds)
    for scope, part in (("all", regular), ("clouds", regular[regular["buyer"].isin(clouds)]),
                        ("labs", regular[~regular["buyer"].isin(clouds)])):
        if len(part):
            rows.append({"diagnostic": "budget_binds", "scope": scope,
                         "value": _share(part["budget_binds"]), "count": len(part)})
    cl = frames["clouds"]
    if until is not None:
        cl = cl[cl["date"] <= pd.Timestamp(until + "-01")]
    cl = cl[cl["tier"] == "hyperscaler"]
    if len(cl):
        lo = cl["cloud"].map({c: s.min_margin for c, s in scenario.clouds.items()})
        hi = cl["cloud"].map({c: s.max_margin for c, s in scenario.clouds.items()})
        at = (np.abs(cl["margin"] - lo) <= 1e-6) | (np.abs(cl["margin"] - hi) <= 1e-6)
        rows.append({"diagnostic": "margin_at_bound", "scope": "hyperscalers",
                     "value": _share(at), "count": len(cl)})
    return pd.DataFrame(rows)


def summarize(per_run: list[pd.DataFrame]) -> pd.DataFrame:
    """Diagnostics over runs: the mean share across runs (and its range)."""
    if not per_run:
        return pd.DataFrame(columns=["diagnostic", "scope", "value", "min", "max", "count"])
    stacked = pd.concat(per_run, ignore_index=True)
    out = stacked.groupby(["diagnostic", "scope"], sort=False).agg(
        value=("value", "mean"), min=("value", "min"), max=("value", "max"),
        count=("count", "sum")).reset_index()
    return out


# ---------------------------------------------------------------- input correlations ---



def _mean_between(frame, region, tier, first, last) -> float:
    rows = frame[(frame["region"] == region) & (frame["tier"] == tier)
                 & (frame["instrument"] == HEADLINE[tier])
                 & (frame["date"] >= pd.Timestamp(first)) & (frame["date"] <= pd.Timestamp(last))]
    return float(rows["price_usd_per_h100e_hour"].mean())


def us_spread(frames, first, last) -> float:
    """US hyperscaler list over US neocloud spot, mean ratio over the months [-]."""
    pi = frames["price_index"]
    return _mean_between(pi, "US", "hyperscaler", first, last) \
        / _mean_between(pi, "US", "neocloud", first, last)


def china_hyperscaler_price(frames, first, last) -> float:
    """China's hyperscaler list price, mean over the months [USD/H100e-h]."""
    return _mean_between(frames["price_index"], "China", "hyperscaler", first, last)


def us_neocloud_price(frames, first, last) -> float:
    """US neocloud spot price, mean over the months [USD/H100e-h]."""
    return _mean_between(frames["price_index"], "US", "neocloud", first, last)


def china_share(frames, first, last) -> float:
    """China's share of installed H100e at the last month [-]."""
    c = frames["compute"]
    rows = c[(c["nation"] == "China") & (c["date"] <= pd.Timestamp(last))]
    return float(rows.sort_values("date")["share"].iloc[-1]) if len(rows) else float("nan")


#: Headline outcomes and the input nearest to each: (name, outcome function, input path).
PAIRS = [
    ("US hyperscaler / neocloud price", us_spread, "market.hyperscaler_wtp_premium"),
    ("China hyperscaler price", china_hyperscaler_price,
     "market.reference_price_usd_per_h100e_hour"),
    ("US neocloud price", us_neocloud_price, "market.reference_price_usd_per_h100e_hour"),
    ("China's share of installed H100e", china_share, "leakage.enforcement"),
]


def input_correlations(scenario, runs: int, seed: int, first: str, last: str,
                       months: int | None = None) -> pd.DataFrame:
    """Pearson correlation of each headline outcome (over [first, last], YYYY-MM-DD) with its
    nearest input across a Latin-hypercube design of `runs` runs over the scenario's
    [uncertain] inputs (the pairs whose input the scenario does not declare uncertain are
    skipped)."""
    from analysis.design import make_design
    from analysis.runner import scenario_for
    from market.outputs import run_tables

    pairs = [p for p in PAIRS if p[2] in scenario.uncertain]
    if not pairs or runs < 3:
        return pd.DataFrame(columns=["diagnostic", "scope", "value", "input", "runs"])
    design = make_design(scenario, runs, "lhs", seed, {})     # no levers
    scenario_json = scenario.model_dump_json()
    outcomes = {name: [] for name, *_ in pairs}
    inputs = {name: [] for name, *_ in pairs}
    for run in design.runs:
        frames = run_tables(scenario_for(scenario_json, run.params), run.seed, months)
        for name, fn, path in pairs:
            outcomes[name].append(fn(frames, first, last))
            inputs[name].append(float(run.params[path]))
    rows = []
    for name, _, path in pairs:
        x, y = np.asarray(inputs[name]), np.asarray(outcomes[name])
        ok = np.isfinite(x) & np.isfinite(y)
        r = float(np.corrcoef(x[ok], y[ok])[0, 1]) if ok.sum() >= 3 and np.ptp(y[ok]) > 0 \
            else float("nan")
        rows.append({"diagnostic": "input_correlation", "scope": name, "value": r,
                     "input": path, "runs": int(ok.sum())})
    return pd.DataFrame(rows)


def format_diagnostics(table: pd.DataFrame, over_runs: bool = True) -> str:
    """The diagnostics as text, one line each (shares with their counts; correlations)."""
    lines = ["what is scripted (shares of price cells, orders or cloud-months"
             + ("; mean over runs):" if over_runs else "):")]
    for _, r in table.iterrows():
        if r["diagnostic"] == "input_correlation":
            lines.append(f"  {r['diagnostic']:<20} {r['scope']:<34} r = {r['value']:+.2f} with "
                         f"{r['input']} ({int(r['count'])} runs)")
        else:
            lines.append(f"  {r['diagnostic']:<20} {r['scope']:<34} {r['value']:6.1%} of "
                         f"{int(r['count'])}")
    return "\n".join(lines)
