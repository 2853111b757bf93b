"""The gpumarket web app: Mesa's SolaraViz over the market model, with policy levers.

Serve it with `gpumarket viz [SCENARIO] [--ensemble DIR]` (or `solara run analysis/app.py`).
The app imports the model, never the reverse. Levers are `MarketApp.__init__` keywords: Mesa
rebuilds the model as `MarketApp(**levers)` on Reset, and each lever maps onto the scenario
(a path, an event or a rule) the way `--set` would; an invalid combination keeps the model
runnable (the scenario as chosen, without the levers) and shows the problem on the page.

Each browser session (tab) gets its own model, built when the page first renders; a session
that goes away stops its run (Play ends at the next step). A run ends after its last month:
the counter stops at the run's length, Step and Play are disabled, the sidebar says "finished".

Environment: GPUMARKET_SCENARIO (the scenario selected at start), GPUMARKET_MONTHS (run only
the first M months), GPUMARKET_ENSEMBLE (a Monte Carlo batch directory whose 50% and 90% bands
are drawn under the live run).
"""

from __future__ import annotations

import copy
import functools
import os
import sys
import threading

import networkx as nx
import numpy as np
import pandas as pd
import seaborn as sns
import solara
from matplotlib.figure import Figure
from mesa.visualization import SolaraViz
from mesa.visualization.utils import update_counter
from pydantic import ValidationError

from market.errors import GpumarketError
from market.model import ComputeMarket
from market.outputs import release
from market.summary import MARKERS, flag_note, input_price_levels, price_flag
from market.timeline import format_month, month_start
from market.world import HEADLINE_INSTRUMENT
from scenarios.loader import builtin_names, load_scenario, set_path, validate_data

REGIMES = {"as in the scenario": None, "no controls": "none", "Oct 2022 rule only": "oct2022",
           "diffusion rule kept (May 2025)": "diffusion"}
REMOTE = {"as in the scenario": None, "closed to China's labs from 2026-01": "2026-01",
          "closed to China's labs from 2024-01": "2024-01"}
SHOCK_STARTS = ["none", "2024-01", "2025-01", "2026-01", "2027-01", "2028-01"]
REGIONS = ("US", "China", "EU", "JKT", "RoW")
FIG = (6.4, 3.4)
DPI = 80


# ------------------------------------------------------------------------- levers ---

def apply_levers(data: dict, *, export_regime: str, remote_access: str, enforcement: float,
                 shock_start: str, shock_depth: float, shock_months: int,
                 demand_growth: float, huawei_ramp: float) -> dict:
    """The scenario data with the levers applied (a new dict)."""
    data = copy.deepcopy(data)
    events = list(data.get("events", []))
    regime = REGIMES.get(export_regime, export_regime)
    if regime in ("none", "oct2022"):
        events = [e for e in events if e.get("kind") != "export_control"]
        if regime == "oct2022":
            events.append({"kind": "export_control", "date": "2022-10", "rule": "oct2022"})
    elif regime == "diffusion":
        events.append({"kind": "export_control", "date": "2025-05", "rule": "diffusion2025"})
    closed = REMOTE.get(remote_access, remote_access)
    if closed:
        data.setdefault("rules", {})["iaas-closed-app"] = {
            "name": "Remote access (IaaS) closed to D:5 labs (app lever)",
            "announced": closed, "effective": closed, "source": "gpumarket viz lever",
            "remote_access": {"D5": False}}
        events.append({"kind": "export_control", "date": closed, "rule": "iaas-closed-app"})
    if shock_start != "none" and shock_depth < 1.0:
        events.append({"kind": "foundry_shock", "date": shock_start, "foundry": "tsmc-cowos",
                       "factor": float(shock_depth), "months": int(shock_months),
                       "note": "app lever"})
    data["events"] = events
    set_path(data, "leakage.enforcement", float(enforcement))
    set_path(data, "market.demand_index.growth_after_per_year", float(demand_growth))
    smic = data.get("foundries", {}).get("smic")
    if smic is not None and huawei_ramp != 1.0:
        points = smic["capacity_wafers_per_month"]["points"]
        smic["capacity_wafers_per_month"]["points"] = {
            d: v * (float(huawei_ramp) if d >= "2024-01" else 1.0) for d, v in points.items()}
    return data


