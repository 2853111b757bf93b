"""Altair charts of the web app's frames (`analysis.webapp.frames`): time charts with the
reference run as a ghost line, the scenario's events as named markers and optional ensemble
bands, a stacked-share chart and the trade network with fixed positions by role.

Every chart fills its container's width, keeps its legend below the plot area, shows the
date, the value and its unit in a tooltip, and offers "Save as PNG/SVG" in its menu
(vega-embed's export actions; the others are switched off: they need the internet).
"""

from __future__ import annotations

from collections.abc import Callable

import altair as alt
import pandas as pd

from analysis.webapp.frames import REFERENCE, THIS_RUN

HEIGHT_PX = 300
#: The reference run's line: dashed, faint ("ghost").
GHOST_DASH, GHOST_OPACITY = [5, 4], 0.45
EVENT_COLOUR = "#7f7f7f"


def _records(frame: pd.DataFrame) -> list[dict]:
    """Rows as JSON-ready dicts: months as ISO dates, NaN as null."""
    out = frame.copy()
    for column in out.columns:
        if pd.api.types.is_datetime64_any_dtype(out[column]):
            out[column] = out[column].dt.strftime("%Y-%m-%d")
    out = out.astype(object).where(out.notna(), None)
    return out.to_dict("records")


class Data:
    """The datasets of one chart, named d0, d1, ... in the order the builder adds them. The
    chart refers to them by name only, so the chart itself stays the same from one month to
    the next: it is built once (Altair's objects cost about 20 ms a chart) and kept, and the
    browser, seeing the same chart with new rows, swaps the rows into the chart it has
    compiled."""

    def __init__(self):
        self.sets: dict[str, list[dict]] = {}

    def add(self, frame: pd.DataFrame | None) -> str | None:
        if frame is None:
            return None
        name = f"d{len(self.sets)}"
        self.sets[name] = _records(frame)
        return name


def _source(name: str) -> alt.Chart:
    return alt.Chart(alt.NamedData(name=name))


#: Built charts (their Vega-Lite dicts without data) by what shapes them; bounded.
_BUILT: dict[tuple, dict] = {}
_BUILT_MAX = 256


class Spec:
    """A chart's datasets and how to build the chart; `to_dict()` is the Vega-Lite spec."""

    def __init__(self, key: tuple, data: Data, build: Callable[[], alt.TopLevelMixin],
                 filename: str):
        self.key = (key, tuple(data.sets), filename)
        self.data, self.build, self.filename = data, build, filename

    def to_dict(self) -> dict:
        skeleton = _BUILT.get(self.key)
        if skeleton is None:
            chart = self.build().properties(usermeta={"embedOptions": {
                "actions": {"export": True, "source": False, "compiled": False,
                            "editor": False},
                "downloadFileName": self.filename}})
            skeleton = chart.to_dict(validate=False)
            if len(_BUILT) >= _BUILT_MAX:
                _BUILT.clear()
            _BUILT[self.key] = skeleton
        return {**skeleton, "datasets": self.data.sets}


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


def _events(events: pd.DataFrame | None) -> pd.DataFrame | None:
    return None if events is None or events.empty else events


def event_layers(name: str | None, span) -> list[alt.Chart]:
    """A dotted rule at each event's month, its short name written down from the top."""
    if name is None:
        return []
    base = _source(name)
    tip = [alt.Tooltip("date:T", format="%Y-%m", title="month"),
           alt.Tooltip("event:N", title="event"), alt.Tooltip("note:N", title="note")]
    rules = base.mark_rule(color=EVENT_COLOUR, strokeDash=[2, 3], strokeWidth=1).encode(
        x=_x(span), tooltip=tip)
    # rotated labels read upwards; lane 0 sits left of its line, lane 1 (a marker close
    # after another) right of it
    labels = [base.transform_filter(f"datum.lane == {lane}").mark_text(
        angle=270, align="right", baseline=baseline, dx=-2, dy=dy, fontSize=10,
        color=EVENT_COLOUR).encode(x=_x(span), y=alt.value(0), text="event:N", tooltip=tip)
        for lane, baseline, dy in ((0, "bottom", -2), (1, "top", 2))]
    return [rules, *labels]


