"""The web app's tabs: Prices, Compute & shares, China, Trade network, Policy timeline.

Each tab is a Solara component of the live model; it reads Mesa's update counter, so it redraws
after every step (only the open tab is drawn). Every chart sits in a
`<div class="gpumarket-view-NAME">` (which names it for tests and styling) with a CSV download
of exactly the data it shows; its menu saves it as PNG or SVG.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import pandas as pd
import solara
from mesa.visualization.utils import update_counter

from analysis.webapp import charts, frames, levers
from analysis.webapp.run import MarketApp, reference_for
from analysis.webapp.vega import Chart
from market.summary import MARKERS, flag_note

#: The tabs in order: (title, component name); the component is looked up below.
TAB_TITLES = ("Prices", "Compute & shares", "China", "Trade network", "Policy timeline")


# ---------------------------------------------------------------------- ensemble ---

@functools.lru_cache(maxsize=2)
def ensemble_bands(directory: str) -> pd.DataFrame:
    """Quantiles per month of a Monte Carlo batch's US neocloud price index and China's share
    of installed H100e (`outcome` price or share)."""
    from analysis.outcomes import outcome_series

    parts = []
    for name, label in (("price:US:neocloud", "price"), ("share:China", "share")):
        s = outcome_series(directory, name)
        runs = s["run_id"].nunique()
        q = s.groupby("date")["value"].quantile([0.05, 0.25, 0.5, 0.75, 0.95]).unstack()
        q.columns = ["p5", "p25", "p50", "p75", "p95"]
        parts.append(q.assign(outcome=label, runs=runs).reset_index())
    out = pd.concat(parts, ignore_index=True)
    out["date"] = pd.to_datetime(out["date"])
    return out


@functools.lru_cache(maxsize=2)
def ensemble_scenario(directory: str) -> str | None:
    """The scenario a Monte Carlo batch ran (its batch.json), or None if it does not say."""
    import json

    try:
        return json.loads((Path(directory) / "batch.json").read_text())["scenario"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def ensemble(model: MarketApp) -> pd.DataFrame | None:
    """The bands of the batch named by GPUMARKET_ENSEMBLE, if it ran the live run's scenario,
    inside the run's span (a batch of another scenario or length is no band for this run)."""
    directory = os.environ.get("GPUMARKET_ENSEMBLE")
    if not directory or ensemble_scenario(directory) not in (None, model.scenario_name):
        return None
    bands = ensemble_bands(directory)
    first, last = frames.span(model, model.run_months)
    return bands[(bands["date"] >= first) & (bands["date"] <= last)]


# ---------------------------------------------------------------------- pieces ---

def _file_stem(model: MarketApp, what: str) -> str:
    return f"gpumarket_{model.scenario_name}_seed{model.seed_value}_{what}"


@solara.component
def ChartCard(chart, data: pd.DataFrame, view: str, model: MarketApp, note: str = ""):
    """A chart, a line under it and its data as a CSV download."""
    stem = _file_stem(model, view)
    with solara.Div(classes=[f"gpumarket-view-{view}", "gpumarket-chart"],
                    style={"width": "100%", "min-width": "0"}):
        Chart(chart)
        with solara.Row(justify="space-between", style={"align-items": "center"}):
            solara.Text(note, style={"font-size": "0.85em", "color": "#555"})
            solara.FileDownload(lambda: data.to_csv(index=False), filename=f"{stem}.csv",
                                label="CSV", mime_type="text/csv")


def _reference(model: MarketApp):
    """The reference run, or None when this run has no levers (it would be the same run)."""
    return reference_for(model) if model.changed_levers else None


def _month_line(model: MarketApp, when: str) -> None:
    """The month the charts show, above them (not in their titles: a title that changes every
    month would make the browser compile each chart again)."""
    solara.Markdown(f"**{when}** · {model.scenario_name}, seed {model.seed_value} · "
                    f"{model.step_index} of {model.run_months} months")


def _tab_header(model: MarketApp):
    """What every time-chart tab starts with: the month line, and the run's span, the
    scenario's events and the reference run (None without levers) for its charts."""
    _month_line(model, frames.month_name(model))
    return (frames.span(model, model.run_months), frames.events(model, model.run_months),
            _reference(model))


def _note_levers(model: MarketApp) -> str:
    moved = model.changed_levers
    if not moved:
        return "no lever moved: the reference run is this run"
    return "dashed: the same scenario and seed without " + ", ".join(
        levers.label_of(name) for name in moved)


# ------------------------------------------------------------------------ tabs ---

