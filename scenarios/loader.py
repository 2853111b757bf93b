"""Find, read, merge, override and validate scenarios.

`load_scenario("baseline")` or `load_scenario("path/to/file.toml", overrides=["market.mfu=0.4"])`
returns a validated `Scenario`. A scenario file may say `extends = "<name or relative path>"`;
its tables are merged over the parent's (tables key by key, other values replaced), its
`[[events]]` are appended to the parent's, and `drop_events = ["export_control", ...]` removes
inherited events of those kinds. Every problem is reported as one line naming the file (or the
`--set` that caused it), the field path, the value found and what was expected.
"""

from __future__ import annotations

import copy
import hashlib
import json
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Iterable

from pydantic import ValidationError

from market.catalog import load_catalog
from market.controls import RuleBook, load_rules, order_regime, rule_problems
from market.errors import ScenarioError, UnknownNameError
from market.timeline import parse_month
from scenarios.schema import Scenario

_MERGE_ONLY_KEYS = ("drop_events",)
#: PUE of labs' own clusters (hyperscale-class builds; Epoch's 1.1 for hyperscalers).
LAB_PUE = 1.1


@dataclass(frozen=True)
class LoadedScenario:
    """A validated scenario with the resolved data it came from (for `scenario.toml` outputs)."""

    scenario: Scenario
    source: str          #: the file (or built-in name) the user named
    resolved: dict       #: the merged, overridden data that validated

    @property
    def sha256(self) -> str:
        """Hash of the resolved scenario, stable across runs and machines."""
        canonical = json.dumps(self.scenario.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()


def builtin_dir() -> Path:
    return Path(str(resources.files("scenarios")))


def builtin_names() -> list[str]:
    return sorted(p.stem for p in builtin_dir().glob("*.toml") if not p.stem.startswith("_"))


def describe_builtins() -> list[tuple[str, str]]:
    """(name, one-line description) of each built-in scenario."""
    out = []
    for name in builtin_names():
        raw, _ = _read_chain(builtin_dir() / f"{name}.toml", ())
        out.append((name, str(raw.get("description", "")).strip().splitlines()[0]
                    if raw.get("description") else ""))
    return out


def resolve(name_or_path: str, relative_to: Path | None = None) -> Path:
    """A built-in scenario name, or a path to a TOML file (relative to `relative_to`)."""
    candidate = Path(name_or_path)
    if relative_to is not None and not candidate.is_absolute():
        rel = relative_to / candidate
        if rel.is_file():
            return rel
        if rel.with_suffix(".toml").is_file():
            return rel.with_suffix(".toml")
    if candidate.suffix == ".toml" or "/" in name_or_path or candidate.is_file():
        if not candidate.is_file():
            raise ScenarioError(f"{name_or_path}: scenario file not found")
        return candidate
    builtin = builtin_dir() / f"{name_or_path}.toml"
    if builtin.is_file():
        return builtin
    raise UnknownNameError("scenario", name_or_path, builtin_names())


def _read_toml(path: Path) -> dict:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{path}: TOML syntax error: {exc}") from None
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read: {exc.strerror}") from None


def _merge(base: dict, over: dict, origins: dict, over_origin: str, prefix: tuple = ()) -> dict:
    out = dict(base)
    for key, value in over.items():
        path = prefix + (key,)
        if key == "events" and isinstance(value, list):
            start = len(out.get("events", []))
            out["events"] = list(out.get("events", [])) + value
            for i in range(len(value)):
                origins[("events", start + i)] = over_origin
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value, origins, over_origin, path)
        else:
            out[key] = value
            origins[path] = over_origin
    return out


