"""Plots of run outcomes with seaborn. Each function takes a tidy DataFrame (and optionally the
axes to draw on) and returns the matplotlib Figure; nothing is shown or saved here.

Figures are built with `matplotlib.figure.Figure` (no pyplot), so plotting needs no display
and holds no global state.
"""

from __future__ import annotations

import matplotlib.dates as mdates
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from market.world import HEADLINE_INSTRUMENT

#: Panels of the comparison chart: (title, how to pick the series from a run's tables).
TRAJECTORY_PANELS = (
    "H100e-hour price, US neocloud [USD]",
    "H100e-hour price, US hyperscaler [USD]",
    "China's share of installed H100e [%]",
    "China's labs abroad: diverted chips (12 months) + rented compute [H100e]",
)


def trajectories(frames: dict[str, pd.DataFrame], scenario: str) -> pd.DataFrame:
    """A run's comparison series as a long table: date, scenario, panel, value."""
    parts = []
    pi = frames["price_index"]
    for tier, panel in (("neocloud", TRAJECTORY_PANELS[0]), ("hyperscaler", TRAJECTORY_PANELS[1])):
        sel = pi[(pi["region"] == "US") & (pi["tier"] == tier)
                 & (pi["instrument"] == HEADLINE_INSTRUMENT[tier])]
        parts.append(pd.DataFrame({"date": sel["date"], "panel": panel,
                                   "value": sel["price_usd_per_h100e_hour"]}))
    c = frames["compute"]
    sel = c[c["nation"] == "China"]
    parts.append(pd.DataFrame({"date": sel["date"], "panel": TRAJECTORY_PANELS[2],
                               "value": 100 * sel["share"]}))
    f = frames["flows"]
    months = pd.DataFrame({"date": sorted(pi["date"].unique())})
    to_china = f[f["destination"] == "China"]

    def monthly(channel: str) -> pd.Series:
        got = to_china[to_china["channel"] == channel].groupby("date")["h100e"].sum()
        return months["date"].map(got).fillna(0.0)

    # diverted chips accumulate (trailing 12 months, a stock); rented compute is a stock
    abroad = monthly("diversion").rolling(12, min_periods=1).sum() + monthly("remote_access")
    parts.append(pd.DataFrame({"date": months["date"], "panel": TRAJECTORY_PANELS[3],
                               "value": abroad.to_numpy()}))
    out = pd.concat(parts, ignore_index=True)
    out.insert(1, "scenario", scenario)
    return out


def plot_trajectories(data: pd.DataFrame, axes: np.ndarray | None = None) -> Figure:
    """One panel per `panel` value, one line per `scenario`, month on the x-axis."""
    panels = list(dict.fromkeys(data["panel"]))
    if axes is None:
        fig = Figure(figsize=(12, 3.2 * ((len(panels) + 1) // 2)), layout="constrained")
        axes = np.atleast_1d(fig.subplots((len(panels) + 1) // 2, 2, squeeze=False)).ravel()
    else:
        axes = np.atleast_1d(axes).ravel()
        fig = axes[0].figure
    for ax, panel in zip(axes, panels):
        sns.lineplot(data=data[data["panel"] == panel], x="date", y="value", hue="scenario",
                     ax=ax, legend=ax is axes[0])
        ax.set_title(panel, fontsize=10)
        locator = mdates.AutoDateLocator()
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
        ax.set_xlabel("")
        ax.set_ylabel("")
        ax.grid(alpha=0.3)
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    return fig


def _date_axis(ax) -> None:
    locator = mdates.AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))


def fan_chart(data: pd.DataFrame, ax=None, title: str = "", ylabel: str = "",
              group: str | None = None) -> Figure:
    """Median with 50% and 90% bands across runs, by month.

    `data` has columns date, value and run_id (and `group`, to draw one fan per group, e.g.
    per lever option). Quantiles are per month across runs."""
    if ax is None:
        fig = Figure(figsize=(7, 3.6), layout="constrained")
        ax = fig.subplots()
    else:
        fig = ax.figure
    groups = [(None, data)] if group is None or group not in data else list(data.groupby(group))
    palette = sns.color_palette(n_colors=max(len(groups), 1))
    for color, (label, part) in zip(palette, groups):
        q = part.groupby("date")["value"].quantile([0.05, 0.25, 0.5, 0.75, 0.95]).unstack()
        ax.fill_between(q.index, q[0.05], q[0.95], color=color, alpha=0.15, linewidth=0,
                        label="90%" if label is None else None)
        ax.fill_between(q.index, q[0.25], q[0.75], color=color, alpha=0.3, linewidth=0,
                        label="50%" if label is None else None)
        sns.lineplot(x=q.index, y=q[0.5].to_numpy(), ax=ax, color=color,
                     label="median" if label is None else str(label))
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    _date_axis(ax)
    return fig


def sensitivity_bars(indices: pd.DataFrame, ax=None, title: str = "") -> Figure:
    """Horizontal bars of sensitivity indices with their confidence intervals: Sobol' S1 and
    ST, or Morris mu* (the table `analysis.sensitivity.analyze` returns)."""
    own = ax is None
    if own:
        fig = Figure(figsize=(10, 1.0 + 0.45 * len(indices)), layout="constrained")
        ax = fig.subplots()
    else:
        fig = ax.figure
    pairs = [("S1", "S1_conf"), ("ST", "ST_conf")] if "ST" in indices else \
        [("mu_star", "mu_star_conf")]
    long = pd.concat([pd.DataFrame({"input": indices.index, "index": name,
                                    "value": indices[name].to_numpy(),
                                    "conf": indices[conf].to_numpy()}) for name, conf in pairs])
    sns.barplot(data=long, y="input", x="value", hue="index", ax=ax, orient="h")
    for bar_container, (name, _) in zip(ax.containers, pairs):
        part = long[long["index"] == name]
        centers = [b.get_y() + b.get_height() / 2 for b in bar_container]
        ax.errorbar(part["value"], centers, xerr=part["conf"], fmt="none", ecolor="black",
                    elinewidth=0.8, capsize=2)
    if own:
        fig.suptitle(title, fontsize=10)
    else:
        ax.set_title(title, fontsize=10)
    ax.set_xlabel("index")
    ax.set_ylabel("")
    ax.grid(alpha=0.3, axis="x")
    return fig
