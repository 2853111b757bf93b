"""Batches of runs on disk: the unit of work, the executors, and resumable Parquet results.

A batch directory holds
  batch.json          the manifest: gpumarket version(s), scenario (name, source, SHA-256), root
                      seed, design, run count; at the end, per-run status and timing and the
                      counts (completed + failed = expected)
  design.parquet      one row per run: run_id, seed and the parameter values it sets
  runs/run-NNNNNN.parquet
                      one file per finished run: every output table stacked, a `table` column
                      naming it, plus `run_id`, `seed` and `param.<path>` columns; each table is
                      its own row group, so reading one table skips the others
  runs.jsonl          the log, one line per finished (with its row count) or failed run
  batch.lock          held (flock) by the one gpumarket process working on the batch
A new batch is built in a hidden sibling and renamed into place, so a kill leaves nothing or a
complete start. A run file is written to a temporary name and fsynced, logged with its row
count, then renamed (and the directory fsynced): a run counts as done only when its file is in
place and durable. Rerunning the same command verifies each run file (Parquet footer, run_id,
recorded row count), redoes missing and bad ones (failed ones included) and never writes a run
twice; a batch killed at any moment (even SIGKILL, or power loss) loses at most the runs in
flight.

The unit of work is `execute(task)`, a plain function of picklable data: Dask workers, a
process pool or this process run it alike; run k's tables depend only on the scenario, its
parameters, its seed and the months, never on where it ran.
"""

from __future__ import annotations

import fcntl
import io
import itertools
import json
import logging
import os
import secrets
import shutil
import signal
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from market.errors import GpumarketError
from market.files import (fsync_dir, os_reason, pid_alive, rename_noreplace, write_durable,
                          write_synced)

RUN_FILE = "run-{:06d}.parquet"
MANIFEST = "batch.json"
DESIGN = "design.parquet"
LOG = "runs.jsonl"
LOCK = "batch.lock"
#: what a batch directory holds before its manifest: a start in an existing empty directory
#: that was cut short leaves some of these (and temporary files) and is started again
START_NAMES = frozenset({LOCK, DESIGN, "runs"})


class BatchLockedError(GpumarketError):
    """Another live gpumarket process holds the batch directory's lock."""


class BatchWriteError(GpumarketError):
    """Writing a run file, the log or the manifest failed (disk full, quota, file size limit)."""

    def __init__(self, path: str | Path, reason: str):
        self.path, self.reason = str(path), reason
        super().__init__(f"cannot write {path} ({reason})")


# ---------------------------------------------------------------------- unit of work ---

@dataclass(frozen=True)
class Task:
    run_id: int
    seed: int
    params: dict[str, Any]
    months: int | None
    scenario_json: str           #: the resolved scenario (JSON), validated on the worker
    out_dir: str | None = None   #: batch directory the worker writes to (same filesystem)


@dataclass(frozen=True)
class Result:
    run_id: int
    status: str                  #: done | failed
    seconds: float
    payload: bytes | None        #: the run file's bytes when done (None if the worker wrote it)
    error: str | None = None
    written: bool = False        #: the worker wrote the run file itself (to `tmp_path`)
    rows: int | None = None      #: rows of the run file (recorded, checked on resume)
    tmp_path: str | None = None  #: the worker's fsynced temporary file, renamed by the client


_SCENARIOS: dict[str, Any] = {}


def _base_data(scenario_json: str) -> dict:
    # workers keep the parsed scenario per batch; parameters are set on a copy per run
    if scenario_json not in _SCENARIOS:
        _SCENARIOS.clear()
        _SCENARIOS[scenario_json] = json.loads(scenario_json)
    return _SCENARIOS[scenario_json]


def scenario_for(scenario_json: str, params: dict[str, Any]):
    """The validated scenario of one run: the batch's resolved scenario with its parameters."""
    import copy

    from scenarios.loader import check_references, set_path
    from scenarios.schema import Scenario

    data = copy.deepcopy(_base_data(scenario_json))
    for path, value in params.items():
        set_path(data, path, value)
    scenario = Scenario.model_validate(data)
    problems = check_references(scenario)
    if problems:
        raise GpumarketError("; ".join(f"{p}: {m}" for p, m in problems))
    return scenario


