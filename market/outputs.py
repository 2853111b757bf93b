"""Tidy tables from a run, and writing them atomically with a manifest.

`run_tables(scenario, seed)` is the unit of work every executor maps: a plain function from a
validated scenario and a seed to a dict of DataFrames (the README's table under `gpumarket run`). `write_run`
builds the output in a temporary directory beside the target and renames it into place, so a
failed or interrupted write leaves nothing behind and an existing directory is replaced only
when asked.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from contextlib import contextmanager
from typing import Callable, Iterator

import mesa
import numpy as np
import pandas as pd
import tomli_w

from market.errors import GpumarketError
from market.timeline import month_start

TABLES = ("prices", "price_index", "compute", "vendors", "labs", "flows", "clouds", "policy")

#: Required columns of each table (the output contract); extra columns may follow.
COLUMNS = {
    "prices": ["date", "step", "region", "tier", "chip", "price_usd_per_gpu_hour",
               "volume_gpu_hours", "utilization"],
    "price_index": ["date", "step", "region", "tier", "price_usd_per_h100e_hour"],
    "compute": ["date", "step", "nation", "installed_h100e", "share", "frontier_run_flop",
                "demand_h100e_hours", "unmet_h100e_hours"],
    "vendors": ["date", "step", "vendor", "shipped_units", "shipped_h100e", "revenue_usd", "share"],
    "labs": ["date", "step", "lab", "nation", "compute_h100e_hours", "spend_usd", "capex_usd"],
    "flows": ["date", "step", "channel", "origin", "destination", "h100e"],
    "clouds": ["date", "step", "cloud", "region", "tier", "offered_h100e_hours",
               "sold_h100e_hours", "revenue_usd", "margin"],
    "policy": ["date", "step", "nation", "kind", "what", "rules_in_force"],
}


def _dates(model, steps: np.ndarray) -> np.ndarray:
    """First day of each step's month, vectorized over the steps [datetime64[ns]]."""
    first = model.start_month - 1
    steps = np.asarray(steps, dtype=np.int64)
    if steps.size == 0:
        return np.zeros(0, dtype="datetime64[ns]")
    table = np.array([np.datetime64(month_start(first + s), "ns")
                      for s in range(int(steps.max()) + 1)])
    return table[steps]


def collect_tables(model) -> dict[str, pd.DataFrame]:
    """The run's outcomes as tidy DataFrames with the columns of `COLUMNS`."""
    rec = model.records
    frames: dict[str, pd.DataFrame] = {}
    frames["prices"] = pd.DataFrame(rec["prices"], columns=COLUMNS["prices"][1:])
    frames["price_index"] = pd.DataFrame(rec["price_index"], columns=COLUMNS["price_index"][1:])
    frames["compute"] = pd.DataFrame(rec["compute"], columns=COLUMNS["compute"][1:])
    vendors = pd.DataFrame(rec["vendors"], columns=COLUMNS["vendors"][1:-1] + [
        "produced_units", "blocked_revenue_usd", "controller_revenue_usd"])
    total = vendors.groupby("step")["shipped_h100e"].transform("sum")
    vendors["share"] = np.where(total > 0, vendors["shipped_h100e"] / total.where(total > 0, 1), 0.0)
    frames["vendors"] = vendors
    frames["clouds"] = pd.DataFrame(rec["clouds"], columns=COLUMNS["clouds"][1:])
    frames["policy"] = pd.DataFrame(rec["policy"], columns=COLUMNS["policy"][1:])
    book = model.book
    steps = [r[0] for r in rec["labs"]]
    n = book.n
    frames["labs"] = pd.DataFrame({
        "step": np.repeat(steps, n).astype(np.int64),
        "lab": np.tile(np.array(book.ids, dtype=object), len(steps)),
        "nation": np.tile(np.array([model.nation_ids[i] for i in book.nation], dtype=object),
                          len(steps)),
        "compute_h100e_hours": np.concatenate([r[1] for r in rec["labs"]]) if steps else [],
        "spend_usd": np.concatenate([r[2] for r in rec["labs"]]) if steps else [],
        "capex_usd": np.concatenate([r[3] for r in rec["labs"]]) if steps else [],
    })
    flows = pd.DataFrame(rec["flows"], columns=COLUMNS["flows"][1:])
    frames["flows"] = (flows.groupby(["step", "channel", "origin", "destination"], as_index=False,
                                     sort=True)["h100e"].sum())
    for name, frame in frames.items():
        frame.insert(0, "date", _dates(model, frame["step"].to_numpy()))
        frame["step"] = frame["step"].astype(np.int64)
        frames[name] = frame[COLUMNS[name] + [c for c in frame.columns
                                              if c not in COLUMNS[name]]].reset_index(drop=True)
    return frames


