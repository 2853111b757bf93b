"""Batches of runs on disk: the unit of work, the executors, and resumable Parquet results.

A batch directory holds
  batch.json          the manifest: gpumarket version, scenario (name, source, SHA-256), root
                      seed, design, run count; at the end, per-run status and timing and the
                      counts (completed + failed = expected)
  design.parquet      one row per run: run_id, seed and the parameter values it sets
  runs/run-NNNNNN.parquet
                      one file per finished run: every output table stacked, a `table` column
                      naming it, plus `run_id`, `seed` and `param.<path>` columns; each table is
                      its own row group, so reading one table skips the others
  runs.jsonl          the log, one line per finished or failed run as it arrives
Run files are written to a temporary name and renamed, so a batch killed at any moment (even
SIGKILL) loses at most the runs in flight; rerunning the same command skips runs whose file
exists, redoes the rest (failed ones included) and never writes a run twice.

The unit of work is `execute(task)`, a plain function of picklable data: Dask workers, a
process pool or this process run it alike; run k's tables depend only on the scenario, its
parameters, its seed and the months, never on where it ran.
"""

from __future__ import annotations

import io
import itertools
import json
import logging
import os
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from market.errors import GpumarketError

RUN_FILE = "run-{:06d}.parquet"


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
    written: bool = False        #: the worker wrote the run file itself


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


def execute(task: Task) -> Result:
    """Run one task; any exception becomes a failed result (the batch goes on)."""
    global _FROZEN
    from market.outputs import run_tables

    if not _FROZEN:
        # move what the process has imported out of the garbage collector's sight: its
        # full collections then walk only what runs create (a Dask worker's heap is large)
        import gc
        gc.collect()
        gc.freeze()
        _FROZEN = True
    started = time.perf_counter()
    try:
        scenario = scenario_for(task.scenario_json, task.params)
        tables = run_tables(scenario, task.seed, task.months)
        payload = encode_run(tables, task.run_id, task.seed, task.params)
        if task.out_dir is not None:
            write_run_file(Path(task.out_dir), task.run_id, payload)
            return Result(task.run_id, "done", time.perf_counter() - started, None, written=True)
        return Result(task.run_id, "done", time.perf_counter() - started, payload)
    except Exception as exc:   # recorded, not raised: one bad draw must not kill a batch
        where = traceback.extract_tb(exc.__traceback__)[-1]
        return Result(task.run_id, "failed", time.perf_counter() - started, None,
                      f"{type(exc).__name__}: {exc} ({Path(where.filename).name}:{where.lineno})")


