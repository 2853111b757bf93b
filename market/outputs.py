"""Tidy tables from a run, and writing them atomically with a manifest.

`run_tables(scenario, seed)` is the unit of work every executor maps: a plain function from a
validated scenario and a seed to a dict of DataFrames (the README's table under `gpumarket
run`). `OutputClaim` (and `write_run`, `atomic_directory` on top of it) builds the output in a temporary directory
beside the target and renames it into place, so a failed or interrupted write leaves nothing
behind; an existing directory is replaced only when asked and only if gpumarket wrote it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
import tomllib
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Callable, Iterator

try:
    import fcntl
except ImportError:      # not POSIX: no advisory locks
    fcntl = None

import mesa
import numpy as np
import pandas as pd
import tomli_w

from market.errors import GpumarketError
from market.files import (RENAME_EXCHANGE, fsync_dir, fsync_tree, os_reason, pid_alive,
                          rename_noreplace, renameat2)
from market.timeline import month_start

TABLES = ("prices", "price_index", "compute", "vendors", "labs", "flows", "clouds", "policy",
          "shipments", "orders", "foundries")

#: Required columns of each table (the output contract); extra columns may follow.
COLUMNS = {
    "prices": ["date", "step", "region", "tier", "instrument", "chip", "price_usd_per_gpu_hour",
               "volume_gpu_hours", "utilization"],
    "price_index": ["date", "step", "region", "tier", "instrument", "price_usd_per_h100e_hour"],
    "compute": ["date", "step", "nation", "installed_h100e", "share", "frontier_run_flop",
                "demand_h100e_hours", "unmet_h100e_hours"],
    "vendors": ["date", "step", "vendor", "shipped_units", "shipped_h100e", "revenue_usd", "share"],
    "labs": ["date", "step", "lab", "nation", "compute_h100e_hours", "spend_usd", "capex_usd",
             "resale_usd"],
    "flows": ["date", "step", "channel", "origin", "destination", "h100e"],
    "clouds": ["date", "step", "cloud", "region", "tier", "offered_h100e_hours",
               "sold_h100e_hours", "revenue_usd", "margin", "capex_usd"],
    "policy": ["date", "step", "nation", "kind", "what", "rules_in_force"],
    "shipments": ["date", "step", "vendor", "chip", "buyer", "nation", "channel", "units",
                  "h100e", "revenue_usd"],
    "orders": ["date", "step", "buyer", "order_kind", "wanted_usd", "budget_usd",
               "committed_usd", "budget_binds"],
    "foundries": ["date", "step", "foundry", "capacity_wafers_per_month", "wafers_per_month",
                  "committed_wafers_per_month", "started_wafers_per_month",
                  "under_construction_wafers_per_month", "capex_usd"],
}

#: `price_index.instrument` / `prices.instrument`: how the hour was sold. `list`: a
#: hyperscaler's posted on-demand price; `contract`: a one-year term signed that month
#: (hyperscalers' committed use at a discount to list, neoclouds' at the forward price);
#: `spot`: the month's neocloud clearing price. `prices` carries each tier's headline
#: instrument (hyperscaler list, neocloud spot).
INSTRUMENTS = ("list", "contract", "spot")

#: `orders.order_kind`: the order's purpose, by the model's order kinds.
ORDER_KINDS = {0: "regular", 1: "stockpile", 2: "grey_market"}


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
        "produced_units", "blocked_revenue_usd", "controller_revenue_usd", "lead_time_months",
        "backlog_units", "inventory_units", "price_usd_per_h100e", "wafers_allotted",
        "wafers_used"])
    total = vendors.groupby("step")["shipped_h100e"].transform("sum")
    vendors["share"] = np.where(total > 0, vendors["shipped_h100e"] / total.where(total > 0, 1), 0.0)
    frames["vendors"] = vendors
    frames["clouds"] = _clouds(model)
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
        "resale_usd": np.concatenate([r[4] for r in rec["labs"]]) if steps else [],
    })
    flows = pd.DataFrame(rec["flows"], columns=COLUMNS["flows"][1:])
    frames["flows"] = (flows.groupby(["step", "channel", "origin", "destination"], as_index=False,
                                     sort=True)["h100e"].sum())
    frames["shipments"] = _shipments(model)
    orders = pd.DataFrame(model.records["orders"], columns=["step", "buyer", "kind",
                                                           "wanted_usd", "budget_usd",
                                                           "committed_usd"])
    orders.insert(2, "order_kind", orders.pop("kind").map(ORDER_KINDS).astype(object))
    # the allowance binds when the order wanted more than it allowed (a cloud's financing,
    # a building lab's capex input; 0.01% slack for rounding in the scale factor)
    orders["budget_binds"] = orders["wanted_usd"] > orders["budget_usd"] * (1.0 + 1e-4)
    frames["orders"] = orders
    frames["foundries"] = pd.DataFrame(rec["foundries"], columns=COLUMNS["foundries"][1:])
    for name, frame in frames.items():
        frame.insert(0, "date", _dates(model, frame["step"].to_numpy()))
        frame["step"] = frame["step"].astype(np.int64)
        frames[name] = frame[COLUMNS[name] + [c for c in frame.columns
                                              if c not in COLUMNS[name]]].reset_index(drop=True)
    return frames


def _clouds(model) -> pd.DataFrame:
    """Clouds' GPU-hour sales (written when the GPU-hour market settles) beside what they
    spent that month on chips and datacenter power (`capex_usd`, written when they plan
    capacity), what their financing allowed (`financing_allowance_usd`), the debt they
    carry after it (`debt_usd`) [USD], the power part of that spend (`power_capex_usd`
    [USD]), the power they started building (`power_started_mw` [MW]) and the power online
    (`power_mw` [MW]); a cloud-month without an investment record spent nothing."""
    sales = pd.DataFrame(model.records["clouds"], columns=COLUMNS["clouds"][1:-1])
    extra = ["financing_allowance_usd", "debt_usd", "power_capex_usd", "power_started_mw",
             "power_mw"]
    capex = pd.DataFrame(model.records["cloud_capex"], columns=["step", "cloud", "capex_usd"]
                         + extra)
    out = sales.merge(capex, on=["step", "cloud"], how="left", validate="one_to_one")
    out[["capex_usd"] + extra] = out[["capex_usd"] + extra].fillna(0.0)
    return out


def _shipments(model) -> pd.DataFrame:
    """Chips delivered per month, vendor, chip, buyer (the cloud or lab that ordered) and the
    buyer's nation, by channel: `shipments` (legal sales), `stockpiling` (legal sales pulled
    forward before a rule bites) and `diversion` (reaching the buyer through a third
    country); `revenue_usd` is what the vendor was paid [USD]."""
    columns = COLUMNS["shipments"][1:]
    parts = []
    for step, vid, sites, chips, legal, diverted, stock, price in model.records["shipments"]:
        for channel, units in (("shipments", np.where(stock, 0.0, legal)),
                               ("stockpiling", np.where(stock, legal, 0.0)),
                               ("diversion", diverted)):
            keep = units > 0
            if keep.any():
                parts.append((step, vid, sites[keep], chips[keep], channel, units[keep],
                              price[keep]))
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype=object if c in ("vendor", "chip", "buyer",
                             "nation", "channel") else float) for c in columns})
    sites = np.concatenate([p[2] for p in parts])
    chips = np.concatenate([p[3] for p in parts])
    units = np.concatenate([p[5] for p in parts])
    price = np.concatenate([p[6] for p in parts])
    size = [len(p[2]) for p in parts]
    buyers = np.array(model.site_buyer, dtype=object)
    nations = np.array(model.nation_ids, dtype=object)[model.site_nation]
    frame = pd.DataFrame({
        "step": np.repeat([p[0] for p in parts], size).astype(np.int64),
        "vendor": np.repeat(np.array([p[1] for p in parts], dtype=object), size),
        "chip": np.array(model.chip_ids, dtype=object)[chips],
        "buyer": buyers[sites], "nation": nations[sites],
        "channel": np.repeat(np.array([p[4] for p in parts], dtype=object), size),
        "units": units, "h100e": units * model.h100e[chips], "revenue_usd": units * price})
    return frame.groupby(["step", "vendor", "chip", "buyer", "nation", "channel"],
                         as_index=False, sort=True)[["units", "h100e", "revenue_usd"]].sum()


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


# ------------------------------------------------------------ safe output directories ---
#
# What a command may replace and how it publishes (issue 10): `--force` replaces only a
# directory gpumarket wrote (its manifest.json lists every entry and nothing else is there,
# and every file still has the SHA-256 the manifest records);
# publishing never replaces a directory that appeared while the run computed; an exclusive lock
# beside the output keeps two gpumarket processes from writing it at once; temporary names carry
# the writer's pid, so a later run can remove what a dead process left.

MANIFEST = "manifest.json"

#: What a 0.5.0 run directory may hold: its manifest listed no entries.
LEGACY_RUN_ENTRIES = frozenset(
    [f"{t}.{fmt}" for t in TABLES for fmt in ("parquet", "csv")] + ["scenario.toml", MANIFEST])

#: Longest sub-directory name derived from a scenario name [characters]; file systems allow 255.
NAME_CHARS = 100

@contextmanager
def write_errors(out: Path) -> Iterator[None]:
    """Turn an OS error while writing `out` (a full disk, a file-size limit, a quota, a read-only
    or forbidden place) into one line for the user."""
    try:
        yield
    except OSError as exc:
        raise GpumarketError(f"{out}: cannot write: {os_reason(exc)}; nothing was written") \
            from None


#: Key of a manifest's SHA-256 of every file gpumarket wrote into its directory (after 0.18.0).
FILE_HASHES = "files_sha256"
#: What a run directory's manifest did not hash before FILE_HASHES: its tables' SHA-256 are
#: under `sha256`, this file was not.
UNHASHED_RUN_FILES = frozenset(["scenario.toml"])


class _Listing:
    """What a gpumarket manifest says gpumarket wrote into its directory: entries (sub-
    directories end in "/") and files with the SHA-256 each had when written."""

    def __init__(self, entries: frozenset[str], hashes: dict[str, str], complete: bool,
                 scenario: str | None = None):
        self.entries, self.hashes = entries | {MANIFEST}, hashes
        #: whether every file has a hash (FILE_HASHES); older run manifests hashed the tables
        self.complete = complete
        #: the scenario name the manifest records (a run's), or None
        self.scenario = scenario

    def wrote(self, entry: os.DirEntry) -> bool:
        """Whether the regular file `entry` is one gpumarket wrote here and is unchanged: listed
        and with the SHA-256 recorded for it. A file the manifest lists without a hash counts
        only as a run directory's scenario.toml from before every file was hashed, and only
        if it is what gpumarket wrote there (`_is_written_scenario`): a hand-written manifest
        that lists a user's file does not make it gpumarket's, nor does an old one make a
        user's scenario.toml put in its place deletable."""
        if entry.name == MANIFEST:
            return True
        if entry.name not in self.entries:
            return False
        recorded = self.hashes.get(entry.name)
        if recorded is None:
            return (not self.complete and bool(self.hashes) and entry.name in UNHASHED_RUN_FILES
                    and _is_written_scenario(Path(entry.path), self.scenario))
        return _sha256(Path(entry.path)) == recorded


