"""What one model run says at each observation, and how well a parameter set fits.

A calibration's unit of work is one run (a parameter set and one seed) up to `--until`: the
worker aligns the run with every in-sample observation (`analysis.backtest.align`, the
backtest's own alignment) and writes only the model's values there, a few hundred rows, as
the run file of a batch (`observation_payload`, through `analysis.runner.execute_with`). The
client joins a parameter set's runs, one per seed, and scores them as `gpumarket backtest`
does (`fit_of`): the seeds' median against each observation, per-series errors and the
overall score. Nothing after `--until` is ever read: the observations are loaded with the
cut, and runs stop at it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd

from analysis.backtest import BAND, log_errors, score
from analysis.runner import Result, Task, _parquet_bytes, execute_with, scenario_for
from market.timeline import format_month, parse_month

#: Columns of a calibration run file.
RUN_COLUMNS = ("run_id", "series", "start", "model")


@lru_cache(maxsize=4)
def in_sample(until: str) -> pd.DataFrame:
    """The shipped observations whose period ends by `until`, in a fixed order."""
    from market.observed import load_observed

    frame = load_observed(until=until)
    return frame.sort_values(["series", "start"], kind="stable").reset_index(drop=True)


def until_of(scenario_start: str, months: int) -> str:
    """The last month a run of `months` months from `scenario_start` covers (YYYY-MM)."""
    return format_month(parse_month(scenario_start) + months - 1)


def observation_payload(task: Task) -> tuple[bytes, int]:
    """Run the task to its last month and return the model's value at each in-sample
    observation as Parquet bytes (columns `RUN_COLUMNS`), and the row count."""
    from analysis.backtest import align
    from market.outputs import run_tables

    scenario = scenario_for(task.scenario_json, task.params)
    tables = run_tables(scenario, task.seed, task.months)
    observed = in_sample(until_of(scenario.start, task.months or scenario.months))
    aligned, _ = align(observed, [tables], scenario)
    frame = pd.DataFrame({"run_id": np.full(len(aligned), task.run_id, dtype=np.int64),
                          "series": aligned["series"].astype(str),
                          "start": aligned["start"].dt.strftime("%Y-%m-%d"),
                          "model": aligned["model_median"].astype(float)})
    return _parquet_bytes(frame), len(frame)


def observe(task: Task) -> Result:
    """The batch task of a calibration (module level, so Dask workers import it)."""
    return execute_with(task, observation_payload)


@dataclass
class Fit:
    """How one parameter set fits: the backtest's per-series table (`male`, `bias`, ...),
    its overall score, and per series the spread of the bias over seeds."""

    scores: pd.DataFrame
    overall: dict
    seed_variance: pd.Series       #: per series, variance over seeds of its bias [-^2]
    aligned: pd.DataFrame | None = None   #: each observation with the seeds' median and band

    @property
    def loss(self) -> float:
        return float(self.overall.get("score", np.nan))


def values_at(observed: pd.DataFrame, runs: list[pd.DataFrame]) -> np.ndarray:
    """[observations, runs] each run file's model value at each row of `observed` (NaN where
    it has none, or an infinite one)."""
    key = pd.DataFrame({"series": observed["series"].to_numpy(),
                        "start": observed["start"].dt.strftime("%Y-%m-%d").to_numpy()})
    values = np.column_stack([key.merge(run[["series", "start", "model"]],
                                        on=["series", "start"], how="left")["model"]
                              .to_numpy(float) for run in runs])
    return np.where(np.isfinite(values), values, np.nan)


def fit_of(observed: pd.DataFrame, runs: list[pd.DataFrame]) -> Fit:
    """Score a parameter set from its runs' files (one frame per seed, `RUN_COLUMNS`)."""
    values = values_at(observed, runs)
    table = pd.DataFrame(values)
    aligned = observed.assign(
        runs=table.notna().sum(axis=1).to_numpy(), model_median=table.median(axis=1).to_numpy(),
        model_p5=table.quantile(BAND[0], axis=1).to_numpy(),
        model_p95=table.quantile(BAND[1], axis=1).to_numpy())
    scores, overall = score(aligned)
    # each seed's bias per series: the spread the emulators must not mistake for signal
    errors = pd.DataFrame({f"s{k}": log_errors(values[:, k], observed["value"].to_numpy(float))
                           for k in range(values.shape[1])})
    errors["series"] = observed["series"].to_numpy()
    per_seed = errors.groupby("series").mean()
    variance = per_seed.var(axis=1, ddof=1) if per_seed.shape[1] > 1 else \
        pd.Series(0.0, index=per_seed.index)
    return Fit(scores, overall, variance.fillna(0.0), aligned)
