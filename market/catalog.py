"""Chip catalog and reference training runs, loaded from package data with a source per field.

The data files (`market/data/chips.toml`, `market/data/training_runs.toml`) hold published
figures only. Everything derived (TPP, performance density, H100-equivalents, hardware price
with server) is computed here, so a new chip is described by its datasheet and nothing else.

Definitions
-----------
TPP (total processing performance, US ECCN 3A090): the maximum over precisions of
    dense TOPS (or TFLOP/s) x bit length of the operation. Bureau of Industry and Security,
    15 CFR 774 Supp. 1, ECCN 3A090 technical note; e.g. H100 989.4 x 16 = 15,830 and
    B200 9,000 dense FP4 x 4 = 36,000 (docs/calibration.md, [CAL 0.2, 2.7]).
Performance density: TPP / applicable die area [TPP/mm^2] (same ECCN note).
H100-equivalent (H100e): dense BF16 FLOP/s relative to the H100 SXM's 989.4 TFLOP/s, the
    unit gpumarket counts compute in. `h100e_tpp` is the TPP-based variant (TPP / H100 TPP)
    that the 2025 AI-diffusion rule used for its country caps (790e6 TPP ~ 49,901 H100).
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal, Mapping

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictStr,
    ValidationError,
    model_validator,
)

from market.errors import DataFileError, UnknownNameError

#: Bit length of each precision whose dense throughput the catalog may hold.
PRECISION_BITS: dict[str, int] = {"fp32": 32, "bf16": 16, "fp8": 8, "int8": 8, "fp4": 4}
#: Catalog field name -> precision.
THROUGHPUT_FIELDS: dict[str, str] = {
    "dense_tflops_fp32": "fp32",
    "dense_tflops_bf16": "bf16",
    "dense_tflops_fp8": "fp8",
    "dense_tops_int8": "int8",
    "dense_tflops_fp4": "fp4",
}
#: H100 SXM dense BF16 throughput [TFLOP/s], the H100-equivalent unit (glennklockwood.com, [H]).
H100_DENSE_BF16_TFLOPS = 989.4
#: H100 SXM TPP: max(989.4 x 16, 1,978.9 FP8 x 8) = 15,831 [TPP]; BIS's cap arithmetic gives
#: 790e6 / 49,901 = 15,831 [CAL 0.2] (docs/calibration.md).
H100_TPP = max(H100_DENSE_BF16_TFLOPS * 16, 1978.9 * 8)

Confidence = Literal["H", "M", "L", "D"]


def _finite_positive(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    if value <= 0:
        raise ValueError("must be positive")
    return value


def _year_month(value: str) -> str:
    parts = value.split("-")
    if (len(parts) != 2 or not all(p.isdigit() for p in parts) or len(parts[0]) != 4
            or not 1 <= int(parts[1]) <= 12):
        raise ValueError("must be a month written YYYY-MM")
    return value


PositiveNumber = Annotated[float, Field(strict=True), AfterValidator(_finite_positive)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Sourced(_Strict):
    """A published number with where it comes from and how far to trust it."""

    value: PositiveNumber
    source: StrictStr
    conf: Confidence
    note: StrictStr | None = None


class SourcedFraction(Sourced):
    @model_validator(mode="after")
    def _at_most_one(self) -> "SourcedFraction":
        if self.value > 1:
            raise ValueError("value must be in (0, 1]")
        return self


class SourcedMonth(_Strict):
    value: Annotated[StrictStr, AfterValidator(_year_month)]
    source: StrictStr
    conf: Confidence
    note: StrictStr | None = None


class SourcedThroughput(Sourced):
    """Dense tensor throughput [TFLOP/s or TOPS]. `dense = true` must be stated explicitly."""

    dense: bool

    @model_validator(mode="after")
    def _dense_only(self) -> "SourcedThroughput":
        if not self.dense:
            raise ValueError(
                "is a sparse figure (dense = false); the catalog holds dense throughput only, "
                "which for 2:4 structured sparsity is half the headline number")
        return self


class _ChipEntry(_Strict):
    name: StrictStr
    vendor: StrictStr
    launch: SourcedMonth
    dense_tflops_fp32: SourcedThroughput | None = None
    dense_tflops_bf16: SourcedThroughput
    dense_tflops_fp8: SourcedThroughput | None = None
    dense_tops_int8: SourcedThroughput | None = None
    dense_tflops_fp4: SourcedThroughput | None = None
    memory_gb: Sourced
    memory_bandwidth_gbps: Sourced
    tdp_w: Sourced
    interconnect_gbps: Sourced
    die_area_mm2: Sourced | None = None
    unit_price_usd: Sourced | None = None
    server_price_multiplier: Sourced
    server_power_multiplier: Sourced
    avg_power_fraction: SourcedFraction


class _ChipFile(_Strict):
    sources: dict[str, StrictStr]
    chips: dict[str, _ChipEntry]


class _RunEntry(_Strict):
    name: StrictStr
    chip: StrictStr
    training_flop: Sourced | None = None
    params: Sourced | None = None
    tokens: Sourced | None = None
    chips: Sourced
    duration_days: Sourced | None = None
    gpu_hours: Sourced | None = None
    mfu: SourcedFraction | None = None
    rental_usd_per_gpu_hour: Sourced | None = None
    operator: Literal["hyperscaler", "other"] = "other"
    note: StrictStr | None = None

    @model_validator(mode="after")
    def _has_compute(self) -> "_RunEntry":
        if self.training_flop is None and (self.params is None or self.tokens is None):
            raise ValueError("give training_flop, or params and tokens")
        return self


class _RunFile(_Strict):
    sources: dict[str, StrictStr]
    runs: dict[str, _RunEntry]


@dataclass(frozen=True)
class Chip:
    """One accelerator with its published specs (units in the field names) and derived metrics."""

    id: str
    name: str
    vendor: str
    launch: str  #: first announcement or shipment month, YYYY-MM
    dense_throughput: Mapping[str, float]  #: precision -> dense TFLOP/s (TOPS for int8)
    memory_gb: float
    memory_bandwidth_gbps: float
    tdp_w: float
    interconnect_gbps: float
    die_area_mm2: float | None
    unit_price_usd: float | None
    server_price_multiplier: float
    server_power_multiplier: float
    avg_power_fraction: float
    sources: Mapping[str, Any] = field(repr=False, compare=False)
    #: field name -> confidence tag of its figure: H primary/official, M reputable estimate,
    #: L weak or conflicting, D derived by arithmetic (chips.toml's `conf`)
    confidence: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)
    #: field name -> the data file's note on its figure (the formula of a derived one)
    notes: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    @property
    def tpp(self) -> float:
        """Total processing performance: max over precisions of dense TOPS x bit length [TPP]."""
        return max(tops * PRECISION_BITS[p] for p, tops in self.dense_throughput.items())

    @property
    def performance_density(self) -> float | None:
        """TPP per mm^2 of die area [TPP/mm^2]; None when the die area is not published."""
        return None if self.die_area_mm2 is None else self.tpp / self.die_area_mm2

    @property
    def dense_bf16_tflops(self) -> float:
        """Dense BF16/FP16 tensor throughput [TFLOP/s]."""
        return self.dense_throughput["bf16"]

    @property
    def peak_flop_per_s(self) -> float:
        """Dense BF16 peak [FLOP/s], the denominator of MFU in the cost core."""
        return self.dense_bf16_tflops * 1e12

    @property
    def h100e(self) -> float:
        """H100-equivalents per chip by dense BF16 throughput [H100e]."""
        return self.dense_bf16_tflops / H100_DENSE_BF16_TFLOPS

    @property
    def h100e_tpp(self) -> float:
        """H100-equivalents per chip by TPP, as the 2025 diffusion rule counted [H100e]."""
        return self.tpp / H100_TPP

    @property
    def hardware_price_usd(self) -> float | None:
        """Acquisition price per chip including its share of the server [USD]; None if unpriced."""
        if self.unit_price_usd is None:
            return None
        return self.unit_price_usd * self.server_price_multiplier

    def source_of(self, field_name: str) -> str:
        """The full source text of one field, for reports."""
        return self.sources[field_name]


@dataclass(frozen=True)
class ReferenceRun:
    """A published frontier training run (units in the field names)."""

    id: str
    name: str
    chip: str
    training_flop: float
    params: float | None
    tokens: float | None
    chips: int
    duration_days: float | None
    gpu_hours: float | None
    mfu: float | None
    rental_usd_per_gpu_hour: float | None
    operator: str
    note: str | None

    @property
    def reported_gpu_hours(self) -> float | None:
        """Chip-hours as published, or chips x duration [chip-h]; None if neither is known."""
        if self.gpu_hours is not None:
            return self.gpu_hours
        if self.duration_days is not None:
            return self.chips * self.duration_days * 24.0
        return None


class Catalog(Mapping[str, Chip]):
    """The chips by id, with lookups that fail with the list of known ids."""

    def __init__(self, chips: dict[str, Chip], path: str):
        self._chips, self.path = chips, path

    def __getitem__(self, key: str) -> Chip:
        return self._chips[key]

    def __iter__(self):
        return iter(self._chips)

    def __len__(self) -> int:
        return len(self._chips)

    def get_chip(self, name: str) -> Chip:
        """Look a chip up by id, case-insensitively; a unique id prefix (`h100`) also works."""
        key = name.strip().lower()
        if key in self._chips:
            return self._chips[key]
        prefixed = [cid for cid in self._chips if cid.startswith(key + "-")]
        if len(prefixed) == 1:
            return self._chips[prefixed[0]]
        raise UnknownNameError("chip", name, list(self._chips))


def _read_toml(path: Path) -> dict:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise DataFileError(f"{path}: file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise DataFileError(f"{path}: TOML syntax error: {exc}") from None


def _validate(model: type[BaseModel], data: dict, path: Path, entry_kind: str, table: str):
    """Validate with pydantic, turning its errors into one line per problem naming file and entry."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            loc = [str(p) for p in err["loc"]]
            if len(loc) >= 2 and loc[0] == table:
                where = f"{entry_kind} {loc[1]!r}"
                if len(loc) > 2:
                    where += f", field {'.'.join(loc[2:])!r}"
            else:
                where = f"field {'.'.join(loc)!r}" if loc else "top level"
            msg = err["msg"].removeprefix("Value error, ")
            found = "" if err["type"] == "missing" else f" (found {err['input']!r})"
            lines.append(f"{path}: {where}: {msg}{found}")
        raise DataFileError("\n".join(lines)) from None


