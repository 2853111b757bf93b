#!/usr/bin/env python
"""Generate every figure the README (and docs/model.md) quotes, into marked blocks.

A block is the text between `<!-- figures:NAME -->` and `<!-- /figures:NAME -->` (on one line
or over several). Each NAME has a generator below; running the script rewrites every block of
README.md and docs/model.md, and nothing else, so it is idempotent.

Two kinds of figures:
- deterministic ones (model outputs with a fixed seed, CLI outputs, the schema's parameter
  table) are recomputed on every run;
- machine-dependent ones (timings) are measured only with `--measure` and recorded, with the
  machine, the date and the command that produced each, in docs/figures.json; every other run
  renders them from that file.

usage:
  python scripts/readme_figures.py            rewrite the blocks
  python scripts/readme_figures.py --check    exit 1 with a diff when a file differs
  python scripts/readme_figures.py --measure [quickstart model montecarlo]
                                              measure timings, record them, rewrite the blocks
"""

from __future__ import annotations

import argparse
import datetime as dt
import difflib
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import textwrap
import time
import typing
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
FILES = [ROOT / "README.md", ROOT / "docs" / "model.md"]
FIGURES_JSON = ROOT / "docs" / "figures.json"
BLOCK = re.compile(r"<!-- figures:(?P<name>[\w-]+) -->(?P<body>.*?)<!-- /figures:(?P=name) -->",
                   re.S)

#: The README's compare example: scenarios, dates, seed.
COMPARE = (("history", "no-controls", "cloud-loophole-closed"), ("2024-12", "2026-06"), 0)
#: The console examples: the command, and how many lines of its output the README shows.
CONSOLE = {"controls-h20": (["controls", "h20", "--destination", "China", "--date", "2024-06"],
                            None),
           "cost-gpt3": (["cost", "training", "--model", "gpt-3"], 5)}
#: Width of generated prose lines [chars].
PROSE_WIDTH = 96
#: Console lines longer than this are cut (with " ...") to keep the README readable [chars].
CONSOLE_WIDTH = 100


def _cli_output(args: list[str]) -> str:
    from click.testing import CliRunner

    from market.cli import cli

    result = CliRunner().invoke(cli, args)
    if result.exit_code != 0:
        raise SystemExit(f"gpumarket {' '.join(args)} failed: {result.output}")
    return result.output


def _console(name: str) -> str:
    args, keep = CONSOLE[name]
    lines = _cli_output(args).splitlines()
    if name == "controls-h20":      # up to the treatment: the sources follow at length
        keep = next(i for i, line in enumerate(lines) if line.startswith("Treatment:")) + 1
    shown = [line if len(line) <= CONSOLE_WIDTH
             else line[:CONSOLE_WIDTH - 4].rsplit(" ", 1)[0] + " ..." for line in lines[:keep]]
    if keep is not None and keep < len(lines):
        shown.append("  ...")
    return "\n```console\n$ gpumarket " + " ".join(args) + "\n" + "\n".join(shown) + "\n```\n"


# ------------------------------------------------------------------- deterministic ---

def _compare_frames() -> dict:
    from market.outputs import run_tables
    from market.summary import comparison
    from scenarios.loader import load_scenario

    names, dates, seed = COMPARE
    frames = {n: run_tables(load_scenario(n).scenario, seed) for n in names}
    return comparison(frames, list(dates))


