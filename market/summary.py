"""Key outcomes of a run at chosen dates, as a table for the terminal and for comparisons.

Price cells that are not prices set by trade are flagged:

- `input_price_levels(scenario)` lists the prices the scenario itself states [USD per
  H100e-hour]: the reference price that measures potential demand, the same times the
  hyperscaler premium, and the remote-access friction. Prices come out of the clearing; one
  that equals an input says the market did not set it.
- `price_flag(price, levels, traded_h100e_hours, previous=...)` judges one cell (on an input
  level this month and, where known, the month before); `price_flags(frames, scenario,
  dates)` every (region, tier, instrument) cell of a run's `price_index` table.
- `MARKERS` and `flag_note(kinds)` give the footnote marker of each flag and the one line that
  explains the markers a table shows.
"""

from __future__ import annotations

import math

import pandas as pd

from market.timeline import parse_month

#: Relative distance under which a price counts as equal to an input level [-] (0.5%: the
#: table prints two decimals).
INPUT_LEVEL_TOLERANCE = 0.005
#: Footnote marker of each flag.
MARKERS = {"input_level": "*", "no_trades": "#"}
#: What each flag means, for the line under a table.
FLAG_NOTES = {
    "input_level": "sits on a price input of the scenario (within 0.5%, that month and the "
                   "one before), not a price where supply meets demand",
    "no_trades": "no compute traded that month in that tier",
    "blank": "blank: no cloud of that tier offered compute there that month",
}

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


def input_price_levels(scenario) -> list[float]:
    """Prices the scenario states as inputs, sorted [USD per H100e-hour]: the reference price
    of potential demand (`market.reference_price_usd_per_h100e_hour`), it times
    `market.hyperscaler_wtp_premium`, and `market.remote_friction_usd_per_h100e_hour`."""
    m = scenario.market
    levels = {m.reference_price_usd_per_h100e_hour,
              m.reference_price_usd_per_h100e_hour * m.hyperscaler_wtp_premium,
              m.remote_friction_usd_per_h100e_hour}
    return sorted(v for v in levels if v > 0)


def price_flag(price: float, levels: list[float], traded_h100e_hours: float | None,
               tolerance: float = INPUT_LEVEL_TOLERANCE,
               previous: float | None = None) -> str | None:
    """Flag of one price cell: "blank" (no price), "no_trades" (nothing traded in the tier),
    "input_level" (within `tolerance`, relative, of one of `levels` [USD per H100e-hour],
    and, when the month before's price `previous` is given, that one too: a price that sits
    on an input, not one passing through it) or None (a price set by trade)."""
    if price is None or not math.isfinite(price):
        return "blank"
    if traded_h100e_hours is not None and traded_h100e_hours <= 0:
        return "no_trades"

    def near(level, value):
        return value is not None and math.isfinite(value) \
            and abs(value - level) <= tolerance * level
    if any(near(level, price) and (previous is None or near(level, previous))
           for level in levels):
        return "input_level"
    return None


def _month_before(month: str) -> str:
    m = parse_month(month) - 1
    return f"{m // 12:04d}-{m % 12 + 1:02d}"


def traded_volume(frames: dict[str, pd.DataFrame]) -> pd.Series:
    """H100e-hours sold per (month YYYY-MM, region, tier), from the `clouds` table."""
    clouds = frames["clouds"]
    month = clouds["date"].dt.strftime("%Y-%m")
    return clouds.groupby([month, clouds["region"], clouds["tier"]])["sold_h100e_hours"].sum()


def price_flags(frames: dict[str, pd.DataFrame], scenario, dates: list[str]) -> pd.DataFrame:
    """Flag of every price index cell: index (region, tier, instrument) of the run's markets,
    one column per month (YYYY-MM), values as `price_flag` returns them ("" for None)."""
    pi = frames["price_index"]
    month = pi["date"].dt.strftime("%Y-%m")
    price = pi.set_index([month, pi["region"], pi["tier"], pi["instrument"]])[
        "price_usd_per_h100e_hour"]
    volume = traded_volume(frames)
    levels = input_price_levels(scenario)
    markets = sorted(set(zip(pi["region"], pi["tier"], pi["instrument"])))
    cells = {}
    for d in dates:
        for region, tier, instrument in markets:
            p = price.get((d, region, tier, instrument), float("nan"))
            before = price.get((_month_before(d), region, tier, instrument))
            flag = price_flag(float(p), levels, float(volume.get((d, region, tier), 0.0)),
                              previous=None if before is None else float(before))
            cells.setdefault((region, tier, instrument), {})[d] = flag or ""
    table = pd.DataFrame.from_dict(cells, orient="index").reindex(columns=dates)
    if len(table):
        table.index = pd.MultiIndex.from_tuples(table.index,
                                                names=["region", "tier", "instrument"])
    return table


