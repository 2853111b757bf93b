"""Find, read, merge, override and validate scenarios.

`load_scenario("baseline")` or `load_scenario("path/to/file.toml", overrides=["market.mfu=0.4"])`
returns a validated `Scenario`. A scenario file may say `extends = "<parent>"`; its tables are
merged over the parent's (tables key by key, other values replaced), its `[[events]]` are
appended to the parent's, and `drop_events = ["export_control", ...]` removes inherited events
of those kinds. Every problem is reported as one line naming the file (or the `--set` that
caused it), the field path, the value found and what was expected.

What `extends` may name (so a scenario file someone hands you reads nothing else):
- a built-in scenario by name (`extends = "baseline"`): letters, digits, `-` and `_`;
- a `.toml` file by a path relative to the extending file's directory, in that directory or
  below it (`extends = "base.toml"`, `"variants/base.toml"`). Absolute paths, `~`, `..` and
  symbolic links that lead out of that directory are refused.
Scenario files are UTF-8 TOML (a UTF-8 byte-order mark is allowed) of at most
`MAX_SCENARIO_BYTES`. A file with none of the scenario's top-level fields is "not a scenario
file", and its values are never quoted in a message.
"""

from __future__ import annotations

import codecs
import copy
import difflib
import hashlib
import json
import os
import re
import stat
import sys
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Iterable

from pydantic import ValidationError

from agents.strategies import PRICING
from market.catalog import load_catalog
from market import costs
from market.clearing import RATIONING
from market.controls import RuleBook, load_rules, order_regime, rule_problems
from market.errors import ScenarioError, UnknownNameError
from market.timeline import parse_month
from scenarios.behavioural import classify_path
from scenarios.schema import MONTH_PATTERN, Scenario, field_at, fields_of

_MERGE_ONLY_KEYS = ("drop_events",)
#: Origins key of an event's position among its own file's [[events]] (the merged index counts
#: the inherited events first): (_OWN_EVENT, merged index) -> position in its file.
_OWN_EVENT = "#own-event"
#: Largest scenario file read [bytes]: scenarios are tens of KB of text (baseline.toml: ~40 KB);
#: anything this big is not a scenario, and a file is read whole into memory.
MAX_SCENARIO_BYTES = 4 * 1024 * 1024
#: Longest quotation of a value or file name in an error line [characters].
MAX_QUOTE_CHARS = 80
#: A built-in scenario's name (and the only form of `extends` that is not a file path).
_BUILTIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
_EXPECTED_FILE = "expected a UTF-8 TOML scenario file"
#: Top-level keys of which a scenario file has at least one.
_SCENARIO_KEYS = frozenset(Scenario.model_fields) | frozenset(_MERGE_ONLY_KEYS)
_SCENARIO_FIELDS_SHOWN = ("name", "extends", "nations", "market")
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


def _quote(value: Any) -> str:
    """A value for an error line: its repr, on one line, cut to `MAX_QUOTE_CHARS`."""
    text = repr(value)
    return text if len(text) <= MAX_QUOTE_CHARS else text[:MAX_QUOTE_CHARS - 3] + "..."


def _show(path: Path | str) -> str:
    """A file name for an error line: as is when printable and short, else quoted."""
    text = str(path)
    return text if text.isprintable() and len(text) <= 4 * MAX_QUOTE_CHARS else _quote(text)


def _is_file(path: Path) -> bool:
    """`path.is_file()`, False also for names the system refuses (too long, a NUL byte)."""
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def resolve(name_or_path: str) -> Path:
    """The file of a built-in scenario name, or a `.toml` scenario file the user named."""
    text = str(name_or_path)
    if _BUILTIN_NAME.fullmatch(text):
        builtin = builtin_dir() / f"{text}.toml"
        if _is_file(builtin):
            return builtin
        if _is_file(Path(f"{text}.toml")):
            raise ScenarioError(f"unknown scenario {_quote(text)}; for the file {text}.toml "
                                f"here, name it with its suffix; built-in: "
                                f"{', '.join(builtin_names())}")
        if len(text) > MAX_QUOTE_CHARS:
            raise ScenarioError(f"unknown scenario {_quote(text)}; known: "
                                f"{', '.join(builtin_names())}")
        raise UnknownNameError("scenario", text, builtin_names())
    path = Path(text)
    if path.suffix != ".toml":
        raise ScenarioError(f"{_show(text)}: not a scenario file: expected a built-in "
                            f"scenario name or a .toml file")
    return path


