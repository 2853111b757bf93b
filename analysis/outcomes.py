"""Named outcomes of a batch, read from its run files: series per run, summaries across runs.

An outcome name is one of
  price:<region>:<tier>       H100e-hour price index [USD per H100e-hour]
  share:<nation>              share of installed H100e [fraction]
  installed:<nation>          installed H100e [H100e]
  diverted:<nation>           chips diverted to the nation that month [H100e]
  largest-run:<nation>        largest completed training run [FLOP]
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from analysis.runner import read_table
from market.errors import GpumarketError

KINDS = {
    "price": ("price_index", "price_usd_per_h100e_hour", ("region", "tier"),
              "USD per H100e-hour"),
    "share": ("compute", "share", ("nation",), "fraction of installed H100e"),
    "installed": ("compute", "installed_h100e", ("nation",), "H100e"),
    "largest-run": ("compute", "frontier_run_flop", ("nation",), "FLOP"),
    "diverted": ("flows", "h100e", ("destination",), "H100e"),
}
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
    sel = frame[mask]
    params = [c for c in sel.columns if c.startswith("param.")]
    out = sel.groupby(["run_id", "date", *params], as_index=False, dropna=False)[column].sum() \
        if kind == "diverted" else sel[["run_id", "date", *params, column]]
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
