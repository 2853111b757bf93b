"""Altair charts of the web app's frames (`analysis.webapp.frames`): time charts with the
reference run as a ghost line, the scenario's events as named markers and optional ensemble
bands, a stacked-share chart and the trade network with fixed positions by role.

Every chart fills its container's width, keeps its legend below the plot area, shows the
date, the value and its unit in a tooltip, and offers "Save as PNG/SVG" in its menu
(vega-embed's export actions; the others are switched off: they need the internet).
"""

from __future__ import annotations

import altair as alt
import pandas as pd

from analysis.webapp.frames import REFERENCE, THIS_RUN

HEIGHT_PX = 300
#: The reference run's line: dashed, faint ("ghost").
GHOST_DASH, GHOST_OPACITY = [5, 4], 0.45
EVENT_COLOUR = "#7f7f7f"


def _embed(chart: alt.TopLevelMixin, filename: str) -> alt.TopLevelMixin:
    return chart.properties(usermeta={"embedOptions": {
        "actions": {"export": True, "source": False, "compiled": False, "editor": False},
        "downloadFileName": filename}})


def _x(span) -> alt.X:
    return alt.X("date:T", title=None, scale=alt.Scale(domain=[s.isoformat() for s in span]),
                 axis=alt.Axis(format="%Y-%m", labelAngle=0, tickCount="year"))


def _colour(series: str, columns: int, empty: bool):
    """Colour by `series`, legend below the plot; none without data (step 0): a colour scale
    with an empty domain makes vega draw nothing at all, axes included."""
    if empty:
        return alt.Undefined
    return alt.Color(f"{series}:N", title=None,
                     legend=alt.Legend(orient="bottom", columns=columns, labelLimit=260))


def event_layers(events: pd.DataFrame, span) -> list[alt.Chart]:
    """A dotted rule at each event's month, its short name written down from the top."""
    if events is None or events.empty:
        return []
    base = alt.Chart(events)
    tip = [alt.Tooltip("date:T", format="%Y-%m", title="month"),
           alt.Tooltip("event:N", title="event"), alt.Tooltip("note:N", title="note")]
    rules = base.mark_rule(color=EVENT_COLOUR, strokeDash=[2, 3], strokeWidth=1).encode(
        x=_x(span), tooltip=tip)
    labels = base.mark_text(angle=270, align="right", baseline="bottom", dx=-4, dy=-2,
                            fontSize=10, color=EVENT_COLOUR).encode(
        x=_x(span), y=alt.value(0), text="event:N", tooltip=tip)
    return [rules, labels]