def _resolve_parent(value: Any, child: Path) -> Path:
    """The file an `extends` value names, by the rule in the module docstring."""
    where = f"{_show(child)}: field extends"
    rule = ("extends takes a built-in scenario name or a .toml file in the directory of "
            f"{_show(child.name)} or below it")
    if not isinstance(value, str):
        raise ScenarioError(f"{where}: expected a scenario name (found {_quote(value)}); {rule}")
    if _BUILTIN_NAME.fullmatch(value):
        builtin = builtin_dir() / f"{value}.toml"
        if _is_file(builtin):
            return builtin
        hint = (f" (for the file beside it, write extends = \"{value}.toml\")"
                if _is_file(child.parent / f"{value}.toml") else "")
        raise ScenarioError(f"{where}: unknown scenario {_quote(value)}; known: "
                            f"{', '.join(builtin_names())}{hint}")
    relative = Path(value)
    if relative.suffix != ".toml":
        raise ScenarioError(f"{where}: {_quote(value)} is neither a built-in scenario name "
                            f"nor a .toml file; {rule}")
    if relative.is_absolute() or value.startswith("~"):
        raise ScenarioError(f"{where}: {_quote(value)} is an absolute path, refused; {rule}")
    if ".." in relative.parts:
        raise ScenarioError(f"{where}: {_quote(value)} leaves the directory of "
                            f"{_show(child.name)}, refused; {rule}")
    parent = child.parent / relative
    try:
        inside = parent.resolve().is_relative_to(child.parent.resolve())
    except (OSError, RuntimeError, ValueError):     # a symlink loop, a NUL byte
        inside = False
    if not inside:
        raise ScenarioError(f"{where}: {_quote(value)} leads out of the directory of "
                            f"{_show(child.name)} through a symbolic link, refused; {rule}")
    return parent


def _read_bytes(path: Path) -> bytes:
    """The bytes of a regular file of at most `MAX_SCENARIO_BYTES`; one line on any problem."""
    where = _show(path)
    try:
        info = path.stat()
        if stat.S_ISDIR(info.st_mode):
            raise ScenarioError(f"{where}: is a directory; {_EXPECTED_FILE}")
        if not stat.S_ISREG(info.st_mode):
            raise ScenarioError(f"{where}: is not a regular file (a pipe, socket or device); "
                                f"{_EXPECTED_FILE}")
        if info.st_size > MAX_SCENARIO_BYTES:
            raise ScenarioError(f"{where}: {info.st_size:,} bytes, larger than a scenario file "
                                f"can be ({MAX_SCENARIO_BYTES:,}); {_EXPECTED_FILE}")
        # O_NONBLOCK: should the file be swapped for a pipe after the check, opening it does
        # not wait for a writer
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as fh:
            data = fh.read(MAX_SCENARIO_BYTES + 1)
    except (FileNotFoundError, NotADirectoryError):
        raise ScenarioError(f"{where}: scenario file not found") from None
    except OSError as exc:
        raise ScenarioError(f"{where}: cannot read: {exc.strerror or type(exc).__name__}") from None
    except ValueError:                                  # a NUL byte in the name
        raise ScenarioError(f"{where}: not a valid file name") from None
    if data is None or len(data) > MAX_SCENARIO_BYTES:
        raise ScenarioError(f"{where}: not readable as a scenario file of at most "
                            f"{MAX_SCENARIO_BYTES:,} bytes; {_EXPECTED_FILE}")
    return data


def _decode(data: bytes, where: str) -> str:
    """UTF-8 text (a UTF-8 byte-order mark dropped), or one line saying what the bytes are."""
    for bom, encoding in ((codecs.BOM_UTF32_LE, "UTF-32"), (codecs.BOM_UTF32_BE, "UTF-32"),
                          (codecs.BOM_UTF16_LE, "UTF-16"), (codecs.BOM_UTF16_BE, "UTF-16")):
        if data.startswith(bom):
            raise ScenarioError(f"{where}: is {encoding} text (it starts with a {encoding} "
                                f"byte-order mark); {_EXPECTED_FILE}: save it as UTF-8")
    data = data.removeprefix(codecs.BOM_UTF8)
    if b"\x00" in data:
        raise ScenarioError(f"{where}: contains NUL bytes, so it is not text; {_EXPECTED_FILE}")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ScenarioError(f"{where}: is not UTF-8 text (a byte that is not UTF-8 at line "
                            f"{line}, column {column}); {_EXPECTED_FILE}") from None


