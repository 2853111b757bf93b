"""Named outcomes of a batch, read from its run files: series per run, summaries across runs.

An outcome name is one of
  price:<region>:<tier>       H100e-hour price of the tier's headline instrument (hyperscaler
                              list, neocloud spot) [USD per H100e-hour]
  share:<nation>              share of installed H100e [fraction]
  installed:<nation>          installed H100e [H100e]
  diverted:<nation>           chips diverted to the nation that month [H100e]
  largest-run:<nation>        largest completed training run [FLOP]
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.runner import read_table
from market.errors import GpumarketError
from market.world import HEADLINE_INSTRUMENT

KINDS = {
    "price": ("price_index", "price_usd_per_h100e_hour", ("region", "tier"),
              "USD per H100e-hour"),
    "share": ("compute", "share", ("nation",), "fraction of installed H100e"),
    "installed": ("compute", "installed_h100e", ("nation",), "H100e"),
    "largest-run": ("compute", "frontier_run_flop", ("nation",), "FLOP"),
    "diverted": ("flows", "h100e", ("destination",), "H100e"),
}
#: Unit of each kind as a key suffix, for machine-readable output (`median_usd_per_h100e_hour`).
UNIT_KEYS = {"price": "usd_per_h100e_hour", "share": "fraction", "installed": "h100e",
             "largest-run": "flop", "diverted": "h100e"}
#: Tiers of every region's compute market (the model's `TIERS`).
TIERS = ("hyperscaler", "neocloud")
DEFAULT_OUTCOMES = ("price:US:neocloud", "price:US:hyperscaler", "price:China:neocloud",
                    "share:US", "share:China", "share:EU")


def parse_outcome(name: str) -> tuple[str, tuple[str, ...]]:
    kind, *keys = name.split(":")
    if kind not in KINDS or len(keys) != len(KINDS[kind][2]):
        forms = ", ".join(f"{k}:" + ":".join(f"<{c}>" for c in v[2]) for k, v in KINDS.items())
        raise GpumarketError(f"unknown outcome {name!r}; expected one of {forms} "
                             "(e.g. price:US:neocloud, share:China)")
    return kind, tuple(keys)


def unit_of(name: str) -> str:
    return KINDS[parse_outcome(name)[0]][3]


def unit_key(name: str) -> str:
    """The outcome's unit as a key suffix, e.g. "usd_per_h100e_hour"."""
    return UNIT_KEYS[parse_outcome(name)[0]]


def check_outcome(name: str, scenario) -> str:
    """The outcome as the scenario spells it, or a `GpumarketError` naming what is unknown and
    what the scenario has: a nation (region) of `[nations]`; for a price, a tier with a cloud
    of that tier in that region. Checked before any run."""
    kind, keys = parse_outcome(name)
    nations = {n.lower(): n for n in scenario.nations}
    spelled = []
    for column, key in zip(KINDS[kind][2], keys):
        if column == "tier":
            if key.lower() not in TIERS:
                raise GpumarketError(f"unknown outcome {name!r}: no tier {key!r}; expected one "
                                     f"of {', '.join(TIERS)}")
            spelled.append(key.lower())
        elif key.lower() in nations:
            spelled.append(nations[key.lower()])
        else:
            raise GpumarketError(f"unknown outcome {name!r}: scenario {scenario.name!r} has no "
                                 f"nation {key!r}; expected one of {', '.join(scenario.nations)}")
    if kind == "price":
        markets = sorted({(c.nation, c.tier) for c in scenario.clouds.values()},
                         key=lambda m: (list(scenario.nations).index(m[0])
                                        if m[0] in scenario.nations else 0, m[1]))
        if tuple(spelled) not in markets:
            raise GpumarketError(
                f"unknown outcome {name!r}: scenario {scenario.name!r} has no {spelled[1]} "
                f"cloud in {spelled[0]}, so no such price; expected one of "
                + ", ".join(f"price:{r}:{t}" for r, t in markets))
    return ":".join([kind, *spelled])