def time_chart(live: pd.DataFrame, y: str, series: str, *, title: str, unit: str, span,
               filename: str, reference: pd.DataFrame | None = None,
               events: pd.DataFrame | None = None, bands: pd.DataFrame | None = None,
               fmt: str = ",.2f", scale: float = 1.0, log: bool = False,
               dash: str | None = None, height: int = HEIGHT_PX) -> alt.TopLevelMixin:
    """Lines of `y` by `series` over the run's `span`; the reference run's lines dashed and
    faint beside them; `bands` (columns date, p5, p25, p75, p95) shaded under them. Without a
    reference, `dash` names a second field told apart by the lines' dashes."""
    keep = ["date", y, series] + ([dash] if dash and reference is None else [])
    data = live[keep].assign(run=THIS_RUN)
    if reference is not None:
        data = pd.concat([data, reference[keep].assign(run=REFERENCE)], ignore_index=True)
    data = data.assign(value=data[y] * scale)
    # no data yet (step 0): a fixed y domain, or vega finds no extent and draws nothing
    empty = dict(domain=[1, 10] if log else [0, 1]) if data["value"].notna().sum() == 0 \
        else {}
    yscale = alt.Scale(type="log", **empty) if log else alt.Scale(zero=False, **empty)
    runs = [THIS_RUN, REFERENCE] if reference is not None else [THIS_RUN]
    nothing = data["value"].notna().sum() == 0
    encoding = dict(
        x=_x(span),
        y=alt.Y("value:Q", title=unit, scale=yscale),
        color=_colour(series, 4, nothing),
        strokeDash=alt.Undefined if nothing else (alt.StrokeDash(f"{dash}:N", title=None, legend=alt.Legend(orient="bottom"))
                    if dash and reference is None else
                    alt.StrokeDash("run:N", title=None, scale=alt.Scale(
                        domain=runs, range=[[1, 0], GHOST_DASH][:len(runs)]),
                        legend=alt.Legend(orient="bottom") if reference is not None
                        else None)),
        tooltip=[alt.Tooltip("date:T", format="%Y-%m", title="month"),
                 alt.Tooltip(f"{series}:N", title="series"),
                 alt.Tooltip(f"{dash}:N" if dash and reference is None else "run:N",
                             title="what" if dash and reference is None else "run"),
                 alt.Tooltip("value:Q", format=fmt, title=unit)])
    # the ghost is a layer of its own with a fixed opacity: an opacity *encoded* from a
    # nominal field draws no line at all on vega's canvas renderer
    lines = [alt.Chart(data[data["run"] == THIS_RUN]).mark_line(strokeWidth=1.8).encode(
        **encoding)]
    if reference is not None:
        lines.insert(0, alt.Chart(data[data["run"] == REFERENCE]).mark_line(
            strokeWidth=1.6, opacity=GHOST_OPACITY).encode(**encoding))
    layers = []
    if bands is not None and not bands.empty:
        b = bands.assign(**{c: bands[c] * scale for c in ("p5", "p25", "p75", "p95")})
        layers += [alt.Chart(b).mark_area(opacity=0.12, color="#1f77b4").encode(
                       x=_x(span), y="p5:Q", y2="p95:Q",
                       tooltip=[alt.Tooltip("date:T", format="%Y-%m", title="month"),
                                alt.Tooltip("p5:Q", format=fmt, title="ensemble 5%"),
                                alt.Tooltip("p95:Q", format=fmt, title="ensemble 95%")]),
                   alt.Chart(b).mark_area(opacity=0.22, color="#1f77b4").encode(
                       x=_x(span), y="p25:Q", y2="p75:Q")]
    layers += [*lines, *event_layers(events, span)]
    chart = alt.layer(*layers).properties(title=title, width="container", height=height)
    return _embed(chart, filename)


def stacked_share_chart(live: pd.DataFrame, y: str, series: str, *, title: str, span,
                        filename: str, events: pd.DataFrame | None = None,
                        height: int = HEIGHT_PX) -> alt.TopLevelMixin:
    """`y` (a share in [0, 1]) stacked by `series`, in %."""
    data = live[["date", y, series]].assign(percent=live[y] * 100.0)
    area = alt.Chart(data).mark_area(opacity=0.85).encode(
        x=_x(span),
        y=alt.Y("percent:Q", title="%", stack="zero", scale=alt.Scale(domain=[0, 100])),
        color=_colour(series, 8, live.empty),
        order=alt.Order(f"{series}:N"),
        tooltip=[alt.Tooltip("date:T", format="%Y-%m", title="month"),
                 alt.Tooltip(f"{series}:N", title=series),
                 alt.Tooltip("percent:Q", format=".1f", title="%")])
    chart = alt.layer(area, *event_layers(events, span)).properties(
        title=title, width="container", height=height)
    return _embed(chart, filename)


def stacked_bar_chart(live: pd.DataFrame, y: str, series: str, *, title: str, unit: str, span,
                      filename: str, events: pd.DataFrame | None = None,
                      height: int = HEIGHT_PX) -> alt.TopLevelMixin:
    """Monthly `y` stacked by `series` (bars)."""
    bars = alt.Chart(live).mark_bar().encode(
        x=_x(span),
        y=alt.Y(f"sum({y}):Q", title=unit, stack="zero",
                scale=alt.Scale(domain=[0, 1]) if live.empty else alt.Undefined),
        color=_colour(series, 6, live.empty),
        tooltip=[alt.Tooltip("date:T", format="%Y-%m", title="month"),
                 alt.Tooltip(f"{series}:N", title="what"),
                 alt.Tooltip(f"sum({y}):Q", format=",.0f", title=unit)])
    chart = alt.layer(bars, *event_layers(events, span)).properties(
        title=title, width="container", height=height)
    return _embed(chart, filename)