def _price_label(region: str, tier: str, instrument: str) -> str:
    return f"price {region} {tier} {instrument} [USD/H100e-h]"


def key_outcome_flags(frames: dict[str, pd.DataFrame], scenario, dates: list[str]
                      ) -> dict[tuple[str, str], str]:
    """Flags of the price rows of `key_outcomes`: (row label, month) -> flag."""
    flags = price_flags(frames, scenario, dates)
    return {(_price_label(*key), d): f for key, row in flags.iterrows()
            for d, f in row.items() if f}


def flag_note(kinds) -> str:
    """One line explaining the markers of `kinds` (flags shown in a table); "" if none."""
    kinds = set(kinds)
    parts = [f"{MARKERS[k]} {FLAG_NOTES[k]}" for k in MARKERS if k in kinds]
    if "blank" in kinds:
        parts.append(FLAG_NOTES["blank"])
    return "; ".join(parts) + "." if parts else ""


def key_outcomes(frames: dict[str, pd.DataFrame], dates: list[str],
                 extended: bool = False) -> pd.DataFrame:
    """One row per outcome (with its unit), one column per date. `extended` adds vendor
    revenue, the largest completed training run by nation and leakage, for comparisons."""
    rows: dict[str, dict[str, float]] = {}

    def at(frame: pd.DataFrame, month: str) -> pd.DataFrame:
        return frame[frame["date"].dt.strftime("%Y-%m") == month]

    for month in dates:
        for r in at(frames["price_index"], month).itertuples():
            rows.setdefault(_price_label(r.region, r.tier, r.instrument), {})[month] = \
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


def comparison_flags(frames_by_scenario: dict[str, dict[str, pd.DataFrame]],
                     scenarios: dict, dates: list[str]) -> dict[tuple[str, str], str]:
    """Flags of `comparison`'s price cells: (row label, "date scenario") -> flag; `scenarios`
    maps each name to its validated scenario."""
    return {(label, f"{d} {name}"): flag
            for name, frames in frames_by_scenario.items()
            for (label, d), flag in key_outcome_flags(frames, scenarios[name], dates).items()}


def _rows(table: pd.DataFrame, flags: dict[tuple[str, str], str] | None, width: int,
          col: int) -> list[str]:
    """Table rows with a footnote marker after flagged cells (and a space after the others,
    so digits stay aligned), then the line explaining the markers shown."""
    flags = flags or {}
    shown = set()
    marked = any(f in MARKERS for f in flags.values())
    lines = []
    for label, values in table.iterrows():
        cells = []
        for column, v in values.items():
            flag = flags.get((label, column), "")
            if pd.isna(v):
                if label.startswith("price"):
                    shown.add("blank")
                cells.append("")
                continue
            shown.add(flag)
            cells.append(_cell(label, v) + (MARKERS.get(flag, " ") if marked else ""))
        lines.append((f"{label:<{width}}" + "".join(f"{c:>{col}}" for c in cells)).rstrip())
    note = flag_note(shown)
    return lines + ([note] if note else [])


def format_comparison(table: pd.DataFrame, scenarios: list[str],
                      flags: dict[tuple[str, str], str] | None = None) -> str:
    """Fixed-width text with a date header over the scenario columns; `flags`
    (`comparison_flags`) mark cells that are not prices set by trade."""
    if table.empty:
        return "(no months to show)"
    width = max(len(i) for i in table.index)
    col = max(12, *(len(s) + 1 for s in scenarios))
    dates = list(dict.fromkeys(c.split(" ", 1)[0] for c in table.columns))
    lines = [" " * width + "".join(f"{d:^{col * len(scenarios)}}" for d in dates),
             " " * width + "".join(f"{c.split(' ', 1)[1]:>{col}}" for c in table.columns)]
    return "\n".join(lines + _rows(table, flags, width, col))


def format_outcomes(table: pd.DataFrame, flags: dict[tuple[str, str], str] | None = None
                    ) -> str:
    """Fixed-width text: prices with 2 decimals, shares with 1; `flags`
    (`key_outcome_flags`) mark cells that are not prices set by trade."""
    if table.empty:
        return "(no months to show)"
    width = max(len(i) for i in table.index)
    header = " " * width + "".join(f"{c:>10}" for c in table.columns)
    return "\n".join([header] + _rows(table, flags, width, 10))