@functools.lru_cache(maxsize=16)
def _scenario_data(name: str) -> dict:
    return load_scenario(name).resolved


class MarketApp(ComputeMarket):
    """ComputeMarket built from a scenario name and the page's levers."""

    def __init__(self, scenario: str = "baseline", seed: str = "0",
                 export_regime: str = "as in the scenario",
                 remote_access: str = "as in the scenario", enforcement: float = 0.5,
                 shock_start: str = "none", shock_depth: float = 1.0, shock_months: int = 9,
                 demand_growth: float = 0.3, huawei_ramp: float = 1.0,
                 months: int | None = None, session: threading.Event | None = None):
        """`months`: run only the first M months (None: the whole scenario). `session`: set
        when the browser session that owns this model has gone; the run then stops."""
        self.session = session
        self.levers = dict(scenario=scenario, seed=seed, export_regime=export_regime,
                           remote_access=remote_access, enforcement=enforcement,
                           shock_start=shock_start, shock_depth=shock_depth,
                           shock_months=shock_months, demand_growth=demand_growth,
                           huawei_ramp=huawei_ramp)
        self.error = None
        try:
            seed_value = int(str(seed).strip())
            if seed_value < 0:
                raise ValueError
        except ValueError:
            self.error = f"seed: expected a whole number >= 0, got {seed!r}; using 0"
            seed_value = 0
        try:
            data = apply_levers(_scenario_data(scenario), export_regime=export_regime,
                                remote_access=remote_access, enforcement=enforcement,
                                shock_start=shock_start, shock_depth=shock_depth,
                                shock_months=shock_months, demand_growth=demand_growth,
                                huawei_ramp=huawei_ramp)
            built = validate_data(data, f"scenario {scenario} with the page's levers")
        except (GpumarketError, ValidationError) as exc:
            self.error = f"{exc} -- running {scenario} without the levers instead"
            built = load_scenario(scenario).scenario
        super().__init__(built, seed_value)
        self.scenario_name = scenario
        #: the months this run takes: the scenario's, or fewer when asked [months]
        self.run_months = min(self.n_months, int(months)) if months else self.n_months

    @property
    def finished(self) -> bool:
        """True once the run's last month is done."""
        return self.step_index >= self.run_months

    def step(self) -> None:
        gone = self.session is not None and self.session.is_set()
        if self.finished or gone:
            # Mesa counts a call in `steps` before this body runs, and SolaraViz may call
            # again after the last month (render interval > 1): no month was taken, so undo
            # the count, which the page shows as the month number
            self.steps -= 1
            if gone and self.running:
                print(f"gpumarket viz: a browser session closed; its run stopped at "
                      f"{self.step_index} of {self.run_months} months", file=sys.stderr,
                      flush=True)
            self.running = False
            return
        super().step()
        if self.finished:
            self.running = False          # disables Step and Play; the page says "finished"

    def status(self) -> str:
        """One line: where the run stands, e.g. "finished: 2030-12, 108 of 108 months"."""
        done, total = self.step_index, self.run_months
        if done == 0:
            return f"not started: 0 of {total} months"
        state = "finished" if self.finished else "running"
        return f"{state}: {format_month(self.month)}, {done} of {total} months"


# ---------------------------------------------------------------------- ensemble ---

@functools.lru_cache(maxsize=2)
def ensemble_bands(directory: str) -> pd.DataFrame:
    """Quantiles per month of the ensemble's US neocloud price index and China's share."""
    from analysis.outcomes import outcome_series

    parts = []
    for name, label in (("price:US:neocloud", "price"), ("share:China", "share")):
        s = outcome_series(directory, name)
        runs = s["run_id"].nunique()
        q = s.groupby("date")["value"].quantile([0.05, 0.25, 0.5, 0.75, 0.95]).unstack()
        q.columns = ["p5", "p25", "p50", "p75", "p95"]
        parts.append(q.assign(outcome=label, runs=runs).reset_index())
    return pd.concat(parts, ignore_index=True)