def _param_value(value: Any) -> Any:
    if isinstance(value, (bool, int, float)):
        return value
    return json.dumps(value) if isinstance(value, (dict, list)) else str(value)


def encode_run(tables: dict[str, pd.DataFrame], run_id: int, seed: int,
               params: dict[str, Any]) -> bytes:
    """All tables of a run as one Parquet file: a union schema, one row group per table, with
    `table`, `run_id`, `seed` and `param.<path>` columns (constant columns built in Arrow)."""
    parts = []
    for name, frame in tables.items():
        part = pa.Table.from_pandas(frame, preserve_index=False)
        n = part.num_rows
        front = [("table", pa.repeat(pa.scalar(name), n)),
                 ("run_id", pa.repeat(pa.scalar(run_id, pa.int64()), n)),
                 ("seed", pa.repeat(pa.scalar(seed, pa.int64()), n))]
        for i, (col, arr) in enumerate(front):
            part = part.add_column(i, col, arr)
        for path, value in params.items():
            part = part.append_column(f"param.{path}",
                                      pa.repeat(pa.scalar(_param_value(value)), n))
        parts.append(part)
    schema = pa.unify_schemas([p.schema for p in parts])
    sink = io.BytesIO()
    # lz4: 40% faster to write than zstd here for 5% more bytes; statistics only on the
    # columns readers filter by, dictionaries only for `table`: half the encoding time
    with pq.ParquetWriter(sink, schema, compression="lz4",
                          write_statistics=["table", "run_id", "date"],
                          use_dictionary=["table"]) as writer:
        for part in parts:
            missing = [f for f in schema if f.name not in part.schema.names]
            for field in missing:
                part = part.append_column(field, pa.nulls(part.num_rows, field.type))
            writer.write_table(part.select(schema.names).cast(schema))
    return sink.getvalue()


_FROZEN = False


def tables_payload(task: Task) -> tuple[bytes, int]:
    """A Monte Carlo run's file: every output table of the run (`encode_run`), and its rows."""
    from market.outputs import run_tables

    scenario = scenario_for(task.scenario_json, task.params)
    tables = run_tables(scenario, task.seed, task.months)
    return (encode_run(tables, task.run_id, task.seed, task.params),
            sum(len(frame) for frame in tables.values()))


def execute(task: Task) -> Result:
    """Run one task of a Monte Carlo batch (`execute_with` and `tables_payload`)."""
    return execute_with(task, tables_payload)


def execute_with(task: Task, produce: Callable[[Task], tuple[bytes, int]]) -> Result:
    """Run one task: `produce` makes its run file's bytes and row count (a Parquet file with
    a `run_id` column). Any exception of the model becomes a failed result (the batch goes
    on); a failed write of the run file becomes a `write_failed` result (the batch stops)."""
    global _FROZEN

    if not _FROZEN:
        # move what the process has imported out of the garbage collector's sight: its
        # full collections then walk only what runs create (a Dask worker's heap is large)
        import gc
        gc.collect()
        gc.freeze()
        _FROZEN = True
    started = time.perf_counter()
    try:
        payload, rows = produce(task)
    except Exception as exc:   # recorded, not raised: one bad draw must not kill a batch
        where = traceback.extract_tb(exc.__traceback__)[-1]
        return Result(task.run_id, "failed", time.perf_counter() - started, None,
                      f"{type(exc).__name__}: {exc} ({Path(where.filename).name}:{where.lineno})")
    if task.out_dir is None:
        return Result(task.run_id, "done", time.perf_counter() - started, payload, rows=rows)
    try:
        tmp = write_temporary(Path(task.out_dir), task.run_id, payload)
    except OSError as exc:
        return Result(task.run_id, "write_failed", time.perf_counter() - started, None,
                      os_reason(exc), rows=rows)
    return Result(task.run_id, "done", time.perf_counter() - started, None, written=True,
                  rows=rows, tmp_path=str(tmp))


def write_temporary(directory: Path, run_id: int, payload: bytes) -> Path:
    """Write a run file's bytes to a temporary name beside it and fsync them; the batch's
    owner renames it into place once it is logged (`Batch.record`)."""
    path = Path(directory) / "runs" / RUN_FILE.format(run_id)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    write_synced(tmp, payload)
    return tmp