def compare_example(cache: dict) -> str:
    """The compare paragraph's numbers, from the same runs `gpumarket compare` makes."""
    if "compare" not in cache:
        cache["compare"] = _compare_frames()
    table = cache["compare"]
    names, (d1, d2), seed = COMPARE

    def row(label: str, date: str, fmt: Callable[[float], str]) -> str:
        if label not in table.index:
            raise SystemExit(f"compare: no outcome {label!r} (known: {list(table.index)})")
        return " / ".join(fmt(float(table.loc[label, f"{date} {n}"])) for n in names)

    def pct(x: float) -> str:
        return f"{x:.1f}%"

    def k(x: float) -> str:
        return f"{x / 1e3:,.0f}k" if x >= 1e3 else f"{x:,.0f}"

    share = "share of installed H100e China [%]"
    abroad = "compute China's labs rent abroad, this month [H100e]"
    diverted = "chips diverted, trailing 12 months [H100e]"
    text = (f"`gpumarket compare {' '.join(names)} --dates {d1},{d2}` (seed {seed}): "
            f"China's share of installed H100e is {row(share, d1, pct)} at {d1} and "
            f"{row(share, d2, pct)} at {d2}; compute China's labs rent abroad in {d2} is "
            f"{row(abroad, d2, k)} H100e; "
            f"{k(float(table.loc[diverted, f'{d2} {names[0]}']))} H100e of chips were "
            f"diverted to China in the 12 months to {d2} under the real rules.")
    return _prose(text)


def _prose(text: str) -> str:
    """A generated sentence wrapped as the README's prose is."""
    return "\n".join(textwrap.wrap(text, width=PROSE_WIDTH, break_on_hyphens=False))


def json_commands(cache: dict) -> str:
    """Which commands take --json, read from the CLI itself."""
    without = commands_without_json()
    listed = ", ".join(f"`{c}`" for c in without)
    text = (f"Every command except {listed} takes `--json` to print machine-readable output "
            "whose keys carry their units")
    return _prose(text)


def commands_without_json() -> list[str]:
    """The CLI's leaf commands (`cost training`, ...) that have no --json option, sorted."""
    import click

    from market.cli import cli

    out = []

    def walk(group: click.Group, prefix: str) -> None:
        for name, command in sorted(group.commands.items()):
            if isinstance(command, click.Group):
                walk(command, f"{prefix}{name} ")
            elif not any("--json" in p.opts for p in command.params):
                out.append(prefix + name)

    walk(cli, "")
    return out


# ------------------------------------------------------------- the parameter table ---

def _bounds(metadata) -> list[str]:
    """Bounds and patterns of a field's metadata (annotated-types objects or FieldInfos)."""
    out = []
    for meta in metadata:
        for sub in [meta, *getattr(meta, "metadata", ())]:
            for attr, sign in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
                value = getattr(sub, attr, None)
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    shown = f"{int(value):,}" if float(value).is_integer() else f"{value:g}"
                    out.append(f"{sign} {shown}")
            if getattr(sub, "min_length", None):
                out.append(f"at least {sub.min_length}")
    return list(dict.fromkeys(out))


def _is_month(tp) -> bool:
    return any("\\d{4}" in str(getattr(sub, "pattern", "") or "")
               for meta in getattr(tp, "__metadata__", ())
               for sub in [meta, *getattr(meta, "metadata", ())])


def _type_name(tp) -> str:
    """A type annotation in words: `float (> 0)`, `{id = float}`, `month or none`..."""
    import pydantic

    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Annotated:
        if _is_month(tp):
            return "month YYYY-MM"
        inner = _type_name(args[0])
        if any(getattr(m, "discriminator", None) for m in tp.__metadata__):
            return "event (by `kind`, below)"
        bounds = _bounds(tp.__metadata__)
        return inner + (f" ({', '.join(bounds)})" if bounds else "")
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        names = [_type_name(a) for a in args if a is not type(None)]
        text = " or ".join(dict.fromkeys(names))
        return text + " or none" if type(None) in args else text
    if origin is typing.Literal:
        return " | ".join(f"`{a!r}`" if not isinstance(a, str) else f"`{a}`" for a in args)
    if origin is dict:
        return "{" + f"id = {_type_name(args[1])}" + "}" if args else "table"
    if origin is list:
        return f"list of {_type_name(args[0])}" if args else "list"
    if isinstance(tp, type) and issubclass(tp, pydantic.BaseModel):
        return tp.__name__
    return getattr(tp, "__name__", str(tp))


def _type_text(annotation, field) -> str:
    """A field's type and bounds in words."""
    if any(getattr(m, "pattern", None) and "\\d{4}" in m.pattern for m in field.metadata):
        return "month YYYY-MM"
    text = _type_name(annotation)
    bounds = _bounds(field.metadata)
    return text + (f" ({', '.join(bounds)})" if bounds else "")