def _ref_frame(ref, make):
    return make(ref) if ref is not None else None


@solara.component
def PricesTab(model: MarketApp):
    update_counter.get()
    region, set_region = solara.use_state("US")
    span, events, ref = _tab_header(model)
    live = frames.prices(model, region)
    back = _ref_frame(ref, lambda r: frames.prices(r, region))
    bands = ensemble(model)
    band = bands[bands["outcome"] == "price"] if bands is not None and region == "US" else None
    solara.ToggleButtonsSingle(value=region, on_value=set_region, values=list(frames.REGIONS))
    chart = charts.time_chart(
        live, "price_usd_per_h100e_hour", "series", span=span, events=events, reference=back,
        bands=band, unit="USD per H100e-hour", filename=_file_stem(model, f"prices_{region}"),
        title=f"{region}: H100e-hour price by tier and instrument"
              + (" (shaded: ensemble of the US neocloud index)" if band is not None else ""))
    ChartCard(chart, frames.with_bands(frames.with_reference(live, back), band), "prices",
              model, _note_levers(model))
    head = frames.headline_prices(model)
    chart2 = charts.time_chart(
        head, "price_usd_per_h100e_hour", "region", span=span, events=events, dash="series",
        unit="USD per H100e-hour", filename=_file_stem(model, "headline_prices"),
        title="Headline prices by region (hyperscaler list, neocloud spot)")
    ChartCard(chart2, head, "headline-prices", model)


@solara.component
def ComputeTab(model: MarketApp):
    update_counter.get()
    span, events, ref = _tab_header(model)
    comp = frames.compute(model)
    back = _ref_frame(ref, frames.compute)
    ChartCard(charts.stacked_share_chart(
        comp, "share", "nation", span=span, events=events,
        filename=_file_stem(model, "shares"),
        title="Shares of installed H100e by nation"), comp, "shares", model)
    ChartCard(charts.time_chart(
        comp, "installed_h100e", "nation", span=span, events=events, log=True, fmt=",.0f",
        reference=back, unit="installed H100e", filename=_file_stem(model, "installed"),
        title="Installed H100e by nation (log scale)"),
        frames.with_reference(comp, back), "installed", model, _note_levers(model))
    vend = frames.vendor_shares(model)
    ChartCard(charts.time_chart(
        vend, "share_of_shipped_h100e_12m", "vendor", span=span, events=events, scale=100.0,
        fmt=".1f", unit="% of H100e shipped, 12 months",
        filename=_file_stem(model, "vendor_shares"),
        title="Vendors' shares of H100e shipped in the last 12 months"), vend,
        "vendor-shares", model)


@solara.component
def ChinaTab(model: MarketApp):
    update_counter.get()
    span, events, ref = _tab_header(model)
    note = _note_levers(model)

    def china_share(run):
        return frames.china_share(run).assign(series="China")

    def domestic(run):
        return frames.domestic_share(run).assign(series="domestic vendors")

    share, share_ref = china_share(model), _ref_frame(ref, china_share)
    bands = ensemble(model)
    band = bands[bands["outcome"] == "share"] if bands is not None else None
    ChartCard(charts.time_chart(
        share, "share", "series", span=span, events=events, scale=100.0, fmt=".1f",
        reference=share_ref, bands=band, unit="% of installed H100e",
        filename=_file_stem(model, "china_share"),
        title="China's share of the world's installed H100e"
              + (" (shaded: ensemble)" if band is not None else "")),
        frames.with_bands(frames.with_reference(share, share_ref), band),
        "china-share", model, note)
    inflow = frames.china_inflows(model)
    inflow = inflow.assign(what=inflow["vendor"] + " (" + inflow["channel"] + ")")
    ChartCard(charts.stacked_bar_chart(
        inflow, "h100e_per_month", "what", span=span, events=events, unit="H100e per month",
        filename=_file_stem(model, "china_inflows"),
        title="H100e reaching China each month, by vendor and channel"), inflow,
        "china-inflows", model)
    leak, leak_ref = frames.china_leakage(model), _ref_frame(ref, frames.china_leakage)
    ChartCard(charts.time_chart(
        leak, "h100e", "series", span=span, events=events, fmt=",.0f", unit="H100e",
        reference=leak_ref, filename=_file_stem(model, "china_leakage"),
        title="Around the controls: chips diverted and compute rented abroad"),
        frames.with_reference(leak, leak_ref), "china-leakage", model, note)
    dom, dom_ref = domestic(model), _ref_frame(ref, domestic)
    ChartCard(charts.time_chart(
        dom, "domestic_share_of_new_h100e_12m", "series", span=span, events=events,
        scale=100.0, fmt=".1f", unit="% of H100e installed in China, 12 months",
        reference=dom_ref, filename=_file_stem(model, "china_domestic_share"),
        title="Domestic vendors' share of China's new H100e (12 months)"),
        frames.with_reference(dom, dom_ref), "china-domestic", model, note)