# ------------------------------------------------------------------------- executors ---

class SequentialExecutor:
    """Runs tasks one after another in this process (tests, debugging, --workers 0)."""

    name = "sequential"
    workers = 1
    shares_filesystem = True

    def map(self, fn: Callable[[Task], Result], tasks: Iterable[Task]) -> Iterator[Result]:
        for task in tasks:
            yield fn(task)

    def close(self) -> None:
        pass


class DaskExecutor:
    """Runs tasks on Dask: an embedded `LocalCluster` of single-threaded worker processes, or
    an existing scheduler at `address`. At most `window` tasks are in flight, so memory stays
    flat however many runs the batch has; results come back in completion order."""

    name = "dask"

    def __init__(self, address: str | None = None, workers: int | None = None,
                 timeout_s: float = 10.0):
        from distributed import Client, LocalCluster

        self.cluster = None
        self.client = None
        self._own_forkserver = False
        try:
            if address:
                self.client = Client(address, timeout=f"{timeout_s}s")
            else:
                import dask

                # runs are CPU-bound Python: the worker's statistical profiler (a stack sample
                # every 10 ms) and frequent system monitoring cost several percent of each run
                # (and with no memory limit, no nanny polls each worker's memory)
                # no web pages: the scheduler and workers always start an HTTP server
                # (dashboard_address=None still means port 8787), so they get no routes and
                # their servers are stopped once the cluster is up
                with dask.config.set({"distributed.worker.profile.enabled": False,
                                      "distributed.admin.system-monitor.interval": "10s",
                                      "distributed.worker.memory.monitor-interval": "10s",
                                      "distributed.scheduler.http.routes": [],
                                      "distributed.worker.http.routes": [],
                                      "distributed.worker.multiprocessing-method":
                                          _WORKER_START_METHOD}):
                    self._own_forkserver = _start_forkserver_ignoring_sigint()
                    with _sigint_deferred():
                        # workers' log lines (a heartbeat cut by the cluster's closing) would
                        # interleave with ours; a run's own errors come back in its Result
                        self.cluster = LocalCluster(n_workers=workers or os.cpu_count() or 1,
                                                    threads_per_worker=1, processes=True,
                                                    host="127.0.0.1",
                                                    dashboard_address="127.0.0.1:0",
                                                    scheduler_kwargs={"dashboard": False},
                                                    memory_limit=0,
                                                    silence_logs=logging.CRITICAL)
                        self.client = Client(self.cluster)
                        self.client.run_on_scheduler(_stop_http)
                        self.client.run(_stop_http)
        except (OSError, TimeoutError) as exc:
            if self.cluster is not None:
                self.cluster.close()
            raise GpumarketError(f"cannot reach the Dask scheduler at {address}: "
                                 f"{exc}".rstrip(": ")) from None
        except KeyboardInterrupt:      # Ctrl-C during start-up, delivered once it is over
            self.close()
            raise
        self.address = address or self.cluster.scheduler_address
        # workers of the embedded cluster write run files themselves; remote ones send them
        self.shares_filesystem = self.cluster is not None
        self.workers = max(1, len(self.client.scheduler_info().get("workers", {})))

    def map(self, fn: Callable[[Task], Result], tasks: Iterable[Task]) -> Iterator[Result]:
        from distributed import as_completed

        tasks = iter(tasks)
        window = 4 * self.workers
        pending = as_completed()
        for task in itertools.islice(tasks, window):
            pending.add(self.client.submit(fn, task, key=f"gpumarket-run-{task.run_id}-"
                                           f"{os.getpid()}-{time.monotonic_ns()}", pure=False))
        for future in pending:
            try:
                result = future.result()
            except Exception as exc:     # a worker died more often than Dask retries
                result = Result(_run_id_of(future.key), "failed", 0.0, None,
                                f"{type(exc).__name__}: {exc}")
            future.release()
            nxt = next(tasks, None)
            if nxt is not None:
                pending.add(self.client.submit(fn, nxt, key=f"gpumarket-run-{nxt.run_id}-"
                                               f"{os.getpid()}-{time.monotonic_ns()}",
                                               pure=False))
            yield result

    def close(self) -> None:
        if getattr(self, "client", None) is not None:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()
        if self._own_forkserver:                  # no process of ours outlives the batch
            import multiprocessing.forkserver
            import multiprocessing.resource_tracker
            multiprocessing.forkserver._forkserver._stop()
            if self._own_forkserver == "with its resource tracker":
                multiprocessing.resource_tracker._resource_tracker._stop()
            self._own_forkserver = False