def _baseline_comments() -> tuple[list[str], dict[str, list[str]]]:
    """The baseline's whole-line comments (in order) and each key's inline comments."""
    inline: dict[str, list[str]] = {}
    blocks, above = [], []
    for line in (ROOT / "scenarios" / "baseline.toml").read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            blocks.append(stripped)
            above.append(stripped)
            continue
        key = re.match(r"^([\w.\"-]+)\s*=", stripped)
        if key and above and not stripped.startswith("["):   # the comment right above a key
            inline.setdefault(key.group(1).strip('"'), []).extend(above)
        above = []
        m = re.match(r"^([\w.\"-]+)\s*=.*?\s#\s*(.+)$", stripped)
        if m:
            inline.setdefault(m.group(1).strip('"'), []).append(m.group(2))
    return blocks, inline


_TAG = re.compile(r"\[(?:CAL [^\]]+|A|D|H|M|L|H/M|L/M|M/H)(?:[:,][^\]]*)?\]")


def _source(cls_name: str, name: str, annotation,
            comments: tuple[list[str], dict[str, list[str]]]) -> str:
    """Where a field's values come from: the tags the baseline's comments give it (a comment
    on its line or right above it, or a comment line naming it before `:` or a tag), else
    [A]; "structure" for a field that names, dates or connects things."""
    words = _type_name(annotation).replace("Path", "path")
    if words[:1].isupper() or re.search(r"(of|=) [A-Z]", words) or "event" in words:
        return "see below"
    if name in STRUCTURE or words.startswith(("str", "month", "bool", "`", "list of str",
                                               "{id = str")) and "float" not in words:
        return "structure"
    if cls_name in SOURCE_OF_CLASS:
        return SOURCE_OF_CLASS[cls_name]
    blocks, inline = comments
    texts = inline.get(name, []) + [c for c in blocks
                                    if re.search(rf"\b{re.escape(name)}\b:?\s*(\[|:)", c)]
    found = list(dict.fromkeys(t if len(t) < 40 else t.split(":")[0].split(",")[0] + "]"
                               for text in texts for t in _TAG.findall(text)))
    return " ".join(found[:4]) if found else "[A]"


#: Sources of whole classes whose entries carry their own.
SOURCE_OF_CLASS = {"Distribution": "each entry's `rationale`",
                   "Path": "the field that holds the path",
                   "Lever": "each entry's `rationale`"}
SOURCE_OF_CLASS.update({c: "each event's `note`" for c in (
    "ExportControlEvent", "DomesticPolicyEvent", "FoundryShockEvent", "HbmShortageEvent",
    "PowerConstraintEvent", "EfficiencyShockEvent", "DemandShockEvent", "RemoteAccessEvent")})


#: Fields that name, date or connect things rather than set a behavioural number.
STRUCTURE = {"name", "description", "extends", "start", "end", "nation", "foundry", "kind",
             "available", "variant_of", "captive_to", "remote_regions", "jurisdiction",
             "controls_group", "vendors", "rival", "impose", "lift", "not_before", "tier",
             "date", "note", "rule", "issuer", "chip", "via", "destinations", "rules",
             "rationale", "dist", "values", "rationing", "products", "precision"}