def release(model: mesa.Model) -> None:
    """Let the model be garbage-collected: Mesa 3.3 keeps every model in a class-level dict."""
    ids = getattr(mesa.Agent, "_ids", None)
    if isinstance(ids, dict):
        ids.pop(model, None)


def run_tables(scenario, seed: int, months: int | None = None,
               on_step: Callable[[int], None] | None = None) -> dict[str, pd.DataFrame]:
    """Run one scenario with one seed and return its tables (the executors' unit of work)."""
    from market.model import ComputeMarket

    model = ComputeMarket(scenario, seed=seed)
    try:
        for _ in range(scenario.months if months is None else months):
            model.step()
            if on_step is not None:
                on_step(model.step_index)
        return collect_tables(model)
    finally:
        release(model)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_tables(frames: dict[str, pd.DataFrame], directory: Path, fmt: str) -> dict[str, str]:
    """Write each table as Parquet or CSV into `directory`; returns file name -> SHA-256."""
    hashes = {}
    for name, frame in frames.items():
        path = directory / f"{name}.{fmt}"
        if fmt == "parquet":
            frame.to_parquet(path, index=False, engine="pyarrow", compression="zstd")
        else:
            frame.to_csv(path, index=False, date_format="%Y-%m-%d", float_format="%.10g")
        hashes[path.name] = _sha256(path)
    return hashes


def check_out_dir(out: Path, force: bool) -> None:
    """Refuse an existing output directory unless `force`; refuse a path that is a file."""
    if out.exists() and not out.is_dir():
        raise GpumarketError(f"{out}: exists and is not a directory")
    if out.exists() and not force:
        raise GpumarketError(f"{out}: already exists; pass --force to replace it")
    if not out.parent.exists():
        raise GpumarketError(f"{out.parent}: directory does not exist")


@contextmanager
def atomic_directory(out: Path, force: bool = False) -> Iterator[Path]:
    """Build a directory in a temporary sibling and rename it to `out` only when the block
    succeeds, so an error or Ctrl-C leaves nothing behind (and `out` untouched)."""
    out = Path(out)
    check_out_dir(out, force)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        yield tmp
        if out.exists():
            old = out.with_name(f".{out.name}.old-{os.getpid()}")
            out.rename(old)
            tmp.rename(out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def fill_run_dir(directory: Path, frames: dict[str, pd.DataFrame], resolved_scenario: dict,
                 manifest: dict, fmt: str) -> None:
    """Tables, `scenario.toml` and `manifest.json` (with each table's SHA-256) of one run."""
    if fmt not in ("parquet", "csv"):
        raise GpumarketError(f"unknown format {fmt!r}; known: csv, parquet")
    directory.mkdir(parents=True, exist_ok=True)
    hashes = write_tables(frames, directory, fmt)
    (directory / "scenario.toml").write_text(tomli_w.dumps(resolved_scenario))
    manifest = dict(manifest, format=fmt, rows={name: int(len(f)) for name, f in frames.items()},
                    sha256=hashes)
    (directory / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def write_run(out: Path, frames: dict[str, pd.DataFrame], resolved_scenario: dict,
              manifest: dict, fmt: str = "parquet", force: bool = False) -> Path:
    """Write tables, `scenario.toml` and `manifest.json` to `out` atomically."""
    if fmt not in ("parquet", "csv"):
        raise GpumarketError(f"unknown format {fmt!r}; known: csv, parquet")
    with atomic_directory(out, force) as tmp:
        fill_run_dir(tmp, frames, resolved_scenario, manifest, fmt)
    return Path(out)
