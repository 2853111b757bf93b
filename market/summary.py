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


def key_outcomes(frames: dict[str, pd.DataFrame], dates: list[str]) -> pd.DataFrame:
    """One row per outcome (with its unit), one column per date."""
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
    table = pd.DataFrame.from_dict(rows, orient="index")
    return table.reindex(columns=dates)


def format_outcomes(table: pd.DataFrame) -> str:
    """Fixed-width text: prices with 2 decimals, shares with 1."""
    if table.empty:
        return "(no months to show)"
    width = max(len(i) for i in table.index)
    header = " " * width + "".join(f"{c:>10}" for c in table.columns)
    lines = [header]
    for label, values in table.iterrows():
        digits = 2 if label.startswith("price") else 1
        cells = ("" if pd.isna(v) else f"{v:,.{digits}f}" for v in values)
        lines.append(f"{label:<{width}}" + "".join(f"{c:>10}" for c in cells))
    return "\n".join(lines)