#: Largest scenario.toml an older run manifest can vouch for without a hash [bytes]: a
#: resolved built-in scenario is ~60 kB.
WRITTEN_SCENARIO_MAX_BYTES = 4_000_000


def _is_written_scenario(path: Path, scenario: str | None) -> bool:
    """Whether `path` is a resolved scenario as gpumarket writes it (`fill_run_dir`): TOML
    that tomli_w writes back byte for byte (a hand-written file, with its comments, layout or
    quoting, does not), naming the scenario its manifest records."""
    try:
        if path.stat().st_size > WRITTEN_SCENARIO_MAX_BYTES:
            return False
        raw = path.read_bytes()
        data = tomllib.loads(raw.decode("utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return False
    return (scenario is not None and data.get("name") == scenario
            and tomli_w.dumps(data).encode("utf-8") == raw)


def _hashes(value) -> dict[str, str] | None:
    """A manifest's table of file name -> SHA-256, or None when it is not one."""
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                              for k, v in value.items()):
        return None
    return value


def _listing(manifest: Path) -> _Listing | None:
    """What a gpumarket manifest says gpumarket wrote; None when the file is not a gpumarket
    manifest."""
    try:
        if manifest.is_symlink() or not manifest.is_file():
            return None
        data = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    if not isinstance(data, dict) or "gpumarket_version" not in data:
        return None
    every_file = _hashes(data.get(FILE_HASHES))
    hashes = every_file if every_file is not None else _hashes(data.get("sha256")) or {}
    entries = data.get("entries")
    scenario = data.get("scenario") if isinstance(data.get("scenario"), str) else None
    if entries is None:          # 0.5.0 wrote run directories without the list
        return _Listing(LEGACY_RUN_ENTRIES, hashes, every_file is not None, scenario) \
            if isinstance(data.get("sha256"), dict) else None
    if not isinstance(entries, list) or not all(isinstance(e, str) for e in entries):
        return None
    return _Listing(frozenset(entries), hashes, every_file is not None, scenario)


def foreign_entries(directory: Path) -> list[str] | None:
    """The entries of `directory` gpumarket did not write, or changed since: [] for a
    directory gpumarket wrote (or an empty one), None for one without a gpumarket manifest.
    Links count as foreign; so does a file whose SHA-256 is not the one its manifest records.
    The one check before `--force` replaces any command's output (run, compare, backtest)."""
    entries = sorted(os.scandir(directory), key=lambda e: e.name)
    if not entries:
        return []
    listing = _listing(Path(directory) / MANIFEST)
    if listing is None:
        return None
    foreign: list[str] = []
    for entry in entries:
        if entry.is_symlink():
            foreign.append(entry.name)
        elif entry.is_dir(follow_symlinks=False):
            inner = foreign_entries(Path(entry.path)) if entry.name + "/" in listing.entries \
                else None
            foreign.extend([entry.name + "/"] if inner is None
                           else [f"{entry.name}/{name}" for name in inner])
        elif not (entry.is_file(follow_symlinks=False) and listing.wrote(entry)):
            foreign.append(entry.name)
    return foreign


def replace_refusal(directory: Path) -> str | None:
    """Why `--force` must not replace `directory` (None when gpumarket wrote it)."""
    try:
        foreign = foreign_entries(directory)
    except OSError as exc:
        return f"it cannot be read ({os_reason(exc)})"
    if foreign is None:
        names = sorted(os.listdir(directory))
        more = f" and {len(names) - 3} more" if len(names) > 3 else ""
        return f"it has no gpumarket manifest.json (it holds {', '.join(names[:3])}{more})"
    if foreign:
        more = f" and {len(foreign) - 3} more" if len(foreign) > 3 else ""
        listing = _listing(Path(directory) / MANIFEST)
        if listing is not None and not listing.hashes:
            # a compare or backtest directory of 0.18.0 or older: no file hashes to check
            return (f"its manifest, from an older gpumarket, records no SHA-256 of its files "
                    f"({', '.join(foreign[:3])}{more}), so they cannot be told from yours; "
                    f"move it away or choose another --out")
        return (f"it holds files gpumarket did not write or that changed since "
                f"({', '.join(foreign[:3])}{more})")
    return None


def check_out_dir(out: Path, force: bool) -> None:
    """Refuse an output directory gpumarket must not write: a file or a link, an existing
    directory without `force` or, even with it, one gpumarket did not write, a missing parent."""
    out = Path(out)
    if out.is_symlink():
        raise GpumarketError(f"{out}: is a symbolic link; give the directory's own path")
    if out.exists() and not out.is_dir():
        raise GpumarketError(f"{out}: exists and is not a directory")
    if out.is_dir():
        if not force:
            raise GpumarketError(f"{out}: already exists; pass --force to replace it (it "
                                 f"replaces only a directory gpumarket wrote)")
        refusal = replace_refusal(out)
        if refusal:
            raise GpumarketError(f"{out}: not replaced: {refusal}; --force replaces only a "
                                 f"directory gpumarket wrote: choose another --out or move "
                                 f"the files away")
    _check_parent(out)


def _check_parent(out: Path) -> None:
    """Refuse an output whose parent is missing or a file."""
    parent = Path(os.path.abspath(out)).parent
    if not parent.is_dir():
        what = "is not a directory" if parent.exists() else "does not exist"
        raise GpumarketError(f"{out}: cannot write there: {out.parent} {what}; choose another "
                             f"--out")


def _temp_name(path: Path, kind: str) -> Path:
    """A hidden sibling of `path` that names this process: `.NAME.PID.TOKEN.tmp` (being built)
    or `.NAME.PID.TOKEN.old` (being replaced)."""
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.{kind}")


def _stale_pattern(name: str) -> re.Pattern:
    """gpumarket's temporary names beside an output called `name`, with the writer's pid
    (0.5.0 named replaced directories `.NAME.old-PID`)."""
    return re.compile(rf"\.{re.escape(name)}\.(?:(\d+)\.[0-9a-f]+\.(tmp|old)|old-(\d+))")


def remove_stale(path: Path) -> list[Path]:
    """Remove what dead gpumarket processes left beside `path`: only gpumarket's temporary
    names, only when the process named in them is gone; a replaced directory that holds files
    gpumarket did not write is kept. Returns what was removed."""
    pattern = _stale_pattern(path.name)
    removed = []
    try:
        entries = list(os.scandir(path.parent))
    except OSError:
        return removed
    for entry in entries:
        found = pattern.fullmatch(entry.name)
        if not found or entry.is_symlink() or pid_alive(int(found.group(1) or found.group(3))):
            continue
        if found.group(2) == "tmp" and entry.is_file(follow_symlinks=False):
            with suppress(OSError):            # a file being built (report)
                os.unlink(entry.path)
                removed.append(Path(entry.path))
            continue
        if not entry.is_dir(follow_symlinks=False) or (
                found.group(2) != "tmp" and replace_refusal(Path(entry.path)) is not None):
            continue
        shutil.rmtree(entry.path, ignore_errors=True)
        removed.append(Path(entry.path))
    return removed





class OutputClaim:
    """This process's claim on an output directory, from the check before any work to the
    publication of the result.

    Entering checks `out` (`check_out_dir`), takes an exclusive lock on `.NAME.gpumarket-lock`
    beside it (a second gpumarket process writing the same `out` is refused at once; the
    kernel drops the lock of a process that dies), removes what dead gpumarket processes left
    there, and creates the temporary sibling `tmp` to build the output in, which also proves the
    place writable before any model time is spent. `publish()` renames `tmp` to `out`, never
    over a directory that appeared meanwhile; leaving removes anything unpublished and the lock.
    """

    def __init__(self, out: Path, force: bool = False):
        self.out = Path(out)
        self.force = force
        self.path = Path(os.path.abspath(self.out))
        self.tmp: Path | None = None
        self._lock_fd: int | None = None

    @property
    def lock_path(self) -> Path:
        return self.path.with_name(f".{self.path.name}.gpumarket-lock")

    def __enter__(self) -> OutputClaim:
        check_out_dir(self.out, self.force)
        try:
            self._lock()
            remove_stale(self.path)
            check_out_dir(self.out, self.force)     # again: no gpumarket process can change it now
            self.tmp = self._make_tmp()
        except OSError as exc:
            self._release()
            raise GpumarketError(f"{self.out}: cannot write there: {os_reason(exc)}; choose "
                                 f"another --out") from None
        except BaseException:
            self._release()
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        try:
            if self.tmp is not None and os.path.lexists(self.tmp):
                shutil.rmtree(self.tmp, ignore_errors=True)
        finally:
            self._release()

    def _make_tmp(self) -> Path:
        """An empty directory with the mode of any new directory (0777 less the umask)."""
        while True:
            tmp = _temp_name(self.path, "tmp")
            try:
                os.mkdir(tmp, 0o777)
                return tmp
            except FileExistsError:
                continue

    def _lock(self) -> None:
        if fcntl is None:        # no advisory locks here: publishing alone refuses a race
            return
        while True:
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.read(fd, 32).decode("ascii", "replace").strip()
                os.close(fd)
                who = f" (pid {holder})" if holder.isdigit() else ""
                raise GpumarketError(f"{self.out}: another gpumarket process{who} is writing it; "
                                     f"wait for it to finish or choose another --out") from None
            except BaseException:
                os.close(fd)
                raise
            # The holder before us unlinks the file as it leaves: lock the file now at the path.
            try:
                current = os.stat(self.lock_path)
            except FileNotFoundError:
                current = None
            mine = os.fstat(fd)
            if current is not None and (current.st_dev, current.st_ino) == (mine.st_dev,
                                                                            mine.st_ino):
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()}\n".encode())
                self._lock_fd = fd
                return
            os.close(fd)

    def _release(self) -> None:
        if self._lock_fd is None:
            return
        with suppress(OSError):
            os.unlink(self.lock_path)
        os.close(self._lock_fd)
        self._lock_fd = None

    def publish(self) -> Path:
        """Move the finished `tmp` to `out`: onto a free name, or with `force` in place of a
        directory gpumarket wrote; never over anything else, even one that appeared meanwhile."""
        if self.tmp is None:
            raise RuntimeError("publish() outside the claim or twice")
        with write_errors(self.out):
            fsync_tree(self.tmp)
            if os.path.lexists(self.path):
                self._replace()
            elif not rename_noreplace(self.tmp, self.path):
                self._appeared()
            self.tmp = None
            fsync_dir(self.path.parent)
        return self.out

    def _appeared(self) -> None:
        raise GpumarketError(f"{self.out}: appeared while this run was computing; not replaced, "
                             f"nothing written")

    def _replace(self) -> None:
        """Swap `tmp` with the existing `out` (atomically where renameat2 can), then delete the
        previous output only if it still holds nothing but what gpumarket wrote."""
        if not self.force or self.path.is_symlink() or not self.path.is_dir():
            self._appeared()
        refusal = replace_refusal(self.path)
        if refusal:
            raise GpumarketError(f"{self.out}: not replaced: {refusal}")
        swapped = renameat2(self.tmp, self.path, RENAME_EXCHANGE)
        if swapped:
            old, self.tmp = self.tmp, None
            refusal = replace_refusal(old)
            if refusal:      # changed between the check and the swap: put it back
                renameat2(old, self.path, RENAME_EXCHANGE)
                self.tmp = old
                raise GpumarketError(f"{self.out}: not replaced: {refusal}")
            shutil.rmtree(old, ignore_errors=True)
            return
        old = _temp_name(self.path, "old")
        os.rename(self.path, old)
        if not rename_noreplace(self.tmp, self.path):
            if not rename_noreplace(old, self.path):
                raise GpumarketError(f"{self.out}: appeared while it was being replaced; the "
                                     f"previous output is kept at {old}")
            self._appeared()
        self.tmp = None
        if replace_refusal(old) is None:
            shutil.rmtree(old, ignore_errors=True)


