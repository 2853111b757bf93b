#!/usr/bin/env python
"""Parameter recovery at a realistic budget: synthetic observations from `history` at known
values of its `[calibrate]` parameters, calibrated against with the default method.

Prints, per parameter: the truth, the posterior 5-95% interval, whether it covers the truth,
and the posterior/prior width ratio; then the share recovered (target: at least 70%), the
parameters not identified (width ratio above 0.5), the model runs and the time. The work goes
to --out (default a temporary directory); rerunning with the same --out resumes it.

usage: python benchmarks/bench_recovery.py [--budget 300] [--seeds 3] [--waves 3]
                                           [--workers 2] [--truth-seed 0] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from analysis.calibration.recovery import recover
from analysis.calibration.run import Settings
from analysis.runner import make_executor
from market import __version__
from market.timeline import parse_month
from scenarios.loader import load_scenario


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", default="history")
    parser.add_argument("--budget", type=int, default=300)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--waves", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--truth-seed", type=int, default=0)
    parser.add_argument("--until", default="2024-12")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--same-seeds", action="store_true", help="Make the synthetic data "
                        "with the calibration's own seeds (no seed noise between them).")
    args = parser.parse_args()
    loaded = load_scenario(args.scenario)
    months = parse_month(args.until) - parse_month(loaded.scenario.start) + 1
    settings = Settings("history-matching", args.budget, args.seeds, args.waves, 0, args.until)
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp) / "recovery"
        executor = make_executor(args.workers, None)
        started = time.perf_counter()
        try:
            table = recover(out, loaded, settings, months, __version__, executor,
                            args.truth_seed, say=print, fresh_seeds=not args.same_seeds)
        finally:
            executor.close()
        elapsed = time.perf_counter() - started
        result = json.loads((out / "calibration" / "calibration.json").read_text())
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    covered = int(table["covered"].sum())
    print(f"recovered (posterior 90% interval covers the truth): {covered} of {len(table)} "
          f"({covered / len(table):.0%}; target >= 70%)")
    print("not identified (width ratio > 0.5): "
          + (", ".join(table.loc[~table["identified"], "parameter"]) or "none"))
    print(f"synthetic loss {result['loss_before']:.3f} at the input's values -> "
          f"{result['loss_after']:.3f} at the posterior medians; {result['model_runs']} model "
          f"runs (+{args.seeds} for the truth, seeds "
          f"{'1..K' if args.same_seeds else '101..'}) in {elapsed:.0f} s with "
          f"{args.workers} workers")


if __name__ == "__main__":
    main()