def _size_label(h: float) -> str:
    return f"{h / 1e6:.2f}M" if h >= 1e6 else f"{h / 1e3:.1f}k" if h >= 1e3 else f"{h:.0f}"


FLOW_COLOURS = {"chips": "#2ca02c", "GPU-hours sold": "#7f7f7f", "chips diverted": "#d62728",
                "rented abroad": "#ff7f0e"}
ROLE_COLOURS = {"vendor": "#2ca02c", "nation": "#1f77b4", "cloud": "#9467bd"}


def network_chart(nodes: pd.DataFrame, edges: pd.DataFrame, *, title: str, filename: str,
                  labelled: int = 14, height: int = 520) -> alt.TopLevelMixin:
    """Flows as edges whose width grows with their size in H100e (labelled on the largest
    `labelled`), leakage dashed; nodes at fixed positions by role."""
    edges = edges.assign(label=[_size_label(h) for h in edges["h100e"]],
                         kind=["leakage" if leak else "legal" for leak in edges["leakage"]])
    axis = dict(axis=None)
    xs = alt.Scale(domain=[-0.25, 2.25])
    ys = alt.Scale(domain=[-0.05, 1.05])
    tip = [alt.Tooltip("source:N", title="from"), alt.Tooltip("target:N", title="to"),
           alt.Tooltip("flow:N", title="flow"),
           alt.Tooltip("h100e:Q", format=",.0f", title="H100e (12 months)")]
    top = max((edges["h100e"].max() if len(edges) else 1.0), 1.0)
    lines = alt.Chart(edges).mark_rule(opacity=0.75).encode(
        x=alt.X("x:Q", scale=xs, **axis), y=alt.Y("y:Q", scale=ys, **axis),
        x2="x2:Q", y2="y2:Q",
        strokeWidth=alt.StrokeWidth("h100e:Q", title="H100e",
                                    scale=alt.Scale(type="sqrt", domain=[0, top],
                                                    range=[0.5, 14]),
                                    legend=alt.Legend(orient="bottom")),
        color=alt.Color("flow:N", title=None, scale=alt.Scale(
            domain=list(FLOW_COLOURS), range=list(FLOW_COLOURS.values())),
            legend=alt.Legend(orient="bottom")),
        strokeDash=alt.StrokeDash("kind:N", title=None, scale=alt.Scale(
            domain=["legal", "leakage"], range=[[1, 0], [6, 4]]),
            legend=alt.Legend(orient="bottom")),
        tooltip=tip)
    labels = alt.Chart(edges.head(labelled)).mark_text(
        fontSize=11, dy=-6, color="#333").encode(
        x=alt.X("xm:Q", scale=xs, **axis), y=alt.Y("ym:Q", scale=ys, **axis), text="label:N",
        tooltip=tip)
    dots = alt.Chart(nodes).mark_circle(size=420, opacity=1).encode(
        x=alt.X("x:Q", scale=xs, **axis), y=alt.Y("y:Q", scale=ys, **axis),
        color=alt.Color("role:N", title=None, scale=alt.Scale(
            domain=list(ROLE_COLOURS), range=list(ROLE_COLOURS.values())),
            legend=alt.Legend(orient="bottom")),
        tooltip=[alt.Tooltip("node:N", title="node"), alt.Tooltip("role:N", title="role")])
    names = alt.Chart(nodes).mark_text(fontSize=12, fontWeight="bold", dy=-16).encode(
        x=alt.X("x:Q", scale=xs, **axis), y=alt.Y("y:Q", scale=ys, **axis), text="node:N")
    chart = alt.layer(lines, labels, dots, names).resolve_scale(color="independent").properties(
        title=title, width="container", height=height)
    return _embed(chart.configure_view(stroke=None), filename)
