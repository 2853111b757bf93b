"""The backtest: a scenario's runs scored against observed series, beside naive baselines.

Each observation (a row of `market.observed`) is aligned with the model's value for the same
series and period over every run (seed or ensemble member): the runs' median and 5-95% band.
Per series the backtest reports

    male        mean absolute log error of the runs' median, mean |ln(m / o)| [-]
    bias        mean log ratio, mean ln(m / o) [-] (ln 2 = 0.69: twice the observed)
    direction   share of consecutive observations whose change has the model's sign [-]
    coverage    share of observations inside the runs' 5-95% band [-]
    in_source   share of medians inside the source's own interval, where it gives one [-]

and the same error (`male`) for two naive forecasts made from the observations themselves:
`persistence` (the first observation, carried forward) and `trend` (a log-linear trend fitted
to the observations in the first third of the series' time span, or to its first two when
that third holds fewer). A baseline needs 2 (persistence) or 3 (trend) observations; a series
with fewer has none. Log errors are scale-free, so series in different units can be averaged;
a zero (a model that ships nothing) is kept finite by adding 0.1% of the observation to both
sides of its ratio.

The overall score is a weighted mean of the series' `male`: each family carries the weight of
`series.toml` (default 1), shared equally by its scored series, so a family of 24 quarterly
series counts as much as one yearly figure. `skill_vs_<baseline>` = 1 - score / baseline score
over the series where that baseline exists (positive: the model beats it).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from analysis.observables import NotModelled, aggregate, monthly_values
from market.observed import families, parse_series

#: Offset that keeps log errors finite at zero, as a fraction of the series' mean observation.
ZERO_OFFSET_FRACTION = 1e-3
BAND = (0.05, 0.95)


@dataclass
class BacktestResult:
    aligned: pd.DataFrame          #: one row per scored observation (model median, band, ...)
    scores: pd.DataFrame           #: one row per scored series (the metrics above)
    not_modelled: pd.DataFrame     #: series the model cannot produce: series, family, reason
    overall: dict = field(default_factory=dict)


# ------------------------------------------------------------------------ alignment ---

def align(observed: pd.DataFrame, runs: list[dict[str, pd.DataFrame]],
          scenario) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Each observation with the runs' median and band for its period, and the series the
    model cannot produce (with the reason)."""
    fams = families()
    rows, values, missing = [], [], []
    ordered = observed.sort_values(["series", "start"], kind="stable")
    records = ordered.to_dict("records")         # once: per group it costs as much as a run
    bounds = np.flatnonzero(np.r_[True, ordered["series"].to_numpy()[1:]
                                  != ordered["series"].to_numpy()[:-1], True]) \
        if len(ordered) else np.array([0])
    for first, last in zip(bounds[:-1], bounds[1:]):
        obs = records[first:last]
        series = obs[0]["series"]
        family, keys = parse_series(series)
        how = fams[family].aggregation
        try:
            per_run = [monthly_values(family, keys, tables, scenario) for tables in runs]
        except NotModelled as exc:
            missing.append({"series": series, "family": family, "observations": len(obs),
                            "reason": str(exc)})
            continue
        for o in obs:
            rows.append(o)
            values.append([aggregate(m, how, o["start"], o["end"]) for m in per_run])
    aligned = pd.DataFrame(rows)
    if len(aligned):
        # the runs' median and band per observation, all at once (NaN: no model value)
        table = np.asarray(values, float).reshape(len(rows), len(runs))
        table = pd.DataFrame(np.where(np.isfinite(table), table, np.nan))   # inf: no value
        aligned = aligned.assign(runs=table.notna().sum(axis=1).to_numpy(dtype=np.int64),
                                 model_median=table.median(axis=1).to_numpy(),
                                 model_p5=table.quantile(BAND[0], axis=1).to_numpy(),
                                 model_p95=table.quantile(BAND[1], axis=1).to_numpy())
    return aligned, pd.DataFrame(missing, columns=["series", "family", "observations",
                                                   "reason"])


# -------------------------------------------------------------------------- metrics ---

