"""What a calibration found, as tables and a self-contained HTML page.

`parameter_table`: per parameter its prior's and posterior's 5-95% interval, the point
estimate (posterior median) and how much the data narrowed it (posterior width / prior width:
near 1, the data say little about it; `IDENTIFIED_BELOW` and under, it is identified).
`series_table`: per series the backtest's error before (the input's values) and after (the
point estimate), beside the naive baselines, and the spread of the error over posterior draws.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from analysis.backtest_report import _fmt
from analysis.calibration.space import ParameterSpace
from market.files import write_durable

#: Posterior 5-95% width over the prior's at or below which a parameter counts as identified
#: by the data [-] ([A]: the data removed at least half of the prior's spread).
IDENTIFIED_BELOW = 0.5


def parameter_table(space: ParameterSpace, posterior: pd.DataFrame,
                    point: np.ndarray) -> pd.DataFrame:
    prior = space.values(np.array([[0.05] * space.dim, [0.95] * space.dim]))
    rows = []
    for j, path in enumerate(space.paths):
        draws = posterior[path].to_numpy(float)
        low, high = np.quantile(draws, [0.05, 0.95])
        ratio = (high - low) / (prior[1, j] - prior[0, j]) if prior[1, j] > prior[0, j] \
            else np.nan
        rows.append({"parameter": path, "prior_p5": prior[0, j], "prior_p95": prior[1, j],
                     "posterior_p5": low, "posterior_median": float(point[j]),
                     "posterior_p95": high, "width_ratio": ratio,
                     "identified": bool(ratio <= IDENTIFIED_BELOW)})
    return pd.DataFrame(rows)


def series_table(before, after, draws: list) -> pd.DataFrame:
    """Per series: error before and after, the baselines, and the draws' spread of error."""
    b = before.scores.set_index("series")
    a = after.scores.set_index("series")
    out = pd.DataFrame({"family": b["family"], "observations": b["observations"],
                        "male_before": b["male"], "male_after": a["male"].reindex(b.index),
                        "bias_before": b["bias"], "bias_after": a["bias"].reindex(b.index),
                        "male_persistence": b["male_persistence"],
                        "male_trend": b["male_trend"]})
    if draws:
        errors = pd.concat([d.scores.set_index("series")["male"].reindex(b.index)
                            for d in draws], axis=1)
        out["male_draws_p5"] = errors.quantile(0.05, axis=1)
        out["male_draws_p95"] = errors.quantile(0.95, axis=1)
    return out.reset_index()


def _figure_png(fig: Figure) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    return base64.b64encode(buffer.getvalue()).decode()