def _read_toml(path: Path) -> dict:
    """A scenario file's tables; one line naming the file on any problem, and a file with
    none of the scenario's fields is refused without quoting anything from it."""
    where = _show(path)
    text = _decode(_read_bytes(path), where)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{where}: TOML syntax error: "
                            f"{str(exc)[:4 * MAX_QUOTE_CHARS]}") from None
    except ValueError:              # an integer longer than Python converts (4,300 digits)
        raise ScenarioError(f"{where}: TOML value too long: a number with more digits than "
                            f"{sys.get_int_max_str_digits():,}") from None
    except RecursionError:
        raise ScenarioError(f"{where}: TOML nested too deeply to be a scenario") from None
    if not data.keys() & _SCENARIO_KEYS:
        raise ScenarioError(f"{where}: not a scenario file: it has none of a scenario's fields "
                            f"({', '.join(_SCENARIO_FIELDS_SHOWN)}, ...)")
    return data


def _merge(base: dict, over: dict, origins: dict, over_origin: str, prefix: tuple = ()) -> dict:
    out = dict(base)
    for key, value in over.items():
        path = prefix + (key,)
        if key == "events" and isinstance(value, list):
            start = len(out.get("events", []))
            out["events"] = list(out.get("events", [])) + value
            for i in range(len(value)):
                origins[("events", start + i)] = over_origin
                origins[(_OWN_EVENT, start + i)] = i
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value, origins, over_origin, path)
        else:
            out[key] = value
            origins[path] = over_origin
    return out


def _read_chain(path: Path, seen: tuple[Path, ...]) -> tuple[dict, dict]:
    """Read a scenario file and its `extends` ancestors; returns (merged data, origins)."""
    try:
        resolved = path.resolve()
    except (OSError, RuntimeError, ValueError):     # a symlink loop, a NUL byte: read reports it
        resolved = path
    if resolved in seen:
        chain = " -> ".join(_show(p.name) for p in (*seen, resolved))
        raise ScenarioError(f"{_show(path)}: field extends: circular inheritance ({chain})")
    try:
        data = _read_toml(path)
    except ScenarioError as exc:
        if not seen:
            raise
        raise ScenarioError(f"{exc} (reached by extends from {_show(seen[-1].name)})") from None
    origins: dict[tuple, str] = {(): _show(path)}
    drop = data.get("drop_events", [])
    if not isinstance(drop, list) or not all(isinstance(k, str) for k in drop):
        raise ScenarioError(f"{_show(path)}: field drop_events: expected a list of event kinds "
                            f"(found {_quote(drop)})")
    parent_name = data.get("extends")
    if parent_name is None:
        return data, origins
    parent_path = _resolve_parent(parent_name, path)
    parent, origins = _read_chain(parent_path, (*seen, resolved))
    start, end = data.get("start", parent.get("start")), data.get("end", parent.get("end"))
    inherited = list(enumerate(parent.get("events", [])))
    # inherited events of dropped kinds, or dated outside this scenario's run, do not apply
    kept = [(i, e) for i, e in inherited if not isinstance(e, dict) or (
        e.get("kind") not in drop and _within(e.get("date"), start, end))]
    if len(kept) != len(inherited):
        parent = dict(parent)
        parent["events"] = [e for _, e in kept]
        moved = {("events", j): origins.get(("events", i), _show(parent_path))
                 for j, (i, _) in enumerate(kept)}
        moved.update({(_OWN_EVENT, j): origins[(_OWN_EVENT, i)]
                      for j, (i, _) in enumerate(kept) if (_OWN_EVENT, i) in origins})
        origins = {k: v for k, v in origins.items() if not (k and k[0] in ("events", _OWN_EVENT))}
        origins.update(moved)
    child = {k: v for k, v in data.items() if k not in _MERGE_ONLY_KEYS}
    merged = _merge(parent, child, origins, _show(path))
    for key in ("name", "description", "extends"):
        if key in data:
            merged[key] = data[key]
    return merged, origins