def _ensemble() -> pd.DataFrame | None:
    directory = os.environ.get("GPUMARKET_ENSEMBLE")
    return ensemble_bands(directory) if directory else None


# ------------------------------------------------------------------------- views ---

def _dates(model: MarketApp, steps) -> pd.DatetimeIndex:
    first = model.start_month - 1
    return pd.DatetimeIndex([month_start(first + int(s)) for s in steps])


def _run_span(model: MarketApp) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The first and the last month of the run, for the date axes."""
    return (pd.Timestamp(month_start(model.start_month)),
            pd.Timestamp(month_start(model.start_month + model.run_months - 1)))


def _figure(fig: Figure, view: str):
    """The figure as a PNG image in a <div class="gpumarket-view-VIEW"> (which names the
    view in the page, for tests and for styling)."""
    return solara.Div(classes=[f"gpumarket-view-{view}"],
                      children=[solara.FigureMatplotlib(fig, format="png", dpi=DPI)])


def PriceView(model: MarketApp):
    """H100e-hour price by region and tier: hyperscaler list, neocloud spot (an H100 SXM hour
    costs exactly this)."""
    fig = Figure(figsize=FIG, layout="constrained")
    ax = fig.subplots()
    rec = pd.DataFrame(model.records["price_index"],
                       columns=["step", "region", "tier", "instrument", "price"])
    rec = rec[rec["region"].isin(REGIONS)
              & (rec["instrument"] == rec["tier"].map(HEADLINE_INSTRUMENT))]
    bands = _ensemble()
    if bands is not None:
        b = bands[bands["outcome"] == "price"]
        ax.fill_between(b["date"], b["p5"], b["p95"], color="tab:blue", alpha=0.12,
                        label="ensemble 90%")
        ax.fill_between(b["date"], b["p25"], b["p75"], color="tab:blue", alpha=0.25,
                        label="ensemble 50%")
    if len(rec):
        rec["date"] = _dates(model, rec["step"])
        sns.lineplot(data=rec, x="date", y="price", hue="region", style="tier", ax=ax,
                     linewidth=1.2)
    when = format_month(model.month) if model.step_index > 0 else "not started"
    ax.set_title(f"H100e-hour price index (US neocloud ensemble bands), {when}"
                 if bands is not None else f"H100e-hour price index, {when}", fontsize=10)
    ax.set_ylabel("USD per H100e-hour")
    ax.set_xlabel("")
    ax.set_xlim(*_run_span(model))
    if ax.get_legend_handles_labels()[0]:          # nothing drawn yet at step 0
        ax.legend(fontsize=7, ncol=2, loc="upper right")
    ax.grid(alpha=0.3)
    return _figure(fig, "prices")


def ShareView(model: MarketApp):
    """Shares of installed H100e by nation (stacked) and vendors' shipment shares."""
    fig = Figure(figsize=(FIG[0], FIG[1] * 1.6), layout="constrained")
    ax, bx = fig.subplots(2, 1, sharex=True)
    comp = pd.DataFrame(model.records["compute"], columns=["step", "nation", "installed",
                                                            "share", "frontier", "demand",
                                                            "unmet"])
    if len(comp):
        wide = comp.pivot(index="step", columns="nation", values="share")[model.nation_ids]
        dates = _dates(model, wide.index)
        ax.stackplot(dates, (100 * wide.fillna(0.0)).T.to_numpy(), labels=wide.columns,
                     colors=sns.color_palette("tab10", len(wide.columns)), alpha=0.85)
        bands = _ensemble()
        if bands is not None:
            b = bands[bands["outcome"] == "share"]
            ax.fill_between(b["date"], 100 * b["p5"], 100 * b["p95"], color="black",
                            alpha=0.15, label="China, ensemble 90%")
            ax.plot(dates, 100 * wide["China"].to_numpy(), color="black", lw=1.5,
                    label="China, this run")
        ax.legend(fontsize=7, ncol=3, loc="lower left")
    ax.set_ylabel("% of installed H100e")
    ax.set_ylim(0, 100)
    ax.set_title("Installed compute by nation", fontsize=10)
    vend = pd.DataFrame([r[:8] for r in model.records["vendors"]],
                        columns=["step", "vendor", "units", "h100e", "revenue", "produced",
                                 "blocked", "state"])
    if len(vend):
        wide = vend.pivot(index="step", columns="vendor", values="h100e").rolling(
            12, min_periods=1).sum()
        shares = 100 * wide.div(wide.sum(axis=1).replace(0, np.nan), axis=0)
        for name in shares:
            bx.plot(_dates(model, shares.index), shares[name].to_numpy(), label=name)
        bx.legend(fontsize=7, ncol=5)
    bx.set_ylabel("% of shipped H100e, 12 months")
    bx.set_title("Vendor shipment shares", fontsize=10)
    bx.set_xlim(*_run_span(model))        # dates from step 0 on, the same for the whole run
    for a in (ax, bx):
        a.grid(alpha=0.3)
    return _figure(fig, "shares")


