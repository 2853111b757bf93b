"""Export-control rules as data, and the classification of a chip for a destination.

A chip's status is computed from its specifications against the thresholds of the rules in
force, the way the regulations define it (ECCN 3A090: total processing performance, performance
density, and in 2022 chip-to-chip I/O), plus named-product actions where a real rule named
products (the April 2025 H20 letter). A new chip or a compliant variant is therefore classified
by the same rules. Rules live in `market/data/controls.toml` with their sources; a scenario may
add its own `[rules.<id>]` in the same form.

Vocabulary:
- a *rule* is one dated version (announced, effective, optionally rescinded, optionally
  superseding earlier versions) with a list of *actions*;
- an *action* matches chips (thresholds, named products, or an overlay on chips already
  controlled that stay under ceilings) and gives each destination group a *treatment*;
- a *regime* is the ordered list of rules a controller has in force. Rules apply in order; a
  later rule's matching action overrides an earlier one for the groups it names; within a rule
  the first matching action decides.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Literal, Sequence

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from market.catalog import Chip, _data_path, _read_toml
from market.errors import DataFileError, UnknownNameError
from market.timeline import parse_month

Treatment = Literal["prohibited", "licence", "case_by_case", "notification", "allowed"]

#: Thresholds a criterion may set: (label, unit, plausible range, how to read it from a chip).
#: The range catches a threshold written in the wrong unit (TB/s for GB/s, TPP/cm2 for /mm2).
THRESHOLDS = {
    "tpp": ("TPP", "TPP (dense TOPS x bit length)", (1.0, 1e7), lambda c: c.tpp),
    "performance_density": ("performance density", "TPP per mm2 of die", (0.01, 1000.0),
                            lambda c: c.performance_density),
    "interconnect_gbps": ("chip-to-chip I/O", "GB/s (bidirectional)", (1.0, 1e5),
                          lambda c: c.interconnect_gbps),
    "memory_bandwidth_gbps": ("memory bandwidth", "GB/s", (10.0, 1e6),
                              lambda c: c.memory_bandwidth_gbps),
}
UNITS = {"tpp": "", "performance_density": " TPP/mm2", "interconnect_gbps": " GB/s",
         "memory_bandwidth_gbps": " GB/s"}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_range(values: dict, suffix: str) -> None:
    for key, value in values.items():
        if value is None:
            continue
        field = key.removesuffix(suffix)
        label, unit, (lo, hi), _ = THRESHOLDS[field]
        if not (math.isfinite(value) and lo <= value <= hi):
            raise ValueError(f"{key} = {value:g}: expected {label} in {unit}, between "
                             f"{lo:g} and {hi:g} (is it in another unit?)")


class Criterion(_Strict):
    """Met when the chip reaches every threshold given (minimums, inclusive)."""

    tpp_min: float | None = None
    performance_density_min: float | None = None
    interconnect_gbps_min: float | None = None
    memory_bandwidth_gbps_min: float | None = None

    @model_validator(mode="after")
    def _valid(self) -> "Criterion":
        values = self.model_dump()
        if all(v is None for v in values.values()):
            raise ValueError("a criterion needs at least one threshold")
        _check_range(values, "_min")
        return self


class Ceiling(_Strict):
    """Met when the chip stays strictly below every ceiling given."""

    tpp_max: float | None = None
    performance_density_max: float | None = None
    interconnect_gbps_max: float | None = None
    memory_bandwidth_gbps_max: float | None = None

    @model_validator(mode="after")
    def _valid(self) -> "Ceiling":
        values = self.model_dump()
        if all(v is None for v in values.values()):
            raise ValueError("a ceiling needs at least one threshold")
        _check_range(values, "_max")
        return self


class DestinationTreatment(_Strict):
    treatment: Treatment
    approval_probability: float = Field(default=1.0, ge=0, le=1,
                                        description="share of licence requests granted [-]")
    revenue_share: float = Field(default=0.0, ge=0, lt=1, description="share of the sale "
                                 "price paid to the controlling government [fraction]")
    volume_cap_vs_home: float | None = Field(
        default=None, ge=0, description="cap on units shipped to the destination as a multiple "
                                        "of units of the product sold at home since the rule [-]")
    cap_h100e: float | None = Field(default=None, gt=0, description="country cap over "
                                    "cap_months, counted in TPP-based H100e [H100e]")
    cap_months: int | None = Field(default=None, ge=1, le=240)
    exemption_h100e_per_customer_year: float = Field(
        default=0.0, ge=0, description="orders per customer per year that need no licence and "
                                       "do not count against the cap [H100e, TPP-based]")
    condition: str | None = Field(default=None, description="conditions in words")

    @model_validator(mode="after")
    def _cap(self) -> "DestinationTreatment":
        if (self.cap_h100e is None) != (self.cap_months is None):
            raise ValueError("cap_h100e and cap_months go together")
        return self


class Action(_Strict):
    label: str = Field(description="what the regulation calls it, e.g. '3A090.a'")
    any_of: list[Criterion] = Field(default_factory=list)
    products: list[str] = Field(default_factory=list, description="named catalog chip ids")
    controlled_only: bool = Field(default=False, description="overlay: applies only to chips "
                                  "an earlier action controls")
    below: Ceiling | None = Field(default=None, description="overlay: applies only under "
                                  "these ceilings")
    destinations: dict[str, DestinationTreatment]

    @model_validator(mode="after")
    def _matches_something(self) -> "Action":
        if not (self.any_of or self.products or self.controlled_only):
            raise ValueError("an action needs any_of criteria, named products or "
                             "controlled_only")
        return self


class Rule(_Strict):
    name: str
    #: the month buyers began to act on the coming rule (press reports of its drafting),
    #: when that is before its announcement; they stockpile from then (`announced_rules`)
    expected: str | None = None
    announced: str
    effective: str
    rescinded: str | None = None
    source: str
    supersedes: list[str] = Field(default_factory=list)
    actions: list[Action] = Field(default_factory=list)
    remote_access: dict[str, bool] = Field(
        default_factory=dict, description="IaaS switch: false closes renting foreign clouds "
                                          "to labs of that destination group")
    hbm_controlled: dict[str, bool] = Field(
        default_factory=dict, description="HBM switch: true controls HBM exports to the group")
    note: str | None = None


class _RuleFile(_Strict):
    groups: dict[str, str]
    countries: dict[str, str] = Field(default_factory=dict)
    sources: dict[str, str]
    rules: dict[str, Rule]


@dataclass(frozen=True)
class RuleBook:
    """Validated rules with the destination groups and sources they refer to."""

    groups: dict[str, str]
    sources: dict[str, str]
    rules: dict[str, Rule]
    countries: dict[str, str] = dataclasses.field(default_factory=dict)
    _decided: dict = dataclasses.field(default_factory=dict, compare=False, repr=False)

    def decide(self, chip: Chip, group: str, regime: tuple[str, ...]) -> "Decision":
        """`classify`, remembered by the chip's id and the specs the rules read (rules are
        immutable, so a book's answers never change; Monte Carlo runs in one worker share
        them)."""
        key = (chip.id, chip.tpp, chip.performance_density, chip.interconnect_gbps,
               chip.memory_bandwidth_gbps, group, regime)
        if key not in self._decided:
            self._decided[key] = classify(chip, group, regime, self)
        return self._decided[key]

    def __contains__(self, rule_id: str) -> bool:
        return rule_id in self.rules

    def __getitem__(self, rule_id: str) -> Rule:
        if rule_id not in self.rules:
            raise UnknownNameError("export-control rule", rule_id, list(self.rules))
        return self.rules[rule_id]

    def __iter__(self):
        return iter(self.rules)

    def with_rules(self, extra: dict[str, Rule], where: str = "scenario") -> "RuleBook":
        """This book plus rules defined elsewhere (a scenario), validated the same way."""
        if not extra:
            return self
        book = RuleBook(self.groups, self.sources, {**self.rules, **extra}, self.countries)
        problems = rule_problems(book, only=extra)
        if problems:
            raise DataFileError(f"{where}: {problems[0]}")
        return book

    def regime_at(self, month: int | str) -> tuple[str, ...]:
        """Rules in force on the real timeline of this book (announced/effective/rescinded
        dates), in order of effect."""
        m = parse_month(month) if isinstance(month, str) else month
        live = [rid for rid, r in self.rules.items()
                if parse_month(r.effective) <= m
                and (r.rescinded is None or m < parse_month(r.rescinded))]
        return order_regime(self, live)


def order_regime(book: RuleBook, rule_ids: Iterable[str]) -> tuple[str, ...]:
    """Drop rules superseded by another in the set; order the rest by effective date."""
    ids = list(dict.fromkeys(rule_ids))
    superseded = {s for rid in ids for s in book[rid].supersedes}
    kept = [rid for rid in ids if rid not in superseded]
    return tuple(sorted(kept, key=lambda r: (parse_month(book[r].effective), r)))


@dataclass(frozen=True)
class Decision:
    """How one chip may ship to one destination group under a regime."""

    rule_id: str | None       #: the rule whose action decided (None: nothing applies)
    action: str | None        #: that action's label
    controlled: bool          #: the chip is a listed (controlled) item under the regime
    treatment: str
    approval_probability: float = 1.0
    revenue_share: float = 0.0
    volume_cap_vs_home: float | None = None
    cap_h100e: float | None = None
    cap_months: int | None = None
    exemption_h100e_per_customer_year: float = 0.0
    condition: str | None = None
    crossed: tuple[str, ...] = ()  #: the thresholds met (or product named), in words

    @property
    def shippable_fraction(self) -> float:
        """Expected share of an order that may ship, before caps [fraction]."""
        if self.treatment == "prohibited":
            return 0.0
        if self.treatment in ("licence", "case_by_case"):
            return self.approval_probability
        return 1.0

    @property
    def restricted(self) -> bool:
        """Anything short of free shipment (the vendor's cue to design a variant)."""
        return self.treatment in ("prohibited", "licence", "case_by_case")


ALLOWED = Decision(None, None, False, "allowed")


def _fmt(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:,.3g}"


def _criterion_met(chip: Chip, criterion: Criterion) -> tuple[str, ...] | None:
    crossed = []
    for field, (label, _, _, read) in THRESHOLDS.items():
        threshold = getattr(criterion, f"{field}_min")
        if threshold is None:
            continue
        value = read(chip)
        if value is None or not value >= threshold:  # unknown die area cannot meet a PD test
            return None
        crossed.append(f"{label} {_fmt(value)}{UNITS[field]} >= {_fmt(threshold)}")
    return tuple(crossed)


def _under_ceiling(chip: Chip, ceiling: Ceiling) -> tuple[str, ...] | None:
    under = []
    for field, (label, _, _, read) in THRESHOLDS.items():
        limit = getattr(ceiling, f"{field}_max")
        if limit is None:
            continue
        value = read(chip)
        if value is None or not value < limit:
            return None
        under.append(f"{label} {_fmt(value)}{UNITS[field]} < {_fmt(limit)}")
    return tuple(under)


def _action_matches(chip: Chip, action: Action, controlled: bool) -> tuple[str, ...] | None:
    if action.controlled_only and not controlled:
        return None
    found: tuple[str, ...] | None = None
    if chip.id in action.products:
        found = (f"named product: {chip.name}",)
    else:
        for criterion in action.any_of:
            found = _criterion_met(chip, criterion)
            if found is not None:
                break
    if found is None and action.controlled_only and not action.any_of and not action.products:
        found = ()
    if found is None:
        return None
    if action.below is not None:
        under = _under_ceiling(chip, action.below)
        if under is None:
            return None
        found = found + under
    return found


def classify(chip: Chip, destination_group: str, regime: str | Sequence[str] | None,
             rules: RuleBook | None = None) -> Decision:
    """Decide how `chip` may ship to `destination_group` under the rules in `regime`."""
    if not regime:
        return ALLOWED
    book = rules or load_rules()
    ids = (regime,) if isinstance(regime, str) else tuple(regime)
    decision = ALLOWED
    for rid in ids:
        rule = book[rid]
        for action in rule.actions:
            crossed = _action_matches(chip, action, decision.controlled)
            if crossed is None:
                continue
            dest = action.destinations.get(destination_group)
            if dest is None:
                if not action.controlled_only and not decision.controlled:
                    decision = Decision(rid, action.label, True, "allowed", crossed=crossed)
                break
            decision = Decision(
                rid, action.label, True, dest.treatment, dest.approval_probability,
                dest.revenue_share, dest.volume_cap_vs_home, dest.cap_h100e, dest.cap_months,
                dest.exemption_h100e_per_customer_year, dest.condition,
                crossed if not action.controlled_only else decision.crossed + crossed)
            break
    return decision


def remote_access_open(destination_group: str, regime: Sequence[str], rules: RuleBook) -> bool:
    """Whether labs of the group may rent foreign clouds under the regime (IaaS switch)."""
    open_ = True
    for rid in regime:
        if destination_group in rules[rid].remote_access:
            open_ = rules[rid].remote_access[destination_group]
    return open_


def hbm_controlled(destination_group: str, regime: Sequence[str], rules: RuleBook) -> bool:
    """Whether HBM exports to the group are controlled under the regime (HBM switch)."""
    controlled = False
    for rid in regime:
        if destination_group in rules[rid].hbm_controlled:
            controlled = rules[rid].hbm_controlled[destination_group]
    return controlled


# ------------------------------------------------------------------ compliant variants ---

#: Value lost per unit of relative cut, by parameter [-], for choosing how to design under a
#: threshold [A]: compute is what buyers pay for; a narrower chip-to-chip link hurts large
#: training jobs a little (A800/H800 kept full compute); memory bandwidth matters for serving.
CUT_COST = {"tpp": 1.0, "performance_density": 1.0, "interconnect_gbps": 0.1,
            "memory_bandwidth_gbps": 0.3}
#: Designs land this far under a threshold [fraction] (H20: TPP 2,368 under 2,400, 1.3%).
DESIGN_MARGIN = 0.02


def _cut(chip: Chip, field: str, threshold: float) -> tuple[Chip, float] | None:
    """The chip with `field` just under `threshold`, and the value lost."""
    target = threshold * (1.0 - DESIGN_MARGIN)
    if field in ("tpp", "performance_density"):
        current = chip.tpp if field == "tpp" else chip.performance_density
        if current is None or current <= 0:
            return None
        scale = target / current
        throughput = {p: v * scale for p, v in chip.dense_throughput.items()}
        return dataclasses.replace(chip, dense_throughput=throughput), 1.0 - scale
    current = getattr(chip, field)
    return (dataclasses.replace(chip, **{field: target}),
            CUT_COST[field] * (1.0 - target / current))


def compliant_variant(chip: Chip, destination_group: str, regime: Sequence[str],
                      rules: RuleBook, variant_id: str, max_steps: int = 8) -> Chip | None:
    """A variant of `chip` designed just under the thresholds in force so that it ships to
    the group freely, as the A800/H800 (I/O cut under 600 GB/s) and H20 (TPP cut under the
    2023 grey zone) were; None when no cut of the listed parameters gets it there.

    Each step finds the action that restricts the current design and applies the cheapest
    single-parameter cut that escapes its matched criterion (CUT_COST). The variant keeps the
    parent's die, memory and power; its list price follows 30% fixed + 70% by compute [A]."""
    design = dataclasses.replace(chip, id=variant_id, name=f"{chip.name} (compliant variant)")
    for _ in range(max_steps):
        decision = classify(design, destination_group, regime, rules)
        if decision.treatment == "allowed":
            break
        rule = rules[decision.rule_id]
        action = next(a for a in rule.actions if a.label == decision.action)
        options = []
        for criterion in action.any_of:
            if _criterion_met(design, criterion) is None:
                continue
            for field in THRESHOLDS:
                threshold = getattr(criterion, f"{field}_min")
                if threshold is not None:
                    cut = _cut(design, field, threshold)
                    if cut is not None:
                        options.append((cut[1], field, cut[0]))
        if not options:
            return None
        design = min(options, key=lambda o: (o[0], o[1]))[2]
    else:
        return None
    if classify(design, destination_group, regime, rules).treatment != "allowed":
        return None
    scale = design.tpp / chip.tpp
    price = None if chip.unit_price_usd is None else chip.unit_price_usd * (0.3 + 0.7 * scale)
    return dataclasses.replace(design, unit_price_usd=price)


# --------------------------------------------------------------------------- loading ---

def rule_problems(book: RuleBook, only: dict[str, Rule] | None = None,
                  chip_ids: Iterable[str] | None = None) -> list[str]:
    """Semantic checks beyond the schema: dates in order, known groups, sources, references.

    Rules checked with `only` (a scenario's own) may give their source as text (a citation or
    a URL) instead of a key of the rule file's [sources]."""
    from market.catalog import load_catalog   # late: the catalog loads its own file

    known_chips = set(chip_ids) if chip_ids is not None else set(load_catalog())
    problems = []
    for rid, rule in (only or book.rules).items():
        where = f"rules.{rid}"
        try:
            announced, effective = parse_month(rule.announced), parse_month(rule.effective)
            rescinded = parse_month(rule.rescinded) if rule.rescinded else None
        except ValueError as exc:
            problems.append(f"{where}: {exc}")
            continue
        if announced > effective:
            problems.append(f"{where}: announced {rule.announced} is after effective "
                            f"{rule.effective}; expected announced <= effective")
        if rule.expected is not None:
            try:
                if parse_month(rule.expected) > announced:
                    problems.append(f"{where}: expected {rule.expected} is after announced "
                                    f"{rule.announced}; expected a month <= announced")
            except ValueError as exc:
                problems.append(f"{where}: expected: {exc}")
        if rescinded is not None and rescinded < effective:
            problems.append(f"{where}: rescinded {rule.rescinded} is before effective "
                            f"{rule.effective}; expected rescinded >= effective")
        cited_in_text = only is not None and rule.source.strip()   # a scenario's own rule
        if rule.source not in book.sources and not cited_in_text:
            problems.append(f"{where}.source: unknown source {rule.source!r}; expected one of "
                            f"{', '.join(sorted(book.sources))}")
        for old in rule.supersedes:
            if old not in book.rules:
                problems.append(f"{where}.supersedes: unknown rule {old!r}")
            elif parse_month(book.rules[old].effective) > effective:
                problems.append(f"{where}.supersedes: {old!r} takes effect "
                                f"{book.rules[old].effective}, after this rule "
                                f"({rule.effective}); expected an earlier rule")
        groups = [(f"{where}.remote_access", g) for g in rule.remote_access]
        groups += [(f"{where}.hbm_controlled", g) for g in rule.hbm_controlled]
        for i, action in enumerate(rule.actions):
            groups += [(f"{where}.actions[{i}].destinations", g) for g in action.destinations]
            for chip in action.products:
                if chip not in known_chips:
                    problems.append(f"{where}.actions[{i}].products: unknown chip {chip!r}")
        for path, group in groups:
            if group not in book.groups:
                problems.append(f"{path}: unknown destination group {group!r}; expected one of "
                                f"{', '.join(book.groups)}")
    return problems


def _validation_message(exc: ValidationError) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"])
    value = err.get("input")
    shown = "" if isinstance(value, dict) or value is None else f" = {value!r}"
    return f"field {loc}{shown}: {err['msg'].removeprefix('Value error, ')}"


def parse_rules(data: dict, where: str) -> dict[str, Rule]:
    """Validate a `rules` table (from the rules file or a scenario) without semantic checks."""
    try:
        return {rid: Rule.model_validate(r) for rid, r in data.items()}
    except ValidationError as exc:
        raise DataFileError(f"{where}: rules.{_validation_message(exc)}") from None


@lru_cache(maxsize=4)
def _load_rules(path: str) -> RuleBook:
    p = Path(path)
    try:
        parsed = _RuleFile.model_validate(_read_toml(p))
    except ValidationError as exc:
        raise DataFileError(f"{p}: {_validation_message(exc)}") from None
    book = RuleBook(dict(parsed.groups), dict(parsed.sources), dict(parsed.rules),
                    {k.lower(): v for k, v in parsed.countries.items()})
    problems = rule_problems(book)
    problems += [f"countries.{c}: unknown destination group {g!r}; expected one of "
                 f"{', '.join(book.groups)}" for c, g in book.countries.items()
                 if g not in book.groups]
    if problems:
        raise DataFileError(f"{p}: {problems[0]}")
    return book


def load_rules(path: str | Path | None = None) -> RuleBook:
    """The export-control rule book (default: the packaged file)."""
    return _load_rules(str(path or _data_path("controls.toml")))


# ---------------------------------------------------------------------- explanations ---

def _criterion_words(chip: Chip, criterion: Criterion) -> str:
    parts = []
    for field, (label, _, _, read) in THRESHOLDS.items():
        threshold = getattr(criterion, f"{field}_min")
        if threshold is not None:
            value = read(chip)
            shown = "unknown" if value is None else f"{_fmt(value)}{UNITS[field]}"
            parts.append(f"{label} >= {_fmt(threshold)}{UNITS[field]} (this chip: {shown})")
    return " and ".join(parts)


def explain(chip: Chip, group: str, regime: Sequence[str], rules: RuleBook) -> dict:
    """The decision with its reasons in words, for `gpumarket controls`."""
    decision = classify(chip, group, regime, rules)
    lines = []
    if not regime:
        lines.append("No export-control rule on AI chips is in force on this date.")
    if decision.rule_id is not None:
        rule = rules[decision.rule_id]
        lines.append(f"Decided by {decision.rule_id} ({rule.name}), {decision.action}: "
                     + "; ".join(decision.crossed) + ".")
    elif regime:
        lines.append("Not controlled: it meets no criterion of the rules in force.")
        for rid in regime:
            for action in rules[rid].actions:
                if action.any_of and group in action.destinations:
                    alternatives = " OR ".join(_criterion_words(chip, c) for c in action.any_of)
                    lines.append(f"  {rid} {action.label} would need {alternatives}.")
                if action.products:
                    lines.append(f"  {rid} {action.label} names: {', '.join(action.products)}.")
    words = {
        "prohibited": "PROHIBITED: it may not be exported to this destination",
        "licence": ("LICENCE REQUIRED: about "
                    f"{decision.approval_probability:.0%} of requests approved"
                    if decision.approval_probability > 0 else
                    "LICENCE REQUIRED, and none are being granted"),
        "case_by_case": f"CASE-BY-CASE licensing: about {decision.approval_probability:.0%} of "
                        "requests approved",
        "notification": "NOTIFICATION: may ship after notifying the regulator",
        "allowed": ("ALLOWED: listed, but no licence is needed for this destination"
                    if decision.controlled else "ALLOWED: not a controlled item"),
    }
    lines.append(f"Treatment: {words[decision.treatment]}.")
    terms = []
    if decision.revenue_share:
        terms.append(f"{decision.revenue_share:.0%} of the sale price goes to the US government")
    if decision.volume_cap_vs_home is not None:
        terms.append(f"shipments capped at {decision.volume_cap_vs_home:.0%} of the volume sold "
                     "to home (US) customers")
    if decision.cap_h100e:
        terms.append(f"country cap of {decision.cap_h100e:,.0f} H100e (TPP / 15,832) over "
                     f"{decision.cap_months} months")
    if decision.exemption_h100e_per_customer_year:
        terms.append(f"orders up to {decision.exemption_h100e_per_customer_year:,.0f} H100e per "
                     "customer per year exempt")
    if decision.condition:
        terms.append(decision.condition)
    if terms:
        lines.append("Conditions: " + "; ".join(terms) + ".")
    lines.append(f"Remote access (renting foreign clouds) for this destination: "
                 f"{'open' if remote_access_open(group, regime, rules) else 'CLOSED'}; "
                 f"HBM exports to it: "
                 f"{'controlled' if hbm_controlled(group, regime, rules) else 'not controlled'}.")
    return {"decision": decision, "lines": lines,
            "sources": {rid: rules.sources.get(rules[rid].source, rules[rid].source)
                        for rid in regime}}


def destination_group(name: str, rules: RuleBook, nations: dict | None = None
                      ) -> tuple[str, str]:
    """(group, display name) for a country, a scenario nation id, or a group id."""
    key = name.strip().lower()
    for group in rules.groups:
        if key == group.lower():
            return group, f"destination group {group}"
    for nation_id, nation in (nations or {}).items():
        if key in (nation_id.lower(), nation.name.lower()):
            return nation.controls_group, f"{nation.name}"
    if key in rules.countries:
        return rules.countries[key], name.strip()
    known = sorted(set(rules.countries) | set(rules.groups) | set(nations or {}))
    raise UnknownNameError("destination", name, known)