def _stop_http(dask_worker=None, dask_scheduler=None) -> None:
    """Stop a scheduler's or worker's HTTP server, on its own event loop (`client.run` and
    `run_on_scheduler` pass the server)."""
    node = dask_worker if dask_worker is not None else dask_scheduler
    server = getattr(node, "http_server", None)
    if server is not None:
        server.stop()
        node.services.pop("dashboard", None)


#: how local workers are started: forked from one server process that ignores Ctrl-C, so
#: that they inherit its ignoring it (a Ctrl-C to the process group then reaches only the
#: client, which closes the cluster in order, instead of each worker printing a traceback)
_WORKER_START_METHOD = "forkserver"


class _sigint_deferred:
    """Hold a Ctrl-C back while the local cluster starts (an interrupted start leaves worker
    processes half-made) and raise it as KeyboardInterrupt once the start is over."""

    def __enter__(self):
        self.caught = False
        self.main = threading.current_thread() is threading.main_thread()
        if self.main:
            self.previous = signal.signal(signal.SIGINT, self._catch)
        return self

    def _catch(self, signum, frame) -> None:
        self.caught = True

    def __exit__(self, *exc) -> None:
        if self.main:
            signal.signal(signal.SIGINT, self.previous)
        if self.caught:
            raise KeyboardInterrupt


def _start_forkserver_ignoring_sigint() -> bool | str:
    """Start multiprocessing's fork server (if not running) with SIGINT ignored: it keeps
    that disposition and every worker forked from it inherits it; this process's own
    handler is restored at once. Truthy if this call started it (then `close` stops it;
    "with its resource tracker" when it also started multiprocessing's resource tracker)."""
    import multiprocessing.forkserver
    import multiprocessing.resource_tracker

    from distributed.utils import get_mp_context

    get_mp_context()                     # sets the fork server's preloads (distributed, ...)
    server = multiprocessing.forkserver._forkserver
    if server._forkserver_pid is not None:
        return False
    tracker_new = multiprocessing.resource_tracker._resource_tracker._pid is None
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if main else None
    try:
        server.ensure_running()
    finally:
        if main:
            signal.signal(signal.SIGINT, previous)
    return "with its resource tracker" if tracker_new else True


def _run_id_of(key: str) -> int:
    return int(str(key).split("-")[2])


def make_executor(workers: int | None, scheduler: str | None):
    """`--workers 0`: sequential in this process; `--scheduler ADDR` (or the
    DASK_SCHEDULER_ADDRESS variable): an existing cluster; else a local Dask cluster."""
    address = scheduler or (os.environ.get("DASK_SCHEDULER_ADDRESS") if workers is None else None)
    if address:
        return DaskExecutor(address=address)
    if workers == 0:
        return SequentialExecutor()
    return DaskExecutor(workers=workers)


# ----------------------------------------------------------------------------- batch ---