def NetworkView(model: MarketApp):
    """This year's chip and GPU-hour flows: vendors -> nations (chips), clouds -> regions and
    regions -> nations abroad (GPU-hours); leakage (diversion, remote access) in red."""
    year_start = model.step_index - 11
    g = nx.DiGraph()
    for n in model.nation_ids:
        g.add_node(n, kind="nation")
    for v in model.vendor_ids:
        g.add_node(v, kind="vendor")
    flows = pd.DataFrame(model.records["vendor_flows"],
                         columns=["step", "channel", "vendor", "nation", "h100e"])
    flows = flows[flows["step"] >= year_start]
    chips = flows.groupby(["channel", "vendor", "nation"])["h100e"].sum()
    for (channel, vendor, nation), h in chips.items():
        _add_flow(g, vendor, nation, h, "chips", channel == "diversion")
    remote = pd.DataFrame(model.records["flows"], columns=["step", "channel", "origin",
                                                           "destination", "h100e"])
    remote = remote[(remote["step"] >= year_start) & (remote["channel"] == "remote_access")]
    for (origin, dest), h in remote.groupby(["origin", "destination"])["h100e"].sum().items():
        _add_flow(g, origin, dest, h / 12.0, "hours", True)
    clouds = pd.DataFrame(model.records["clouds"], columns=["step", "cloud", "region", "tier",
                                                            "offered", "sold", "revenue",
                                                            "margin"])
    clouds = clouds[clouds["step"] == model.step_index]
    # at step 0 there are no records: an empty frame's columns have dtype object, which
    # nlargest refuses, so draw just the nations and vendors
    top = clouds.astype({"sold": float}).nlargest(6, "sold")
    for row in top.itertuples():
        g.add_node(row.cloud, kind="cloud")
        _add_flow(g, row.cloud, row.region, row.sold / 730.5, "hours", False)
    fig = Figure(figsize=(FIG[0], FIG[1] * 1.5), layout="constrained")
    ax = fig.subplots()
    pos = nx.shell_layout(g, nlist=[model.nation_ids,
                                    [n for n in g if g.nodes[n]["kind"] != "nation"]])
    colors = {"nation": "tab:blue", "vendor": "tab:green", "cloud": "tab:orange"}
    nx.draw_networkx_nodes(g, pos, ax=ax, node_size=260,
                           node_color=[colors[g.nodes[n]["kind"]] for n in g])
    nx.draw_networkx_labels(g, pos, ax=ax, font_size=7)
    widths = [max(0.4, 4 * np.log10(1 + g.edges[e]["h100e"]) / 6) for e in g.edges]
    nx.draw_networkx_edges(
        g, pos, ax=ax, width=widths, arrowsize=8, connectionstyle="arc3,rad=0.12",
        edge_color=["tab:red" if g.edges[e]["leak"] else
                    ("tab:green" if g.edges[e]["what"] == "chips" else "tab:gray")
                    for e in g.edges],
        style=["dashed" if g.edges[e]["leak"] else "solid" for e in g.edges])
    when = f"12 months to {format_month(model.month)}" if model.step_index > 0 else \
        "not started"
    ax.set_title(f"Flows, {when}: chips (green), GPU-hours (grey), leakage (red, dashed)",
                 fontsize=9)
    ax.set_axis_off()
    return _figure(fig, "network")


