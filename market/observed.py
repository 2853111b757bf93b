"""Observed series: the figures the model is scored against, loaded and checked.

Observed data are tidy CSV files (one observation per row) with the columns of `COLUMNS`:

    series      a family of `data/observed/series.toml` and its keys, colon-separated
                (`shipped_units:nvidia:H100`, `compute_share:China`)
    period      a label for the period (`2023Q1`, `FY24Q3`, `2024`, `2023-07`)
    start, end  the period's first and last day (YYYY-MM-DD); a point in time is a month
    value       the observation, in `unit` (the family's unit, checked)
    low, high   the source's interval where it gives one (blank otherwise)
    source      URL or citation (required)
    confidence  H (primary source), M (reputable estimate), L (weak), D (derived)
    note        free text

The shipped files live in `market/data/observed/` (package data); `load_observed(directory)`
reads a user's directory of the same format. Rows whose period ends after `until` (a month,
YYYY-MM) are dropped on reading, so nothing after it reaches the model or its calibration:
`split_by_until` keeps them apart for out-of-sample scoring of a user's later data.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import pandas as pd

from market.errors import GpumarketError

COLUMNS = ["series", "period", "start", "end", "value", "low", "high", "unit", "source",
           "confidence", "note"]
CONFIDENCE = {"H": "high", "M": "medium", "L": "low", "D": "derived"}
AGGREGATIONS = ("sum", "mean", "end", "max")


class ObservedDataError(GpumarketError):
    """An observed-data file that does not follow the format: names file, row and field."""


@dataclass(frozen=True)
class Family:
    name: str
    unit: str
    keys: tuple[str, ...]
    values: dict[str, tuple[str, ...]]
    aggregation: str
    description: str


def builtin_dir() -> Path:
    return Path(str(resources.files("market") / "data" / "observed"))


@lru_cache(maxsize=4)
def families(registry: Path | None = None) -> dict[str, Family]:
    """The series families of `series.toml` (the shipped one by default)."""
    path = Path(registry) if registry is not None else builtin_dir() / "series.toml"
    with path.open("rb") as fh:
        raw = tomllib.load(fh)
    out = {}
    for name, spec in raw.get("families", {}).items():
        if spec.get("aggregation") not in AGGREGATIONS:
            raise ObservedDataError(f"{path}: families.{name}.aggregation: expected one of "
                                    f"{', '.join(AGGREGATIONS)} (found {spec.get('aggregation')!r})")
        out[name] = Family(name, spec["unit"], tuple(spec.get("keys", ())),
                           {k: tuple(v) for k, v in spec.get("values", {}).items()},
                           spec["aggregation"], spec.get("description", ""))
    return out


def parse_series(series_id: str) -> tuple[str, tuple[str, ...]]:
    """`family:key1:key2` -> (family, keys)."""
    family, *keys = series_id.split(":")
    return family, tuple(keys)


def month_end(month: str) -> dt.date:
    """Last day of a YYYY-MM month."""
    year, mon = (int(x) for x in month.split("-"))
    nxt = dt.date(year + mon // 12, mon % 12 + 1, 1)
    return nxt - dt.timedelta(days=1)


def _problem(path: Path, line: int, field: str, message: str, found: str | None = None) -> str:
    shown = "" if found is None else f" (found {found!r})"
    return f"{path}: row {line}: field {field}: {message}{shown}"


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _date(text: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        return None


def _check_row(path: Path, line: int, row: dict, known: dict[str, Family]) -> list[str]:
    problems = []
    family_name, keys = parse_series(row["series"])
    family = known.get(family_name)
    if family is None:
        return [_problem(path, line, "series", "unknown series family; known: "
                         + ", ".join(sorted(known)), row["series"])]
    if len(keys) != len(family.keys):
        expected = ":".join([family_name, *(f"<{k}>" for k in family.keys)])
        problems.append(_problem(path, line, "series", f"expected {expected}", row["series"]))
    for key, value in zip(family.keys, keys):
        allowed = family.values.get(key)
        if allowed and value not in allowed:
            problems.append(_problem(path, line, "series", f"unknown {key}; known: "
                                     + ", ".join(allowed), value))
    if row["unit"] != family.unit:
        problems.append(_problem(path, line, "unit", f"{family_name} is measured in "
                                 f"{family.unit!r}", row["unit"]))
    start, end = _date(row["start"]), _date(row["end"])
    for field, parsed in (("start", start), ("end", end)):
        if parsed is None:
            problems.append(_problem(path, line, field, "expected a date YYYY-MM-DD",
                                     row[field]))
    if start and end and end < start:
        problems.append(_problem(path, line, "end", f"before start {row['start']}", row["end"]))
    value = _number(row["value"])
    if value is None or value < 0:
        problems.append(_problem(path, line, "value", "expected a finite number >= 0",
                                 row["value"]))
    for field in ("low", "high"):
        if row[field] and _number(row[field]) is None:
            problems.append(_problem(path, line, field, "expected a finite number or blank",
                                     row[field]))
    low, high = _number(row["low"] or "nan"), _number(row["high"] or "nan")
    if value is not None and low is not None and low > value:
        problems.append(_problem(path, line, "low", f"above the value {row['value']}",
                                 row["low"]))
    if value is not None and high is not None and high < value:
        problems.append(_problem(path, line, "high", f"below the value {row['value']}",
                                 row["high"]))
    if not row["source"].strip():
        problems.append(_problem(path, line, "source", "every observation needs its source "
                                 "(URL or citation)", row["source"]))
    if row["confidence"] not in CONFIDENCE:
        problems.append(_problem(path, line, "confidence", "expected one of "
                                 + ", ".join(CONFIDENCE), row["confidence"]))
    return problems


def read_file(path: Path, known: dict[str, Family] | None = None) -> pd.DataFrame:
    """One observed file, checked; raises `ObservedDataError` listing every problem."""
    known = known if known is not None else families()
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ObservedDataError(f"{path}: not UTF-8 text; expected a CSV file") from None
    except OSError as exc:
        raise ObservedDataError(f"{path}: cannot read: {exc.strerror}") from None
    reader = csv.DictReader(text.splitlines())
    header = reader.fieldnames or []
    if header != COLUMNS:
        missing = [c for c in COLUMNS if c not in header]
        extra = [c for c in header if c not in COLUMNS]
        what = "; ".join(filter(None, [missing and f"missing {', '.join(missing)}",
                                       extra and f"unknown {', '.join(extra)}"])) \
            or "columns out of order"
        raise ObservedDataError(f"{path}: row 1: header: {what}; expected the columns "
                                f"{','.join(COLUMNS)}")
    rows, problems = [], []
    for line, row in enumerate(reader, start=2):
        if None in row or any(v is None for v in row.values()):
            problems.append(_problem(path, line, "(row)", f"expected {len(COLUMNS)} fields"))
            continue
        found = _check_row(path, line, row, known)
        problems += found
        if not found:
            rows.append(row)
    if problems:
        raise ObservedDataError("\n".join(problems))
    frame = pd.DataFrame(rows, columns=COLUMNS)
    for col in ("value", "low", "high"):
        frame[col] = pd.to_numeric(frame[col].replace("", None), errors="coerce").astype(float)
    frame["start"] = pd.to_datetime(frame["start"])
    frame["end"] = pd.to_datetime(frame["end"])
    frame["file"] = path.name
    return frame


def load_observed(directory: Path | None = None, until: str | None = None) -> pd.DataFrame:
    """Every `*.csv` of `directory` (default: the shipped data), checked, one frame; rows
    whose period ends after the month `until` are never returned."""
    directory = Path(directory) if directory is not None else builtin_dir()
    if not directory.is_dir():
        raise ObservedDataError(f"{directory}: not a directory of observed CSV files")
    files = sorted(directory.glob("*.csv"))
    if not files:
        raise ObservedDataError(f"{directory}: holds no *.csv observed files")
    frames, problems = [], []
    for path in files:
        try:
            frames.append(read_file(path))
        except ObservedDataError as exc:
            problems.append(str(exc))
    if problems:
        raise ObservedDataError("\n".join(problems))
    frame = pd.concat(frames, ignore_index=True)
    frame["family"] = frame["series"].str.split(":").str[0]
    if until is not None:
        frame = frame[frame["end"] <= pd.Timestamp(month_end(until))].reset_index(drop=True)
    return frame


def split_by_until(frame: pd.DataFrame, until: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(rows whose period ends by the end of `until`, rows after it)."""
    inside = frame["end"] <= pd.Timestamp(month_end(until))
    return frame[inside].reset_index(drop=True), frame[~inside].reset_index(drop=True)