class Batch:
    """A batch directory: its manifest, finished runs, the log, and the lock its one owner
    holds for the whole session (`open` ... `close`)."""

    def __init__(self, directory: Path):
        self.dir = Path(directory)
        self.runs_dir = self.dir / "runs"
        self.created = False                #: this session created the directory
        self._lock_fd: int | None = None
        self._done: set[int] | None = None  #: verified run files (see `verify`)

    @property
    def manifest_path(self) -> Path:
        return self.dir / MANIFEST

    def manifest(self) -> dict:
        return json.loads(self.manifest_path.read_text())

    def run_path(self, run_id: int) -> Path:
        return self.runs_dir / RUN_FILE.format(run_id)

    # -- starting and locking ---------------------------------------------------------

    def open(self, identity: dict, design_rows: pd.DataFrame,
             allow_version_change: bool = False) -> None:
        """Lock the batch directory and start it (a new directory is built in a hidden
        sibling and renamed into place) or check that it holds this batch. Refuses, before
        anything is written: a place that cannot be written, a directory that is not a
        batch, a batch of another scenario, design or (unless allowed) gpumarket version,
        and a batch another live gpumarket process holds."""
        self._check_parent()
        self._clean_stale_starts()
        if not os.path.lexists(self.dir) and self._create(identity, design_rows):
            return
        if not self.dir.is_dir():
            raise GpumarketError(f"{self.dir}: exists and is not a directory")
        if not self.manifest_path.exists() and not self._unstarted():
            raise GpumarketError(f"{self.dir}: not empty and not a gpumarket batch "
                                 "(no batch.json); choose another --out")
        self._lock()
        try:
            if self.manifest_path.exists():
                self.check_compatible(identity, allow_version_change)
                if not (self.dir / DESIGN).exists():    # 0.5.0 killed after batch.json
                    write_durable(self.dir / DESIGN, _parquet_bytes(design_rows))
                self.runs_dir.mkdir(exist_ok=True)
            else:                               # an existing empty directory
                self._fill(self.dir, identity, design_rows)
            self._clean_temporary()
            probe = self.runs_dir / f".probe.{os.getpid()}.tmp"
            write_synced(probe, b"")
            probe.unlink()
        except OSError as exc:
            self.close()
            raise GpumarketError(f"{self.dir}: cannot write the batch directory "
                                 f"({os_reason(exc)})") from None
        except GpumarketError:
            self.close()
            raise

    def start(self, identity: dict, design_rows: pd.DataFrame) -> None:
        """`open` for callers that start a fresh batch (benchmarks)."""
        self.open(identity, design_rows)

    def close(self) -> None:
        """Release the lock (a dead process's lock is released by the kernel)."""
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def abandon(self) -> None:
        """Remove a batch this session created and ran nothing in (the executor could not
        start), so a failed command leaves nothing behind; then release the lock."""
        if self.created and self._lock_fd is not None and not run_files(self.dir):
            shutil.rmtree(self.dir, ignore_errors=True)
        self.close()

    def _check_parent(self) -> None:
        parent = self.dir.parent
        ancestor = parent
        while not os.path.lexists(ancestor) and ancestor != ancestor.parent:
            ancestor = ancestor.parent
        if not ancestor.is_dir():
            raise GpumarketError(f"{self.dir}: cannot create the batch directory "
                                 f"({ancestor} is not a directory)")
        if ancestor != parent:
            raise GpumarketError(f"{self.dir}: cannot create the batch directory "
                                 f"({parent} does not exist)")

    def _lock(self) -> None:
        self._lock_fd = _take_lock(self.dir / LOCK, self.dir)

    def _create(self, identity: dict, design_rows: pd.DataFrame) -> bool:
        """Build the batch in a hidden sibling and rename it into place; False when a
        directory of that name appeared meanwhile (it is then left alone)."""
        tmp = self.dir.with_name(f".{self.dir.name}.batch-{os.getpid()}-"
                                 f"{secrets.token_hex(4)}.new")
        fd = None
        try:
            os.mkdir(tmp)                       # the user's umask applies
            fd = _take_lock(tmp / LOCK, self.dir)
            self._fill(tmp, identity, design_rows)
            if not rename_noreplace(tmp, self.dir):      # a directory appeared meanwhile
                raise FileExistsError(str(self.dir))
            fsync_dir(self.dir.parent)
        except FileExistsError:
            if fd is not None:
                os.close(fd)
            shutil.rmtree(tmp, ignore_errors=True)
            return False
        except OSError as exc:
            if fd is not None:
                os.close(fd)
            shutil.rmtree(tmp, ignore_errors=True)
            raise GpumarketError(f"{self.dir}: cannot create the batch directory "
                                 f"({os_reason(exc)})") from None
        self._lock_fd, self.created = fd, True
        return True

    @staticmethod
    def _fill(directory: Path, identity: dict, design_rows: pd.DataFrame) -> None:
        """The start of a batch: the design, `runs/`, and last the manifest, each durable."""
        write_durable(directory / DESIGN, _parquet_bytes(design_rows))
        (directory / "runs").mkdir(exist_ok=True)
        _write_json(directory / MANIFEST, dict(identity, status="running"))
        fsync_dir(directory)

    def _unstarted(self) -> bool:
        """Empty, or only what a start in this (existing) directory cut short leaves."""
        for entry in self.dir.iterdir():
            if entry.name.endswith(".tmp"):
                continue
            if entry.name not in START_NAMES:
                return False
            if entry.name == "runs" and (not entry.is_dir() or any(
                    not p.name.endswith(".tmp") for p in entry.iterdir())):
                return False
        return True

    def _clean_stale_starts(self) -> None:
        """Remove hidden siblings that a gpumarket start killed before its rename left (their
        lock is free, or they have none and their process is gone)."""
        parent = self.dir.parent
        if not parent.is_dir():
            return
        prefix = f".{self.dir.name}.batch-"
        for tmp in parent.iterdir():
            if not (tmp.name.startswith(prefix) and tmp.name.endswith(".new")) \
                    or tmp.is_symlink() or not tmp.is_dir():
                continue
            try:
                if (tmp / LOCK).exists():
                    fd = os.open(tmp / LOCK, os.O_RDWR | os.O_CLOEXEC)
                    try:
                        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    except BlockingIOError:
                        continue                        # its process is still building it
                    finally:
                        os.close(fd)
                elif pid_alive(int(tmp.name[len(prefix):].split("-")[0])):
                    continue
                shutil.rmtree(tmp)
            except (OSError, ValueError):
                continue

    def _clean_temporary(self) -> None:
        """Temporary files of writes cut short by a kill (safe: the lock is held)."""
        for stale in [*self.runs_dir.glob("*.tmp"), *self.dir.glob("*.tmp")]:
            stale.unlink(missing_ok=True)

    def check_compatible(self, identity: dict, allow_version_change: bool = False) -> None:
        """Refuse a batch of another scenario, design or months, or (unless allowed, then
        both versions are recorded) one written by another gpumarket version."""
        old = self.manifest()
        versions = old.get("gpumarket_versions") or [old.get("gpumarket_version")]
        version = identity.get("gpumarket_version")
        if version not in versions and not allow_version_change:
            raise GpumarketError(
                f"{self.dir}: batch written by gpumarket {', '.join(map(str, versions))}, "
                f"this is gpumarket {version}; use another --out, or add "
                "--allow-version-change to continue it (both versions are then recorded)")
        for key in ("kind", "scenario", "scenario_sha256", "design", "months"):
            if old.get(key) != identity.get(key):
                field, there, asked = _differences(old.get(key), identity.get(key), key)[0]
                raise GpumarketError(
                    f"{self.dir}: holds a batch of a different {key.replace('_', ' ')}: "
                    f"{field} is {there} there, {asked} asked for; use another --out or the "
                    "same command")
        if version not in versions:
            old["gpumarket_versions"] = [*versions, version]
            _write_json(self.manifest_path, old)

    # -- runs -------------------------------------------------------------------------

    def verify(self) -> list[int]:
        """Check every run file (readable Parquet footer, its run_id, the row count logged
        when it was written); remove the bad ones so they are redone. Returns their run ids."""
        recorded = self._recorded_rows()
        self._done, bad = set(), []
        for path in run_files(self.dir):
            run_id = int(path.stem.split("-")[1])
            if check_run_file(path, run_id, recorded.get(run_id, _UNRECORDED)) is None:
                self._done.add(run_id)
            else:
                path.unlink()
                bad.append(run_id)
        if bad:
            fsync_dir(self.runs_dir)
        return bad

    def finished(self) -> set[int]:
        """Run ids whose file is in place and verified."""
        if self._done is None:
            self.verify()
        return set(self._done)

    def record(self, result: Result) -> None:
        """Make a finished run durable and log it: its fsynced temporary file is logged with
        its row count, then renamed into place; a failed run is logged. A failed write
        raises `BatchWriteError` (the batch stops there)."""
        path = self.run_path(result.run_id)
        if result.status == "write_failed":       # the worker's write of the run file
            raise BatchWriteError(path, result.error or "write failed")
        try:
            if result.status == "done":
                tmp = (Path(result.tmp_path) if result.written
                       else write_temporary(self.dir, result.run_id, result.payload))
            self._log(result)
            if result.status == "done":
                os.replace(tmp, path)
                fsync_dir(self.runs_dir)
        except OSError as exc:
            # name the file the user knows, not its temporary name
            where = str(exc.filename or path)
            if Path(where).name.startswith("run-") and where.endswith(".tmp"):
                where = str(path)
            raise BatchWriteError(where, os_reason(exc)) from None
        if result.status == "done" and self._done is not None:
            self._done.add(result.run_id)

    def _log(self, result: Result) -> None:
        line = {"run_id": result.run_id, "status": result.status,
                "seconds": round(result.seconds, 4), "error": result.error,
                "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S")}
        if result.status == "done":
            line["rows"] = result.rows
        with (self.dir / LOG).open("a") as log:
            log.write(json.dumps(line) + "\n")
            log.flush()
            os.fsync(log.fileno())

    def _lines(self) -> Iterator[dict]:
        log = self.dir / LOG
        if not log.exists():
            return
        for raw in log.read_text().splitlines():
            try:
                line = json.loads(raw)
            except json.JSONDecodeError:   # a line cut short by a kill
                continue
            if isinstance(line, dict) and isinstance(line.get("run_id"), int):
                yield line

    def _recorded_rows(self) -> dict[int, int | None]:
        """The row count of each run's last `done` line (None: logged by a gpumarket that
        did not record it)."""
        return {line["run_id"]: line.get("rows") for line in self._lines()
                if line.get("status") == "done"}

    def statuses(self) -> dict[int, dict]:
        """Last logged status of each run; a run whose file verified counts as done."""
        out: dict[int, dict] = {line["run_id"]: line for line in self._lines()}
        for run_id in self.finished():
            if out.get(run_id, {}).get("status") != "done":
                out[run_id] = {"run_id": run_id, "status": "done", "seconds": None}
        return out

    def finish(self, expected: int, elapsed_s: float, executor: str) -> dict:
        statuses = self.statuses()
        done = sorted(r for r in self.finished() if r < expected)
        failed = sorted(r for r, s in statuses.items()
                        if s["status"] == "failed" and r not in set(done) and r < expected)
        manifest = self.manifest()
        manifest.update(
            status="complete" if len(done) == expected else "incomplete",
            expected=expected, completed=len(done), failed=len(failed),
            last_session={"elapsed_s": round(elapsed_s, 2), "executor": executor},
            per_run={str(r): {"status": statuses.get(r, {}).get("status", "missing"),
                              "seconds": statuses.get(r, {}).get("seconds"),
                              "error": statuses.get(r, {}).get("error")}
                     for r in range(expected)})
        try:
            _write_json(self.manifest_path, manifest)
        except OSError as exc:
            raise BatchWriteError(self.manifest_path, os_reason(exc)) from None
        return manifest


