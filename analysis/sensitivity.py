"""Global sensitivity analysis with SALib (Sobol' indices, Morris elementary effects).

The SALib problem comes from the scenario's `[uncertain]` block: uniform inputs by their bounds,
triangular, normal and lognormal ones by SALib's distributions (a truncated input falls back to
its bounds as a uniform range). `choice` inputs are not continuous and are left at their first
value (listed in the result so the reader knows). The sample runs through the same batch runner
as Monte Carlo, with one common seed, and the indices are computed on one outcome at one month.

Small designs give indices that look like findings and are noise (S1 > 1, negative indices,
ST = 3.7 with N = 4). `assess` says when a result is not to be read as a ranking: the design is
smaller than the literature's guidance, or a leading input's confidence interval is wider
than its index, or a Sobol' index lies outside [0, 1] by more than its interval.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from market.errors import GpumarketError

METHODS = ("sobol", "morris")

#: Fewest Sobol' base samples N (Saltelli design, N x (D + 2) runs) for indices we call stable.
#: SALib's sampler wants N a power of 2 and its own examples use N = 1024; convergence studies
#: find Sobol' indices need N of several hundred to a few thousand before their bootstrap
#: intervals are narrow and rankings stop changing (Sarrazin, Pianosi & Wagener 2016,
#: Environ. Model. Softw. 79:135-152, doi:10.1016/j.envsoft.2016.02.005; Saltelli et al. 2010,
#: Comput. Phys. Commun. 181:259-270, doi:10.1016/j.cpc.2009.09.018). Rule applied: N >= 512.
MIN_SOBOL_BASE_SAMPLES = 512
#: Fewest Morris trajectories r. With p = 4 levels, r = 10 trajectories "has produced valuable
#: results" (Saltelli et al. 2008, Global Sensitivity Analysis: The Primer, ch. 3,
#: doi:10.1002/9780470725184; Campolongo, Cariboni & Saltelli 2007, Environ. Model. Softw.
#: 22:1509-1518, doi:10.1016/j.envsoft.2006.10.004). Rule applied: r >= 10.
MIN_MORRIS_TRAJECTORIES = 10
#: An input is "leading" (read as a finding) when its ranking index is at least this share of
#: the largest; only leading inputs' intervals decide the warning, since an input with no
#: effect has an index and an interval of about zero whatever N is [-].
LEADING_SHARE = 0.1
#: Confidence level of SALib's bootstrap intervals (its default) [-].
CONF_LEVEL = 0.95
#: Second entropy word of the bootstrap's seed (apart from the run seeds and the design's).
BOOTSTRAP_STREAM = 0xB007_5EED


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


def base_samples(method: str, samples: int) -> int:
    """The design size the sampler uses: Sobol' N rounded up to a power of 2 (at least 2),
    Morris trajectories as given."""
    if method == "sobol":
        return 2 ** max(1, math.ceil(math.log2(max(samples, 2))))
    return samples


def sample(problem: dict, method: str, samples: int, seed: int) -> np.ndarray:
    """SALib's design: Sobol' (Saltelli, first and total order) or Morris trajectories."""
    if method == "sobol":
        from SALib.sample import sobol
        return sobol.sample(problem, base_samples(method, samples), calc_second_order=False,
                            seed=seed)
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
    """Indices ordered by importance: S1, S1_conf, ST, ST_conf (Sobol') or mu_star,
    mu_star_conf, sigma, mu (Morris), `*_conf` the half-width of the 95% bootstrap interval;
    `ci_wider_than_index` says where an interval is wider than its index (the index is not
    told apart from zero)."""
    if not np.all(np.isfinite(Y)):
        raise GpumarketError(f"{int((~np.isfinite(Y)).sum())} runs have no value for the "
                             "outcome at that month; choose another outcome or date")
    if method == "sobol":
        from SALib.analyze import sobol
        # SALib 1.6 seeds its bootstrap only `if seed:`, so seed 0 gave other intervals on
        # every call: pass a seed that is never 0
        res = sobol.analyze(problem, Y, calc_second_order=False, seed=_bootstrap_seed(seed))
        table = pd.DataFrame({"S1": res["S1"], "S1_conf": res["S1_conf"], "ST": res["ST"],
                              "ST_conf": res["ST_conf"]}, index=problem["names"])
        table["ci_wider_than_index"] = _wider(table, "S1") | _wider(table, "ST")
        return table.sort_values("ST", ascending=False)
    from SALib.analyze import morris
    morris_problem = {k: v for k, v in problem.items() if k != "dists"}
    morris_problem["bounds"] = [b[:2] for b in problem["bounds"]]
    res = morris.analyze(morris_problem, X, Y, num_levels=4, seed=seed)
    table = pd.DataFrame({"mu_star": res["mu_star"], "mu_star_conf": res["mu_star_conf"],
                          "sigma": res["sigma"], "mu": res["mu"]}, index=problem["names"])
    table["ci_wider_than_index"] = _wider(table, "mu_star")
    return table.sort_values("mu_star", ascending=False)


def _bootstrap_seed(seed: int) -> int:
    """A non-zero seed for SALib's bootstrap, derived from the batch's root seed."""
    return int(np.random.SeedSequence([seed, BOOTSTRAP_STREAM]).generate_state(1)[0]) or 1


def _wider(table: pd.DataFrame, index: str) -> pd.Series:
    return table[f"{index}_conf"] > table[index].abs()


def ranking_index(method: str) -> str:
    """The index inputs are ordered by: ST (Sobol') or mu_star (Morris)."""
    return "ST" if method == "sobol" else "mu_star"


def assess(table: pd.DataFrame, method: str, samples: int) -> list[str]:
    """Why the indices are not a reliable ranking (empty: no reason found).

    `samples` is the design size the sampler used (`base_samples`). Reasons: fewer samples
    than the guidance (`MIN_SOBOL_BASE_SAMPLES`, `MIN_MORRIS_TRAJECTORIES`); a leading input
    (index >= `LEADING_SHARE` x the largest) whose interval is wider than its index; a Sobol'
    index outside [0, 1] by more than its interval (a variance share cannot be)."""
    reasons = []
    if method == "sobol" and samples < MIN_SOBOL_BASE_SAMPLES:
        reasons.append(f"N = {samples} base samples is below the {MIN_SOBOL_BASE_SAMPLES} "
                       "that Sobol' indices need to be stable")
    if method == "morris" and samples < MIN_MORRIS_TRAJECTORIES:
        reasons.append(f"{samples} trajectories is below the {MIN_MORRIS_TRAJECTORIES} that "
                       "Morris screening needs")
    key = ranking_index(method)
    top = table[key].abs().max()
    leading = table[table[key].abs() >= LEADING_SHARE * top] if top > 0 else table.iloc[:0]
    wide = int(leading["ci_wider_than_index"].sum())
    if wide:
        reasons.append(f"{wide} of {len(leading)} leading inputs have a 95% interval wider "
                       "than their index")
    if method == "sobol":
        outside = 0
        for name in ("S1", "ST"):
            v, c = table[name], table[f"{name}_conf"]
            outside += int(((v - c > 1.0) | (v + c < 0.0)).sum())
        if outside:
            reasons.append(f"{outside} indices lie outside [0, 1] beyond their interval")
    return reasons


def _guidance(method: str) -> dict:
    if method == "sobol":
        return {"rule": f"Sobol' base samples N >= {MIN_SOBOL_BASE_SAMPLES}",
                "min_base_samples": MIN_SOBOL_BASE_SAMPLES}
    return {"rule": f"Morris trajectories r >= {MIN_MORRIS_TRAJECTORIES}",
            "min_trajectories": MIN_MORRIS_TRAJECTORIES}


def _atomic(path, write) -> None:
    """Write through `write(tmp)` to a temporary name beside `path`, then rename."""
    import os
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_results(directory, table: pd.DataFrame, *, scenario: str, method: str, outcome: str,
                  month: str, samples: int, runs: int, skipped: list[str]) -> dict:
    """Write one outcome's indices beside the batch: `sensitivity-<outcome>-<YYYY-MM>.csv`
    (the table), `.png` (the chart) and `.json` (what was analysed, the guidance applied, the
    warnings and the indices); another outcome or month gets its own files. Returns the
    JSON's content."""
    import json
    from pathlib import Path

    from analysis.outcomes import outcome_slug, unit_of
    from analysis.plots import sensitivity_bars
    from market import __version__

    directory = Path(directory)
    n = base_samples(method, samples)
    reasons = assess(table, method, n)
    stem = f"sensitivity-{outcome_slug(outcome)}-{month}"
    files = {"csv": f"{stem}.csv", "png": f"{stem}.png", "json": f"{stem}.json"}
    unit = unit_of(outcome)
    result = {
        "gpumarket_version": __version__, "scenario": scenario, "method": method,
        "outcome": outcome, "outcome_unit": unit, "date": month, "runs": runs,
        "samples_requested": samples,
        ("base_samples" if method == "sobol" else "trajectories"): n,
        "guidance": _guidance(method), "conf_level": CONF_LEVEL,
        "index_units": ({"S1": "fraction of output variance", "ST": "fraction of output variance"}
                        if method == "sobol" else
                        {"mu_star": f"{unit} over the input's range",
                         "sigma": f"{unit} over the input's range",
                         "mu": f"{unit} over the input's range"}),
        "ranked_by": ranking_index(method), "reliable": not reasons, "warnings": reasons,
        "warning": ("indices of " + outcome + " at " + month + " are not a reliable ranking: "
                    + "; ".join(reasons)) if reasons else None,
        "skipped_choice_inputs": skipped,
        "indices": {name: {k: (bool(v) if k == "ci_wider_than_index" else float(v))
                           for k, v in row.items()} for name, row in table.iterrows()},
        "files": files,
    }
    _atomic(directory / files["csv"],
            lambda p: table.to_csv(p, float_format="%.6g", index_label="input"))
    title = f"{method} indices of {outcome} at {month}" + (
        "\nNOT a reliable ranking: " + "; ".join(reasons) if reasons else "")
    fig = sensitivity_bars(table, title=title)
    _atomic(directory / files["png"], lambda p: fig.savefig(p, format="png", dpi=110))
    _atomic(directory / files["json"], lambda p: p.write_text(
        json.dumps(result, indent=2, allow_nan=False) + "\n"))
    return result


def format_indices(table: pd.DataFrame, method: str, result: dict) -> str:
    """The indices as text: each with its 95% interval half-width (±) and a note where the
    interval is wider than the index, under a line that says whether the order is a ranking."""
    pairs = [("S1", "S1_conf"), ("ST", "ST_conf")] if method == "sobol" else \
        [("mu_star", "mu_star_conf")]
    extra = [] if method == "sobol" else ["sigma", "mu"]
    width = max(len("input"), *(len(i) for i in table.index))
    head = f"{'input':<{width}}" + "".join(f"{n:>10}{'±95%':>9}" for n, _ in pairs) + \
        "".join(f"{n:>10}" for n in extra) + "  note"
    lines = [head]
    for name, row in table.iterrows():
        cells = "".join(f"{row[n]:>10.3f}{row[c]:>9.3f}" for n, c in pairs) + \
            "".join(f"{row[n]:>10.3f}" for n in extra)
        note = "interval wider than index" if row["ci_wider_than_index"] else ""
        lines.append(f"{name:<{width}}{cells}  {note}".rstrip())
    n_key = "base_samples" if method == "sobol" else "trajectories"
    order = (f"ordered by {result['ranked_by']}, NOT a reliable ranking (see the warning)"
             if result["warnings"] else f"most influential first (by {result['ranked_by']})")
    title = (f"{method} indices of {result['outcome']} at {result['date']} ({result['runs']} "
             f"runs, {n_key.replace('_', ' ')} {result[n_key]}, common seed), {order}; "
             f"± is the half-width of the 95% interval:")
    return "\n".join([title, *lines])