def write_run_file(directory: Path, run_id: int, payload: bytes) -> Path:
    """Write a run file atomically (temporary name, then rename)."""
    path = directory / "runs" / RUN_FILE.format(run_id)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(payload)
    os.replace(tmp, path)
    return path


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
        try:
            if address:
                self.client = Client(address, timeout=f"{timeout_s}s")
            else:
                import dask

                # runs are CPU-bound Python: the worker's statistical profiler (a stack sample
                # every 10 ms) and frequent system monitoring cost several percent of each run
                # (and with no memory limit, no nanny polls each worker's memory)
                with dask.config.set({"distributed.worker.profile.enabled": False,
                                      "distributed.admin.system-monitor.interval": "10s",
                                      "distributed.worker.memory.monitor-interval": "10s"}):
                    self.cluster = LocalCluster(n_workers=workers or os.cpu_count() or 1,
                                                threads_per_worker=1, processes=True,
                                                host="127.0.0.1", dashboard_address=None,
                                                memory_limit=0, silence_logs=logging.ERROR)
                self.client = Client(self.cluster)
        except (OSError, TimeoutError) as exc:
            raise GpumarketError(f"cannot reach the Dask scheduler at {address}: "
                                 f"{exc}".rstrip(": ")) from None
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
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


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
    """A batch directory: its manifest, finished runs, the log."""

    def __init__(self, directory: Path):
        self.dir = Path(directory)
        self.runs_dir = self.dir / "runs"

    @property
    def manifest_path(self) -> Path:
        return self.dir / "batch.json"

    def manifest(self) -> dict:
        return json.loads(self.manifest_path.read_text())

    def run_path(self, run_id: int) -> Path:
        return self.runs_dir / RUN_FILE.format(run_id)

    def finished(self) -> set[int]:
        if not self.runs_dir.is_dir():
            return set()
        return {int(p.stem.split("-")[1]) for p in self.runs_dir.glob("run-*.parquet")}

    def check_compatible(self, identity: dict) -> None:
        """Refuse a directory that is not a batch, or holds a batch of another scenario or
        design (checked before anything is written)."""
        if not self.dir.exists():
            return
        if not self.dir.is_dir():
            raise GpumarketError(f"{self.dir}: exists and is not a directory")
        if not self.manifest_path.exists():
            if any(self.dir.iterdir()):
                raise GpumarketError(f"{self.dir}: not empty and not a gpumarket batch "
                                     "(no batch.json); choose another --out")
            return
        old = self.manifest()
        for key in ("kind", "scenario", "scenario_sha256", "design", "months"):
            if old.get(key) != identity.get(key):
                raise GpumarketError(
                    f"{self.dir}: holds a batch of a different {key.replace('_', ' ')} "
                    f"({_short(old.get(key))} vs {_short(identity.get(key))}); use another "
                    "--out or the same command")

    def start(self, identity: dict, design_rows: pd.DataFrame) -> None:
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        for stale in self.runs_dir.glob("*.tmp"):
            stale.unlink()                      # a write cut short by a kill
        if not self.manifest_path.exists():
            _write_json(self.manifest_path, dict(identity, status="running"))
            design_rows.to_parquet(self.dir / "design.parquet", index=False)

    def record(self, result: Result) -> None:
        """Write a finished run atomically, and log it."""
        if result.status == "done" and not result.written:
            write_run_file(self.dir, result.run_id, result.payload)
        line = {"run_id": result.run_id, "status": result.status,
                "seconds": round(result.seconds, 4), "error": result.error,
                "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S")}
        with (self.dir / "runs.jsonl").open("a") as log:
            log.write(json.dumps(line) + "\n")

    def statuses(self) -> dict[int, dict]:
        """Last logged status of each run; a run whose file exists counts as done."""
        out: dict[int, dict] = {}
        log = self.dir / "runs.jsonl"
        if log.exists():
            for raw in log.read_text().splitlines():
                try:
                    line = json.loads(raw)
                except json.JSONDecodeError:   # a line cut short by a kill
                    continue
                out[line["run_id"]] = line
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
        _write_json(self.manifest_path, manifest)
        return manifest


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=str) if not isinstance(value, str) else value
    return text if len(text) <= 40 else text[:37] + "..."


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
    os.replace(tmp, path)


def run_batch(batch: Batch, tasks: list[Task], executor, progress: Callable[[int], None]
              | None = None) -> tuple[int, int]:
    """Run the tasks whose file is missing; returns (done now, failed now)."""
    todo = [t for t in tasks if t.run_id not in batch.finished()]
    done = failed = 0
    for result in executor.map(execute, todo):
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
    sample = pq.read_table(files[0], filters=[("table", "in", tables)])
    if columns is not None:
        columns = list(dict.fromkeys(["table", "run_id", *columns]))
    elif sample.num_rows:
        columns = [c for c in sample.column_names
                   if c in ("table", "run_id", "seed") or c.startswith("param.")
                   or sample[c].null_count < sample.num_rows]
    parts = [pq.read_table(f, columns=columns, filters=filters) for f in files]
    frame = pa.concat_tables(parts).to_pandas()
    out = {}
    for name in tables:
        part = frame[frame["table"] == name]
        if len(part):
            part = part.dropna(axis=1, how="all")      # the other tables' columns
        out[name] = part.drop(columns=["table"]).reset_index(drop=True)
    return out


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
