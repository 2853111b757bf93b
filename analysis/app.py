"""The gpumarket web app: the market model in the browser, with policy levers, a reference run
and named tabs (Prices, Compute & shares, China, Trade network, Policy timeline).

Serve it with `gpumarket viz [SCENARIO] [--ensemble DIR]` (or `solara run analysis/app.py`).
The app imports the model, never the reverse. It is built from Mesa's visualisation protocol
(the model is a `mesa.Model`; views redraw on Mesa's update counter) with its own layout:
Mesa 3.3's SolaraViz names its tabs "Page 0, 1, ..." and gives each view half a draggable
grid, and its sliders hide their values; here each tab has a name, each chart the page's
width, and the sidebar shows every lever's value.

Each browser session (tab) gets its own model, built when the page first renders; a session
that goes away stops its run (Play ends at the next step). A run ends after its last month:
the counter stops at the run's length, Step, Play and Run to end are disabled and the sidebar
says "finished".

Environment: GPUMARKET_SCENARIO (the scenario selected at start), GPUMARKET_MONTHS (run only
the first M months), GPUMARKET_ENSEMBLE (a Monte Carlo batch directory whose 50% and 90% bands
are drawn under the live run).
"""

from __future__ import annotations

import functools
import os
import threading

import solara
import solara.lab

from analysis.webapp.controls import Controls
from analysis.webapp.run import MarketApp
from analysis.webapp.views import TAB_TITLES, TABS, KeyFigures
from market.outputs import release

DEFAULT_SCENARIO = os.environ.get("GPUMARKET_SCENARIO", "baseline")
MONTHS = int(os.environ["GPUMARKET_MONTHS"]) if os.environ.get("GPUMARKET_MONTHS") else None


@solara.component
def Page():
    """One browser session: its own model (built on first render, rebuilt by Reset), the
    levers it will be rebuilt with, and a flag that tells the model its session has gone,
    which ends a Play loop still running."""
    gone = solara.use_memo(threading.Event, [])

    def build(values: dict) -> MarketApp:
        values = dict(values)
        return MarketApp(values.pop("scenario"), months=MONTHS, session=gone, **values)

    first = solara.use_memo(lambda: build({"scenario": DEFAULT_SCENARIO}), [])
    model = solara.use_reactive(first)
    pending = solara.use_reactive(dict(first.levers))
    tab, set_tab = solara.use_state(0)
    solara.use_effect(lambda: gone.set, [])     # the cleanup runs when the session closes
    # Mesa 3.3 keeps every model alive (Agent._ids): let go of one once Reset replaces it or
    # the session closes, or the server grows with every session and every Reset
    solara.use_effect(lambda: functools.partial(release, model.value), [model.value])
    m = model.value
    solara.Title(f"gpumarket: {m.scenario_name}")
    with solara.AppBar():
        solara.AppBarTitle(f"gpumarket: {m.scenario_name}, seed {m.seed_value}")
    with solara.Sidebar():
        Controls(model, pending, build, gone)
    with solara.lab.Tabs(value=tab, on_value=set_tab):
        for title in TAB_TITLES:
            solara.lab.Tab(title)
    with solara.Column(style={"width": "100%"}):
        TABS[tab](m)
        if tab == 0:
            KeyFigures(m)
