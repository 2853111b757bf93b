"""A posterior sample of the region history matching leaves.

Inside the region not ruled out, each candidate point x (a scrambled Sobol' point of the unit
cube, i.e. a draw from the prior) is weighted by the likelihood the last wave's emulators give
the observations, treating each matched series' bias as normal with the variance history
matching uses:

    ln w(x) = -1/2 sum_s c_s [ E[b_s(x)]^2 / V_s(x) + ln V_s(x) ],
    V_s = V_em,s + V_obs,s + V_disc + V_seed,s,

and the sample is drawn from the weighted points by systematic resampling (Kitagawa 1996,
*J. Comput. Graph. Stat.* 5(1)). Points come from the prior, so the weights are the
importance weights of prior to posterior; the effective sample size (sum w)^2 / sum w^2 says
how many independent draws the sample is worth. The series of one family (the 24 quarterly
series of a source, say) are not independent pieces of evidence: each family counts once, as
in the backtest's score, so a series weighs c_s = 1 / (matched series of its family). Treating
families as independent still overstates what the data say when families share a source, so
the posterior is narrower than an honest one would be, never wider.
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


def family_weights(series: list[str]) -> np.ndarray:
    """c_s (module docstring): 1 / the number of the given series in each one's family."""
    from market.observed import parse_series

    families = [parse_series(s)[0] for s in series]
    counts = {f: families.count(f) for f in set(families)}
    return np.array([1.0 / counts[f] for f in families])


def log_likelihood(wave: Wave, u: np.ndarray) -> np.ndarray:
    """[k] ln w (module docstring) under the wave's emulators and matched series."""
    if not wave.matched.any():
        return np.zeros(len(u))
    mean, var = wave.emulators.predict(u)
    total = var + wave.var_fixed[wave.matched][None, :]
    weight = family_weights([s for s, m in zip(wave.series, wave.matched) if m])
    return -0.5 * np.sum(weight[None, :] * (mean ** 2 / total + np.log(total)), axis=1)


def systematic_resample(weights: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """n indices drawn in proportion to `weights` with one uniform offset (low variance)."""
    cumulative = np.cumsum(weights / weights.sum())
    cumulative[-1] = 1.0
    return np.searchsorted(cumulative, (rng.random() + np.arange(n)) / n)


def sample_posterior(waves: list[Wave], dim: int, n: int, seed: list[int]) -> Posterior:
    """n posterior draws from the region left by `waves` (module docstring): prior
    candidates, and, when the region is so small that few of them fall in it, proposals
    around those that do (`_proposals`), weighted as one importance sample."""
    rng = np.random.default_rng([*seed, 0])
    for k in range(FIRST_CANDIDATES_LOG2, MOST_CANDIDATES_LOG2 + 1):
        cloud = candidates(dim, k, [*seed, k])
        keep = not_ruled_out(waves, cloud)
        if keep.sum() >= PROPOSAL_BELOW * n or k == MOST_CANDIDATES_LOG2:
            break
    share = float(keep.mean())
    if not keep.any():            # nothing left: the waves' best points stand in
        keep = _best_of(waves, cloud)
    points, density = cloud[keep], np.ones(int(keep.sum()))
    if keep.sum() < PROPOSAL_BELOW * n:
        points, density = _proposals(waves, points, len(cloud), rng)
    log_w = log_likelihood(waves[-1], points) - np.log(density)
    w = np.exp(log_w - log_w.max())
    ess = float(w.sum() ** 2 / np.sum(w ** 2))
    # systematic resampling returns the draws in candidate order: shuffle them, so that the
    # first distinct draws (the check runs) are a random sample of the posterior
    draws = points[rng.permutation(systematic_resample(w, n, rng))]
    return Posterior(draws, ess, share, int(keep.sum()))


#: Draw proposals when fewer than this many times the wanted draws of the prior's candidates
#: are left, and how many (2^k) to draw.
PROPOSAL_BELOW, PROPOSALS_LOG2 = 4, 15


def _proposals(waves: list[Wave], found: np.ndarray, prior_draws: int,
               rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Points of the region from the prior's candidates `found` (of `prior_draws` drawn) and
    from a Gaussian mixture around them (bandwidth by Scott's rule, n^(-1/(d+4)) x the
    spread of `found`), with the density of the two samples pooled (the balance heuristic:
    q = (N_prior x 1 + N_mix x q_mix) / (N_prior + N_mix); Owen and Zhou 2000, *JASA* 95)."""
    centres = found if len(found) <= 1000 else found[rng.choice(len(found), 1000, replace=False)]
    d = found.shape[1]
    spread = found.std(axis=0) if len(found) > 1 else np.full(d, 0.05)
    h = np.maximum(spread * max(len(centres), 1) ** (-1.0 / (d + 4)), 0.01)
    m = 2 ** PROPOSALS_LOG2
    draws = centres[rng.integers(len(centres), size=m)] + rng.normal(size=(m, d)) * h
    inside = np.all((draws >= 0) & (draws < 1), axis=1)
    draws = draws[inside]
    draws = draws[not_ruled_out(waves, draws)]
    points = np.vstack([found, draws])
    q_mix = _mixture_density(points, centres, h)
    density = (prior_draws + m * q_mix) / (prior_draws + m)
    return points, density


def _mixture_density(x: np.ndarray, centres: np.ndarray, h: np.ndarray,
                     chunk: int = 1024) -> np.ndarray:
    """Density at x of the equal mixture of N(centre, diag(h^2)) over all of space: the
    proposals outside the cube were dropped but count in the `m` they were drawn from, so
    m x q_mix is the density of those kept."""
    out = np.empty(len(x))
    norm = np.prod(h) * (2 * np.pi) ** (len(h) / 2)
    for a in range(0, len(x), chunk):
        z = (x[a:a + chunk, None, :] - centres[None, :, :]) / h
        out[a:a + chunk] = np.exp(-0.5 * np.sum(z * z, axis=2)).mean(axis=1) / norm
    return out


def _best_of(waves: list[Wave], cloud: np.ndarray) -> np.ndarray:
    """The tenth of the candidates with the lowest largest implausibility under the last
    wave (used only when every candidate is ruled out)."""
    worst = waves[-1].max_implausibility(cloud)
    return worst <= np.quantile(worst, 0.1)