@contextmanager
def atomic_directory(out: Path, force: bool = False) -> Iterator[Path]:
    """Build a directory in a temporary sibling and rename it to `out` only when the block
    succeeds, so an error or Ctrl-C leaves nothing behind (and `out` untouched). The checks
    and the lock of `OutputClaim` apply; enter `OutputClaim` yourself to hold them while the
    output is computed."""
    with OutputClaim(out, force) as claim:
        with write_errors(Path(out)):
            yield claim.tmp
        claim.publish()


def safe_name(name: str) -> str:
    """A plain directory name for `name`, never a path: each run of characters other than ASCII
    letters, digits, "_" and "-" becomes one "-", and none leads or trails ("../x" -> "x",
    "/some/where" -> "some-where"); "scenario" when nothing is left."""
    return re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-")[:NAME_CHARS] or "scenario"


def write_manifest(directory: Path, manifest: dict) -> None:
    """`manifest.json`, listing every entry of `directory` (all written by gpumarket, which
    built it) and the SHA-256 of each file: what `--force` may later replace, and only
    unchanged (a sub-directory has its own manifest)."""
    found = list(os.scandir(directory))
    entries = sorted(e.name + ("/" if e.is_dir(follow_symlinks=False) else "") for e in found)
    hashes = {e.name: _sha256(Path(e.path)) for e in sorted(found, key=lambda e: e.name)
              if e.is_file(follow_symlinks=False) and e.name != MANIFEST}
    manifest = dict(manifest, entries=sorted({*entries, MANIFEST}), **{FILE_HASHES: hashes})
    (Path(directory) / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True)
                                            + "\n")