def time_chart(live: pd.DataFrame, y: str, series: str, *, title: str, unit: str, span,
               filename: str, reference: pd.DataFrame | None = None,
               events: pd.DataFrame | None = None, bands: pd.DataFrame | None = None,
               fmt: str = ",.2f", scale: float = 1.0, log: bool = False,
               dash: str | None = None, height: int = HEIGHT_PX) -> Spec:
    """Lines of `y` by `series` over the run's `span`; the reference run's lines dashed and
    faint beside them; `bands` (columns date, p5, p25, p75, p95) shaded under them. Without a
    reference, `dash` names a second field told apart by the lines' dashes."""
    dash = dash if dash and reference is None else None
    keep = ["date", y, series] + ([dash] if dash else [])
    data = live[keep].assign(run=THIS_RUN)
    if reference is not None:
        data = pd.concat([data, reference[keep].assign(run=REFERENCE)], ignore_index=True)
    data = data.assign(value=data[y] * scale).drop(columns=[y])
    if log:      # a zero (a nation with nothing installed yet) has no place on a log axis
        data.loc[data["value"] <= 0, "value"] = float("nan")
    # no data yet (step 0): a fixed y domain and no colour scale, or vega draws nothing
    nothing = bool(data["value"].notna().sum() == 0)
    # a line needs two months: until the run has them, its months are drawn as points
    few = bool(data.loc[data["run"] == THIS_RUN, "date"].nunique() < 2)
    if bands is not None and not bands.empty:
        bands = bands[["date", "p5", "p25", "p75", "p95"]].assign(
            **{c: bands[c] * scale for c in ("p5", "p25", "p75", "p95")})
    else:
        bands = None
    d = Data()
    ghost = d.add(data[data["run"] == REFERENCE] if reference is not None else None)
    line = d.add(data[data["run"] == THIS_RUN])
    band = d.add(bands)
    marks = d.add(_events(events))
    runs = [THIS_RUN, REFERENCE] if ghost else [THIS_RUN]

    def build() -> alt.TopLevelMixin:
        empty = {"domain": [1, 10] if log else [0, 1]} if nothing and not band else {}
        yscale = alt.Scale(type="log", **empty) if log else alt.Scale(zero=False, **empty)
        if nothing:
            stroke = alt.Undefined
        elif dash:
            stroke = alt.StrokeDash(f"{dash}:N", title=None, legend=alt.Legend(orient="bottom"))
        else:
            stroke = alt.StrokeDash("run:N", title=None, scale=alt.Scale(
                domain=runs, range=[[1, 0], GHOST_DASH][:len(runs)]),
                legend=alt.Legend(orient="bottom") if ghost else None)
        encoding = dict(
            x=_x(span), y=alt.Y("value:Q", title=unit, scale=yscale),
            color=_colour(series, 4, nothing), strokeDash=stroke,
            tooltip=[alt.Tooltip("date:T", format="%Y-%m", title="month"),
                     alt.Tooltip(f"{series}:N", title="series"),
                     alt.Tooltip(f"{dash}:N" if dash else "run:N",
                                 title="what" if dash else "run"),
                     alt.Tooltip("value:Q", format=fmt, title=unit)])
        layers = []
        if band:
            layers += [_source(band).mark_area(opacity=0.12, color="#1f77b4", clip=True).encode(
                           x=_x(span), y="p5:Q", y2="p95:Q",
                           tooltip=[alt.Tooltip("date:T", format="%Y-%m", title="month"),
                                    alt.Tooltip("p5:Q", format=fmt, title="ensemble 5%"),
                                    alt.Tooltip("p95:Q", format=fmt, title="ensemble 95%")]),
                       _source(band).mark_area(opacity=0.22, color="#1f77b4", clip=True).encode(
                           x=_x(span), y="p25:Q", y2="p75:Q")]
        # the ghost is a layer of its own with a fixed opacity: an opacity *encoded* from a
        # nominal field draws no line at all on vega's canvas renderer
        if ghost:
            layers.append(_source(ghost).mark_line(strokeWidth=1.6, opacity=GHOST_OPACITY)
                          .encode(**encoding))
        layers.append(_source(line).mark_line(strokeWidth=1.8, point=few).encode(**encoding))
        layers += event_layers(marks, span)
        return alt.layer(*layers).properties(title=title, width="container", height=height)

    # everything build() reads besides the rows: which layers exist, and the file name
    key = ("time", y, series, title, unit, tuple(span), fmt, scale, log, dash, height, nothing,
           few, ghost is not None, band is not None, marks is not None)
    return Spec(key, d, build, filename)


def stacked_share_chart(live: pd.DataFrame, y: str, series: str, *, title: str, span,
                        filename: str, events: pd.DataFrame | None = None,
                        height: int = HEIGHT_PX) -> Spec:
    """`y` (a share in [0, 1]) stacked by `series`, in %."""
    d = Data()
    area_data = d.add(live[["date", series]].assign(percent=live[y] * 100.0))
    marks = d.add(_events(events))
    empty = live.empty

    def build() -> alt.TopLevelMixin:
        area = _source(area_data).mark_area(opacity=0.85).encode(
            x=_x(span),
            y=alt.Y("percent:Q", title="%", stack="zero", scale=alt.Scale(domain=[0, 100])),
            color=_colour(series, 8, empty),
            order=alt.Order(f"{series}:N"),
            tooltip=[alt.Tooltip("date:T", format="%Y-%m", title="month"),
                     alt.Tooltip(f"{series}:N", title=series),
                     alt.Tooltip("percent:Q", format=".1f", title="%")])
        return alt.layer(area, *event_layers(marks, span)).properties(
            title=title, width="container", height=height)

    return Spec(("share", series, title, tuple(span), height, empty, marks is not None), d,
                build, filename)