#: Meanings of the fields whose schema gives no description.
MEANING = {
    "Scenario.name": "scenario name (a plain identifier)", "Scenario.description": "one line",
    "Scenario.start": "first month of the run", "Scenario.end": "last month of the run",
    "Scenario.nations": "nations, which are also the GPU-hour regions",
    "Scenario.foundries": "foundries", "Scenario.vendors": "chip vendors",
    "Scenario.clouds": "clouds", "Scenario.labs": "named labs",
    "Scenario.long_tail": "the generated smaller labs", "Scenario.market": "market behaviour",
    "Scenario.leakage": "leakage channels", "Scenario.events": "dated events (below)",
    "Scenario.cloud_investment": "how clouds turn expected returns into chip orders",
    "Scenario.uncertain": "uncertainties for Monte Carlo, by field path",
    "AdaptivePolicy.threshold": "level the trigger's reading must exceed (in the trigger's "
                                "unit)",
    "AdaptivePolicy.cooldown_months": "months before a repeating policy may fire again",
    "Foundry.name": "display name", "Foundry.nation": "nation id where it makes",
    "Vendor.name": "display name", "Vendor.nation": "home nation id (its rules bind the "
                                                    "vendor's chips)",
    "Vendor.foundry": "foundry id that makes its chips", "Vendor.products": "its product line",
    "Cloud.name": "display name", "Lab.name": "display name", "Lab.nation": "nation id",
    "LongTail.inference_share": "share of their demand that is serving [fraction]",
    "LongTail.hyperscaler_share": "share of their market demand at hyperscalers at the start "
                                  "[fraction]",
    "Serving.precision": "math precision of the served model's matmuls (bf16 | fp8)",
    "Serving.bandwidth_efficiency": "achieved share of peak memory bandwidth in decode [-]",
    "Serving.compute_efficiency": "achieved share of dense peak FLOP in decode [-]",
    "Serving.memory_usable_share": "share of device memory for weights and KV cache [-]",
    "Serving.chips_per_server": "chips of one server; a replica fills whole servers [chips]",
    "Path.points": "dated values {YYYY-MM = value}, log-linear in between",
    "Path.growth_after_per_year": "growth after the last point [fraction/yr]",
    "Distribution.dist": "distribution", "Distribution.low": "lower bound (truncation)",
    "Distribution.high": "upper bound (truncation)", "Distribution.mode": "mode (triangular)",
    "Distribution.mean": "mean (normal) or median (lognormal)",
    "Distribution.sigma": "standard deviation (of the log, for lognormal)",
    "Distribution.values": "the options (choice)",
    "RemoteAccessEvent.allowed": "whether labs may rent foreign clouds from this date",
    "PowerConstraintEvent.nation": "nation id whose datacenters it hits",
    "DomesticPolicyEvent.nation": "nation id that sets the policy",
    "FoundryShockEvent.foundry": "foundry id hit",
    "Cloud.tier": "price tier it sells in: hyperscaler list prices or neocloud/contract",
    "ExportControlEvent.action": "impose the rule or lift it",
}
_EVENT_FIELDS = {"kind": "event type", "date": "month it happens", "note": "free text for the "
                 "policy log"}


def _schema_classes():
    import pydantic

    import scenarios.schema as schema

    order = ["Scenario", "Nation", "AdaptivePolicy", "Foundry", "Vendor", "Product", "Cloud",
             "Lab", "LongTail", "Market", "CloudInvestment", "Leakage", "Path", "ExportControlEvent",
             "DomesticPolicyEvent", "FoundryShockEvent", "HbmShortageEvent",
             "PowerConstraintEvent", "EfficiencyShockEvent", "DemandShockEvent",
             "RemoteAccessEvent", "Distribution", "Lever"]
    found = {n: c for n, c in vars(schema).items() if isinstance(c, type)
             and issubclass(c, pydantic.BaseModel) and c.__module__ == schema.__name__
             and not n.startswith("_")}
    missing = set(found) - set(order)
    return [found[n] for n in order if n in found] + [found[n] for n in sorted(missing)]