def _read_chain(path: Path, seen: tuple[Path, ...]) -> tuple[dict, dict]:
    """Read a scenario file and its `extends` ancestors; returns (merged data, origins)."""
    resolved = path.resolve()
    if resolved in seen:
        chain = " -> ".join(str(p) for p in (*seen, resolved))
        raise ScenarioError(f"{path}: field extends: circular inheritance ({chain})")
    data = _read_toml(path)
    origins: dict[tuple, str] = {(): str(path)}
    parent_name = data.get("extends")
    if parent_name is None:
        return data, origins
    if not isinstance(parent_name, str):
        raise ScenarioError(f"{path}: field extends: expected a scenario name (found "
                            f"{parent_name!r})")
    try:
        parent_path = resolve(parent_name, relative_to=path.parent)
    except UnknownNameError as exc:
        raise ScenarioError(f"{path}: field extends: {exc}") from None
    parent, origins = _read_chain(parent_path, (*seen, resolved))
    drop = data.get("drop_events", [])
    start, end = data.get("start", parent.get("start")), data.get("end", parent.get("end"))
    inherited = list(enumerate(parent.get("events", [])))
    # inherited events of dropped kinds, or dated outside this scenario's run, do not apply
    kept = [(i, e) for i, e in inherited if not isinstance(e, dict) or (
        e.get("kind") not in drop and _within(e.get("date"), start, end))]
    if len(kept) != len(inherited):
        parent = dict(parent)
        parent["events"] = [e for _, e in kept]
        moved = {("events", j): origins.get(("events", i), str(parent_path))
                 for j, (i, _) in enumerate(kept)}
        origins = {k: v for k, v in origins.items() if not (k and k[0] == "events")}
        origins.update(moved)
    child = {k: v for k, v in data.items() if k not in _MERGE_ONLY_KEYS}
    merged = _merge(parent, child, origins, str(path))
    for key in ("name", "description", "extends"):
        if key in data:
            merged[key] = data[key]
    return merged, origins


def _within(date: Any, start: Any, end: Any) -> bool:
    """Whether an inherited event's date lies in the run (unreadable dates are kept, so the
    schema reports them)."""
    try:
        month = parse_month(date)
        return parse_month(start) <= month <= parse_month(end)
    except (TypeError, ValueError):
        return True


def _parse_value(text: str) -> Any:
    """A --set value in TOML syntax (numbers, true/false, "strings", [lists], {tables});
    anything that is not valid TOML is taken as a bare string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def apply_override(data: dict, assignment: str) -> None:
    """Apply one `path=value` (value in TOML syntax) in place; the path's parent must exist."""
    if "=" not in assignment:
        raise ScenarioError(f"--set {assignment}: expected path=value, e.g. market.mfu=0.4")
    path, value = assignment.split("=", 1)
    set_path(data, path, _parse_value(value.strip()))


def set_path(data: dict, path: str, value: Any) -> None:
    """Set the field at a dotted path (list items by index) in place; its parent must exist."""
    keys = [k for k in path.strip().split(".")]
    if not all(keys):
        raise ScenarioError(f"--set {path}: empty segment in path {path!r}")
    node: Any = data
    for depth, key in enumerate(keys[:-1]):
        where = ".".join(keys[:depth]) or "the top level"
        if isinstance(node, list):
            if not key.isdigit() or int(key) >= len(node):
                raise ScenarioError(f"--set {path}: no item {key!r} in {where} "
                                    f"(it has {len(node)} items)")
            node = node[int(key)]
        elif isinstance(node, dict) and key in node and isinstance(node[key], (dict, list)):
            node = node[key]
        else:
            known = sorted(node) if isinstance(node, dict) else []
            raise ScenarioError(f"--set {path}: no table {key!r} in {where}; known: "
                                f"{', '.join(map(str, known))}")
    last = keys[-1]
    if isinstance(node, list):
        if not last.isdigit() or int(last) >= len(node):
            raise ScenarioError(f"--set {path}: no item {last!r} (it has {len(node)} items)")
        node[int(last)] = value
    else:
        node[last] = value


def _origin(origins: dict, loc: tuple, default: str) -> str:
    for cut in range(len(loc), -1, -1):
        if loc[:cut] in origins:
            return origins[loc[:cut]]
    return default


def _loc(path: str) -> tuple:
    """'events[2].date' -> ('events', 2, 'date'), the form origins are keyed by."""
    parts = path.replace("[", ".").replace("]", "").split(".")
    return tuple(int(p) if p.isdigit() else p for p in parts if p)


def _format_loc(loc: Iterable) -> str:
    parts = []
    for p in loc:
        if isinstance(p, int):
            parts.append(f"[{p}]")
        else:
            parts.append(("." if parts else "") + str(p))
    return "".join(parts)


def _validate(data: dict, origins: dict, source: str) -> Scenario:
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            if len(loc) >= 3 and loc[0] == "events" and isinstance(loc[1], int):
                loc = loc[:2] + loc[3:]          # drop the event-kind tag pydantic adds
            where = _origin(origins, loc, source)
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                msg = "unknown field"
            found = "" if err["type"] == "missing" else f" (found {err['input']!r})"
            lines.append(f"{where}: field {_format_loc(loc) or '(top level)'}: {msg}{found}")
        raise ScenarioError("\n".join(lines)) from None


