"""A self-contained HTML report of a batch: provenance, fan charts, threshold probabilities and
sensitivity indices. Figures are PNGs embedded as data URIs, so the file can be mailed alone."""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

import pandas as pd

from analysis.outcomes import exceedance, outcome_series, quantile_summary, unit_of
from analysis.plots import fan_chart, sensitivity_bars
from analysis.runner import Batch, read_tables, run_files
from market.errors import GpumarketError
from market.outputs import check_out_file, write_file_atomically

FANS = (("price:US:neocloud", "H100e-hour price index, US neocloud"),
        ("price:US:hyperscaler", "H100e-hour price index, US hyperscaler"),
        ("price:China:neocloud", "H100e-hour price index, China neocloud"),
        ("share:US", "US share of installed H100e"),
        ("share:China", "China's share of installed H100e"),
        ("share:EU", "EU share of installed H100e"))
PRICE_THRESHOLDS = (1.5, 2.0, 3.0, 4.0)
SHARE_THRESHOLDS = (0.05, 0.10, 0.15)
#: What every report's head holds (0.5.0's too): `--out` replaces only a file that has it.
REPORT_MARKER = "<title>gpumarket batch report:"


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _table(frame: pd.DataFrame, fmt: str = "{:.3g}") -> str:
    return frame.to_html(float_format=lambda v: fmt.format(v), border=0, classes="t")


def _lever_label(frame: pd.DataFrame, levers: dict) -> pd.DataFrame:
    if not levers:
        return frame
    cols = [f"param.{p}" for p in levers if f"param.{p}" in frame]
    frame = frame.copy()
    frame["lever"] = frame[cols].astype(str).agg(", ".join, axis=1) if cols else ""
    return frame


def write_report(directory: Path, out: Path | None = None) -> Path:
    """Build `report.html` for a batch directory (Monte Carlo or sensitivity)."""
    target = Path(out) if out is not None else Path(directory) / "report.html"
    check_out_file(target, REPORT_MARKER)        # before any work
    batch = Batch(Path(directory))
    if not batch.manifest_path.exists():
        raise GpumarketError(f"{directory}: not a gpumarket batch (no batch.json)")
    if not run_files(directory):
        raise GpumarketError(f"{directory}: the batch has no finished runs yet")
    manifest = batch.manifest()
    levers = manifest.get("design", {}).get("levers") or {}
    sections = []
    # provenance
    keys = ["kind", "gpumarket_version", "scenario", "scenario_source", "scenario_sha256",
            "root_seed", "months", "expected", "completed", "failed", "status", "created"]
    design = manifest.get("design", {})
    prov = {k: manifest.get(k) for k in keys if k in manifest}
    prov.update({f"design.{k}": v for k, v in design.items() if k != "levers"})
    if levers:
        prov["design.levers"] = json.dumps(levers)
    sections.append("<h2>Provenance</h2>" + _table(pd.DataFrame.from_dict(
        {k: [str(v)] for k, v in prov.items()}, orient="index", columns=["value"])))
    uncertain = manifest.get("uncertain") or {}
    if uncertain:
        table = pd.DataFrame(uncertain).T
        order = [c for c in ("dist", "low", "mode", "high", "mean", "sigma", "values",
                             "rationale") if c in table]
        sections.append("<h2>Uncertain inputs</h2>" + _table(table[order].fillna("")))
    # fan charts
    wanted = ["date", "region", "tier", "price_usd_per_h100e_hour", "nation", "share",
              *[f"param.{p}" for p in levers]]
    frames = read_tables(directory, ["price_index", "compute"], columns=wanted)
    figs, summaries, probabilities = [], [], []
    for name, title in FANS:
        series = _lever_label(outcome_series(directory, name, frames=frames), levers)
        if series.empty or series["value"].isna().all():
            continue
        if name.startswith("share"):
            series = series.assign(value=100 * series["value"])
        fig = fan_chart(series, title=title, group="lever" if levers else None,
                        ylabel="%" if name.startswith("share") else "USD per H100e-hour")
        figs.append(f'<img src="{_png(fig)}" alt="{html.escape(title)}">')
        months = sorted(series["date"].dt.strftime("%Y-%m").unique())
        dates = [d for d in months if d.endswith("-12")] or months[-1:]
        q = quantile_summary(series, dates)
        q.insert(0, "outcome", title + (" [%]" if name.startswith("share") else " [USD]"))
        summaries.append(q)
        years = sorted(series["date"].dt.year.unique())
        if name.startswith("price"):
            p = exceedance(series, list(PRICE_THRESHOLDS), years, "mean")
            what = f"P(yearly mean of {title} > USD X)"
        else:
            p = exceedance(series.assign(value=series["value"] / 100),
                           list(SHARE_THRESHOLDS), years, "december")
            what = f"P({title} in December > X)"
        probabilities.append(f"<h3>{html.escape(what)}</h3>" + _table(p, "{:.2f}"))
    sections.append("<h2>Fan charts</h2><p>Median (line), 50% and 90% bands across runs, per "
                    "month" + (", one fan per lever option" if levers else "") + ".</p>"
                    + "".join(figs))
    if summaries:
        q = pd.concat(summaries)
        q["cell"] = [f"{m:.3g} [{lo:.3g}, {hi:.3g}]" for m, lo, hi in
                     zip(q["median"], q["p5"], q["p95"])]
        wide = q.reset_index(names="month").pivot(index="outcome", columns="month",
                                                  values="cell")
        wide = wide.reindex([o for o in dict.fromkeys(q["outcome"])])
        sections.append("<h2>Key outcomes: median [5th, 95th percentile] in December</h2>"
                        + wide.to_html(border=0, classes="t"))
    sections.append("<h2>Probability of threshold events</h2><p>Share of runs in which the "
                    "event happens.</p>" + "".join(probabilities))
    sens = Path(directory) / "sensitivity.csv"
    if sens.exists():
        indices = pd.read_csv(sens, index_col=0)
        meta = manifest.get("sensitivity", {})
        title = f"{meta.get('method', '')} indices of {meta.get('outcome', '')} at " \
                f"{meta.get('date', '')}"
        sections.append(f"<h2>Sensitivity</h2><p>{html.escape(title)}</p>"
                        f'<img src="{_png(sensitivity_bars(indices, title=title))}">'
                        + _table(indices))
    failed = manifest.get("failed") or 0
    if failed:
        errors = {r: s.get("error") for r, s in (manifest.get("per_run") or {}).items()
                  if s.get("status") == "failed"}
        sections.append("<h2>Failed runs</h2>" + _table(pd.DataFrame.from_dict(
            errors, orient="index", columns=["error"])))
    page = f"""<!doctype html><html><head><meta charset="utf-8">
<title>gpumarket batch report: {html.escape(str(manifest.get('scenario')))}</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}}
img{{max-width:49%;margin:0.3%}} table.t{{border-collapse:collapse;font-size:0.85em;margin:0.5em 0}}
table.t td,table.t th{{padding:2px 8px;border-bottom:1px solid #ddd;text-align:right}}
h2{{border-bottom:2px solid #444;margin-top:1.5em}}</style></head><body>
<h1>gpumarket {html.escape(str(manifest.get('kind', 'batch')))}: {html.escape(str(manifest.get('scenario')))}</h1>
<p>{manifest.get('completed', len(run_files(directory)))} runs of
{html.escape(str(manifest.get('scenario_source')))}; units: prices in
{unit_of('price:US:neocloud')}, shares in % of installed H100e.</p>
{''.join(sections)}</body></html>"""
    return write_file_atomically(target, page, REPORT_MARKER)
