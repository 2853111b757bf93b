#!/usr/bin/env python
"""Fingerprint every table of `run_tables` for every built-in scenario and seeds 0 and 1.

A behaviour-preserving refactor must leave these fingerprints unchanged, to the byte: each
table is hashed (SHA-256) over its column names, dtypes and the Parquet bytes of its values.

usage:
  python scripts/tables_fingerprint.py --write FILE     record the fingerprints
  python scripts/tables_fingerprint.py --check FILE     recompute; exit 1 on any difference
Options: --seeds 0 1 (default), --scenarios NAME ... (default: every built-in scenario, at
its full length).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import sys

import pandas as pd

from market.outputs import run_tables
from scenarios.loader import builtin_names, load_scenario


def table_sha256(frame: pd.DataFrame) -> str:
    """SHA-256 of a table's columns, dtypes and values (Parquet bytes, no index)."""
    digest = hashlib.sha256()
    digest.update(json.dumps([[str(c), str(t)] for c, t in frame.dtypes.items()]).encode())
    buffer = io.BytesIO()
    frame.reset_index(drop=True).to_parquet(buffer, index=False, compression=None)
    digest.update(buffer.getvalue())
    return digest.hexdigest()


def fingerprints(scenarios: list[str], seeds: list[int]) -> dict[str, str]:
    out = {}
    for name in scenarios:
        scenario = load_scenario(name).scenario
        for seed in seeds:
            for table, frame in sorted(run_tables(scenario, seed).items()):
                out[f"{name}/seed={seed}/{table}"] = table_sha256(frame)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", metavar="FILE")
    mode.add_argument("--check", metavar="FILE")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--scenarios", nargs="+", default=None)
    args = parser.parse_args(argv)
    names = args.scenarios or sorted(builtin_names())
    found = fingerprints(names, args.seeds)
    if args.write:
        with open(args.write, "w") as f:
            json.dump(found, f, indent=1, sort_keys=True)
            f.write("\n")
        print(f"wrote {len(found)} table fingerprints ({len(names)} scenarios x "
              f"{len(args.seeds)} seeds) to {args.write}")
        return 0
    with open(args.check) as f:
        expected = json.load(f)
    expected = {k: v for k, v in expected.items() if k in found} if args.scenarios else expected
    differ = sorted(k for k in expected.keys() | found.keys() if expected.get(k) != found.get(k))
    for key in differ:
        print(f"DIFFERS {key}: expected {expected.get(key)}, found {found.get(key)}")
    print(f"{len(found) - len(differ)}/{len(expected)} tables identical "
          f"({len(names)} scenarios x {len(args.seeds)} seeds)")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