#: Where each class sits in a scenario file.
_WHERE = {"Scenario": "top level", "Nation": "[nations.ID]", "AdaptivePolicy":
          "[[nations.ID.adaptive]]", "Foundry": "[foundries.ID]", "Vendor": "[vendors.ID]",
          "Product": "vendors.ID.products = [{...}]", "Cloud": "[clouds.ID]", "Lab": "[labs.ID]",
          "LongTail": "[long_tail]", "Market": "[market]", "Leakage": "[leakage]",
          "CloudInvestment": "[cloud_investment]",
          "Path": "a dated path, e.g. `{ points = { \"2022-01\" = 1.0 }, "
                  "growth_after_per_year = 0.3 }`",
          "Distribution": "[uncertain.\"PATH\"]", "Lever": "[levers.\"PATH\"]"}


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def parameter_table(cache: dict) -> str:
    """One table per schema class: field, type and bounds, default, meaning, source."""
    import pydantic
    from pydantic_core import PydanticUndefined

    comments = _baseline_comments()
    out = []
    for cls in _schema_classes():
        where = _WHERE.get(cls.__name__, "[[events]] with kind = \"" + str(
            typing.get_args(cls.model_fields["kind"].annotation)[0]) + "\""
            if "kind" in cls.model_fields else cls.__name__)
        doc = " ".join((cls.__doc__ or "").split("\n\n")[0].split())
        out += ["", f"### {cls.__name__}", "", f"{where}." + (f" {doc}" if doc else ""), "",
                "| field | type (bounds) | default | meaning [unit] | source |",
                "| --- | --- | --- | --- | --- |"]
        for name, field in cls.model_fields.items():
            if field.default is not PydanticUndefined:
                default = f"`{field.default!r}`" if field.default is not None else "none"
            elif field.default_factory is not None:
                made = field.default_factory()
                default = "the defaults below" if isinstance(made, pydantic.BaseModel) \
                    else f"`{made!r}`"
            else:
                default = "required"
            meaning = field.description or MEANING.get(f"{cls.__name__}.{name}") or (
                _EVENT_FIELDS.get(name, "") if "kind" in cls.model_fields else "")
            if not meaning:
                raise SystemExit(f"scenarios/schema.py: {cls.__name__}.{name} has no "
                                 "description: add one (or a MEANING entry here)")
            out.append(f"| `{name}` | {_cell(_type_text(field.annotation, field))} | "
                       f"{_cell(default)} | {_cell(meaning)} | "
                       f"{_cell(_source(cls.__name__, name, field.annotation, comments))} |")
    return "\n" + "\n".join(out[1:]) + "\n"


# --------------------------------------------------------------- measured figures ---

def _record(measure: str) -> dict:
    figures = json.loads(FIGURES_JSON.read_text(encoding="utf-8"))
    if measure not in figures["measurements"]:
        raise SystemExit(f"{FIGURES_JSON}: no measurement {measure!r}; run --measure")
    return figures["measurements"][measure]


def quickstart_time(cache: dict) -> str:
    return f"about {_record('quickstart')['value']['run_baseline_wall_s']:.1f} s"


def _si(x: float) -> str:
    """1,234,567 -> 1.23M; 39,100 -> 39.1k; 329,000 -> 329k."""
    if x >= 1e6:
        return f"{x / 1e6:.2f}M"
    return f"{x / 1e3:.1f}k" if x < 1e5 else f"{x / 1e3:.0f}k"


def model_benchmark(cache: dict) -> str:
    r = _record("model")
    rows = ["| labs | gpumarket agent-months/s | ms/month | ref agent-steps/s | ratio | "
            "lean agent-steps/s | ratio |", "|---:|---:|---:|---:|---:|---:|---:|"]
    for row in r["value"]["rows"]:
        rows.append(f"| {row['labs']:,} | {_si(row['agent_months_per_s'])} | "
                    f"{row['ms_per_month']:.1f} | {_si(row['ref_agent_steps_per_s'])} | "
                    f"{row['ratio']:.2f} | {_si(row['lean_agent_steps_per_s'])} | "
                    f"{row['lean_ratio']:.2f} |")
    load = r.get("load_average_1min")
    busy = "" if load is None else (
        f"; load average {load:.1f} when it started, so other work shared the cores"
        if load > 1.0 else f"; load average {load:.1f} when it started")
    head = (f"Measured on {r['machine']}, {r['date']} (`{r['produced_by']}`, median of "
            f"{r['value']['repeats']}{busy}):")
    return ("\n" + "\n".join(textwrap.wrap(head, width=PROSE_WIDTH, break_on_hyphens=False))
            + "\n\n" + "\n".join(rows) + "\n\n"
            f"A 108-month baseline run takes about {r['value']['baseline_run_s']:.2f} s of "
            "model time.\n")