def _field_name(loc: tuple, origins: dict, where: str) -> str:
    """The field at `loc` as the user finds it in `where`: an event a file declares is named
    by its position among that file's own [[events]], since the merged index counts the
    inherited events before it (the merged one follows, for --set and [uncertain] paths)."""
    name = _format_loc(loc)
    if len(loc) < 2 or loc[0] != "events" or not isinstance(loc[1], int):
        return name
    own = origins.get((_OWN_EVENT, loc[1]))
    if own is None or own == loc[1] or origins.get(("events", loc[1])) != where:
        return name
    return (f"{_format_loc(('events', own, *loc[2:]))} of this file ({_format_loc(loc[:2])} of "
            f"the merged scenario)")


def _within(date: Any, start: Any, end: Any) -> bool:
    """Whether an inherited event's date lies in the run (unreadable dates are kept, so the
    schema reports them)."""
    try:
        month = parse_month(date)
        return parse_month(start) <= month <= parse_month(end)
    except (AttributeError, TypeError, ValueError):
        return True


def _parse_value(text: str) -> Any:
    """A --set value in TOML syntax (numbers, true/false, "strings", [lists], {tables});
    anything that is not valid TOML is taken as a bare string."""
    try:
        parsed = tomllib.loads(f"v = {text}")
    except tomllib.TOMLDecodeError:
        return text
    except ValueError:              # an integer longer than Python converts (4,300 digits)
        raise ScenarioError(f"a number with more digits than {sys.get_int_max_str_digits():,}"
                            ) from None
    except RecursionError:
        raise ScenarioError("a value nested too deeply") from None
    if len(parsed) != 1:            # `0.4\nother = 1`: more than the one value
        raise ScenarioError("expected one TOML value, found more lines of assignments")
    return parsed["v"]


def apply_override(data: dict, assignment: str) -> None:
    """Apply one `path=value` (value in TOML syntax) in place; the path's parent must exist."""
    if "=" not in assignment:
        raise ScenarioError(f"--set {_show(assignment)}: expected path=value, e.g. market.mfu=0.4")
    path, value = assignment.split("=", 1)
    try:
        parsed = _parse_value(value.strip())
    except ScenarioError as exc:
        raise ScenarioError(f"--set {_show(path.strip())}: value not readable: {exc}") from None
    set_path(data, path, parsed)


def set_path(data: dict, path: str, value: Any) -> None:
    """Set the field at a dotted path (list items by index) in place; its parent must exist."""
    keys = [k for k in path.strip().split(".")]
    path = _show(path.strip())
    if not all(keys):
        raise ScenarioError(f"--set {path}: empty segment in path {_quote(path)}")
    node: Any = data
    for depth, key in enumerate(keys[:-1]):
        where = _show(".".join(keys[:depth])) or "the top level"
        if isinstance(node, list):
            if not key.isdigit() or int(key) >= len(node):
                raise ScenarioError(f"--set {path}: no item {_quote(key)} in {where} "
                                    f"(it has {len(node)} items)")
            node = node[int(key)]
        elif isinstance(node, dict) and key in node and isinstance(node[key], (dict, list)):
            node = node[key]
        else:
            known = sorted(node) if isinstance(node, dict) else []
            raise ScenarioError(f"--set {path}: no table {_quote(key)} in {where}; known: "
                                f"{', '.join(map(str, known))}")
    last = keys[-1]
    if isinstance(node, list):
        if not last.isdigit() or int(last) >= len(node):
            raise ScenarioError(f"--set {path}: no item {_quote(last)} (it has {len(node)} "
                                "items)")
        node[int(last)] = value
    else:
        node[last] = value


def _origin(origins: dict, loc: tuple, default: str) -> str:
    """The file (or `--set`) that gave the value at `loc`: the one that set it or the table
    holding it, or, for a rule over a whole table, the last one that set a part of it."""
    if loc:
        parts = [v for k, v in origins.items() if len(k) > len(loc) and k[:len(loc)] == loc]
        if parts and loc not in origins:
            return parts[-1]
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


#: pydantic error types of a numeric bound; their line ends with the field's description,
#: which gives the unit and the reason for the bound.
_BOUND_ERRORS = frozenset({"greater_than", "greater_than_equal", "less_than", "less_than_equal"})


def _description(loc: tuple) -> str | None:
    """The schema description of the field at a pydantic error location, if any."""
    _, _, info = field_at(loc)
    return info.description if info is not None else None