_UNRECORDED = object()


def _parquet_bytes(frame: pd.DataFrame) -> bytes:
    sink = io.BytesIO()
    frame.to_parquet(sink, index=False)
    return sink.getvalue()


def check_run_file(path: Path, run_id: int, rows: Any = _UNRECORDED) -> str | None:
    """Why a run file cannot count as done (None if it can): no readable Parquet footer, a
    row group of another run_id, or a row count other than `rows` (the logged one; None
    skips the count, `_UNRECORDED` means the run was never logged as done)."""
    if rows is _UNRECORDED:
        return "not logged as done"
    try:
        meta = pq.read_metadata(path)
    except (OSError, pa.ArrowException) as exc:
        return f"unreadable ({exc})"
    if rows is not None and meta.num_rows != rows:
        return f"{meta.num_rows} rows, {rows} logged"
    names = [meta.schema.column(i).name for i in range(meta.num_columns)]
    if "run_id" not in names:
        return "no run_id column"
    col = names.index("run_id")
    for g in range(meta.num_row_groups):
        group = meta.row_group(g)
        if group.num_rows == 0:
            continue
        stats = group.column(col).statistics
        if stats is None or not stats.has_min_max or not stats.min == stats.max == run_id:
            return f"row group {g} is not run {run_id}"
    return None