def _check_sources(entries: dict[str, BaseModel], sources: dict[str, str], path: Path,
                   entry_kind: str) -> None:
    lines = []
    for entry_id, entry in entries.items():
        for fname, value in entry:
            src = getattr(value, "source", None)
            if src is not None and src not in sources:
                lines.append(f"{path}: {entry_kind} {entry_id!r}, field {fname!r}: unknown source "
                             f"{src!r}; known: {', '.join(sorted(sources))}")
    if lines:
        raise DataFileError("\n".join(lines))


def _data_path(name: str) -> Path:
    return Path(str(resources.files("market") / "data" / name))


def _sources_by_field(entry: BaseModel, sources: dict[str, str]) -> dict[str, str]:
    return {fname: sources[v.source] for fname, v in entry if getattr(v, "source", None)}


def _confidence_by_field(entry: BaseModel) -> dict[str, str]:
    return {fname: v.conf for fname, v in entry if getattr(v, "conf", None)}


def _notes_by_field(entry: BaseModel) -> dict[str, str]:
    return {fname: v.note for fname, v in entry if getattr(v, "note", None)}


def load_catalog(path: str | Path | None = None) -> Catalog:
    """Load and validate a chip catalog (default: the packaged one).

    Raises `DataFileError` naming the file, chip and field for a missing source, an unknown
    source key, a sparse throughput figure, a negative or non-finite number, or a bad date.
    """
    if path is None:
        return _default_catalog()
    return _load_catalog(Path(path))


