#!/usr/bin/env python
"""Time the baseline at 100, 1,000 and 10,000 long-tail labs against a plain-Mesa reference.

Prints, for each size: agent-months per second and milliseconds per month of gpumarket's
baseline (108 months), and agent-steps per second of a Boltzmann money model written in plain
Mesa 3 (each agent gives one unit to a random other agent per step, a DataCollector recording
the Gini each step), run in the same process, and the ratio of the two, so the figure does not
depend on the machine's speed. usage: python benchmarks/bench_model.py [--repeats N]
"""

from __future__ import annotations

import argparse
import statistics
import time

import mesa
import numpy as np

from market.outputs import release, run_tables
from scenarios.loader import load_scenario


def gini(model: mesa.Model) -> float:
    x = np.sort(np.fromiter((a.wealth for a in model.agent_list), float))
    n = len(x)
    return 0.0 if x.sum() == 0 else float((2 * np.arange(1, n + 1) - n - 1) @ x / (n * x.sum()))


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
    def __init__(self, n: int, rng: int):
        super().__init__(rng=rng)
        Money.create_agents(self, n)
        self.agent_list = list(self.agents)
        self.datacollector = mesa.DataCollector(model_reporters={"gini": gini})
        self.datacollector.collect(self)

    def step(self):
        self.agents.shuffle_do("step")
        self.datacollector.collect(self)


def time_boltzmann(n: int, steps: int, seed: int) -> float:
    model = MoneyModel(n, seed)
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
          f"{'Boltzmann agent-steps/s':>24} {'ratio':>6}")
    for size in args.sizes:
        ours, ms, ref = [], [], []
        for rep in range(args.repeats):       # interleaved, median of repeats
            rate, per_month, agents = time_gpumarket(size, rep)
            ours.append(rate)
            ms.append(per_month)
            ref.append(time_boltzmann(agents, 108 if agents < 5000 else 30, rep))
        o, r = statistics.median(ours), statistics.median(ref)
        print(f"{size:>7} {agents:>7} {o:>25,.0f} {statistics.median(ms):>9.2f} {r:>24,.0f} "
              f"{o / r:>6.2f}")


if __name__ == "__main__":
    main()