def montecarlo_scaling(cache: dict) -> str:
    v = _record("montecarlo")["value"]
    lo, hi = v["overhead_ms_per_task"]
    mem_lo, mem_hi = v["worker_peak_mb"]
    text = (f"1 worker {v['rate_1_runs_per_s']:.2f} runs/s, 2 workers "
            f"{v['rate_2_runs_per_s']:.2f} runs/s (parallel efficiency {v['efficiency_2']:.0%}), "
            f"{v['task_s']:.2f} s per run inside a task (model, tables, Parquet encoding and "
            f"write), {lo:.0f}-{hi:.0f} ms of scheduler and transfer overhead per task, worker "
            f"peak memory {mem_lo:.0f}-{mem_hi:.0f} MB")
    return _prose(text)


def montecarlo_1000(cache: dict) -> str:
    v = _record("montecarlo_1000")["value"]
    return (f"{v['wall_s']:.1f} s ({v['runs_s']:.1f} s of runs, the rest\n"
            "cluster start-up and the summary)")


def viz_step_time(cache: dict) -> str:
    lo, hi = _record("viz_step")["value"]["step_render_s"]
    return f"{lo:.3f}-{hi:.3f} s"


def viz_run_to_end(cache: dict) -> str:
    lo, hi = _record("viz_step")["value"]["run_to_end_s"]
    return f"{lo:.2f}-{hi:.2f} s"


GENERATORS: dict[str, Callable[[dict], str]] = {
    "compare": compare_example,
    "json-commands": json_commands,
    "parameters": parameter_table,
    "controls-h20": lambda cache: _console("controls-h20"),
    "cost-gpt3": lambda cache: _console("cost-gpt3"),
    "quickstart-time": quickstart_time,
    "bench-model": model_benchmark,
    "montecarlo-scaling": montecarlo_scaling,
    "montecarlo-1000": montecarlo_1000,
    "viz-step": viz_step_time,
    "viz-run-to-end": viz_run_to_end,
}


def render(text: str, cache: dict) -> str:
    """The text with every block regenerated."""
    def fill(m: re.Match) -> str:
        name = m.group("name")
        if name not in GENERATORS:
            raise SystemExit(f"unknown figures block {name!r}; known: {', '.join(GENERATORS)}")
        return f"<!-- figures:{name} -->{GENERATORS[name](cache)}<!-- /figures:{name} -->"

    return BLOCK.sub(fill, text)


# ---------------------------------------------------------------------- measuring ---

def _machine() -> str:
    cores = os.cpu_count()
    return f"a {cores}-core {platform.machine()} machine, Python {platform.python_version()}"


def _gpumarket() -> list[str]:
    """The console script beside this interpreter (what a user types), else the module."""
    script = Path(sys.executable).parent / "gpumarket"
    return [str(script)] if script.exists() else [sys.executable, "-m", "market.cli"]


def _measure_quickstart() -> dict:
    times = []
    for _ in range(3):
        start = time.perf_counter()
        subprocess.run([*_gpumarket(), "run", "baseline", "--quiet"], cwd=ROOT, check=True)
        times.append(time.perf_counter() - start)
    return {"run_baseline_wall_s": statistics.median(times), "runs": len(times)}


def _measure_model() -> dict:
    from market.outputs import run_tables
    from scenarios.loader import load_scenario

    repeats = 3
    out = subprocess.run([sys.executable, "benchmarks/bench_model.py", "--repeats",
                          str(repeats)], cwd=ROOT, check=True, capture_output=True,
                         text=True).stdout
    rows = []
    for line in out.splitlines()[1:]:
        labs, _agents, ours, ms, ref, ratio, lean, lean_ratio = line.split()
        rows.append({"labs": int(labs), "agent_months_per_s": float(ours.replace(",", "")),
                     "ms_per_month": float(ms),
                     "ref_agent_steps_per_s": float(ref.replace(",", "")),
                     "ratio": float(ratio), "lean_agent_steps_per_s": float(lean.replace(",", "")),
                     "lean_ratio": float(lean_ratio)})
    scenario = load_scenario("baseline").scenario
    times = []
    for seed in range(repeats):
        start = time.perf_counter()
        run_tables(scenario, seed)
        times.append(time.perf_counter() - start)
    return {"rows": rows, "repeats": repeats, "baseline_run_s": statistics.median(times)}