def fill_run_dir(directory: Path, frames: dict[str, pd.DataFrame], resolved_scenario: dict,
                 manifest: dict, fmt: str) -> None:
    """Tables, `scenario.toml` and `manifest.json` (with each table's SHA-256) of one run."""
    if fmt not in ("parquet", "csv"):
        raise GpumarketError(f"unknown format {fmt!r}; known: csv, parquet")
    directory.mkdir(parents=True, exist_ok=True)
    hashes = write_tables(frames, directory, fmt)
    (directory / "scenario.toml").write_text(tomli_w.dumps(resolved_scenario))
    write_manifest(directory, dict(manifest, format=fmt, sha256=hashes,
                                   rows={name: int(len(f)) for name, f in frames.items()}))


def write_run(out: Path, frames: dict[str, pd.DataFrame], resolved_scenario: dict,
              manifest: dict, fmt: str = "parquet", force: bool = False) -> Path:
    """Write tables, `scenario.toml` and `manifest.json` to `out` atomically."""
    if fmt not in ("parquet", "csv"):
        raise GpumarketError(f"unknown format {fmt!r}; known: csv, parquet")
    with atomic_directory(out, force) as tmp:
        fill_run_dir(tmp, frames, resolved_scenario, manifest, fmt)
    return Path(out)