def check_references(s: Scenario) -> list[tuple[str, str]]:
    """Cross-references the schema cannot see: (field path, problem) pairs."""
    catalog, base = load_catalog(), load_rules()
    nations, vendors = set(s.nations), set(s.vendors)
    buyers = set(s.clouds) | set(s.labs)
    problems: list[tuple[str, str]] = []

    def known(kind: str, value: str, valid: set, path: str) -> None:
        if value not in valid:
            problems.append((path, f"unknown {kind} {value!r}; known: {', '.join(sorted(valid))}"))

    book = RuleBook(base.groups, base.sources, {**base.rules, **s.rules}, base.countries)
    for problem in rule_problems(book, only=s.rules):
        path, _, msg = problem.partition(": ")
        problems.append((path, msg))
    rules = set(book.rules)
    groups = set(book.groups)
    for nid, n in s.nations.items():
        known("destination group", n.controls_group, groups, f"nations.{nid}.controls_group")
        for i, r in enumerate(n.remote_regions):
            known("nation", r, nations, f"nations.{nid}.remote_regions[{i}]")
        for i, a in enumerate(n.adaptive):
            path = f"nations.{nid}.adaptive[{i}]"
            if a.rival is not None:
                known("nation", a.rival, nations, f"{path}.rival")
            for field in ("impose", "lift"):
                if getattr(a, field) is not None:
                    known("export-control rule", getattr(a, field), rules, f"{path}.{field}")
    for fid, f in s.foundries.items():
        known("nation", f.nation, nations, f"foundries.{fid}.nation")
        for v in f.vendor_shares:
            known("vendor", v, vendors, f"foundries.{fid}.vendor_shares.{v}")
    start, end = parse_month(s.start), parse_month(s.end)
    for vid, v in s.vendors.items():
        known("nation", v.nation, nations, f"vendors.{vid}.nation")
        known("foundry", v.foundry, set(s.foundries), f"vendors.{vid}.foundry")
        for b in v.captive_to:
            known("cloud or lab", b, buyers, f"vendors.{vid}.captive_to")
        for i, p in enumerate(v.products):
            path = f"vendors.{vid}.products[{i}]"
            known("chip", p.chip, set(catalog), f"{path}.chip")
            if p.chip in catalog and p.list_price_usd is None and catalog[p.chip].unit_price_usd is None:
                problems.append((f"{path}.list_price_usd", f"chip {p.chip!r} has no catalog "
                                 "price; give list_price_usd [USD]"))
            if p.end and parse_month(p.end) < parse_month(p.available):
                problems.append((f"{path}.end", f"end {p.end} is before available {p.available}"))
            if p.variant_of is not None:
                known("chip", p.variant_of, set(catalog), f"{path}.variant_of")
    sold = {p.chip for v in s.vendors.values() for p in v.products}
    for kind, table in (("clouds", s.clouds), ("labs", s.labs)):
        for oid, o in table.items():
            known("nation", o.nation, nations, f"{kind}.{oid}.nation")
            for v in o.vendor_preference:
                known("vendor", v, vendors, f"{kind}.{oid}.vendor_preference.{v}")
            pue = getattr(o, "pue", LAB_PUE)
            need_mw = sum(units * catalog[c].tdp_w * catalog[c].server_power_multiplier
                          for c, units in o.fleet.items() if c in catalog) * pue / 1e6
            if need_mw > o.power_mw * (1 + 1e-9):
                problems.append((f"{kind}.{oid}.fleet", f"the starting fleet needs "
                                 f"{need_mw:,.1f} MW at PUE {pue}, more than power_mw "
                                 f"({o.power_mw:,.1f} MW)"))
            for chip in o.fleet:
                known("chip", chip, set(catalog), f"{kind}.{oid}.fleet.{chip}")
                if chip in catalog and chip not in sold and catalog[chip].unit_price_usd is None:
                    problems.append((f"{kind}.{oid}.fleet.{chip}", f"chip {chip!r} has no price: "
                                     "no vendor sells it and the catalog has none"))
    for field in ("demand_h100e_by_nation", "demand_growth_by_nation"):
        for n in getattr(s.long_tail, field):
            known("nation", n, nations, f"long_tail.{field}.{n}")
    for g in s.leakage.destinations:
        known("destination group", g, groups, "leakage.destinations")
    known("nation", s.leakage.via, nations, "leakage.via")
    in_force: dict[str, set[str]] = {}
    order = sorted(range(len(s.events)), key=lambda i: parse_month(s.events[i].date))
    for i in order:
        e = s.events[i]
        path = f"events[{i}]"
        if not start <= parse_month(e.date) <= end:
            problems.append((f"{path}.date", f"date {e.date} is outside the run "
                                             f"({s.start} to {s.end})"))
        if e.kind == "export_control":
            known("nation", e.issuer, nations, f"{path}.issuer")
            if e.rule not in rules:
                known("export-control rule", e.rule, rules, f"{path}.rule")
                continue
            live = in_force.setdefault(e.issuer, set())
            if e.action == "impose":
                if e.rule in live:
                    problems.append((f"{path}.rule", f"rule {e.rule!r} is already in force "
                                     f"for {e.issuer} on {e.date}; lift it first"))
                live.add(e.rule)
                live.intersection_update(order_regime(book, live))
            elif e.rule not in live:
                problems.append((f"{path}.rule", f"cannot lift {e.rule!r} on {e.date}: it is "
                                 f"not in force for {e.issuer} then"))
            else:
                live.discard(e.rule)
        elif e.kind == "foundry_shock":
            known("foundry", e.foundry, set(s.foundries), f"{path}.foundry")
        elif e.kind == "hbm_shortage":
            for v in e.vendors:
                known("vendor", v, vendors, f"{path}.vendors")
        elif e.kind in ("power_constraint", "domestic_policy"):
            known("nation", e.nation, nations, f"{path}.nation")
    return problems


