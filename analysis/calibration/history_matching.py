"""History matching: rule out the parameter regions where the model cannot fit the data.

For series s and parameter point x, the implausibility is

    I_s(x) = |E[b_s(x)]| / sqrt(V_em,s(x) + V_obs,s + V_disc + V_seed,s),

with b_s the series' bias (mean log ratio of model to observation; 0 is a perfect fit), E and
V_em the emulator's mean and variance, V_obs the observations' own uncertainty, V_disc the
model discrepancy (what even the best parameters leave, since the model is a simplification)
and V_seed the spread the seeds alone give the bias (`Calibration._seed_variance`).
A point is ruled out when I_s > 3 for any matched series (Pukelsheim's three-sigma rule: for
any unimodal distribution at least 95% of the mass lies within three standard deviations;
Pukelsheim 1994, *The American Statistician* 48(2)). Each wave runs the model at points not yet
ruled out, fits new emulators there and refocuses (Vernon, Goldstein and Bower 2010; Andrianakis
et al. 2015, *PLoS Comput. Biol.* 11(1)).

A series that no point of a wave fits within its errors, I_s > 3 with the emulator's variance
left out at every point run, is a structural misfit of the model, not evidence about the
parameters: it is set aside (named in the outputs) rather than allowed to rule out everything.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from analysis.calibration.emulator import Emulators

#: Three-sigma cutoff on the implausibility (module docstring).
IMPLAUSIBILITY_CUTOFF = 3.0
#: Observation error of a series whose source gives no interval [log units]: [A] 0.1 (about
#: +-10%), a range 0.05-0.3; most of the shipped series give a 5-95% interval instead.
DEFAULT_OBSERVATION_SIGMA = 0.1
#: Model discrepancy [log units]: [A] 0.25, a range 0.1-0.5: a stylised market with a few dozen
#: agents is not expected to come closer than about a quarter to any one observed series.
MODEL_DISCREPANCY_SIGMA = 0.25
#: z of the 5% and 95% quantiles of a normal distribution: a 5-95% interval spans 2 x 1.645 sd.
Z95 = 1.6449


def observation_variance(observed: pd.DataFrame, series: list[str],
                         default_sigma: float = DEFAULT_OBSERVATION_SIGMA) -> np.ndarray:
    """Per series, the variance of its observations' log [log units^2]: from the source's
    5-95% interval, (ln(high / low) / (2 x 1.645))^2 averaged over its observations (errors of
    one source are correlated, so averaging does not shrink them), else `default_sigma`^2."""
    out = []
    for s in series:
        rows = observed[observed["series"] == s]
        low, high = rows["low"].to_numpy(float), rows["high"].to_numpy(float)
        ok = np.isfinite(low) & np.isfinite(high) & (low > 0) & (high > low)
        if ok.any():
            out.append(float(np.mean((np.log(high[ok] / low[ok]) / (2 * Z95)) ** 2)))
        else:
            out.append(default_sigma ** 2)
    return np.array(out)


def implausibility(mean: np.ndarray, var_emulator: np.ndarray,
                   var_fixed: np.ndarray) -> np.ndarray:
    """I [k, m] (module docstring) from the emulators' mean and variance [k, m] and the fixed
    variance per series [m] (observation + discrepancy)."""
    return np.abs(mean) / np.sqrt(var_emulator + var_fixed[None, :])


@dataclass
class Wave:
    """One wave: the points run (unit cube), their biases per series, and the emulators."""

    number: int
    u: np.ndarray                    #: [n, d] points run
    bias: np.ndarray                 #: [n, m] each point's bias per series (NaN: no value)
    series: list[str]
    var_fixed: np.ndarray            #: [m] observation + discrepancy variance
    matched: np.ndarray = field(default=None)   #: [m] series used to rule points out
    emulators: Emulators | None = None
    cutoff: float = IMPLAUSIBILITY_CUTOFF

    def fit(self, random_state: int) -> "Wave":
        """Set aside the structural misfits and the series some point has no value for,
        and fit the emulators of the rest."""
        usable = np.isfinite(self.bias).all(axis=0)
        best = np.nanmin(np.abs(self.bias) / np.sqrt(self.var_fixed)[None, :], axis=0)
        self.matched = usable & (best <= self.cutoff)
        self.emulators = Emulators(random_state).fit(self.u, self.bias[:, self.matched])
        return self

    def max_implausibility(self, u: np.ndarray) -> np.ndarray:
        """[k] the largest implausibility over the matched series at points u."""
        if not self.matched.any():
            return np.zeros(len(u))
        mean, var = self.emulators.predict(u)
        return implausibility(mean, var, self.var_fixed[self.matched]).max(axis=1)

    def set_aside(self) -> list[str]:
        return [s for s, m in zip(self.series, self.matched) if not m]


def not_ruled_out(waves: list[Wave], u: np.ndarray) -> np.ndarray:
    """[k] True where no wave's emulators rule the point out (each wave refocuses the last)."""
    keep = np.ones(len(u), dtype=bool)
    for wave in waves:
        if keep.any():
            keep[keep] = wave.max_implausibility(u[keep]) <= wave.cutoff
    return keep


def candidates(dim: int, n_log2: int, seed) -> np.ndarray:
    """2^n_log2 scrambled Sobol' points in the unit cube (low-discrepancy: they fill the
    box evenly, so the share left in the region estimates its volume)."""
    from scipy.stats import qmc

    return qmc.Sobol(d=dim, scramble=True, seed=np.random.default_rng(seed)).random_base2(
        n_log2)


def choose(points: np.ndarray, n: int, seed) -> np.ndarray:
    """n of the points, spread out: a greedy maximin pick (each next point the farthest from
    those chosen), from a seeded random start."""
    if len(points) <= n:
        return points
    rng = np.random.default_rng(seed)
    chosen = [int(rng.integers(len(points)))]
    distance = np.linalg.norm(points - points[chosen[0]], axis=1)
    for _ in range(n - 1):
        nxt = int(np.argmax(distance))
        chosen.append(nxt)
        distance = np.minimum(distance, np.linalg.norm(points - points[nxt], axis=1))
    return points[np.sort(chosen)]