def outcome_slug(name: str) -> str:
    """A file-name part for an outcome: lower case, runs of other characters as one "-"."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def outcome_series(directory: Path, name: str, dates: list[str] | None = None,
                   frames: dict[str, pd.DataFrame] | None = None) -> pd.DataFrame:
    """Columns run_id, date, value (plus param.* columns) for one outcome, every run."""
    kind, keys = parse_outcome(name)
    table, column, by, _ = KINDS[kind]
    frame = frames[table] if frames is not None and table in frames else \
        read_table(directory, table, dates=dates)
    if frame.empty:
        return pd.DataFrame(columns=["run_id", "date", "value"])
    mask = np.ones(len(frame), dtype=bool)
    for col, key in zip(by, keys):
        mask &= frame[col].astype(str).str.lower().to_numpy() == key.lower()
    if kind == "diverted":
        mask &= (frame["channel"] == "diversion").to_numpy()
    if kind == "price" and "instrument" in frame.columns:
        mask &= (frame["instrument"] == HEADLINE_INSTRUMENT[keys[1].lower()]).to_numpy()
    sel = frame[mask]
    params = [c for c in sel.columns if c.startswith("param.")]
    keys = ["run_id", *(["seed"] if "seed" in sel.columns else []), "date", *params]
    out = sel.groupby(keys, as_index=False, dropna=False)[column].sum() \
        if kind == "diverted" else sel[[*keys, column]]
    out = out.rename(columns={column: "value"})
    if kind == "diverted" and frames is None:
        # months without diversion have no row: fill them with zeros
        runs = read_table(directory, "price_index", columns=["date"], dates=dates)
        grid = runs[["run_id", "date"]].drop_duplicates()
        out = grid.merge(out, on=["run_id", "date"], how="left").fillna({"value": 0.0})
    return out.reset_index(drop=True)


def quantile_summary(series: pd.DataFrame, dates: list[str]) -> pd.DataFrame:
    """Median and 5-95% band of an outcome at chosen months, across runs."""
    rows = {}
    for d in dates:
        values = series.loc[series["date"] == pd.Timestamp(d + "-01"), "value"].dropna()
        if len(values):
            rows[d] = {"p5": values.quantile(0.05), "median": values.median(),
                       "p95": values.quantile(0.95), "runs": len(values)}
    return pd.DataFrame.from_dict(rows, orient="index")


#: Label of the runs of a batch without levers.
ALL_RUNS = "all runs"


def _value_text(value) -> str:
    import json
    if isinstance(value, float):
        return f"{value:g}"
    # dict and list options are stored in run files as JSON text (`runner._param_value`)
    return json.dumps(value) if isinstance(value, (dict, list)) else str(value)


def option_label(levers: dict[str, list], values) -> str:
    """"path=value, path=value" for one combination of lever options."""
    return ", ".join(f"{p}={_value_text(v)}" for p, v in zip(levers, values))


def option_labels(levers: dict[str, list]) -> list[str]:
    """Every combination of lever options in the design's order (the first is the reference
    the others are compared with)."""
    import itertools
    return [option_label(levers, combo) for combo in itertools.product(*levers.values())]


def difference_label(option: str, reference: str) -> str:
    return f"[{option}] - [{reference}]"


def with_options(series: pd.DataFrame, levers: dict[str, list] | None) -> pd.DataFrame:
    """`series` with an `option` column: the lever combination each run ran with (its
    `param.<path>` values), or `ALL_RUNS` for a batch without levers."""
    out = series.copy()
    if not levers:
        out["option"] = ALL_RUNS
        return out
    cols = [f"param.{p}" for p in levers]
    missing = [c for c in cols if c not in out.columns]
    if missing:
        raise GpumarketError(f"the runs have no {', '.join(missing)} column for the batch's "
                             "levers")
    out["option"] = [option_label(levers, row) for row in out[cols].itertuples(index=False)]
    return out


def paired_differences(series: pd.DataFrame, levers: dict[str, list]) -> pd.DataFrame:
    """Per sample and month, each lever option's value minus the reference option's (the
    first): runs are paired by their seed, which every option of a sample shares (with the
    same uncertain inputs: common random numbers). Columns option (`difference_label`), seed,
    run_id (the option's run), date, value."""
    labelled = with_options(series, levers)
    if "seed" not in labelled.columns:
        raise GpumarketError("the outcome series has no seed column to pair runs by")
    labels = option_labels(levers)
    ref = labelled[labelled["option"] == labels[0]][["seed", "date", "value"]]
    parts = []
    for label in labels[1:]:
        mine = labelled[labelled["option"] == label][["seed", "run_id", "date", "value"]]
        pair = mine.merge(ref, on=["seed", "date"], suffixes=("", "_ref"))
        parts.append(pd.DataFrame({"option": difference_label(label, labels[0]),
                                   "seed": pair["seed"], "run_id": pair["run_id"],
                                   "date": pair["date"],
                                   "value": pair["value"] - pair["value_ref"]}))
    if not parts:
        return pd.DataFrame(columns=["option", "seed", "run_id", "date", "value"])
    return pd.concat(parts, ignore_index=True)


def option_summary(series: pd.DataFrame, dates: list[str], levers: dict[str, list] | None
                   ) -> pd.DataFrame:
    """Median and 5-95% band at chosen months, per lever option and, for every option but the
    first, of its paired difference from the first. Columns option, kind ("option" or
    "difference"), date (YYYY-MM), p5, median, p95, runs (runs or pairs); options in the
    design's order, then the differences."""
    labelled = with_options(series, levers)
    groups = [(label, "option", labelled[labelled["option"] == label])
              for label in (option_labels(levers) if levers else [ALL_RUNS])]
    if levers and len(groups) > 1:
        diffs = paired_differences(series, levers)
        groups += [(label, "difference", diffs[diffs["option"] == label])
                   for label in dict.fromkeys(diffs["option"])]
    rows = []
    for label, kind, part in groups:
        q = quantile_summary(part, dates)
        for d, r in q.iterrows():
            rows.append({"option": label, "kind": kind, "date": d, "p5": r["p5"],
                         "median": r["median"], "p95": r["p95"], "runs": int(r["runs"])})
    return pd.DataFrame(rows, columns=["option", "kind", "date", "p5", "median", "p95", "runs"])


def exceedance(series: pd.DataFrame, thresholds: list[float], years: list[int],
               statistic: str = "mean") -> pd.DataFrame:
    """P(the outcome's yearly mean (or December value) > threshold), per year, across runs."""
    s = series.dropna(subset=["value"]).copy()
    s["year"] = s["date"].dt.year
    if statistic == "december":
        per_run = s[s["date"].dt.month == 12].groupby(["run_id", "year"])["value"].last()
    else:
        per_run = s.groupby(["run_id", "year"])["value"].mean()
    rows = {}
    for year in years:
        values = per_run.xs(year, level="year") if year in per_run.index.get_level_values(1) \
            else pd.Series(dtype=float)
        if len(values):
            rows[year] = {f"> {t:g}": float((values > t).mean()) for t in thresholds}
    return pd.DataFrame.from_dict(rows, orient="index")


def ensemble_summary(directory: Path, dates: list[str], levers: dict[str, list] | None,
                     outcomes=DEFAULT_OUTCOMES) -> dict[str, pd.DataFrame]:
    """`option_summary` of each outcome at `dates`, read from a batch's run files."""
    from analysis.runner import read_tables
    tables = list(dict.fromkeys(KINDS[parse_outcome(n)[0]][0] for n in outcomes))
    frames = read_tables(directory, tables, dates=dates)
    return {name: option_summary(outcome_series(directory, name, frames=frames), dates, levers)
            for name in outcomes}


def _display(name: str) -> tuple[float, str, str]:
    """(scale, unit, unit of a difference) for text: shares in % and percentage points."""
    if parse_outcome(name)[0] == "share":
        return 100.0, "%", "percentage points"
    return 1.0, unit_of(name), unit_of(name)


def format_ensemble(summaries: dict[str, pd.DataFrame], dates: list[str], runs: int,
                    levers: dict[str, list] | None) -> str:
    """The ensemble summary as text: one row per outcome without levers; with levers, per
    outcome a row per lever option and a row per paired difference."""
    def cell(rows: pd.DataFrame, d: str, scale: float) -> str:
        r = rows[rows["date"] == d]
        if r.empty:
            return ""
        r = r.iloc[0]
        return (f"{r['median'] * scale:.2f} [{r['p5'] * scale:.2f}, "
                f"{r['p95'] * scale:.2f}]")

    col = 24
    if not levers:
        label_w = max(len(n) for n in summaries) + 2
        lines = [f"median [5%, 95%] across {runs} runs:",
                 " " * label_w + "".join(f"{d:>{col}}" for d in dates)]
        for name, rows in summaries.items():
            scale, unit, _ = _display(name)
            lines.append(f"{name:<{label_w}}" + "".join(f"{cell(rows, d, scale):>{col}}"
                                                         for d in dates) + f"  {unit}")
        return "\n".join(lines)
    labels = [lbl for rows in summaries.values() for lbl in rows["option"]] or [""]
    label_w = max(len(lbl) for lbl in labels) + 4
    n_options = len(option_labels(levers))
    lines = [f"median [5%, 95%] per lever option ({n_options} options, {runs} runs); rows "
             "\"[B] - [A]\" are B minus A paired by sample (the same seed and inputs):",
             " " * label_w + "".join(f"{d:>{col}}" for d in dates)]
    for name, rows in summaries.items():
        scale, unit, diff_unit = _display(name)
        lines.append(f"{name} [{unit}]" if unit == diff_unit else
                     f"{name} [{unit}; differences in {diff_unit}]")
        for label in dict.fromkeys(rows["option"]):
            mine = rows[rows["option"] == label]
            lines.append(f"  {label:<{label_w - 2}}" + "".join(f"{cell(mine, d, scale):>{col}}"
                                                               for d in dates))
    return "\n".join(lines)


def summary_json(summaries: dict[str, pd.DataFrame]) -> dict:
    """Machine-readable summaries: per outcome its unit and, per lever option (and paired
    difference), per month the 5th percentile, median and 95th percentile in that unit (the
    unit is in the keys: `median_usd_per_h100e_hour`, `p5_fraction`...) and the run count."""
    out = {}
    for name, rows in summaries.items():
        key = unit_key(name)
        entry = {"unit": unit_of(name), "options": {}, "differences": {}}
        for r in rows.itertuples():
            where = entry["options" if r.kind == "option" else "differences"]
            where.setdefault(r.option, {})[r.date] = {
                f"p5_{key}": float(r.p5), f"median_{key}": float(r.median),
                f"p95_{key}": float(r.p95), ("runs" if r.kind == "option" else "pairs"):
                    int(r.runs)}
        out[name] = entry
    return out
