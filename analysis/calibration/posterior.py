"""A posterior sample of the region history matching leaves.

Inside the region not ruled out, each candidate point x (a scrambled Sobol' point of the unit
cube, i.e. a draw from the prior) is weighted by the likelihood the last wave's emulators give
the observations, treating each matched series' bias as normal with the variance history
matching uses:

    ln w(x) = -1/2 sum_s [ E[b_s(x)]^2 / V_s(x) + ln V_s(x) ],   V_s = V_em,s + V_obs,s + V_disc,

and the sample is drawn from the weighted points by systematic resampling (Kitagawa 1996,
*J. Comput. Graph. Stat.* 5(1)). Points come from the prior, so the weights are the
importance weights of prior to posterior; the effective sample size (sum w)^2 / sum w^2 says
how many independent draws the sample is worth. The series are treated as independent given
the parameters, which overstates how much the data say when series share a source; the
posterior is therefore narrower than an honest one would be, never wider.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analysis.calibration.history_matching import Wave, candidates, not_ruled_out

#: Sobol' candidates per try (2^k) and the most tried, doubling while too few points are left.
FIRST_CANDIDATES_LOG2, MOST_CANDIDATES_LOG2 = 14, 18


@dataclass
class Posterior:
    u: np.ndarray              #: [n, d] the sample, unit cube
    weights_ess: float         #: effective sample size of the weighted candidates
    region_share: float        #: share of the prior's candidates not ruled out
    candidates_left: int


def log_likelihood(wave: Wave, u: np.ndarray) -> np.ndarray:
    """[k] ln w (module docstring) under the wave's emulators and matched series."""
    if not wave.matched.any():
        return np.zeros(len(u))
    mean, var = wave.emulators.predict(u)
    total = var + wave.var_fixed[wave.matched][None, :]
    return -0.5 * np.sum(mean ** 2 / total + np.log(total), axis=1)


def systematic_resample(weights: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """n indices drawn in proportion to `weights` with one uniform offset (low variance)."""
    cumulative = np.cumsum(weights / weights.sum())
    cumulative[-1] = 1.0
    return np.searchsorted(cumulative, (rng.random() + np.arange(n)) / n)


def sample_posterior(waves: list[Wave], dim: int, n: int, seed: int) -> Posterior:
    """n posterior draws from the region left by `waves` (module docstring)."""
    rng = np.random.default_rng([seed, 0x9057])
    for k in range(FIRST_CANDIDATES_LOG2, MOST_CANDIDATES_LOG2 + 1):
        cloud = candidates(dim, k, seed + k)
        keep = not_ruled_out(waves, cloud)
        if keep.sum() >= n or k == MOST_CANDIDATES_LOG2:
            break
    share = float(keep.mean())
    if not keep.any():            # nothing left: the waves' best points stand in
        keep = _best_of(waves, cloud)
    left = cloud[keep]
    log_w = log_likelihood(waves[-1], left)
    w = np.exp(log_w - log_w.max())
    ess = float(w.sum() ** 2 / np.sum(w ** 2))
    return Posterior(left[systematic_resample(w, n, rng)], ess, share, int(keep.sum()))


def _best_of(waves: list[Wave], cloud: np.ndarray) -> np.ndarray:
    """The tenth of the candidates with the lowest largest implausibility under the last
    wave (used only when every candidate is ruled out)."""
    worst = waves[-1].max_implausibility(cloud)
    return worst <= np.quantile(worst, 0.1)
