"""A self-contained HTML report of a batch: provenance, fan charts, threshold probabilities and
sensitivity indices. Figures are PNGs embedded as data URIs, so the file can be mailed alone.

With levers, every table and fan chart is per lever option, beside the options' differences
from the first option, paired by sample (each option of a sample runs with its seed and
inputs: common random numbers), with their 5-95% band: pooling the options would hide the
policy comparison the batch was run for.
"""

from __future__ import annotations

import base64
import html
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from analysis.outcomes import (exceedance, option_summary, outcome_series, paired_differences,
                               unit_key, unit_of, with_options)
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


@dataclass
class Report:
    """A written report: where it is, and its key tables as plain data (for `--json`)."""
    path: Path
    tables: dict = field(default_factory=dict)


def write_report(directory: Path, out: Path | None = None) -> Path:
    """Build `report.html` for a batch directory (Monte Carlo or sensitivity); its path."""
    return make_report(directory, out).path


def _scaled(name: str) -> tuple[float, str, str]:
    """(scale, unit, unit of a difference) for display: shares in % and percentage points."""
    if name.startswith("share"):
        return 100.0, "%", "percentage points"
    return 1.0, "USD", "USD"


def _fan_figure(series: pd.DataFrame, diffs: pd.DataFrame | None, title: str, name: str):
    """Per-option fans, and beside them (with levers) the fan of the paired differences."""
    from matplotlib.figure import Figure

    scale, unit, diff_unit = _scaled(name)
    ylabel = "%" if unit == "%" else "USD per H100e-hour"
    shown = series.assign(value=scale * series["value"])
    if diffs is None:
        return fan_chart(shown, title=title, group=None, ylabel=ylabel)
    fig = Figure(figsize=(12, 3.6), layout="constrained")
    left, right = fig.subplots(1, 2)
    fan_chart(shown, ax=left, title=f"{title}, per lever option", group="option", ylabel=ylabel)
    fan_chart(diffs.assign(value=scale * diffs["value"]), ax=right, group="option",
              title=f"{title}:\neach lever option minus the first, paired by sample",
              ylabel=diff_unit if unit == "%" else "USD per H100e-hour")
    right.axhline(0.0, color="black", linewidth=0.6)
    return fig


def _sensitivity_sections(directory: Path, manifest: dict) -> tuple[list[str], list[dict]]:
    """A section per analysed outcome (its sidecar JSON, CSV and the warning it carries); a
    batch of gpumarket 0.5.0 has one sensitivity.csv described in batch.json."""
    sections, records = [], []
    for meta_path in sorted(Path(directory).glob("sensitivity-*.json")):
        meta = json.loads(meta_path.read_text())
        csv = meta_path.with_suffix(".csv")
        if not csv.exists():
            continue
        indices = pd.read_csv(csv, index_col=0)
        title = f"{meta['method']} indices of {meta['outcome']} at {meta['date']}"
        warn = (f'<p class="warn">Not a reliable ranking: {html.escape("; ".join(meta["warnings"]))}'
                f" (rule applied: {html.escape(meta['guidance']['rule'])}).</p>"
                if meta.get("warnings") else "")
        sections.append(f"<h3>{html.escape(title)}</h3>{warn}"
                        f'<img src="{_png(sensitivity_bars(indices, title=title))}">'
                        + _table(indices))
        records.append({k: meta.get(k) for k in ("method", "outcome", "outcome_unit", "date",
                                                  "runs", "reliable", "warnings", "files")}
                       | {"indices": meta.get("indices")})
    legacy = Path(directory) / "sensitivity.csv"
    if not sections and legacy.exists():
        indices = pd.read_csv(legacy, index_col=0)
        meta = manifest.get("sensitivity", {})
        title = f"{meta.get('method', '')} indices of {meta.get('outcome', '')} at " \
                f"{meta.get('date', '')}"
        sections.append(f"<h3>{html.escape(title)}</h3><p class=\"warn\">Written by an older "
                        "gpumarket without checks of the design size or the intervals.</p>"
                        f'<img src="{_png(sensitivity_bars(indices, title=title))}">'
                        + _table(indices))
        records.append({"method": meta.get("method"), "outcome": meta.get("outcome"),
                        "date": meta.get("date"), "reliable": None,
                        "files": {"csv": legacy.name}})
    return sections, records


def _key_table(summaries: list[tuple[str, str, pd.DataFrame]]) -> str:
    """Median [5th, 95th percentile] per outcome and option (and paired difference), one
    column per month."""
    rows = {}
    for name, title, q in summaries:
        scale, unit, diff_unit = _scaled(name)
        for r in q.itertuples():
            u = unit if r.kind == "option" else diff_unit
            key = (f"{title} [{u}]", r.option)
            rows.setdefault(key, {})[r.date] = \
                f"{r.median * scale:.2f} [{r.p5 * scale:.2f}, {r.p95 * scale:.2f}]"
    wide = pd.DataFrame.from_dict(rows, orient="index")
    wide.index = pd.MultiIndex.from_tuples(wide.index, names=["outcome", "lever option"])
    return wide.fillna("").to_html(border=0, classes="t")


