"""The web app's policy levers: what each one is, its choices in a given scenario, how it maps
onto the scenario (a field, an event or a rule, as `--set` would) and its checks.

A lever left at its default leaves the scenario as it is: the sliders start at the scenario's
own values (its leakage enforcement, its demand growth after the last observed month), and a
choice "as in the scenario" adds nothing. A problem is reported with the lever's own label
("Foundry shock start: 2028-01 is after history's last month, 2024-12"), never with the
path of the event it became.
"""

from __future__ import annotations

import copy
import functools
import re
from dataclasses import dataclass, field

from market.timeline import TimePath, format_month, parse_month
from scenarios.loader import builtin_names, load_scenario, set_path

AS_IN_SCENARIO = "as in the scenario"
#: Export-control regimes: label -> what replaces the scenario's export-control events.
REGIMES = {AS_IN_SCENARIO: None, "no controls": "none", "Oct 2022 rule only": "oct2022",
           "diffusion rule kept (May 2025)": "diffusion"}
#: The diffusion rule's compliance month (it was rescinded in May 2025, before it bit).
DIFFUSION_MONTH = "2025-05"
#: Remote-access choices: label -> month the IaaS route closes to China's labs.
REMOTE = {AS_IN_SCENARIO: None, "closed to China's labs from 2024-01": "2024-01",
          "closed to China's labs from 2026-01": "2026-01"}
NO_SHOCK = "none"
#: The foundry a shock lever hits: the advanced-packaging line every accelerator needs.
SHOCK_FOUNDRY = "tsmc-cowos"
#: The first month China's domestic capacity lever scales (SMIC's 7 nm ramp; before it the
#: observed capacity stands).
RAMP_FROM = "2024-01"


@dataclass(frozen=True)
class Lever:
    """One input on the page. `kind`: select | slider_float | slider_int | text."""

    name: str
    label: str
    kind: str
    unit: str = ""
    low: float | None = None
    high: float | None = None
    step: float | None = None
    help: str = ""
    choices: tuple[str, ...] = field(default_factory=tuple)

    def shown(self, value) -> str:
        """The label with the value, as the sidebar shows it ("Leakage enforcement: 0.50")."""
        if self.kind == "slider_float":
            text = f"{float(value):.2f}"
        else:
            text = str(value)
        return f"{self.label}: {text}{(' ' + self.unit) if self.unit else ''}"


def _fmt(x: float) -> str:
    return f"{x:g}"


@functools.lru_cache(maxsize=32)
def scenario_data(name: str) -> dict:
    """The resolved (merged, validated) data of a built-in scenario."""
    return load_scenario(name).resolved


@functools.lru_cache(maxsize=32)
def scenario_span(name: str) -> tuple[int, int]:
    """First and last month (month numbers) of a built-in scenario's run."""
    s = load_scenario(name).scenario
    first = parse_month(s.start)
    return first, first + s.months - 1


def shock_starts(name: str) -> list[str]:
    """The shock starts the page offers for a scenario: "none" and every January and July
    inside its run (a shock outside the run would change nothing)."""
    first, last = scenario_span(name)
    months = [m for m in range(first, last + 1) if format_month(m)[5:] in ("01", "07")]
    return [NO_SHOCK] + [format_month(m) for m in months]


def remote_choices(name: str) -> list[str]:
    _, last = scenario_span(name)
    return [label for label, month in REMOTE.items()
            if month is None or parse_month(month) <= last]


def defaults(name: str) -> dict:
    """Every lever at the value that leaves scenario `name` unchanged."""
    data = scenario_data(name)
    return {"scenario": name, "seed": "0", "export_regime": AS_IN_SCENARIO,
            "remote_access": AS_IN_SCENARIO,
            "enforcement": float(data["leakage"]["enforcement"]),
            "shock_start": NO_SHOCK, "shock_depth": 0.5, "shock_months": 9,
            "demand_growth": float(data["market"]["demand_index"]["growth_after_per_year"]),
            "huawei_ramp": 1.0}


