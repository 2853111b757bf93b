"""Key outcomes of a run at chosen dates, as a table for the terminal and for comparisons."""

from __future__ import annotations

import pandas as pd

from market.timeline import parse_month

#: Dates shown when none are asked for: the 2023 scarcity, the end of 2024, and the last month.
DEFAULT_DATES = ("2023-06", "2024-12")


def summary_dates(frames: dict[str, pd.DataFrame], dates: list[str] | None = None) -> list[str]:
    """The requested months that fall inside the run, plus its last month by default."""
    months = frames["price_index"]["date"].dt.strftime("%Y-%m")
    if months.empty:
        return []
    first, last = months.min(), months.max()
    wanted = list(dates) if dates else [*DEFAULT_DATES, last]
    inside = [d for d in wanted if first <= d <= last]
    return sorted(set(inside), key=parse_month)


def key_outcomes(frames: dict[str, pd.DataFrame], dates: list[str],
                 extended: bool = False) -> pd.DataFrame:
    """One row per outcome (with its unit), one column per date. `extended` adds vendor
    revenue, the largest completed training run by nation and leakage, for comparisons."""
    rows: dict[str, dict[str, float]] = {}

    def at(frame: pd.DataFrame, month: str) -> pd.DataFrame:
        return frame[frame["date"].dt.strftime("%Y-%m") == month]

    for month in dates:
        for r in at(frames["price_index"], month).itertuples():
            rows.setdefault(f"price {r.region} {r.tier} [USD/H100e-h]", {})[month] = \
                r.price_usd_per_h100e_hour
        for r in at(frames["compute"], month).itertuples():
            rows.setdefault(f"share of installed H100e {r.nation} [%]", {})[month] = 100 * r.share
        year = at(frames["vendors"], month)
        window = frames["vendors"][(frames["vendors"]["date"] <= pd.Timestamp(month + "-01"))
                                   & (frames["vendors"]["date"] > pd.Timestamp(month + "-01")
                                      - pd.DateOffset(months=12))]
        shipped = window.groupby("vendor")["shipped_h100e"].sum()
        total = shipped.sum()
        for vendor in year["vendor"]:
            rows.setdefault(f"vendor share, trailing 12 months {vendor} [%]", {})[month] = (
                100 * shipped.get(vendor, 0.0) / total if total > 0 else 0.0)
        if not extended:
            continue
        revenue = window.groupby("vendor")["revenue_usd"].sum()
        for vendor in year["vendor"]:
            rows.setdefault(f"vendor revenue, trailing 12 months {vendor} [USD B]", {})[month] = \
                revenue.get(vendor, 0.0) / 1e9
        for r in at(frames["compute"], month).itertuples():
            rows.setdefault(f"largest completed run {r.nation} [FLOP]", {})[month] = \
                r.frontier_run_flop
        flows = frames["flows"]
        recent = flows[(flows["date"] <= pd.Timestamp(month + "-01"))
                       & (flows["date"] > pd.Timestamp(month + "-01") - pd.DateOffset(months=12))]
        for channel, label in (("diversion", "chips diverted, trailing 12 months [H100e]"),
                               ("stockpiling", "chips stockpiled, trailing 12 months [H100e]")):
            rows.setdefault(label, {})[month] = float(
                recent.loc[recent["channel"] == channel, "h100e"].sum())
        remote = at(flows, month)
        rows.setdefault("compute China's labs rent abroad, this month [H100e]", {})[month] = float(
            remote.loc[(remote["channel"] == "remote_access")
                       & (remote["destination"] == "China"), "h100e"].sum())
    table = pd.DataFrame.from_dict(rows, orient="index")
    return table.reindex(columns=dates)


def _cell(label: str, value: float) -> str:
    if label.endswith("[FLOP]"):
        return f"{value:.2g}" if value > 0 else "-"
    if label.endswith("[H100e]"):
        return f"{value:,.0f}"
    digits = 2 if label.startswith("price") or label.endswith("[USD B]") else 1
    return f"{value:,.{digits}f}"


def comparison(frames_by_scenario: dict[str, dict[str, pd.DataFrame]],
               dates: list[str]) -> pd.DataFrame:
    """Outcomes side by side: one row per outcome, columns "date scenario"."""
    parts = []
    for name, frames in frames_by_scenario.items():
        table = key_outcomes(frames, dates, extended=True)
        table.columns = [f"{d} {name}" for d in table.columns]
        parts.append(table)
    joined = pd.concat(parts, axis=1, sort=False)
    order = [f"{d} {name}" for d in dates for name in frames_by_scenario]
    return joined.reindex(columns=order)


def format_comparison(table: pd.DataFrame, scenarios: list[str]) -> str:
    """Fixed-width text with a date header over the scenario columns."""
    if table.empty:
        return "(no months to show)"
    width = max(len(i) for i in table.index)
    col = max(12, *(len(s) + 1 for s in scenarios))
    dates = list(dict.fromkeys(c.split(" ", 1)[0] for c in table.columns))
    lines = [" " * width + "".join(f"{d:^{col * len(scenarios)}}" for d in dates),
             " " * width + "".join(f"{c.split(' ', 1)[1]:>{col}}" for c in table.columns)]
    for label, values in table.iterrows():
        cells = ("" if pd.isna(v) else _cell(label, v) for v in values)
        lines.append(f"{label:<{width}}" + "".join(f"{c:>{col}}" for c in cells))
    return "\n".join(lines)


def format_outcomes(table: pd.DataFrame) -> str:
    """Fixed-width text: prices with 2 decimals, shares with 1."""
    if table.empty:
        return "(no months to show)"
    width = max(len(i) for i in table.index)
    header = " " * width + "".join(f"{c:>10}" for c in table.columns)
    lines = [header]
    for label, values in table.iterrows():
        cells = ("" if pd.isna(v) else _cell(label, v) for v in values)
        lines.append(f"{label:<{width}}" + "".join(f"{c:>10}" for c in cells))
    return "\n".join(lines)