def make_report(directory: Path, out: Path | None = None) -> Report:
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
    # fan charts, per lever option with the paired differences beside them
    wanted = ["seed", "date", "region", "tier", "instrument", "price_usd_per_h100e_hour", "nation", "share",
              *[f"param.{p}" for p in levers]]
    frames = read_tables(directory, ["price_index", "compute"], columns=wanted)
    figs, summaries, probabilities = [], [], []
    tables = {"key_outcomes": [], "probabilities": {}, "sensitivity": []}
    for name, title in FANS:
        series = with_options(outcome_series(directory, name, frames=frames), levers)
        if series.empty or series["value"].isna().all():
            continue
        diffs = paired_differences(series, levers) if levers else None
        if diffs is not None and diffs.empty:
            diffs = None
        fig = _fan_figure(series, diffs, title, name)
        wide = ' class="wide"' if diffs is not None else ""
        figs.append(f'<img{wide} src="{_png(fig)}" alt="{html.escape(title)}">')
        months = sorted(series["date"].dt.strftime("%Y-%m").unique())
        dates = [d for d in months if d.endswith("-12")] or months[-1:]
        q = option_summary(series, dates, levers)
        summaries.append((name, title, q))
        key = unit_key(name)
        tables["key_outcomes"] += [
            {"outcome": name, "unit": unit_of(name), "option": r.option, "kind": r.kind,
             "date": r.date, f"p5_{key}": float(r.p5), f"median_{key}": float(r.median),
             f"p95_{key}": float(r.p95), "runs": int(r.runs)} for r in q.itertuples()]
        years = sorted(series["date"].dt.year.unique())
        if name.startswith("price"):
            thresholds, statistic = list(PRICE_THRESHOLDS), "mean"
            what = f"P(yearly mean of {title} > USD X)"
        else:
            thresholds, statistic = list(SHARE_THRESHOLDS), "december"
            what = f"P({title} in December > X)"
        per_option = {label: exceedance(part, thresholds, years, statistic)
                      for label, part in series.groupby("option", sort=False)}
        p = pd.concat(per_option, names=["lever option", "year"])
        probabilities.append(f"<h3>{html.escape(what)}</h3>" + _table(p, "{:.2f}"))
        tables["probabilities"][name] = {
            "statistic": statistic, "unit": unit_of(name),
            "options": {label: {str(y): {k.replace("> ", "above_"): float(v)
                                         for k, v in row.items()}
                                for y, row in t.iterrows()} for label, t in per_option.items()}}
    sections.append("<h2>Fan charts</h2><p>Median (line), 50% and 90% bands across runs, per "
                    "month" + (", one fan per lever option; beside it, each option minus the "
                               "first, paired by sample (same seed and inputs), with its bands"
                               if levers else "") + ".</p>" + "".join(figs))
    if summaries:
        sections.append("<h2>Key outcomes: median [5th, 95th percentile] in December</h2>"
                        + ("<p>Per lever option; rows [B] - [A] are B minus A paired by "
                           "sample.</p>" if levers else "") + _key_table(summaries))
    sections.append("<h2>Probability of threshold events</h2><p>Share of runs in which the "
                    "event happens" + (", per lever option" if levers else "") + ".</p>"
                    + "".join(probabilities))
    sens_sections, tables["sensitivity"] = _sensitivity_sections(Path(directory), manifest)
    if sens_sections:
        sections.append("<h2>Sensitivity</h2>" + "".join(sens_sections))
    failed = manifest.get("failed") or 0
    if failed:
        errors = {r: s.get("error") for r, s in (manifest.get("per_run") or {}).items()
                  if s.get("status") == "failed"}
        sections.append("<h2>Failed runs</h2>" + _table(pd.DataFrame.from_dict(
            errors, orient="index", columns=["error"])))
    page = f"""<!doctype html><html><head><meta charset="utf-8">
<title>gpumarket batch report: {html.escape(str(manifest.get('scenario')))}</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}}
img{{max-width:49%;margin:0.3%}} img.wide{{max-width:99%}}
table.t{{border-collapse:collapse;font-size:0.85em;margin:0.5em 0}}
table.t td,table.t th{{padding:2px 8px;border-bottom:1px solid #ddd;text-align:right}}
p.warn{{color:#a00}} h2{{border-bottom:2px solid #444;margin-top:1.5em}}</style></head><body>
<h1>gpumarket {html.escape(str(manifest.get('kind', 'batch')))}: {html.escape(str(manifest.get('scenario')))}</h1>
<p>{manifest.get('completed', len(run_files(directory)))} runs of
{html.escape(str(manifest.get('scenario_source')))}; units: prices in
{unit_of('price:US:neocloud')}, shares in % of installed H100e.</p>
{''.join(sections)}</body></html>"""
    return Report(write_file_atomically(target, page, REPORT_MARKER), tables)