def _take_lock(path: Path, batch_dir: Path) -> int:
    """An exclusive flock on the lock file (created if missing), or `BatchLockedError`."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise BatchLockedError(f"{batch_dir}: another gpumarket process holds this batch "
                               f"(lock {LOCK}); wait for it to end, or use another --out")
    return fd


def _differences(there: Any, asked: Any, path: str) -> list[tuple[str, str, str]]:
    """Where two manifest values differ, as (field, value there, value asked for): the leaves
    of nested tables in the order the command states them, a digest only where nothing else
    differs (it differs whenever anything does); the whole value where it is not a table."""
    if not (isinstance(there, dict) and isinstance(asked, dict)):
        return [(path, _short(there), _short(asked))]
    keys = [*asked, *(k for k in there if k not in asked)]
    found = [d for k in keys if there.get(k) != asked.get(k)
             for d in _differences(there.get(k), asked.get(k), f"{path}.{k}")]
    named = [d for d in found if not d[0].endswith("_sha")]
    return named or found


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=str) if not isinstance(value, str) else value
    return text if len(text) <= 40 else text[:37] + "..."


def _write_json(path: Path, data: dict) -> None:
    write_durable(path, (json.dumps(data, indent=2, sort_keys=True, default=str)
                          + "\n").encode())


def run_batch(batch: Batch, tasks: list[Task], executor, progress: Callable[[int], None]
              | None = None, fn: Callable[[Task], Result] = execute) -> tuple[int, int]:
    """Run the tasks whose file is missing or bad with `fn` (a module-level function, so
    that workers can import it); returns (done now, failed now). Stops with
    `BatchWriteError` at the first run that could not be written."""
    finished = batch.finished()
    todo = [t for t in tasks if t.run_id not in finished]
    done = failed = 0
    for result in executor.map(fn, todo):
        batch.record(result)
        done += result.status == "done"
        failed += result.status == "failed"
        if progress is not None:
            progress(1)
    return done, failed


# --------------------------------------------------------------------------- reading ---

def run_files(directory: Path) -> list[Path]:
    return sorted((Path(directory) / "runs").glob("run-*.parquet"))


def read_tables(directory: Path, tables: list[str], dates: list[str] | None = None,
                columns: list[str] | None = None) -> dict[str, pd.DataFrame]:
    """Several output tables across a batch's runs, each with `run_id`, `seed` and the
    `param.*` columns; optionally only some months, and only some `columns` (then `run_id`
    and the listed ones). Files are read one at a time, only the tables' row groups and
    columns (statistics on `table` and `date` prune the rest), so memory follows the rows
    returned, not the batch size."""
    files = run_files(directory)
    if not files:
        return {t: pd.DataFrame() for t in tables}
    filters = [("table", "in", tables)]
    if dates:
        filters.append(("date", "in", [pd.Timestamp(d + "-01") for d in dates]))
    # these tables' columns (the union schema holds every table's): non-null in a run file
    sample = _read_run_file(files[0], filters=[("table", "in", tables)])
    if columns is not None:
        columns = list(dict.fromkeys(["table", "run_id", *columns]))
    elif sample.num_rows:
        columns = [c for c in sample.column_names
                   if c in ("table", "run_id", "seed") or c.startswith("param.")
                   or sample[c].null_count < sample.num_rows]
    parts = [_read_run_file(f, columns=columns, filters=filters) for f in files]
    frame = pa.concat_tables(parts).to_pandas()
    out = {}
    for name in tables:
        part = frame[frame["table"] == name]
        if len(part):
            part = part.dropna(axis=1, how="all")      # the other tables' columns
        out[name] = part.drop(columns=["table"]).reset_index(drop=True)
    return out


def _read_run_file(path: Path, **options) -> pa.Table:
    """One run file; one that cannot be read (cut short by a power loss before the batch was
    resumed) is a one-line error saying how to repair it."""
    try:
        return pq.read_table(path, **options)
    except (OSError, pa.ArrowException) as exc:
        raise GpumarketError(f"{path}: unreadable run file ({exc}); rerun the batch's command "
                             "to verify and redo it") from None


def read_table(directory: Path, table: str, columns: list[str] | None = None,
               dates: list[str] | None = None) -> pd.DataFrame:
    """One output table across a batch's runs (see `read_tables`); `columns` limits the
    table's own columns (`run_id`, `seed` and `param.*` always come)."""
    frame = read_tables(directory, [table], dates)[table]
    if columns is not None and len(frame):
        keep = ["run_id", "seed", *columns,
                *[c for c in frame.columns if c.startswith("param.")]]
        frame = frame[[c for c in dict.fromkeys(keep) if c in frame.columns]]
    return frame
