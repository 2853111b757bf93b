"""Global sensitivity analysis with SALib (Sobol' indices, Morris elementary effects).

The SALib problem comes from the scenario's `[uncertain]` block: uniform inputs by their bounds,
triangular, normal and lognormal ones by SALib's distributions (a truncated input falls back to
its bounds as a uniform range). `choice` inputs are not continuous and are left at their first
value (listed in the result so the reader knows). The sample runs through the same batch runner
as Monte Carlo, with one common seed, and the indices are computed on one outcome at one month.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from market.errors import GpumarketError

METHODS = ("sobol", "morris")


def salib_problem(uncertain: dict) -> tuple[dict, list[str]]:
    """(SALib problem, skipped choice inputs)."""
    names, bounds, dists, skipped = [], [], [], []
    for path, d in uncertain.items():
        if d.dist == "choice":
            skipped.append(path)
            continue
        truncated = d.low is not None or d.high is not None
        if d.dist == "uniform" or (truncated and d.dist in ("normal", "lognormal")):
            lo = d.low if d.low is not None else (d.mean - 3 * d.sigma if d.dist == "normal"
                                                  else d.mean * math.exp(-3 * d.sigma))
            hi = d.high if d.high is not None else (d.mean + 3 * d.sigma if d.dist == "normal"
                                                    else d.mean * math.exp(3 * d.sigma))
            bounds.append([lo, hi]); dists.append("unif")
        elif d.dist == "triangular":
            width = d.high - d.low
            bounds.append([d.low, d.high, (d.mode - d.low) / width if width else 0.5])
            dists.append("triang")
        elif d.dist == "normal":
            bounds.append([d.mean, d.sigma]); dists.append("norm")
        else:
            bounds.append([math.log(d.mean), d.sigma]); dists.append("lognorm")
        names.append(path)
    if not names:
        raise GpumarketError("the scenario has no continuous [uncertain] input to analyse")
    return {"num_vars": len(names), "names": names, "bounds": bounds, "dists": dists}, skipped


def sample(problem: dict, method: str, samples: int, seed: int) -> np.ndarray:
    """SALib's design: Sobol' (Saltelli, first and total order) or Morris trajectories."""
    if method == "sobol":
        from SALib.sample import sobol
        n = 2 ** max(1, math.ceil(math.log2(max(samples, 2))))   # Sobol' wants a power of 2
        return sobol.sample(problem, n, calc_second_order=False, seed=seed)
    if method == "morris":
        from SALib.sample import morris
        morris_problem = dict(problem)
        morris_problem.pop("dists", None)          # Morris samples the bounds' grid
        morris_problem["bounds"] = [b[:2] if len(b) == 3 else b for b in problem["bounds"]]
        if any(d in ("norm", "lognorm") for d in problem["dists"]):
            raise GpumarketError("Morris needs bounded inputs: give low and high to normal and "
                                 "lognormal uncertainties, or use --method sobol")
        return morris.sample(morris_problem, samples, num_levels=4, seed=seed)
    raise GpumarketError(f"unknown method {method!r}; expected one of {', '.join(METHODS)}")


def analyze(problem: dict, method: str, X: np.ndarray, Y: np.ndarray, seed: int) -> pd.DataFrame:
    """Indices ranked by importance: S1, S1_conf, ST, ST_conf (Sobol') or mu_star,
    mu_star_conf, sigma (Morris)."""
    if not np.all(np.isfinite(Y)):
        raise GpumarketError(f"{int((~np.isfinite(Y)).sum())} runs have no value for the "
                             "outcome at that month; choose another outcome or date")
    if method == "sobol":
        from SALib.analyze import sobol
        res = sobol.analyze(problem, Y, calc_second_order=False, seed=seed)
        table = pd.DataFrame({"S1": res["S1"], "S1_conf": res["S1_conf"], "ST": res["ST"],
                              "ST_conf": res["ST_conf"]}, index=problem["names"])
        return table.sort_values("ST", ascending=False)
    from SALib.analyze import morris
    morris_problem = {k: v for k, v in problem.items() if k != "dists"}
    morris_problem["bounds"] = [b[:2] for b in problem["bounds"]]
    res = morris.analyze(morris_problem, X, Y, num_levels=4, seed=seed)
    table = pd.DataFrame({"mu_star": res["mu_star"], "mu_star_conf": res["mu_star_conf"],
                          "sigma": res["sigma"], "mu": res["mu"]}, index=problem["names"])
    return table.sort_values("mu_star", ascending=False)