#: Fields a release removed, with what to use instead (the message a scenario that still
#: sets one gets).
_POWER_GROWTH_REMOVED = ("unknown field: removed in 0.10.0, power is built by its owner now; "
                         "power_pipeline_growth_per_year sizes the projects under way at the "
                         "start and power_projects_mw hands it announced ones")
REMOVED_FIELDS = {("clouds", "power_growth_per_year"): _POWER_GROWTH_REMOVED,
                  ("labs", "power_growth_per_year"): _POWER_GROWTH_REMOVED}


#: Most field names an unknown-field message lists in full (the top level's ~20), and how
#: many of its nearest a longer table's message names.
MAX_KNOWN_LISTED, NEAREST_LISTED = 24, 8


def _known_fields(loc: tuple) -> str:
    """"; known: ..." with the fields the table holding `loc` may have (pydantic's location,
    an event's kind tag included), the closest to the name given first; "" where that table
    has no fixed fields."""
    known = fields_of(loc[:-1])
    if known is None:
        return ""
    if not loc[:-1]:
        known = [*known, *_MERGE_ONLY_KEYS]
    close = difflib.get_close_matches(str(loc[-1]), known, n=1)
    hint = f"; did you mean {close[0]}? known: " if close else "; known: "
    if len(known) <= MAX_KNOWN_LISTED:
        return hint + ", ".join(sorted(known))
    # a long table (the market's ~50 fields): the nearest names, the rest counted
    nearest = difflib.get_close_matches(str(loc[-1]), known, n=NEAREST_LISTED, cutoff=0.0)
    return (hint.replace("known:", "nearest known:") + ", ".join(nearest)
            + f" and {len(known) - len(nearest)} more (docs/model.md lists them)")


def _reason(err: dict) -> tuple[str, str]:
    """What is wrong, in the words of a pydantic error of the scenario schema (no value
    quoted), and for an unknown field the fields allowed where it stands ("" otherwise)."""
    loc = tuple(err["loc"])
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        removed = REMOVED_FIELDS.get((str(loc[0]), str(loc[-1]))) if loc else None
        return (removed, "") if removed else ("unknown field", _known_fields(loc))
    if err["type"] == "string_pattern_mismatch" and "YYYY" not in msg \
            and err.get("ctx", {}).get("pattern") == MONTH_PATTERN:
        return "expected a month YYYY-MM", ""
    return msg, ""


def error_reason(err: dict) -> str:
    """`_reason` as one phrase, for messages that quote the value themselves (--lever)."""
    return "".join(_reason(err))