@solara.component
def NetworkTab(model: MarketApp):
    update_counter.get()
    nodes, edges = frames.network(model)
    when = (f"12 months to {frames.month_name(model)}" if model.step_index > 0
            else "not started")
    _month_line(model, when)
    chart = charts.network_chart(nodes, edges, filename=_file_stem(model, "network"),
                                 title="Flows in H100e, last 12 months: chips shipped (vendors to "
                                       "nations), GPU-hours sold (largest clouds), leakage "
                                       "dashed")
    table = edges[["source", "target", "flow", "h100e", "measure", "leakage"]]
    ChartCard(chart, table, "network", model,
              "chips: H100e shipped in the last 12 months; GPU-hours sold and compute rented "
              "abroad: average H100e in use over them")


@solara.component
def PolicyTab(model: MarketApp):
    update_counter.get()
    done = frames.policy(model)
    lines = [f"- **{d:%Y-%m}** · {nation} · {kind}: {what}"
             + (f"  \n  rules in force: `{rules}`" if rules else "")
             for d, nation, kind, what, rules in zip(done["date"], done["nation"],
                                                     done["kind"], done["what"],
                                                     done["rules_in_force"])]
    ahead = frames.events(model, model.run_months)
    ahead = ahead[ahead["date"] > pd.Timestamp(frames.dates(model, [model.step_index])[0])] \
        if model.step_index > 0 else ahead
    later = [f"- {d:%Y-%m} · {event}: {note}" for d, event, note
             in zip(ahead["date"], ahead["event"], ahead["note"])]
    with solara.Div(classes=["gpumarket-view-policy"]):
        solara.Markdown(f"### What has happened, to {frames.month_name(model)}\n"
                        + ("\n".join(lines) if lines else "_nothing yet_"))
        solara.Markdown("### Scheduled in this scenario\n" + ("\n".join(later) if later
                                                               else "_nothing more_"))
        with solara.Row():
            solara.FileDownload(lambda: done.to_csv(index=False),
                                filename=f"{_file_stem(model, 'policy')}.csv", label="CSV",
                                mime_type="text/csv")


TABS = (PricesTab, ComputeTab, ChinaTab, NetworkTab, PolicyTab)


# ------------------------------------------------------------------ key figures ---

def _fmt(name: str, x: float) -> str:
    if pd.isna(x):
        return "-"
    if "USD/H100e-h" in name:
        return f"{x:,.2f}"
    if "[%]" in name:
        return f"{x:.1f}"
    return f"{x:,.0f}"


@solara.component
def KeyFigures(model: MarketApp):
    """This month's key figures, beside the reference run's with the difference, the levers
    in force and any problem with them."""
    update_counter.get()
    ref = _reference(model)
    table = frames.key_figures(model, ref if ref is not None else model)
    marks = frames.price_marks(model)
    rows = [f"| {name} | {_fmt(name, now)}{marks.get(name, '')} | {_fmt(name, r)} | "
            f"{'-' if pd.isna(d) else f'{d:+,.2f}'} | "
            f"{'-' if pd.isna(p) else f'{p:+.1f}%'} |"
            for name, now, r, d, p in table.itertuples(index=False)]
    month = frames.month_name(model)
    with solara.Div(classes=["gpumarket-view-figures"]):
        solara.Markdown(f"**Key figures, {month}** (reference: the same scenario and seed "
                        "without the levers)\n\n| figure | this run | reference | difference | "
                        "difference % |\n|---|---:|---:|---:|---:|\n" + "\n".join(rows))
        if marks:
            flags = [next(f for f, m in MARKERS.items() if m == mark) for mark in marks.values()]
            solara.Text(flag_note(flags))
        solara.Text("levers: " + " ".join(f"{k}={v}" for k, v in model.levers.items()))
        bands = ensemble(model)
        if bands is not None:
            solara.Text(f"ensemble bands from "
                        f"{os.path.basename(os.environ['GPUMARKET_ENSEMBLE'])}: "
                        f"{int(bands['runs'].max())} runs")
        solara.FileDownload(lambda: table.to_csv(index=False),
                            filename=f"{_file_stem(model, 'key_figures')}.csv", label="CSV",
                            mime_type="text/csv")
