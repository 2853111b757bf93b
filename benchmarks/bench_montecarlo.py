#!/usr/bin/env python
"""Time Monte Carlo batches of the baseline on a local Dask cluster with 1 and 2 workers.

Prints, per worker count: runs per second, parallel efficiency (rate / (workers x the 1-worker
rate)), runs per worker-second, the scheduler and transfer overhead per task (wall time x
workers minus the time spent inside tasks, per task), and the peak resident memory of each
worker process and of this (client) process. Each batch writes its run files to a temporary
directory, as `gpumarket montecarlo` does. Cluster start-up is excluded from the timings.

usage: python benchmarks/bench_montecarlo.py [--runs 200] [--workers 1 2] [--months M]
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

import pandas as pd

from analysis.design import make_design
from analysis.runner import Batch, DaskExecutor, Task, run_batch
from scenarios.loader import load_scenario


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def time_batch(runs: int, workers: int, months: int | None) -> dict:
    loaded = load_scenario("baseline")
    design = make_design(loaded.scenario, runs, "lhs", 0)
    scenario_json = json.dumps(loaded.scenario.model_dump(mode="json"))
    with tempfile.TemporaryDirectory() as tmp:
        batch = Batch(Path(tmp) / "mc")
        batch.start({"kind": "benchmark"}, pd.DataFrame({"run_id": range(runs)}))
        tasks = [Task(r.run_id, r.seed, r.params, months, scenario_json, str(batch.dir))
                 for r in design.runs]
        executor = DaskExecutor(workers=workers)
        try:
            # warm the workers (imports, catalog) so start-up is not counted
            list(executor.map(_warm, [Task(-1, 0, {}, 1, scenario_json)] * workers))
            started = time.perf_counter()
            done, failed = run_batch(batch, tasks, executor)
            wall = time.perf_counter() - started
            peaks = executor.client.run(peak_rss_mb)
        finally:
            executor.close()
        inside = sum(json.loads(line)["seconds"]
                     for line in (batch.dir / "runs.jsonl").read_text().splitlines())
    return {"workers": workers, "runs": done, "failed": failed, "wall_s": wall,
            "rate": done / wall, "task_s": inside / max(done, 1),
            "overhead_s": (wall * workers - inside) / max(done, 1),
            "worker_peak_mb": max(peaks.values()), "client_peak_mb": peak_rss_mb()}


def _warm(task: Task):
    from analysis.runner import Result, execute
    execute(task)
    return Result(task.run_id, "done", 0.0, None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--months", type=int, default=None)
    args = parser.parse_args()
    rows = [time_batch(args.runs, w, args.months) for w in args.workers]
    base = next((r["rate"] for r in rows if r["workers"] == 1), None)
    print(f"{'workers':>7} {'runs':>5} {'wall s':>7} {'runs/s':>7} {'efficiency':>10} "
          f"{'runs/worker-s':>13} {'s/run in task':>13} {'overhead s/task':>15} "
          f"{'worker peak MB':>14} {'client peak MB':>14}")
    for r in rows:
        eff = f"{r['rate'] / (base * r['workers']):.0%}" if base else "n/a"
        print(f"{r['workers']:>7} {r['runs']:>5} {r['wall_s']:>7.1f} {r['rate']:>7.2f} "
              f"{eff:>10} {r['rate'] / r['workers']:>13.2f} {r['task_s']:>13.3f} "
              f"{r['overhead_s']:>15.3f} {r['worker_peak_mb']:>14.0f} "
              f"{r['client_peak_mb']:>14.0f}")
    best = max(rows, key=lambda r: r["rate"])
    print(f"1,000 runs at {best['rate']:.2f} runs/s ({best['workers']} workers): "
          f"{1000 / best['rate']:.0f} s")


if __name__ == "__main__":
    main()
