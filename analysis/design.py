"""Experiment designs: uncertainty samples (Monte Carlo or Latin hypercube) crossed with levers.

Vocabulary (EMA Workbench's): *uncertainties* are the scenario's `[uncertain]` distributions,
*levers* its `[levers]` policy options, *outcomes* the output tables. A design is a list of runs,
each with its id, its seed and the parameter values it sets (dotted scenario paths).

Seeds: uncertainty sample i runs with `SeedSequence(root).spawn(n_samples)[i]`, so any run can
be reproduced alone; every lever option of sample i uses that same seed (common random numbers),
so lever comparisons are not blurred by model noise. Without levers, run k is sample k.
Sampling uses its own stream (`default_rng([root, DESIGN_STREAM])`), apart from the run seeds.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import stats
from scipy.stats import qmc

from market.errors import GpumarketError

if TYPE_CHECKING:
    import pandas as pd

#: Second entropy word of the sampling stream (distinct from any run seed's spawn key).
DESIGN_STREAM = 0x5EED_D51C
METHODS = ("mc", "lhs")


@dataclass(frozen=True)
class Run:
    run_id: int
    seed: int
    params: dict[str, Any] = field(default_factory=dict)   #: dotted path -> value


@dataclass(frozen=True)
class Design:
    method: str              #: mc | lhs | sobol | morris
    root_seed: int
    samples: int             #: uncertainty samples
    levers: dict[str, list]  #: path -> options
    runs: list[Run]

    def describe(self) -> dict:
        """What identifies the design (for the batch manifest and resume checks)."""
        return {"method": self.method, "root_seed": self.root_seed, "samples": self.samples,
                "levers": self.levers, "runs": len(self.runs),
                "design_sha": _digest([(r.run_id, r.seed, r.params) for r in self.runs])}


def _digest(obj: Any) -> str:
    import hashlib
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def run_seeds(root_seed: int, n: int) -> list[int]:
    """Seed of sample k: `SeedSequence(root).spawn(n)[k]` as a non-negative int64."""
    children = np.random.SeedSequence(root_seed).spawn(n)
    return [int(c.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1)) for c in children]


def _ppf(dist, u: np.ndarray) -> np.ndarray | list:
    """Map uniform draws in [0, 1) to the distribution (truncated to [low, high] if given)."""
    if dist.dist == "choice":
        idx = np.minimum((u * len(dist.values)).astype(int), len(dist.values) - 1)
        return [dist.values[i] for i in idx]
    if dist.dist == "uniform":
        return dist.low + u * (dist.high - dist.low)
    if dist.dist == "triangular":
        width = dist.high - dist.low
        if width == 0:
            return np.full(u.shape, dist.low)
        return stats.triang(c=(dist.mode - dist.low) / width, loc=dist.low, scale=width).ppf(u)
    if dist.dist == "normal":
        frozen = stats.norm(loc=dist.mean, scale=dist.sigma)
    else:
        frozen = stats.lognorm(s=dist.sigma, scale=dist.mean)
    if dist.sigma == 0:
        return np.full(u.shape, float(dist.mean))
    lo = frozen.cdf(dist.low) if dist.low is not None else 0.0
    hi = frozen.cdf(dist.high) if dist.high is not None else 1.0
    return frozen.ppf(lo + u * (hi - lo))


def sample_uncertainties(uncertain: dict, n: int, method: str, root_seed: int
                         ) -> dict[str, list]:
    """n draws of every uncertain input: Monte Carlo, or a Latin hypercube (each input's range
    cut into n equally likely strata, one draw in each, strata paired at random)."""
    if method not in METHODS:
        raise GpumarketError(f"unknown design {method!r}; expected one of {', '.join(METHODS)}")
    paths = list(uncertain)
    if not paths:
        return {}
    rng = np.random.default_rng([root_seed, DESIGN_STREAM])
    if method == "lhs":
        u = qmc.LatinHypercube(d=len(paths), seed=rng).random(n)
    else:
        u = rng.random((n, len(paths)))
    out = {}
    for j, path in enumerate(paths):
        values = _ppf(uncertain[path], u[:, j])
        out[path] = [v.item() if isinstance(v, np.generic) else v for v in values]
    return out


#: Second entropy word of the stream that picks posterior draws (`make_design`).
POSTERIOR_STREAM = 0x9057_D51C


def make_design(scenario, samples: int, method: str, root_seed: int,
                levers: dict[str, list] | None = None,
                posterior: pd.DataFrame | None = None) -> Design:
    """Cross `samples` uncertainty draws with every combination of lever options. With a
    `posterior` (a calibration's sample, one column per parameter path), each sample takes
    the values of one posterior draw, picked at random with replacement from its own stream,
    in place of those parameters' `[uncertain]` distributions (if any)."""
    if samples < 1:
        raise GpumarketError(f"--runs must be at least 1, got {samples}")
    levers = dict(levers if levers is not None
                  else {p: list(lv.values) for p, lv in scenario.levers.items()})
    uncertain = scenario.uncertain if posterior is None else \
        {p: d for p, d in scenario.uncertain.items() if p not in posterior.columns}
    draws = sample_uncertainties(uncertain, samples, method, root_seed)
    if posterior is not None:
        pick = np.random.default_rng([root_seed, POSTERIOR_STREAM]).integers(
            len(posterior), size=samples)
        for path in posterior.columns:
            draws[path] = [float(v) for v in posterior[path].to_numpy(float)[pick]]
    seeds = run_seeds(root_seed, samples)
    combos = list(itertools.product(*levers.values())) or [()]
    runs = []
    for combo in combos:
        for i in range(samples):
            params = {path: values[i] for path, values in draws.items()}
            params.update(zip(levers, combo))
            runs.append(Run(len(runs), seeds[i], params))
    return Design(method, root_seed, samples, levers, runs)


def design_from_rows(method: str, root_seed: int, paths: list[str], rows: np.ndarray,
                     seed: int | None = None) -> Design:
    """A design from explicit parameter rows (SALib's samples): every run shares one seed, so
    sensitivity indices measure the inputs, not the model's noise."""
    common = run_seeds(root_seed, 1)[0] if seed is None else seed
    runs = [Run(k, common, {p: float(v) for p, v in zip(paths, row)})
            for k, row in enumerate(np.asarray(rows, float))]
    return Design(method, root_seed, len(runs), {}, runs)