def levers(name: str) -> list[Lever]:
    """The levers for scenario `name`, with choices limited to its run."""
    return [
        Lever("scenario", "Scenario", "select", choices=tuple(builtin_names())),
        Lever("seed", "Seed", "text", help="a whole number >= 0"),
        Lever("export_regime", "Export-control regime", "select", choices=tuple(REGIMES)),
        Lever("remote_access", "Remote access (IaaS)", "select",
              choices=tuple(remote_choices(name))),
        Lever("enforcement", "Leakage enforcement", "slider_float", "", 0.0, 1.0, 0.05,
              help="share of diversion attempts stopped [0-1]"),
        Lever("shock_start", "Foundry shock start", "select", choices=tuple(shock_starts(name)),
              help="CoWoS packaging output falls from this month"),
        Lever("shock_depth", "Shock: CoWoS output multiplier", "slider_float", "", 0.1, 1.0,
              0.05),
        Lever("shock_months", "Shock length", "slider_int", "months", 1, 24, 1),
        Lever("demand_growth", "Demand growth after 2024", "slider_float", "/yr", 0.0, 1.0,
              0.02, help="growth of potential demand after the last observed month"),
        Lever("huawei_ramp", "Huawei/SMIC capacity multiplier", "slider_float", "", 0.5, 3.0,
              0.1, help=f"on SMIC's advanced-node capacity from {RAMP_FROM}"),
    ]


@functools.lru_cache(maxsize=None)
def label_of(name: str) -> str:
    """A lever's label (the same in every scenario)."""
    return next(lv.label for lv in levers("baseline") if lv.name == name)


def seed_of(values: dict) -> int | None:
    """The seed lever as a number, or None when it is not a whole number >= 0 in ASCII digits
    (`str.isdigit` also accepts "²", which `int` refuses)."""
    text = str(values["seed"]).strip()
    return int(text) if re.fullmatch(r"[0-9]+", text) else None


def check(values: dict) -> list[str]:
    """Problems with the levers as set, each naming the lever, the value and what is expected
    (checked before the scenario is built, so the message is the lever's, not a field's)."""
    name = values["scenario"]
    problems = []
    if seed_of(values) is None:
        problems.append(f"Seed: expected a whole number >= 0, got {values['seed']!r}")
    first, last = scenario_span(name)
    if values["shock_start"] != NO_SHOCK:
        try:
            start = parse_month(values["shock_start"])
        except ValueError:
            start = None
        if start is None:
            problems.append(f"Foundry shock start: expected a month YYYY-MM, got "
                            f"{values['shock_start']!r}")
        elif not first <= start <= last:
            problems.append(f"Foundry shock start: {values['shock_start']} is outside "
                            f"{name}'s run, {format_month(first)} to {format_month(last)}")
    month = REMOTE.get(values["remote_access"], "")
    if month == "":
        problems.append(f"Remote access (IaaS): unknown choice {values['remote_access']!r}; "
                        f"expected one of {', '.join(REMOTE)}")
    elif month is not None and parse_month(month) > last:
        problems.append(f"Remote access (IaaS): {month} is after {name}'s last month, "
                        f"{format_month(last)}")
    if values["export_regime"] not in REGIMES:
        problems.append(f"Export-control regime: unknown choice {values['export_regime']!r}; "
                        f"expected one of {', '.join(REGIMES)}")
    for lever in levers(name):
        if lever.kind.startswith("slider"):
            v = float(values[lever.name])
            if not lever.low <= v <= lever.high:
                problems.append(f"{lever.label}: {_fmt(v)} is outside {_fmt(lever.low)}-"
                                f"{_fmt(lever.high)}")
    return problems


def changed(values: dict) -> dict:
    """The levers that differ from the scenario's own values (the seed and the scenario
    excepted): what the reference run leaves out."""
    base = defaults(values["scenario"])
    out = {}
    for k, v in values.items():
        if k in ("scenario", "seed") or k not in base:
            continue
        if k in ("shock_depth", "shock_months") and values["shock_start"] == NO_SHOCK:
            continue
        if isinstance(v, float) or isinstance(base[k], float):
            if abs(float(v) - float(base[k])) > 1e-12:
                out[k] = v
        elif v != base[k]:
            out[k] = v
    return out


