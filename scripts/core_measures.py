"""Print the market core's measures (issue 12's "done when"), each with its threshold.

    python scripts/core_measures.py [--seed N] [--seeds-for-band 20]

Every figure is computed here from real runs (built-in scenarios, one seed unless said);
nothing is tuned to it. A line reads `measure: value (target) PASS|MISS`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analysis.scripted import flat_mask  # noqa: E402
from market.outputs import run_tables  # noqa: E402
from market.hour_prices import SPOT_PRICE_SEARCH_CAP  # noqa: E402
from scenarios.loader import builtin_dir, load_scenario  # noqa: E402


def _tables(name: str, seed: int, sets: tuple = (), months: int | None = None):
    return run_tables(load_scenario(name, list(sets)).scenario, seed, months)


def _series(frames, region: str, tier: str, instrument: str) -> pd.Series:
    pi = frames["price_index"]
    rows = pi[(pi.region == region) & (pi.tier == tier) & (pi.instrument == instrument)]
    return rows.set_index("date")["price_usd_per_h100e_hour"].sort_index()


def _mean(frames, region, tier, instrument, first, last) -> float:
    return float(_series(frames, region, tier, instrument)[first:last].mean())


def _line(name: str, value: str, target: str, ok: bool) -> str:
    return f"{name}: {value} ({target}) {'PASS' if ok else 'MISS'}"


def measures(seed: int, band_seeds: int) -> list[str]:
    lines = []
    history = _tables("history", seed)
    # 1. no traded price flat for 6+ months (US, China, EU; spot and contracts)
    flat = []
    for region in ("US", "China", "EU"):
        for tier, instrument in (("neocloud", "spot"), ("neocloud", "contract"),
                                 ("hyperscaler", "contract")):
            values = _series(history, region, tier, instrument).to_numpy()
            if values.size and flat_mask(values).any():
                flat.append(f"{region} {tier} {instrument}")
    lines.append(_line("price series flat for 6+ months (list excepted)",
                       ", ".join(flat) or "none", "none; hyperscaler contract = list x "
                       "(1 - discount) moves with the list", not [f for f in flat
                                                                  if "hyperscaler" not in f]))
    # 2. Taiwan shock
    base, shock = _tables("baseline", seed), _tables("taiwan-shock-2027", seed)
    spot = _mean(shock, "US", "neocloud", "spot", "2027-01", "2027-12") / _mean(
        base, "US", "neocloud", "spot", "2027-01", "2027-12") - 1
    contract = _mean(shock, "US", "neocloud", "contract", "2027-01", "2027-12") / _mean(
        base, "US", "neocloud", "contract", "2027-01", "2027-12") - 1

    def shipped(frames):
        v = frames["vendors"]
        return v[v.date.dt.year == 2027]["shipped_h100e"].sum()
    cut = 1 - shipped(shock) / shipped(base)
    relax = _mean(shock, "US", "neocloud", "spot", "2029-07", "2029-12") / _mean(
        base, "US", "neocloud", "spot", "2029-07", "2029-12") - 1
    lines.append(_line("taiwan-shock-2027: 2027 US spot vs baseline", f"{spot:+.0%}", ">= +30%",
                       spot >= 0.30))
    lines.append(_line("taiwan-shock-2027: 2027 US neocloud contract vs baseline",
                       f"{contract:+.0%}", ">= +15%", contract >= 0.15))
    lines.append(_line("taiwan-shock-2027: 2027 chips shipped (H100e) vs baseline",
                       f"{-cut:+.0%}", "a cut", cut > 0))
    lines.append(_line("taiwan-shock-2027: 2029-H2 US spot vs baseline (24 months after)",
                       f"{relax:+.0%}", "within +-15%", abs(relax) <= 0.15))
    # 3. demand shock 0.5 from 2026-01
    hit = _tables("baseline", seed, ('events=[{kind = "demand_shock", date = "2026-01", '
                                     'factor = 0.5}]',))
    d_spot = _mean(hit, "US", "neocloud", "spot", "2026-01", "2027-12") / _mean(
        base, "US", "neocloud", "spot", "2026-01", "2027-12") - 1

    def ordered(frames):
        o = frames["orders"]
        o = o[(o.date >= "2026-01-01") & (o.date <= "2027-12-01") & (o.order_kind == "regular")]
        return o["committed_usd"].sum()
    d_orders = ordered(hit) / ordered(base) - 1
    lines.append(_line("demand shock x0.5 from 2026-01: 2026-27 US spot", f"{d_spot:+.0%}",
                       "lower", d_spot < 0))
    lines.append(_line("demand shock x0.5 from 2026-01: 2026-27 chip orders (USD)",
                       f"{d_orders:+.0%}", "<= -20%", d_orders <= -0.20))
    # 4. list in discrete steps, above spot 2023-24
    lst = _series(history, "US", "hyperscaler", "list")
    sp = _series(history, "US", "neocloud", "spot")
    changes = lst[lst.diff().abs() > 1e-9]
    most = int(changes.groupby(changes.index.year).size().max()) if len(changes) else 0
    ratio = (lst / sp)["2023-01":"2024-12"]
    lines.append(_line("US list revisions per year, most", str(most), "<= 3", most <= 3))
    lines.append(_line("US list / spot, 2023-24, lowest month", f"{ratio.min():.2f}", "> 1",
                       bool((ratio > 1).all())))
    # 5. seed band
    values = [_series(_tables("history", s, months=36), "US", "neocloud", "spot")
              .loc["2024-12-01"] for s in range(1, band_seeds + 1)]
    lo, mid, hi = np.percentile(values, [5, 50, 95])
    lines.append(_line(f"{band_seeds} seeds: 5-95% band of the 2024-12 US spot / median",
                       f"{(hi - lo) / mid:.0%} ({lo:.2f}-{hi:.2f} USD)", ">= 5%",
                       (hi - lo) / mid >= 0.05))
    # 6. NVIDIA in-sample against the observed medians
    nv = history["vendors"][history["vendors"].vendor == "nvidia"]
    observed = {"H100e 2023": 1.098e6, "H100e 2024": 3.329e6}   # Epoch AI (market/data/observed)
    for label, year in (("H100e 2023", 2023), ("H100e 2024", 2024)):
        got = nv[nv.date.dt.year == year]["shipped_h100e"].sum()
        err = got / observed[label] - 1
        lines.append(_line(f"NVIDIA {label} shipped vs observed {observed[label]:.3g}",
                           f"{got:.3g} ({err:+.0%})", "within +-30%", abs(err) <= 0.30))
    for fy, first, last, obs in (("FY24", "2023-02", "2024-01", 38.9e9),
                                 ("FY25", "2024-02", "2025-01", 102.3e9)):
        got = nv[(nv.date >= first + "-01") & (nv.date <= last + "-01")]["revenue_usd"].sum()
        err = got / obs - 1
        lines.append(_line(f"NVIDIA data-centre compute revenue {fy} vs observed "
                           f"USD {obs / 1e9:.1f}B", f"USD {got / 1e9:.1f}B ({err:+.0%})",
                           "within +-30%", abs(err) <= 0.30))
    # 8. no price on the spot search's cap (a price there sits on an input level), in any
    # region of any built-in scenario
    capped = []
    for name in builtin_scenarios():
        pi = _tables(name, seed)["price_index"]
        at = pi[pi.price_usd_per_h100e_hour >= SPOT_PRICE_SEARCH_CAP * (1 - 1e-9)]
        for region, rows in at.groupby("region"):
            capped.append(f"{name} {region} {rows.date.nunique()} months")
    lines.append(_line("prices on the spot search cap (USD 1e4), every built-in scenario",
                       ", ".join(capped) or "none", "none", not capped))
    return lines


def builtin_scenarios() -> list[str]:
    return sorted(path.stem for path in builtin_dir().glob("*.toml"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--seeds-for-band", type=int, default=20)
    args = parser.parse_args()
    for line in measures(args.seed, args.seeds_for_band):
        print(line)


if __name__ == "__main__":
    main()