def _validate(data: dict, origins: dict, source: str, strict: bool = True) -> Scenario:
    """Validate against the schema. `strict`: TOML values are typed, so a boolean is not a
    number and 1.5 is not a count (pydantic's lax mode would take `true` as 1.0)."""
    try:
        return Scenario.model_validate(data, strict=strict)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            reason = _description(loc) if err["type"] in _BOUND_ERRORS else None
            msg, known = _reason(err)         # the value is quoted between the two
            if len(loc) >= 3 and loc[0] == "events" and isinstance(loc[1], int):
                loc = loc[:2] + loc[3:]          # drop the event-kind tag pydantic adds
            where = _origin(origins, loc, source)
            # a whole table is not quoted (a model-level rule names its fields)
            found = ("" if err["type"] == "missing" or isinstance(err["input"], dict)
                     else f" (found {_quote(err['input'])})")
            because = f": {reason}" if reason else ""
            field = _show(_field_name(loc, origins, where)) or "(top level)"
            lines.append(f"{where}: field {field}: {msg}{found}{because}{known}")
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

    workload = costs.ServingWorkload(**s.market.serving.model_dump())
    if not costs.serving_tokens_per_chip_hour(costs.H100_SXM_SERVING_SPECS, workload) > 0:
        problems.append(("market.serving", "an H100 SXM server cannot serve this workload "
                         "within its memory and latency bound, so no chip's serving value can be "
                         "measured; use a smaller model or context, or a looser max_step_seconds"))
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
            unpriced = p.chip in catalog and catalog[p.chip].unit_price_usd is None
            if unpriced and p.list_price_usd is None:
                problems.append((f"{path}.list_price_usd", f"chip {p.chip!r} has no catalog "
                                 "price; give list_price_usd [USD]"))
            if p.end and parse_month(p.end) < parse_month(p.available):
                problems.append((f"{path}.end", f"end {p.end} is before available {p.available}"))
            if p.variant_of is not None:
                known("chip", p.variant_of, set(catalog), f"{path}.variant_of")
        on_sale = {p.chip for p in v.products if p.variant_of is None
                   and parse_month(p.available) <= start
                   and (not p.end or parse_month(p.end) >= start)}
        held = {c for oid, o in [*s.clouds.items(), *s.labs.items()] for c, n in o.fleet.items()
                if n > 0 and (not v.captive_to or oid in v.captive_to)}
        for chip in v.opening_orders_units:
            if chip not in on_sale:
                problems.append((f"vendors.{vid}.opening_orders_units.{chip}",
                                 f"not one of its products on sale at the start ({s.start}); "
                                 f"expected one of {sorted(on_sale)}"))
            elif chip not in held:
                problems.append((f"vendors.{vid}.opening_orders_units.{chip}",
                                 "no cloud or lab has a starting fleet of it to share the "
                                 "orders by"))
    sold = {p.chip for v in s.vendors.values() for p in v.products}
    known("rationing rule", s.market.rationing, set(RATIONING), "market.rationing")
    known("pricing strategy", s.market.hyperscaler_pricing, set(PRICING),
          "market.hyperscaler_pricing")
    if not any(units > 0 for c in s.clouds.values() for units in c.fleet.values()):
        problems.append(("clouds", "no cloud has a starting fleet: GPU-hour prices start from "
                         "the asks of installed chips and clouds invest by those prices, so "
                         "the market would never open; give at least one cloud a fleet"))
    retire = s.market.retire_after_years
    for cid, c in s.clouds.items():
        if c.fleet and c.fleet_age_years >= retire:
            problems.append((f"clouds.{cid}.fleet_age_years", f"a starting fleet aged "
                             f"{c.fleet_age_years:g} yr retires in the first month at "
                             f"market.retire_after_years = {retire:g}; it must be younger"))
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
            for month in o.power_projects_mw:
                if not start < parse_month(month) <= end:
                    problems.append((f"{kind}.{oid}.power_projects_mw.{month}",
                                     f"a project online in {month} is outside the run (after "
                                     f"{s.start}, by {s.end}); power at the start is power_mw"))
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
        if e.kind == "domestic_policy":
            problems += _ban_problems(s, e, path, catalog, known)
    return problems


def _ban_problems(s: Scenario, e, path: str, catalog, known) -> list[tuple[str, str]]:
    """What is wrong with a `domestic_policy` event's purchase ban: unknown chips, buyers not
    of its nation or buying no chips, buyers named without chips (`known` records the unknown
    names itself)."""
    problems = []
    for chip in e.banned_chips:
        known("chip", chip, set(catalog), f"{path}.banned_chips")
    home = {b for b, o in [*s.clouds.items(), *s.labs.items()] if o.nation == e.nation}
    for b in e.banned_buyers:
        if b not in home:
            problems.append((f"{path}.banned_buyers", f"{b!r} is not a cloud or lab of "
                             f"{e.nation}; expected one of {sorted(home)}"))
        elif b in s.labs and not s.labs[b].has_site:
            problems.append((f"{path}.banned_buyers", f"lab {b!r} buys no chips (no can_build, "
                             "fleet or power_mw: it rents hours), so a ban cannot bind it"))
    if e.banned_buyers and not e.banned_chips:
        problems.append((f"{path}.banned_buyers", "names buyers but no banned_chips"))
    return problems


def _prior_problem(prior: dict) -> str | None:
    """Why a `[calibrate]` prior cannot be searched, if it cannot: the calibration searches a
    bounded box of continuous values."""
    dist = prior.get("dist")
    if dist == "choice":
        return ("a calibrated parameter needs a continuous prior (uniform, triangular, normal "
                "or lognormal), not choice")
    if dist in ("normal", "lognormal") and (prior.get("low") is None
                                            or prior.get("high") is None):
        return f"a {dist} prior needs low and high (the calibration searches a bounded box)"
    return None