def _add_flow(g: nx.DiGraph, a: str, b: str, h100e: float, what: str, leak: bool) -> None:
    if h100e <= 0 or a == b:
        return
    if g.has_edge(a, b):
        g.edges[a, b]["h100e"] += h100e
        g.edges[a, b]["leak"] |= leak
    else:
        g.add_edge(a, b, h100e=h100e, what=what, leak=leak)


def _price_marks(model: MarketApp, prices: dict) -> dict[tuple[str, str], str]:
    """Footnote markers of this month's US, China and EU prices (`market.summary.price_flag`):
    `*` on a price input of the scenario (this month and last), `#` when nothing traded."""
    levels = input_price_levels(model.scenario)
    sold: dict[tuple[str, str], float] = {}
    for s, _, region, tier, _, sold_h, _, _ in model.records["clouds"]:
        if s == model.step_index:
            sold[(region, tier)] = sold.get((region, tier), 0.0) + sold_h
    # last month's headline prices: a price sits on an input only if it was there then too
    before = {(region, tier): price for step, region, tier, instrument, price
              in model.records["price_index"]
              if step == model.step_index - 1 and instrument == HEADLINE_INSTRUMENT[tier]}
    marks = {}
    for (region, tier), price in prices.items():
        flag = price_flag(price, levels, sold.get((region, tier), 0.0),
                          previous=before.get((region, tier)))
        if flag in MARKERS and region in ("US", "China", "EU"):
            marks[(region, tier)] = MARKERS[flag]
    return marks


def _flag_of_marker(marker: str) -> str:
    return next(flag for flag, m in MARKERS.items() if m == marker)


def KeyFigures(model: MarketApp):
    """This month's key figures, the levers in force and any problem with them."""
    step = model.step_index
    prices = {(r, t): p for s, r, t, i, p in model.records["price_index"]
              if s == step and i == HEADLINE_INSTRUMENT[t]}
    comp = {n: (share, unmet) for s, n, _, share, _, _, unmet in model.records["compute"]
            if s == step}
    leaked = sum(h for s, c, _, d, h in model.records["flows"]
                 if s == step and c == "diversion")
    abroad = sum(h for s, c, _, d, h in model.records["flows"]
                 if s == step and c == "remote_access" and d == "China")
    rows = [("month", format_month(model.month) if step > 0 else "(not started)")]
    # a price that sits on a price input of the scenario, or a month without trades, is not a
    # price where supply met demand: marked, with one line of explanation under the table
    marks = _price_marks(model, prices) if step > 0 else {}
    for region in ("US", "China", "EU"):
        for tier in ("neocloud", "hyperscaler"):
            if (region, tier) in prices:
                rows.append((f"price {region} {tier} [USD/H100e-h]",
                             f"{prices[(region, tier)]:.2f}{marks.get((region, tier), '')}"))
    for nation in ("US", "China", "EU", "Gulf"):
        if nation in comp:
            rows.append((f"share of installed H100e {nation} [%]", f"{100 * comp[nation][0]:.1f}"))
    unmet = sum(u for _, u in comp.values())
    rows += [("unmet demand [H100e-hours]", f"{unmet:,.0f}"),
             ("chips diverted to China this month [H100e]", f"{leaked:,.0f}"),
             ("compute China's labs rent abroad [H100e]", f"{abroad:,.0f}")]
    table = "\n".join(f"| {k} | {v} |" for k, v in rows)
    levers = " ".join(f"{k}={v}" for k, v in model.levers.items())
    children = [solara.Markdown(f"| figure | value |\n|---|---:|\n{table}")]
    if marks:
        children.append(solara.Text(flag_note(_flag_of_marker(m) for m in marks.values())))
    children.append(solara.Text(f"levers: {levers}"))
    bands = _ensemble()
    if bands is not None:
        children.append(solara.Text(
            f"ensemble bands from {os.path.basename(os.environ['GPUMARKET_ENSEMBLE'])}: "
            f"{int(bands['runs'].max())} runs"))
    if model.error:
        children.insert(0, solara.Error(f"Levers not applied: {model.error}"))
    return solara.Column(children=children)