# ----------------------------------------------------------------------- output files ---

def _written_by_gpumarket(path: Path, marker: str) -> bool:
    """Whether the file at `path` begins (within its first 4 KiB) with gpumarket's `marker`."""
    try:
        with open(path, "rb") as fh:
            return marker.encode() in fh.read(4096)
    except OSError:
        return False


def check_out_file(target: Path, marker: str) -> None:
    """Refuse an output file gpumarket must not write, before any work: a directory, an
    existing file gpumarket did not write (its head lacks `marker`), a missing parent, or a
    place where no file can be created (tried for real with a temporary file, then removed)."""
    target = Path(target)
    if target.is_dir():
        raise GpumarketError(f"{target}: is a directory; give a file name for --out")
    if target.exists() and not _written_by_gpumarket(target, marker):
        raise GpumarketError(f"{target}: exists and was not written by gpumarket; not "
                             f"replaced: choose another --out or move it away")
    _check_parent(target)
    remove_stale(Path(os.path.abspath(target)))
    probe = _temp_name(Path(os.path.abspath(target)), "tmp")
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        os.unlink(probe)
    except OSError as exc:
        raise GpumarketError(f"{target}: cannot write there: {os_reason(exc)}; choose another "
                             f"--out") from None


def write_file_atomically(target: Path, text: str, marker: str) -> Path:
    """Write `text` to a temporary sibling named with this process's pid, flush it to disk and
    rename it onto `target`, unless a file gpumarket did not write appeared there meanwhile;
    an OS error (a full disk...) is one line and leaves nothing behind."""
    target = Path(target)
    tmp = _temp_name(Path(os.path.abspath(target)), "tmp")
    try:
        with write_errors(target):
            with open(tmp, "x", encoding="utf-8") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
            if target.is_dir() or (target.exists() and not _written_by_gpumarket(target, marker)):
                raise GpumarketError(f"{target}: appeared while the report was built; not "
                                     f"replaced, nothing written")
            os.replace(tmp, target)
    finally:
        with suppress(FileNotFoundError):
            os.unlink(tmp)
    return target