def marginals_figure(params: pd.DataFrame, evaluations: pd.DataFrame,
                     posterior_path: Path) -> Figure:
    """Each parameter: the points run (grey, by loss) and the posterior (blue) over the prior
    range."""
    posterior = pd.read_parquet(posterior_path)
    n = len(params)
    cols = min(3, n)
    rows = -(-n // cols)
    fig = Figure(figsize=(4.2 * cols, 2.6 * rows), layout="constrained")
    for k, row in params.reset_index(drop=True).iterrows():
        ax = fig.add_subplot(rows, cols, k + 1)
        path = row["parameter"]
        ax.hist(posterior[path], bins=30, color="#1f77b4", alpha=0.8, density=True,
                label="posterior")
        ax.axvspan(row["prior_p5"], row["prior_p95"], color="#999", alpha=0.15,
                   label="prior 5-95%")
        ax.axvline(row["posterior_median"], color="k", lw=1)
        ax.set_title(path, fontsize=9)
        ax.tick_params(labelsize=8)
        if k == 0:
            ax.legend(fontsize=7)
    return fig


def series_figure(series: str, before, after, draws: list) -> Figure:
    """One series: the observations (with the source's interval), the model before and after
    (seeds' median) and the posterior-predictive band (5-95% of the draws' medians)."""
    def rows(fit):
        a = fit.aligned
        return a[a["series"] == series].sort_values("start")
    obs = rows(after)
    fig = Figure(figsize=(4.6, 2.6), layout="constrained")
    ax = fig.add_subplot()
    x = obs["start"]
    if draws:
        band = np.column_stack([rows(d)["model_median"].to_numpy(float) for d in draws])
        with np.errstate(all="ignore"):
            low_b, high_b = np.nanquantile(band, 0.05, axis=1), np.nanquantile(band, 0.95,
                                                                                 axis=1)
        if len(obs) > 1:
            ax.fill_between(x, low_b, high_b, color="#1f77b4", alpha=0.2, lw=0,
                            label="posterior draws 5-95%")
        else:                       # one observation: the band as a bar
            ax.vlines(x, low_b, high_b, color="#1f77b4", alpha=0.35, lw=8,
                      label="posterior draws 5-95%")
    ax.plot(x, rows(before)["model_median"], color="#888", lw=1.2, marker="s", ms=3,
            label="before")
    ax.plot(x, obs["model_median"], color="#1f77b4", lw=1.5, marker="D", ms=3, label="after")
    low, high = obs["low"].to_numpy(float), obs["high"].to_numpy(float)
    has = np.isfinite(low) & np.isfinite(high)
    ax.errorbar(x[has], obs["value"][has], yerr=[obs["value"][has] - low[has],
                                                 high[has] - obs["value"][has]],
                fmt="none", ecolor="k", elinewidth=0.6, capsize=2)
    ax.plot(x, obs["value"], "ko", ms=3, label="observed")
    ax.set_title(f"{series} [{obs['unit'].iloc[0]}]", fontsize=8)
    ax.tick_params(labelsize=7)
    if (obs["value"] > 0).all() and obs["value"].max() > 20 * obs["value"].min():
        ax.set_yscale("log")
    ax.legend(fontsize=6, loc="best")
    return fig


def write_report(path: Path, manifest: dict, params: pd.DataFrame, fits: pd.DataFrame,
                 evaluations: pd.DataFrame, before=None, after=None, draws=()) -> None:
    title = f"gpumarket calibration: {manifest['scenario']} to {manifest['until']}"
    summary = {k: manifest.get(k) for k in (
        "method", "budget", "seeds", "waves", "waves_run", "parameter_sets_run", "model_runs",
        "loss_before", "loss_after", "score_persistence", "score_trend",
        "series_better_after", "series_scored", "region_share_left", "posterior_ess",
        "gpumarket_version", "scenario_sha256", "data_sha256")}
    parts = [f"<!doctype html><meta charset='utf-8'><title>{html.escape(title)}</title>",
             "<style>body{font-family:sans-serif;max-width:1200px;margin:2em auto}"
             "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;"
             "padding:2px 6px;text-align:right}td:first-child,th:first-child{text-align:left}"
             "img{max-width:100%}</style>", f"<h1>{html.escape(title)}</h1>",
             "<p>Loss is the backtest's overall score (weighted mean absolute log error) over "
             "the same seeds: before = the input's values, after = the posterior medians. "
             "width_ratio = posterior 5-95% width over the prior's; identified when at most "
             f"{IDENTIFIED_BELOW}.</p>", "<h2>Summary</h2>", _rows_table(
                 pd.DataFrame({"item": list(summary), "value": list(summary.values())}))]
    figure = marginals_figure(params, evaluations, path.parent / "posterior.parquet")
    parts += ["<h2>Parameters</h2>", _rows_table(params),
              f"<img alt='posterior marginals' src='data:image/png;base64,"
              f"{_figure_png(figure)}'>"]
    posterior = pd.read_parquet(path.parent / "posterior.parquet")
    if posterior.shape[1] > 1:
        corr = posterior.corr(method="spearman").reset_index(names="parameter")
        parts += ["<h2>Posterior rank correlations</h2>", _rows_table(corr)]
    aside = manifest.get("set_aside_series") or []
    parts += ["<h2>Fit per series</h2>", _rows_table(fits),
              "<h2>Series set aside</h2><p>" + (", ".join(map(html.escape, aside)) or "none")
              + "</p>"]
    if before is not None and after is not None and after.aligned is not None:
        parts.append("<h2>Each series</h2><p>Observed (black, with the source's 5-95% "
                     "interval), the model before (grey) and after (blue), seeds' median; the "
                     "band spans the posterior draws run in the check.</p>")
        for series in fits["series"]:
            figure = series_figure(series, before, after, list(draws))
            parts.append(f"<img alt='{html.escape(series)}' src='data:image/png;base64,"
                         f"{_figure_png(figure)}'>")
    write_durable(path, ("\n".join(parts) + "\n").encode())


def _rows_table(frame: pd.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    body = "".join("<tr>" + "".join(f"<td>{_fmt(v)}</td>" for v in row) + "</tr>"
                   for row in frame.itertuples(index=False))
    return f"<table><tr>{head}</tr>{body}</table>"
