"""Parameter recovery: does the calibration find parameter values it is shown the data of?

The model is run at known values of the `[calibrate]` parameters (the truth) with as many
seeds as the calibration uses, apart from its own (`SYNTHETIC_FIRST_SEED`, so the synthetic
data carry seed noise the calibration does not share, and the same statistic of it: with
lumpy orders the median of three runs and the mean of two differ); the median over those
runs at every in-sample observation's period replaces the observed value, each source
interval kept at its relative width. The calibration then runs against these synthetic
observations exactly as against the real ones (periods where the model's value is zero or
missing are left out), and each parameter counts as recovered when its posterior 90%
interval covers the truth. Parameters whose posterior stays about as wide as the prior are
named as not identified: the data cannot tell their values apart (many ABMs have such
parameters; Grazzini, Richiardi and Tsionas 2017, *J. Econ. Dyn. Control* 77).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from analysis.calibration.observe import in_sample, values_at
from analysis.calibration.report import IDENTIFIED_BELOW
from analysis.calibration.run import Calibration, Settings
from analysis.calibration.space import ParameterSpace

#: First seed of the runs that make the synthetic observations: K of them from here, K the
#: calibration's seeds (1..K), so both sides are the median of as many runs.
SYNTHETIC_FIRST_SEED = 101


def truth_values(space: ParameterSpace, seed: int) -> np.ndarray:
    """[d] a point of the prior's central 80% (values at the edge of a prior test the prior,
    not the method), drawn with `seed`."""
    u = 0.1 + 0.8 * np.random.default_rng([seed, 0x7247]).random(space.dim)
    return space.values(u[None, :])[0]


def synthetic_observations(calibration: Calibration, truth: np.ndarray, executor,
                           progress=None, fresh_seeds: bool = True) -> pd.DataFrame:
    """The in-sample observations with the model's values at `truth` in place of the
    observed ones (module docstring); rows the model gives no value for are dropped."""
    shipped = in_sample(calibration.settings.until)
    first = SYNTHETIC_FIRST_SEED if fresh_seeds else 1
    seeds = tuple(range(first, first + calibration.settings.seeds))
    runs = calibration.runs_at("truth", truth[None, :], executor, seeds, progress)[0]
    model = pd.DataFrame(values_at(shipped, runs)).median(axis=1).to_numpy(float)
    out = shipped.copy()
    scale = np.divide(model, shipped["value"].to_numpy(float),
                      out=np.full(len(shipped), np.nan), where=shipped["value"].to_numpy() > 0)
    out["value"] = model
    out["low"] = shipped["low"] * scale
    out["high"] = shipped["high"] * scale
    # a log error needs a positive observation (the shipped ones are): the model's zeros go
    keep = np.isfinite(model) & np.isfinite(scale) & (model > 0)
    return out[keep].reset_index(drop=True)


def recover(directory: Path, loaded, settings: Settings, months: int, version: str,
            executor, truth_seed: int = 0, progress=None, say=lambda text: None,
            fresh_seeds: bool = True) -> pd.DataFrame:
    """Make synthetic observations at a truth, calibrate against them in `directory`, and
    return per parameter: truth, posterior interval, covered, width ratio, identified.
    `fresh_seeds=False` makes them with the calibration's own seeds: no seed noise between
    data and model, a test of the method alone."""
    directory = Path(directory)
    directory.mkdir(exist_ok=True)
    space = ParameterSpace.of(loaded.scenario)
    truth = truth_values(space, truth_seed)
    maker = Calibration(directory / "truth", loaded, settings, months, version)
    maker.open()
    try:
        synthetic = synthetic_observations(maker, truth, executor, progress, fresh_seeds)
    finally:
        maker.close()
    say(f"synthetic observations at the truth: {len(synthetic)} rows")
    calibration = Calibration(directory / "calibration", loaded, settings, months, version,
                              observed=synthetic,
                              observed_seeds=settings.seeds if fresh_seeds else 0)
    calibration.open()
    try:
        calibration.run(executor, progress, say)
    finally:
        calibration.close()
    params = pd.read_csv(directory / "calibration" / "parameters.csv")
    params["truth"] = truth
    params["covered"] = (params["posterior_p5"] <= truth) & (truth <= params["posterior_p95"])
    params["identified"] = params["width_ratio"] <= IDENTIFIED_BELOW
    return params[["parameter", "truth", "posterior_p5", "posterior_median", "posterior_p95",
                   "covered", "width_ratio", "identified"]]
