"""Export-control rules as data, and the classification of a chip for a destination.

A chip's status is computed from its specifications against the thresholds of the rule in
force, never from a list of names, so a new chip or a compliant variant is classified by the
same rule. Rules live in `market/data/controls.toml`, each with its source.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from market.catalog import Chip, _data_path, _read_toml
from market.errors import DataFileError, UnknownNameError
from market.timeline import parse_month

Treatment = Literal["prohibited", "licence", "allowed"]

#: Thresholds a criterion may set, and how to read each from a chip.
THRESHOLDS = {
    "tpp_min": ("TPP", lambda c: c.tpp),
    "performance_density_min": ("performance density [TPP/mm2]",
                                lambda c: c.performance_density),
    "interconnect_gbps_min": ("interconnect [GB/s]", lambda c: c.interconnect_gbps),
    "memory_bandwidth_gbps_min": ("memory bandwidth [GB/s]", lambda c: c.memory_bandwidth_gbps),
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Criterion(_Strict):
    tpp_min: float | None = Field(default=None, gt=0)
    performance_density_min: float | None = Field(default=None, gt=0)
    interconnect_gbps_min: float | None = Field(default=None, gt=0)
    memory_bandwidth_gbps_min: float | None = Field(default=None, gt=0)


class DestinationTreatment(_Strict):
    treatment: Treatment
    approval_probability: float = Field(default=1.0, ge=0, le=1)


class Rule(_Strict):
    name: str
    announced: str
    effective: str
    source: str
    criteria: list[Criterion]
    destinations: dict[str, DestinationTreatment]


class _RuleFile(_Strict):
    sources: dict[str, str]
    rules: dict[str, Rule]


@dataclass(frozen=True)
class Decision:
    """The outcome of classifying one chip for one destination group under one rule."""

    rule_id: str | None
    controlled: bool
    treatment: Treatment
    approval_probability: float
    crossed: tuple[str, ...]  #: the thresholds of the criterion the chip met, in words

    @property
    def shippable_fraction(self) -> float:
        """Expected share of an order that may ship [fraction]."""
        if self.treatment == "prohibited":
            return 0.0
        return self.approval_probability if self.treatment == "licence" else 1.0


ALLOWED = Decision(None, False, "allowed", 1.0, ())


def _criterion_met(chip: Chip, criterion: Criterion) -> tuple[str, ...] | None:
    crossed = []
    for field, (label, read) in THRESHOLDS.items():
        threshold = getattr(criterion, field)
        if threshold is None:
            continue
        value = read(chip)
        if value is None or not value >= threshold:  # unknown die area cannot meet a PD test
            return None
        crossed.append(f"{label} {value:,.4g} >= {threshold:,.4g}")
    return tuple(crossed) if crossed else None


def classify(chip: Chip, destination_group: str, rule_id: str | None,
             rules: dict[str, Rule] | None = None) -> Decision:
    """Decide how `chip` may ship to `destination_group` while `rule_id` is in force."""
    if rule_id is None:
        return ALLOWED
    rules = rules or load_rules()
    if rule_id not in rules:
        raise UnknownNameError("export-control rule", rule_id, list(rules))
    rule = rules[rule_id]
    for criterion in rule.criteria:
        crossed = _criterion_met(chip, criterion)
        if crossed is not None:
            dest = rule.destinations.get(destination_group)
            if dest is None:
                return Decision(rule_id, True, "allowed", 1.0, crossed)
            return Decision(rule_id, True, dest.treatment, dest.approval_probability, crossed)
    return Decision(rule_id, False, "allowed", 1.0, ())


@lru_cache(maxsize=4)
def _load_rules(path: str) -> dict[str, Rule]:
    p = Path(path)
    try:
        parsed = _RuleFile.model_validate(_read_toml(p))
    except ValidationError as exc:
        err = exc.errors()[0]
        raise DataFileError(f"{p}: field {'.'.join(map(str, err['loc']))}: {err['msg']}") from None
    for rid, rule in parsed.rules.items():
        for date in (rule.announced, rule.effective):
            try:
                parse_month(date)
            except ValueError as exc:
                raise DataFileError(f"{p}: rule {rid!r}: {exc}") from None
        if rule.source not in parsed.sources:
            raise DataFileError(f"{p}: rule {rid!r}: unknown source {rule.source!r}")
        if not rule.criteria:
            raise DataFileError(f"{p}: rule {rid!r}: needs at least one criterion")
        for criterion in rule.criteria:
            values = [getattr(criterion, f) for f in THRESHOLDS]
            if all(v is None for v in values) or any(v is not None and not math.isfinite(v)
                                                     for v in values):
                raise DataFileError(f"{p}: rule {rid!r}: each criterion needs finite thresholds")
    return dict(parsed.rules)


def load_rules(path: str | Path | None = None) -> dict[str, Rule]:
    """The export-control rules by id (default: the packaged file)."""
    return _load_rules(str(path or _data_path("controls.toml")))
