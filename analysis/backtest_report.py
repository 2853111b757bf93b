"""Figures, tables and the HTML page of a backtest.

`plot_series` draws one series: the observations with the source's interval over the runs'
median and 5-95% band (each at its period's midpoint), and for a rental price the cost core's
owned cost of the chip per hour (Epoch method, at full use) beside it, so price is seen against
cost. Plot functions take the aligned rows and an optional axes and return the figure;
`write_outputs` saves the files.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from pathlib import Path

import matplotlib.dates as mdates
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

#: Observed chip names of rental-price series -> catalog ids for the owned-cost line.
PRICE_CHIPS = {"h100": "h100-sxm", "a100": "a100"}


def owned_cost_usd_per_gpu_hour(chip_id: str) -> float | None:
    """Owned cost of one useful hour of the chip at full use (Epoch method) [USD/(GPU·h)]."""
    from market import costs
    from market.catalog import load_catalog

    chip = load_catalog().get_chip(chip_id)
    if chip.hardware_price_usd is None:
        return None
    return float(costs.owned_cost_per_gpu_hour(
        chip.hardware_price_usd, chip.tdp_w, chip.server_power_multiplier,
        chip.avg_power_fraction).total_usd_per_gpu_hour)


def plot_series(rows: pd.DataFrame, ax=None) -> Figure:
    """One series' observations (points, with intervals) over the runs' median and band."""
    if ax is None:
        fig = Figure(figsize=(7.5, 3.6), layout="constrained")
        ax = fig.subplots()
    else:
        fig = ax.figure
    rows = rows.sort_values("start")
    mid = rows["start"] + (rows["end"] - rows["start"]) / 2
    ax.fill_between(mid, rows["model_p5"], rows["model_p95"], color="tab:blue", alpha=0.25,
                    label="model 5-95%", step=None)
    ax.plot(mid, rows["model_median"], color="tab:blue", marker=".", label="model median")
    low = (rows["value"] - rows["low"]).where(rows["low"].notna(), 0.0)
    high = (rows["high"] - rows["value"]).where(rows["high"].notna(), 0.0)
    ax.errorbar(mid, rows["value"], yerr=[low.clip(lower=0), high.clip(lower=0)], fmt="o",
                color="black", capsize=3, label="observed (source interval)")
    series = rows["series"].iloc[0]
    if series.startswith("rental_price_usd_per_gpu_hour:"):
        chip = PRICE_CHIPS.get(series.split(":")[1])
        cost = owned_cost_usd_per_gpu_hour(chip) if chip else None
        if cost is not None:
            ax.axhline(cost, color="tab:red", linestyle="--",
                       label=f"owned cost {cost:.2f} (Epoch method, full use)")
    values = pd.concat([rows["value"], rows["model_median"]]).to_numpy(float)
    values = values[np.isfinite(values) & (values > 0)]
    if values.size and values.max() / values.min() > 30:
        ax.set_yscale("log")
    ax.set_title(series, fontsize=9)
    ax.set_ylabel(rows["unit"].iloc[0])
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    span_months = max(1, (rows["end"].max() - rows["start"].min()).days // 30)
    locator = mdates.MonthLocator(interval=max(1, span_months // 6))
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    ax.tick_params(labelsize=8)
    return fig


def slug(series: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in series)


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def _fmt(value) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.3g}"
    return html.escape(str(value))


def html_page(title: str, summary: dict, scores: pd.DataFrame, not_modelled: pd.DataFrame,
              figures: dict[str, bytes], scripted: pd.DataFrame | None = None) -> str:
    """A self-contained page: the overall score, the per-series table, what is scripted, what
    is not modelled and every series' figure (PNG embedded)."""
    parts = [f"<!doctype html><meta charset='utf-8'><title>{html.escape(title)}</title>",
             "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto}"
             "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;"
             "padding:2px 6px;text-align:right}td:first-child,th:first-child{text-align:left}"
             "img{max-width:100%}</style>", f"<h1>{html.escape(title)}</h1>",
             "<h2>Overall</h2><table>"]
    parts += [f"<tr><td>{html.escape(k)}</td><td>{_fmt(v)}</td></tr>"
              for k, v in summary.items()]
    parts.append("</table>")
    for name, frame in (("Per series", scores), ("What is scripted", scripted),
                        ("Not modelled", not_modelled)):
        if frame is None or frame.empty:
            continue
        parts.append(f"<h2>{name}</h2><table><tr>"
                     + "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
                     + "</tr>")
        for _, row in frame.iterrows():
            parts.append("<tr>" + "".join(f"<td>{_fmt(v)}</td>" for v in row) + "</tr>")
        parts.append("</table>")
    parts.append("<h2>Series</h2>")
    for series, png in figures.items():
        data = base64.b64encode(png).decode()
        parts.append(f"<h3 id='{slug(series)}'>{html.escape(series)}</h3>"
                     f"<img alt='{html.escape(series)}' src='data:image/png;base64,{data}'>")
    return "\n".join(parts) + "\n"