# -------------------------------------------------------------------------- page ---

def model_params(default_scenario: str) -> dict:
    return {
        "scenario": {"type": "Select", "value": default_scenario, "label": "Scenario",
                     "values": builtin_names()},
        "seed": {"type": "InputText", "value": "0", "label": "Seed"},
        "export_regime": {"type": "Select", "value": "as in the scenario",
                          "label": "Export-control regime", "values": list(REGIMES)},
        "remote_access": {"type": "Select", "value": "as in the scenario",
                          "label": "Remote access (IaaS)", "values": list(REMOTE)},
        "enforcement": {"type": "SliderFloat", "value": 0.5, "label": "Leakage enforcement",
                        "min": 0.0, "max": 1.0, "step": 0.05},
        "shock_start": {"type": "Select", "value": "none", "label": "Foundry shock start",
                        "values": SHOCK_STARTS},
        "shock_depth": {"type": "SliderFloat", "value": 0.5, "label": "Shock: CoWoS output "
                        "multiplier", "min": 0.1, "max": 1.0, "step": 0.05},
        "shock_months": {"type": "SliderInt", "value": 9, "label": "Shock length [months]",
                         "min": 1, "max": 24, "step": 1},
        "demand_growth": {"type": "SliderFloat", "value": 0.3, "label": "Demand growth after "
                          "2026 [/yr]", "min": 0.0, "max": 1.0, "step": 0.05},
        "huawei_ramp": {"type": "SliderFloat", "value": 1.0, "label": "Huawei/SMIC capacity "
                        "multiplier", "min": 0.5, "max": 3.0, "step": 0.1},
    }


@solara.component
def RunStatus(model: MarketApp):
    """Where the run stands, on every tab (the sidebar): not started, running or finished.
    A component of its own, so a step redraws this line, not the whole page."""
    update_counter.get()                  # redraw after every step, like Mesa's own views
    if model.finished:
        return solara.Success(model.status(), icon=False, dense=True)
    return solara.Text(model.status())


DEFAULT_SCENARIO = os.environ.get("GPUMARKET_SCENARIO", "baseline")
MONTHS = int(os.environ["GPUMARKET_MONTHS"]) if os.environ.get("GPUMARKET_MONTHS") else None
COMPONENTS = [(PriceView, 0), (KeyFigures, 0), (ShareView, 1), (NetworkView, 2)]
#: Milliseconds between two steps while playing.
PLAY_INTERVAL_MS = 300


@solara.component
def Page():
    """One browser session: its own model (built on first render, rebuilt by Reset) and a
    flag that tells the model its session has gone, which ends a Play loop still running."""
    gone = solara.use_memo(threading.Event, [])
    params = solara.use_memo(lambda: {**model_params(DEFAULT_SCENARIO), "months": MONTHS,
                                      "session": gone}, [])
    first = solara.use_memo(lambda: MarketApp(scenario=DEFAULT_SCENARIO, shock_depth=0.5,
                                              months=MONTHS, session=gone), [])
    model = solara.use_reactive(first)
    solara.use_effect(lambda: gone.set, [])     # the cleanup runs when the session closes
    # Mesa 3.3 keeps every model alive (Agent._ids): let go of one once Reset replaces it or
    # the session closes, or the server grows with every session and every Reset
    solara.use_effect(lambda: functools.partial(release, model.value), [model.value])
    SolaraViz(model, components=COMPONENTS, model_params=params,
              name=f"gpumarket: {DEFAULT_SCENARIO}", play_interval=PLAY_INTERVAL_MS)
    with solara.Sidebar(), solara.Card("Run"):
        RunStatus(model.value)
