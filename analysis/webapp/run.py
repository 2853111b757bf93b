"""The live run behind a browser session, and its reference run.

`MarketApp` is the market model built from a scenario name and the page's levers; it knows how
far its run goes and stops there ("finished"), and stops early when its browser session has
gone. The reference run is the same scenario and seed without the levers, run to its end once
and cached, so a lever's effect is the gap between the live line and the reference's ghost.
"""

from __future__ import annotations

import functools
import sys
import threading

from pydantic import ValidationError

from analysis.webapp import levers as lv
from market.errors import GpumarketError
from market.model import ComputeMarket
from market.outputs import release
from market.timeline import format_month, parse_month
from scenarios.loader import load_scenario, validate_data


class MarketApp(ComputeMarket):
    """ComputeMarket built from a scenario name and the page's levers."""

    def __init__(self, scenario: str = "baseline", months: int | None = None,
                 session: threading.Event | None = None, **levers):
        """`levers`: values by lever name (`analysis.webapp.levers`); a lever not given stays
        at the scenario's own value. `months`: run only the first M months (None: the whole
        scenario). `session`: set when the browser session that owns this model has gone; the
        run then stops."""
        self.session = session
        values = {**lv.defaults(scenario), **levers, "scenario": scenario}
        self.levers = values
        problems = lv.check(values)
        self.error = None
        seed = lv.seed_of(values) or 0
        built = None
        if not problems:
            data, written = lv.apply(lv.scenario_data(scenario), values)
            try:
                built = validate_data(data, f"{scenario} with the page's levers")
            except (GpumarketError, ValidationError) as exc:
                problems = [lv.name_fields(line, written) for line in str(exc).splitlines()]
        if problems:
            self.error = "; ".join(problems) + f" -- running {scenario} without the levers"
            built = load_scenario(scenario).scenario
        self.seed_value = seed
        super().__init__(built, seed)
        self.scenario_name = scenario
        #: the months this run takes: the scenario's, or fewer when asked [months]
        self.run_months = min(self.n_months, int(months)) if months else self.n_months

    @property
    def finished(self) -> bool:
        """True once the run's last month is done."""
        return self.step_index >= self.run_months

    @property
    def changed_levers(self) -> dict:
        """The levers in force that differ from the scenario (none when they were refused)."""
        return {} if self.error else lv.changed(self.levers)

    def step(self) -> None:
        gone = self.session is not None and self.session.is_set()
        if self.finished or gone:
            # Mesa counts a call in `steps` before this body runs: no month was taken, so
            # undo the count, which the page shows as the month number
            self.steps -= 1
            if gone and self.running:
                print(f"gpumarket viz: a browser session closed; its run stopped at "
                      f"{self.step_index} of {self.run_months} months", file=sys.stderr,
                      flush=True)
            self.running = False
            return
        super().step()
        if self.finished:
            self.running = False          # disables Step and Play; the page says "finished"

    def run_to(self, month_index: int, stop: threading.Event | None = None) -> None:
        """Step until `month_index` months are done (at most the run's end), or `stop` is set.
        No drawing happens on the way: the page redraws once, at the end."""
        target = min(int(month_index), self.run_months)
        while self.step_index < target and self.running:
            if stop is not None and stop.is_set():
                return
            self.step()

    def status(self) -> str:
        """One line: where the run stands, e.g. "finished: 2030-12, 108 of 108 months"."""
        done, total = self.step_index, self.run_months
        if done == 0:
            return f"not started: 0 of {total} months"
        state = "finished" if self.finished else "running"
        return f"{state}: {format_month(self.month)}, {done} of {total} months"

    def month_index(self, text: str) -> int | None:
        """The run's month number (1 = the first) of a month "YYYY-MM" inside the run, or
        None when it is not one."""
        try:
            index = parse_month(str(text).strip()) - self.start_month + 1
        except ValueError:
            return None
        return index if 1 <= index <= self.run_months else None

    def month_of(self, index: int) -> str:
        """The calendar month of the run's `index`-th month (1 = the first)."""
        return format_month(self.start_month + index - 1)


@functools.lru_cache(maxsize=4)
def reference_run(scenario: str, seed: int, months: int) -> ComputeMarket:
    """The scenario as it is (no levers), this seed, run for `months` months (cached)."""
    model = ComputeMarket(load_scenario(scenario).scenario, seed)
    for _ in range(months):
        model.step()
    release(model)                       # kept by this cache only, not by Mesa's registry
    return model


def reference_for(model: MarketApp) -> ComputeMarket:
    return reference_run(model.scenario_name, model.seed_value, model.run_months)