def apply(data: dict, values: dict) -> tuple[dict, dict[str, str]]:
    """The scenario data with the changed levers applied (a new dict), and for each field path
    or event the levers wrote, the lever's label (to name it in a validation error)."""
    data = copy.deepcopy(data)
    moved = changed(values)
    written: dict[str, str] = {}
    events = list(data.get("events", []))
    regime = REGIMES.get(moved.get("export_regime", AS_IN_SCENARIO))

    def add(event: dict, lever: str) -> None:
        written[f"events[{len(events)}]"] = label_of(lever)
        events.append(event)

    if regime in ("none", "oct2022"):
        events = [e for e in events if e.get("kind") != "export_control"]
        if regime == "oct2022":       # as the oct2022-only scenario: the letter, then the rule
            for date, rule in (("2022-09", "aug2022-letter"), ("2022-10", "oct2022")):
                add({"kind": "export_control", "date": date, "rule": rule,
                     "note": "app lever: the 2022 rules only"}, "export_regime")
    elif regime == "diffusion" and not any(
            e.get("kind") == "export_control" and e.get("rule") == "diffusion2025"
            and e.get("action", "impose") == "impose" for e in events):
        # a scenario that keeps the rule already (diffusion-rule-kept) stays as it is
        add({"kind": "export_control", "date": DIFFUSION_MONTH, "rule": "diffusion2025",
             "note": "app lever: diffusion rule kept"}, "export_regime")
    closed = REMOTE.get(moved.get("remote_access", AS_IN_SCENARIO))
    if closed:
        data.setdefault("rules", {})["iaas-closed-app"] = {
            "name": "Remote access (IaaS) closed to D:5 labs (app lever)",
            "announced": closed, "effective": closed, "source": "gpumarket viz lever",
            "remote_access": {"D5": False}}
        add({"kind": "export_control", "date": closed, "rule": "iaas-closed-app",
             "note": "app lever: remote access closed to China's labs"}, "remote_access")
    if values["shock_start"] != NO_SHOCK:
        add({"kind": "foundry_shock", "date": values["shock_start"], "foundry": SHOCK_FOUNDRY,
             "factor": float(values["shock_depth"]), "months": int(values["shock_months"]),
             "note": f"app lever: CoWoS x{float(values['shock_depth']):.2f} "
                     f"for {int(values['shock_months'])} months"}, "shock_start")
    data["events"] = events
    if "enforcement" in moved:
        set_path(data, "leakage.enforcement", float(values["enforcement"]))
        written["leakage.enforcement"] = label_of("enforcement")
    if "demand_growth" in moved:
        set_path(data, "market.demand_index.growth_after_per_year",
                 float(values["demand_growth"]))
        written["market.demand_index"] = label_of("demand_growth")
    smic = data.get("foundries", {}).get("smic")
    if smic is not None and "huawei_ramp" in moved:
        path = smic["capacity_wafers_per_month"]
        smic["capacity_wafers_per_month"]["points"] = ramped(
            path["points"], path.get("growth_after_per_year", 0.0), float(values["huawei_ramp"]))
        written["foundries.smic"] = label_of("huawei_ramp")
    return data, written


def ramped(points: dict[str, float], growth_after: float, factor: float) -> dict[str, float]:
    """A capacity path multiplied by `factor` from RAMP_FROM on and unchanged before: the
    path interpolates between its points, so the month before RAMP_FROM keeps its own value
    as a point of its own and RAMP_FROM starts at the full multiple."""
    path = TimePath(points, growth_after)
    start = parse_month(RAMP_FROM)
    before = format_month(start - 1)
    out = {d: v for d, v in points.items() if d < RAMP_FROM}
    if min(points) < RAMP_FROM:
        out[before] = points.get(before, path.at(start - 1))
    out[RAMP_FROM] = factor * points.get(RAMP_FROM, path.at(start))
    out.update({d: factor * v for d, v in points.items() if d > RAMP_FROM})
    return dict(sorted(out.items()))


def name_fields(message: str, written: dict[str, str]) -> str:
    """A validation message with every field path the levers wrote replaced by the lever's
    label ("field events[9].date: ..." becomes "Foundry shock start: ...")."""
    for path, label in sorted(written.items(), key=lambda kv: -len(kv[0])):
        message = re.sub(rf"(field )?{re.escape(path)}[\w.\[\]]*", label, message)
    return message