def write_outputs(directory: Path, result, meta: dict,
                  scripted: pd.DataFrame | None = None) -> list[str]:
    """scores.csv, scores.parquet, aligned.parquet, not_modelled.csv, backtest.json, one PNG
    per series under figures/, and backtest.html into `directory` (which exists)."""
    directory = Path(directory)
    written = []
    result.scores.to_csv(directory / "scores.csv", index=False, float_format="%.6g")
    result.scores.to_parquet(directory / "scores.parquet", index=False)
    result.aligned.to_parquet(directory / "aligned.parquet", index=False)
    result.not_modelled.to_csv(directory / "not_modelled.csv", index=False)
    written += ["scores.csv", "scores.parquet", "aligned.parquet", "not_modelled.csv"]
    if scripted is not None:
        scripted.to_csv(directory / "scripted.csv", index=False, float_format="%.6g")
        written.append("scripted.csv")
    (directory / "figures").mkdir(exist_ok=True)
    figures = {}
    for series, rows in result.aligned.groupby("series", sort=True):
        rows = rows[np.isfinite(rows["model_median"])]
        if rows.empty:
            continue
        png = _png(plot_series(rows))
        (directory / "figures" / f"{slug(series)}.png").write_bytes(png)
        figures[series] = png
    written.append("figures/")
    payload = dict(meta, overall=result.overall,
                   series=result.scores.to_dict(orient="records"),
                   not_modelled=result.not_modelled.to_dict(orient="records"),
                   scripted=None if scripted is None else scripted.to_dict(orient="records"))
    (directory / "backtest.json").write_text(json.dumps(_json_safe(payload), indent=2) + "\n")
    page = html_page(f"gpumarket backtest: {meta.get('scenario')} to {meta.get('until')}",
                     {**{k: v for k, v in meta.items() if not isinstance(v, (dict, list))},
                      **result.overall},
                     result.scores.drop(columns=["family"], errors="ignore"),
                     result.not_modelled, figures, scripted)
    (directory / "backtest.html").write_text(page)
    written += ["backtest.json", "backtest.html"]
    return written


def _json_safe(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (np.floating, np.integer)):
        return _json_safe(value.item())
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d")
    return value


#: The series whose figures docs/validation.md shows (the rest are in the HTML page).
DOC_FIGURES = ("rental_price_usd_per_gpu_hour:h100:neocloud_on_demand",
               "rental_price_usd_per_gpu_hour:h100:hyperscaler_on_demand",
               "shipped_units:nvidia:all", "shipped_h100e:nvidia:all",
               "nvidia_revenue_usd:datacenter_compute", "nvidia_bought_units:China",
               "shipped_units:nvidia:H20", "china_domestic_accelerator_share")


def _md_number(value) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def validation_markdown(result, scripted: pd.DataFrame, meta: dict,
                        figure_dir: str = "validation") -> str:
    """docs/validation.md: the backtest of a scenario as a reader sees it without running
    anything (generated by scripts/validation_doc.py; do not edit by hand)."""
    o = result.overall
    lines = [
        f"# Validation: `{meta['scenario']}` against observed data to {meta['until']}",
        "",
        "<!-- generated by `python scripts/validation_doc.py`; do not edit by hand -->",
        "",
        f"`gpumarket backtest {meta['scenario']} --seeds {meta['seeds']} --until "
        f"{meta['until']}` (gpumarket {meta['gpumarket_version']}). Each observation (sources "
        "in `market/data/observed/`, described in [calibration.md](calibration.md)) is "
        "compared with the median and 5-95% band of the runs over the same period. Errors "
        "are mean absolute log errors (`male`: 0.69 = a factor of 2), beside two naive "
        "forecasts made from the observations themselves: the first observation carried "
        "forward (`persist`) and a log-linear trend through the first third (`trend`).",
        "",
        f"**Overall**: {o['series_scored']} series scored ({o['observations_scored']} "
        f"observations), {o['series_not_modelled']} not modelled. Weighted score "
        f"{o['score']:.3f}; where a persistence forecast exists ({o['series_with_persistence']}"
        f" series) the model scores {o['score_model_where_persistence']:.3f} against "
        f"{o['score_persistence']:.3f} and beats it in {o['series_beating_persistence']}; "
        f"where a trend exists ({o['series_with_trend']} series) "
        f"{o['score_model_where_trend']:.3f} against {o['score_trend']:.3f}, beating it in "
        f"{o['series_beating_trend']}.",
        "",
        "## Per series",
        "",
        "| series | n | male | bias | direction | coverage | in source interval | persist | "
        "trend |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for _, r in result.scores.iterrows():
        lines.append(f"| `{r['series']}` | {int(r['observations'])} | {_md_number(r['male'])} | "
                     f"{_md_number(r['bias'])} | {_md_number(r['direction'])} | "
                     f"{_md_number(r['coverage'])} | {_md_number(r['in_source'])} | "
                     f"{_md_number(r['male_persistence'])} | {_md_number(r['male_trend'])} |")
    lines += ["", "## What is scripted", "",
              "Shares of price cells, chip orders and cloud-months that sit on an input "
              "(`analysis/scripted.py`), mean over the runs; correlations over a small "
              "Latin-hypercube design.", "", "| diagnostic | scope | value | of |",
              "|---|---|---:|---:|"]
    for _, r in scripted.iterrows():
        value = (f"r = {r['value']:+.2f} with `{r['input']}`"
                 if r["diagnostic"] == "input_correlation" else f"{r['value']:.1%}")
        lines.append(f"| {r['diagnostic']} | {r['scope']} | {value} | {int(r['count'])} |")
    lines += ["", "## Not modelled", "", "| series | observations | why |", "|---|---:|---|"]
    for _, r in result.not_modelled.iterrows():
        lines.append(f"| `{r['series']}` | {int(r['observations'])} | {r['reason']} |")
    lines += ["", "## Figures", ""]
    shown = set(result.scores["series"]) if len(result.scores) else set()
    for series in DOC_FIGURES:
        if series in shown:
            lines += [f"![{series}]({figure_dir}/{slug(series)}.png)", ""]
    return "\n".join(lines) + "\n"