def stacked_bar_chart(live: pd.DataFrame, y: str, series: str, *, title: str, unit: str, span,
                      filename: str, events: pd.DataFrame | None = None,
                      height: int = HEIGHT_PX) -> Spec:
    """Monthly `y` stacked by `series` (bars)."""
    d = Data()
    bar_data = d.add(live[["date", y, series]])
    marks = d.add(_events(events))
    empty = live.empty

    def build() -> alt.TopLevelMixin:
        bars = _source(bar_data).mark_bar().encode(
            x=_x(span),
            y=alt.Y(f"sum({y}):Q", title=unit, stack="zero",
                    scale=alt.Scale(domain=[0, 1]) if empty else alt.Undefined),
            color=_colour(series, 6, empty),
            tooltip=[alt.Tooltip("date:T", format="%Y-%m", title="month"),
                     alt.Tooltip(f"{series}:N", title="what"),
                     alt.Tooltip(f"sum({y}):Q", format=",.0f", title=unit)])
        return alt.layer(bars, *event_layers(marks, span)).properties(
            title=title, width="container", height=height)

    return Spec(("bars", y, series, title, unit, tuple(span), height, empty,
                 marks is not None), d, build, filename)


def _size_label(h: float) -> str:
    return f"{h / 1e6:.2f}M" if h >= 1e6 else f"{h / 1e3:.1f}k" if h >= 1e3 else f"{h:.0f}"


FLOW_COLOURS = {"chips": "#2ca02c", "GPU-hours sold": "#7f7f7f", "chips diverted": "#d62728",
                "rented abroad": "#ff7f0e"}
ROLE_COLOURS = {"vendor": "#2ca02c", "nation": "#1f77b4", "cloud": "#9467bd"}


def network_chart(nodes: pd.DataFrame, edges: pd.DataFrame, *, title: str, filename: str,
                  labelled: int = 14, height: int = 520) -> Spec:
    """Flows as edges whose width grows with their size in H100e (labelled on the largest
    `labelled`), leakage dashed; nodes at fixed positions by role."""
    edges = edges.assign(label=[_size_label(h) for h in edges["h100e"]],
                         kind=["leakage" if leak else "legal" for leak in edges["leakage"]])
    d = Data()
    edge_data, label_data, node_data = d.add(edges), d.add(edges.head(labelled)), d.add(nodes)

    def build() -> alt.TopLevelMixin:
        xs = alt.Scale(domain=[-0.25, 2.25])
        ys = alt.Scale(domain=[-0.05, 1.05])

        def xy(x: str, y: str) -> dict:
            return {"x": alt.X(f"{x}:Q", scale=xs, axis=None),
                    "y": alt.Y(f"{y}:Q", scale=ys, axis=None)}

        tip = [alt.Tooltip("source:N", title="from"), alt.Tooltip("target:N", title="to"),
               alt.Tooltip("flow:N", title="flow"),
               alt.Tooltip("h100e:Q", format=",.0f", title="H100e"),
           alt.Tooltip("measure:N", title="measured as")]
        lines = _source(edge_data).mark_rule(opacity=0.75).encode(
            **xy("x", "y"), x2="x2:Q", y2="y2:Q",
            strokeWidth=alt.StrokeWidth("h100e:Q", title="H100e", scale=alt.Scale(
                type="sqrt", zero=True, range=[0.5, 14]), legend=alt.Legend(orient="bottom")),
            color=alt.Color("flow:N", title=None, scale=alt.Scale(
                domain=list(FLOW_COLOURS), range=list(FLOW_COLOURS.values())),
                legend=alt.Legend(orient="bottom")),
            strokeDash=alt.StrokeDash("kind:N", title=None, scale=alt.Scale(
                domain=["legal", "leakage"], range=[[1, 0], [6, 4]]),
                legend=alt.Legend(orient="bottom")),
            tooltip=tip)
        labels = _source(label_data).mark_text(fontSize=11, dy=-6, color="#333").encode(
            **xy("xm", "ym"), text="label:N", tooltip=tip)
        dots = _source(node_data).mark_circle(size=420, opacity=1).encode(
            **xy("x", "y"),
            color=alt.Color("role:N", title=None, scale=alt.Scale(
                domain=list(ROLE_COLOURS), range=list(ROLE_COLOURS.values())),
                legend=alt.Legend(orient="bottom")),
            tooltip=[alt.Tooltip("node:N", title="node"), alt.Tooltip("role:N", title="role")])
        names = _source(node_data).mark_text(fontSize=12, fontWeight="bold", dy=-16).encode(
            **xy("x", "y"), text="node:N")
        return alt.layer(lines, labels, dots, names).resolve_scale(
            color="independent").properties(title=title, width="container",
                                            height=height).configure_view(stroke=None)

    return Spec(("network", title, labelled, height), d, build, filename)