@lru_cache(maxsize=1)
def _default_catalog() -> Catalog:
    return _load_catalog(_data_path("chips.toml"))


def _load_catalog(path: Path) -> Catalog:
    parsed = _validate(_ChipFile, _read_toml(path), path, "chip", "chips")
    _check_sources(parsed.chips, parsed.sources, path, "chip")
    chips = {}
    for cid, e in parsed.chips.items():
        throughput = {prec: getattr(e, fname).value for fname, prec in THROUGHPUT_FIELDS.items()
                      if getattr(e, fname) is not None}
        chips[cid] = Chip(
            id=cid, name=e.name, vendor=e.vendor, launch=e.launch.value,
            dense_throughput=throughput,
            memory_gb=e.memory_gb.value, memory_bandwidth_gbps=e.memory_bandwidth_gbps.value,
            tdp_w=e.tdp_w.value, interconnect_gbps=e.interconnect_gbps.value,
            die_area_mm2=e.die_area_mm2.value if e.die_area_mm2 else None,
            unit_price_usd=e.unit_price_usd.value if e.unit_price_usd else None,
            server_price_multiplier=e.server_price_multiplier.value,
            server_power_multiplier=e.server_power_multiplier.value,
            avg_power_fraction=e.avg_power_fraction.value,
            sources=_sources_by_field(e, parsed.sources),
            confidence=_confidence_by_field(e), notes=_notes_by_field(e),
        )
    return Catalog(chips, str(path))


def load_training_runs(path: str | Path | None = None,
                       catalog: Catalog | None = None) -> dict[str, ReferenceRun]:
    """Load the reference training runs, checking each names a chip of the catalog."""
    path = Path(path) if path is not None else _data_path("training_runs.toml")
    catalog = catalog or load_catalog()
    parsed = _validate(_RunFile, _read_toml(path), path, "run", "runs")
    _check_sources(parsed.runs, parsed.sources, path, "run")
    runs = {}
    for rid, e in parsed.runs.items():
        if e.chip not in catalog:
            raise DataFileError(f"{path}: run {rid!r}, field 'chip': unknown chip {e.chip!r}; "
                                f"known: {', '.join(sorted(catalog))}")
        flop = (e.training_flop.value if e.training_flop
                else 6.0 * e.params.value * e.tokens.value)
        opt = lambda s: None if s is None else s.value  # noqa: E731
        runs[rid] = ReferenceRun(
            id=rid, name=e.name, chip=e.chip, training_flop=flop, params=opt(e.params),
            tokens=opt(e.tokens), chips=int(e.chips.value), duration_days=opt(e.duration_days),
            gpu_hours=opt(e.gpu_hours), mfu=opt(e.mfu),
            rental_usd_per_gpu_hour=opt(e.rental_usd_per_gpu_hour), operator=e.operator,
            note=e.note)
    return runs


def get_training_run(name: str) -> ReferenceRun:
    """A reference run by id (case-insensitive), or `UnknownNameError` listing the known ids."""
    runs = load_training_runs()
    key = name.strip().lower()
    if key not in runs:
        raise UnknownNameError("reference model", name, list(runs))
    return runs[key]