def log_errors(model: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """ln((m + e) / (o + e)) with e = 0.1% of each observation (of the series' mean for a
    zero observation): finite when the model gives zero (ln(1/1001) = -6.9), and within
    0.001 of the plain log ratio otherwise."""
    model, observed = np.asarray(model, float), np.asarray(observed, float)
    if observed.size == 0:
        return observed
    fallback = ZERO_OFFSET_FRACTION * float(np.mean(np.abs(observed))) or np.finfo(float).tiny
    offset = np.where(observed > 0, ZERO_OFFSET_FRACTION * observed, fallback)
    return np.log((model + offset) / (observed + offset))


def male(model, observed) -> float:
    """Mean absolute log error [-]."""
    errors = log_errors(model, observed)
    return float(np.mean(np.abs(errors))) if errors.size else float("nan")


def bias(model, observed) -> float:
    """Mean log ratio [-]: ln 2 when the model is twice the observations throughout."""
    errors = log_errors(model, observed)
    return float(np.mean(errors)) if errors.size else float("nan")


def direction_accuracy(model, observed) -> float:
    """Share of consecutive observation pairs whose change the model gets the sign of (a
    flat pair matches a flat pair); NaN with fewer than two observations."""
    model, observed = np.asarray(model, float), np.asarray(observed, float)
    if observed.size < 2:
        return float("nan")
    return float(np.mean(np.sign(np.diff(model)) == np.sign(np.diff(observed))))


def coverage(low, high, observed) -> float:
    """Share of observations inside [low, high] (the runs' band)."""
    observed = np.asarray(observed, float)
    if observed.size == 0:
        return float("nan")
    return float(np.mean((np.asarray(low) <= observed) & (observed <= np.asarray(high))))


def in_source_interval(model, low, high) -> float:
    """Share of model values inside the source's interval, over observations that give one
    (a lower or an upper bound alone counts as one side); NaN when none does."""
    model = np.asarray(model, float)
    low, high = np.asarray(low, float), np.asarray(high, float)
    given = np.isfinite(low) | np.isfinite(high)
    if not given.any():
        return float("nan")
    ok = (np.where(np.isfinite(low), model >= low, True)
          & np.where(np.isfinite(high), model <= high, True))
    return float(np.mean(ok[given]))


def persistence_forecast(observed) -> np.ndarray | None:
    """The first observation carried forward; None with fewer than two observations."""
    observed = np.asarray(observed, float)
    return np.full(observed.size, observed[0]) if observed.size >= 2 else None


def trend_forecast(times_years, observed) -> np.ndarray | None:
    """A log-linear trend through the observations of the first third of the time span (at
    least the first two); None with fewer than three observations."""
    t, y = np.asarray(times_years, float), np.asarray(observed, float)
    if y.size < 3:
        return None
    fit = t <= t[0] + (t[-1] - t[0]) / 3.0
    if fit.sum() < 2:
        fit = np.arange(y.size) < 2
    floor = ZERO_OFFSET_FRACTION * float(np.mean(np.abs(y))) or np.finfo(float).tiny
    log_y = np.log(np.maximum(y[fit], floor))         # a zero observation sits on the floor
    if np.ptp(t[fit]) == 0:
        return np.full(y.size, float(np.exp(np.mean(log_y))))
    slope, intercept = np.polyfit(t[fit], log_y, 1)
    return np.exp(intercept + slope * t)


def _years(starts: pd.Series) -> np.ndarray:
    return (pd.to_datetime(starts) - pd.Timestamp("2000-01-01")).dt.days.to_numpy() / 365.25


def score_series(obs: pd.DataFrame) -> dict:
    """The metrics of one series from its aligned observations (sorted by start)."""
    obs = obs.sort_values("start")
    o, m = obs["value"].to_numpy(float), obs["model_median"].to_numpy(float)
    out = {"observations": int(len(obs)), "male": male(m, o), "bias": bias(m, o),
           "direction": direction_accuracy(m, o),
           "coverage": coverage(obs["model_p5"], obs["model_p95"], o),
           "in_source": in_source_interval(m, obs["low"], obs["high"])}
    p = persistence_forecast(o)
    t = trend_forecast(_years(obs["start"]), o)
    out["male_persistence"] = male(p, o) if p is not None else float("nan")
    out["male_trend"] = male(t, o) if t is not None else float("nan")
    return out


def score(aligned: pd.DataFrame, weights: dict[str, float] | None = None
          ) -> tuple[pd.DataFrame, dict]:
    """Per-series metrics and the overall score (see the module docstring)."""
    weights = weights or {}
    scored = aligned[np.isfinite(aligned["model_median"])] if len(aligned) else aligned
    rows = []
    for series, obs in scored.groupby("series", sort=True):
        family, _ = parse_series(series)
        rows.append({"series": series, "family": family, "unit": obs["unit"].iloc[0],
                     **score_series(obs)})
    scores = pd.DataFrame(rows)
    overall = {"series_scored": int(len(scores)),
               "observations_scored": int(scores["observations"].sum()) if len(scores) else 0,
               "observations_without_model_value": int(len(aligned) - len(scored))}
    if scores.empty:
        return scores, overall
    per_family = scores.groupby("family")["series"].transform("count")
    scores["weight"] = scores["family"].map(lambda f: weights.get(f, 1.0)) / per_family
    overall["score"] = _weighted(scores, "male")
    for baseline in ("persistence", "trend"):
        column = f"male_{baseline}"
        has = scores[np.isfinite(scores[column])]
        overall[f"score_{baseline}"] = _weighted(has, column)
        overall[f"score_model_where_{baseline}"] = _weighted(has, "male")
        base = overall[f"score_{baseline}"]
        overall[f"skill_vs_{baseline}"] = (1.0 - overall[f"score_model_where_{baseline}"] / base
                                           if base and np.isfinite(base) else float("nan"))
        overall[f"series_beating_{baseline}"] = int((has["male"] < has[column]).sum())
        overall[f"series_with_{baseline}"] = int(len(has))
    return scores, overall


def _weighted(frame: pd.DataFrame, column: str) -> float:
    if frame.empty:
        return float("nan")
    w = frame["weight"].to_numpy(float)
    return float(np.sum(w * frame[column].to_numpy(float)) / np.sum(w))


def backtest(observed: pd.DataFrame, runs: list[dict[str, pd.DataFrame]], scenario,
             weights: dict[str, float] | None = None) -> BacktestResult:
    """Align and score; `observed` holds only rows the caller may use (see `--until`)."""
    aligned, missing = align(observed, runs, scenario)
    scores, overall = score(aligned, weights) if len(aligned) else (pd.DataFrame(), {})
    overall["series_not_modelled"] = int(len(missing))
    return BacktestResult(aligned, scores, missing, overall)