def _check_event_paths(data: dict, origins: dict, source: str) -> list[str]:
    """An uncertain or lever path into `events.N` must name an event its own file declares:
    events are numbered after the parent's, so an event added to a parent shifts every index
    below it, and a path into an inherited event would then quietly name another one."""
    lines = []
    for block in ("uncertain", "levers"):
        for path in data.get(block) or {}:
            keys = path.strip().split(".")
            if len(keys) < 3 or keys[0] != "events" or not keys[1].isdigit():
                continue
            # origins record what a child file set: none for the chain's root
            own, declared = origins.get((block, path)), origins.get(("events", int(keys[1])))
            if own != declared:
                where = declared or "the scenarios it extends"
                lines.append(f"{own or source}: field {block}.{path}: events[{keys[1]}] is "
                             f"declared in {where}; a path may name only an event of its own "
                             "file (the parent's events come first, so their count moves "
                             "indices)")
    return lines


def _check_uncertain(data: dict, origins: dict, source: str) -> list[str]:
    """Each uncertain, lever and calibrated path must name an existing, settable field (set a
    central value on a copy and validate); a calibrated one must also be a behavioural
    parameter with a continuous, bounded prior."""
    lines = _check_event_paths(data, origins, source)
    probes = []
    for path, dist in (data.get("uncertain") or {}).items():
        if isinstance(dist, dict):
            values = dist.get("values") or [dist.get("low"), dist.get("high")]
            central = next((dist[k] for k in ("mode", "mean") if k in dist), None)
            probes.append(("uncertain", path, [v for v in [central, *values] if v is not None]))
    for path, prior in (data.get("calibrate") or {}).items():
        if isinstance(prior, dict):
            why = classify_path(path) or _prior_problem(prior)
            if why is not None:
                lines.append(f"{_origin(origins, ('calibrate', path), source)}: field "
                             f"calibrate.{path}: {why}")
                continue
            values = [prior.get(k) for k in ("low", "mode", "mean", "high")]
            probes.append(("calibrate", path, [v for v in values if v is not None]))
    for path, lever in (data.get("levers") or {}).items():
        if isinstance(lever, dict):
            probes.append(("levers", path, list(lever.get("values") or [])))
    for block, path, values in probes:
        where = _origin(origins, (block, path), source)
        for value in values:
            probe = copy.deepcopy(data)
            probe.pop("uncertain", None)
            probe.pop("levers", None)
            probe.pop("calibrate", None)
            try:
                set_path(probe, path, value)
                Scenario.model_validate(probe, strict=True)
            except ScenarioError as exc:
                lines.append(f"{where}: field {block}.{path}: {str(exc).split(': ', 1)[1]}")
            except ValidationError as exc:
                err = exc.errors()[0]
                if err["type"] == "extra_forbidden":
                    lines.append(f"{where}: field {block}.{path}: path does not name a settable "
                                 f"input ({_format_loc(err['loc'])}: unknown field)")
                else:
                    lines.append(f"{where}: field {block}.{path}: value {_quote(value)} is not "
                                 f"a valid setting ({_format_loc(err['loc'])}: {err['msg']})")
            else:
                continue
            break
    return lines


def load_scenario(name_or_path: str, overrides: Iterable[str] = ()) -> LoadedScenario:
    """Load, merge, override and validate a scenario; raise `ScenarioError` listing problems."""
    path = resolve(name_or_path)
    data, origins = _read_chain(path, ())
    data.pop("drop_events", None)
    shown = _show(path)
    for assignment in overrides:
        apply_override(data, assignment)
        key = _loc(assignment.split("=", 1)[0].strip())
        origins[key] = f"--set {_show(assignment.split('=', 1)[0].strip())}"
    scenario = _validate(data, origins, shown)
    lines = []
    for p, msg in check_references(scenario):
        where = _origin(origins, _loc(p), shown)
        lines.append(f"{where}: field {_field_name(_loc(p), origins, where)}: {msg}")
    lines += _check_uncertain(data, origins, shown)
    if lines:
        raise ScenarioError("\n".join(lines))
    return LoadedScenario(scenario, str(path), data)


def validate_data(data: dict, source: str) -> Scenario:
    """Validate scenario data built in code (the web app's levers): schema and references,
    every problem in one `ScenarioError` naming `source`, the field and the expectation."""
    origins: dict[tuple, str] = {(): source}
    scenario = _validate(data, origins, source, strict=False)   # widgets may give 1 for 1.0
    lines = [f"{source}: field {p}: {msg}" for p, msg in check_references(scenario)]
    if lines:
        raise ScenarioError("\n".join(lines))
    return scenario