def _check_uncertain(data: dict, origins: dict, source: str) -> list[str]:
    """Each uncertain path must name an existing, settable field: set a central value on a
    copy and validate."""
    lines = []
    probes = []
    for path, dist in (data.get("uncertain") or {}).items():
        if isinstance(dist, dict):
            values = dist.get("values") or [dist.get("low"), dist.get("high")]
            central = next((dist[k] for k in ("mode", "mean") if k in dist), None)
            probes.append(("uncertain", path, [v for v in [central, *values] if v is not None]))
    for path, lever in (data.get("levers") or {}).items():
        if isinstance(lever, dict):
            probes.append(("levers", path, list(lever.get("values") or [])))
    for block, path, values in probes:
        where = _origin(origins, (block, path), source)
        for value in values:
            probe = copy.deepcopy(data)
            probe.pop("uncertain", None)
            probe.pop("levers", None)
            try:
                set_path(probe, path, value)
                Scenario.model_validate(probe)
            except ScenarioError as exc:
                lines.append(f"{where}: field {block}.{path}: {str(exc).split(': ', 1)[1]}")
            except ValidationError as exc:
                err = exc.errors()[0]
                if err["type"] == "extra_forbidden":
                    lines.append(f"{where}: field {block}.{path}: path does not name a settable "
                                 f"input ({_format_loc(err['loc'])}: unknown field)")
                else:
                    lines.append(f"{where}: field {block}.{path}: value {value!r} is not a valid "
                                 f"setting ({_format_loc(err['loc'])}: {err['msg']})")
            else:
                continue
            break
    return lines


def load_scenario(name_or_path: str, overrides: Iterable[str] = ()) -> LoadedScenario:
    """Load, merge, override and validate a scenario; raise `ScenarioError` listing problems."""
    path = resolve(name_or_path)
    data, origins = _read_chain(path, ())
    data.pop("drop_events", None)
    source = str(path)
    for assignment in overrides:
        apply_override(data, assignment)
        key = tuple(assignment.split("=", 1)[0].strip().split("."))
        origins[key] = f"--set {assignment.split('=', 1)[0].strip()}"
    scenario = _validate(data, origins, source)
    lines = [f"{_origin(origins, _loc(p), source)}: field {p}: {msg}"
             for p, msg in check_references(scenario)]
    lines += _check_uncertain(data, origins, source)
    if lines:
        raise ScenarioError("\n".join(lines))
    return LoadedScenario(scenario, source, data)


def validate_data(data: dict, source: str) -> Scenario:
    """Validate scenario data built in code (the web app's levers): schema and references,
    every problem in one `ScenarioError` naming `source`, the field and the expectation."""
    origins: dict[tuple, str] = {(): source}
    scenario = _validate(data, origins, source)
    lines = [f"{source}: field {p}: {msg}" for p, msg in check_references(scenario)]
    if lines:
        raise ScenarioError("\n".join(lines))
    return scenario