def _measure_montecarlo() -> dict:
    out = subprocess.run([sys.executable, "benchmarks/bench_montecarlo.py", "--runs", "200"],
                         cwd=ROOT, check=True, capture_output=True, text=True).stdout
    rows = {}
    for line in out.splitlines()[1:]:
        cells = line.split()
        if len(cells) == 10 and cells[0].isdigit():
            rows[int(cells[0])] = {"rate": float(cells[3]), "efficiency": cells[4],
                                   "task_s": float(cells[6]), "overhead_ms": 1e3 * float(cells[7]),
                                   "worker_mb": float(cells[8])}
    return {"rate_1_runs_per_s": rows[1]["rate"], "rate_2_runs_per_s": rows[2]["rate"],
            "efficiency_2": float(rows[2]["efficiency"].rstrip("%")) / 100,
            "task_s": rows[1]["task_s"],
            "overhead_ms_per_task": sorted(r["overhead_ms"] for r in rows.values()),
            "worker_peak_mb": sorted(r["worker_mb"] for r in rows.values())}


def _measure_montecarlo_1000() -> dict:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        out = subprocess.run([*_gpumarket(), "montecarlo", "baseline", "--runs", "1000",
                              "--workers", "2", "--out", str(Path(tmp) / "mc")], cwd=tmp,
                             check=True, capture_output=True, text=True).stdout
        wall = time.perf_counter() - start
    ran = re.search(r"(\d+) runs in ([\d.]+) s", out)     # the command's own count of the runs
    if not ran:
        raise SystemExit(f"montecarlo printed no 'N runs in X s' line:\n{out}")
    return {"wall_s": wall, "runs_s": float(ran.group(2))}


MEASURES = {"quickstart": ("gpumarket run baseline --quiet", _measure_quickstart),
            "model": ("python benchmarks/bench_model.py --repeats 3", _measure_model),
            "montecarlo": ("python benchmarks/bench_montecarlo.py --runs 200",
                           _measure_montecarlo),
            "montecarlo_1000": ("gpumarket montecarlo baseline --runs 1000 --workers 2",
                                _measure_montecarlo_1000)}


def measure(which: list[str]) -> None:
    figures = (json.loads(FIGURES_JSON.read_text(encoding="utf-8")) if FIGURES_JSON.exists()
               else {"about": "", "measurements": {}})
    for name in which:
        command, fn = MEASURES[name]
        print(f"measuring {name}: {command}", file=sys.stderr)
        figures["measurements"][name] = {"value": fn(), "produced_by": command,
                                         "machine": _machine(),
                                         "load_average_1min": round(os.getloadavg()[0], 2),
                                         "date": dt.date.today().isoformat()}
    FIGURES_JSON.write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n",
                            encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="exit 1 with a diff when a file differs from its regenerated text")
    parser.add_argument("--measure", nargs="*", choices=sorted(MEASURES), metavar="WHAT",
                        help=f"measure and record timings first ({', '.join(MEASURES)}; "
                             "default: quickstart and model)")
    args = parser.parse_args(argv)
    if args.measure is not None:
        measure(args.measure or ["quickstart", "model"])
    cache: dict = {}
    differs = False
    for path in FILES:
        old = path.read_text(encoding="utf-8")
        new = render(old, cache)
        if new == old:
            continue
        if args.check:
            differs = True
            sys.stdout.writelines(difflib.unified_diff(
                old.splitlines(keepends=True), new.splitlines(keepends=True),
                f"{path.relative_to(ROOT)} (committed)",
                f"{path.relative_to(ROOT)} (regenerated)"))
        else:
            path.write_text(new, encoding="utf-8")
            print(f"rewrote {path.relative_to(ROOT)}", file=sys.stderr)
    if differs:
        print("the figures differ: run python scripts/readme_figures.py", file=sys.stderr)
    return 1 if differs else 0


if __name__ == "__main__":
    sys.exit(main())
