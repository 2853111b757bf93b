#!/usr/bin/env python
"""Time the baseline at 100, 1,000 and 10,000 long-tail labs against a plain-Mesa reference.

Prints, for each size: agent-months per second and milliseconds per month of gpumarket's
baseline (108 months), and agent-steps per second of a Boltzmann money model written in plain
Mesa 3 (each agent gives one unit to a random other agent per step), run in the same process,
and the ratio of the two, so the figure does not depend on the machine's speed.

The reference is timed in two variants:
  ref    the "mesa + DataCollector" configuration of the Mesa Boltzmann benchmark (model
         reporter Gini over `model.agents.get("wealth")`, agent reporter wealth), i.e. the data
         collection Mesa's own BoltzmannWealth benchmark does; the issue's 350-650 thousand
         agent-steps/s figure for this machine is this variant. The ratio is against it.
  lean   the same model with only a Gini model reporter read from a cached agent list (no
         per-agent records): a stricter yardstick, printed for comparison.
usage: python benchmarks/bench_model.py [--repeats N] [--sizes N ...]
"""

from __future__ import annotations

import argparse
import statistics
import time

import mesa
import numpy as np

from market.outputs import release, run_tables
from scenarios.loader import load_scenario


def gini_of(values) -> float:
    x = np.sort(np.asarray(values, dtype=float))
    n, total = len(x), x.sum()
    return 0.0 if total == 0 else float((2 * np.arange(1, n + 1) - n - 1) @ x / (n * total))


def gini(model: mesa.Model) -> float:
    """Gini of wealth, as Mesa's BoltzmannWealth example computes it."""
    return gini_of(model.agents.get("wealth"))


def gini_lean(model: mesa.Model) -> float:
    return gini_of([a.wealth for a in model.agent_list])


class Money(mesa.Agent):
    def __init__(self, model):
        super().__init__(model)
        self.wealth = 1

    def step(self):
        if self.wealth > 0:
            other = self.random.choice(self.model.agent_list)
            other.wealth += 1
            self.wealth -= 1


class MoneyModel(mesa.Model):
    def __init__(self, n: int, rng: int, lean: bool = False):
        super().__init__(rng=rng)
        Money.create_agents(self, n)
        self.agent_list = list(self.agents)   # random.choice(model.agents) copies: O(n)
        if lean:
            self.datacollector = mesa.DataCollector(model_reporters={"gini": gini_lean})
        else:
            self.datacollector = mesa.DataCollector(model_reporters={"gini": gini},
                                                    agent_reporters={"wealth": "wealth"})
        self.datacollector.collect(self)

    def step(self):
        self.agents.shuffle_do("step")
        self.datacollector.collect(self)


def time_boltzmann(n: int, steps: int, seed: int, lean: bool = False) -> float:
    model = MoneyModel(n, seed, lean)
    start = time.perf_counter()
    for _ in range(steps):
        model.step()
    elapsed = time.perf_counter() - start
    release(model)
    return n * steps / elapsed


def time_gpumarket(count: int, seed: int) -> tuple[float, float, int]:
    scenario = load_scenario("baseline", [f"long_tail.count={count}"]).scenario
    agents = count + len(scenario.labs)
    start = time.perf_counter()
    run_tables(scenario, seed)
    elapsed = time.perf_counter() - start
    return agents * scenario.months / elapsed, 1000 * elapsed / scenario.months, agents


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1_000, 10_000])
    args = parser.parse_args()
    print(f"{'labs':>7} {'agents':>7} {'gpumarket agent-months/s':>25} {'ms/month':>9} "
          f"{'ref agent-steps/s':>18} {'ratio':>6} {'lean agent-steps/s':>19} {'ratio':>6}")
    for size in args.sizes:
        ours, ms, ref, lean = [], [], [], []
        for rep in range(args.repeats):       # interleaved, median of repeats
            rate, per_month, agents = time_gpumarket(size, rep)
            ours.append(rate)
            ms.append(per_month)
            steps = 108 if agents < 5000 else 30
            ref.append(time_boltzmann(agents, steps, rep))
            lean.append(time_boltzmann(agents, steps, rep, lean=True))
        o, r, q = statistics.median(ours), statistics.median(ref), statistics.median(lean)
        print(f"{size:>7} {agents:>7} {o:>25,.0f} {statistics.median(ms):>9.2f} {r:>18,.0f} "
              f"{o / r:>6.2f} {q:>19,.0f} {o / q:>6.2f}")


if __name__ == "__main__":
    main()
