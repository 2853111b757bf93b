"""The README is true: its figures are what the code gives today, its claims about `--json`
match the CLI, and the docs it points to cover the schema (issue 10, "README truth")."""

import json
import re
import subprocess
import sys
from pathlib import Path

import click

from market.cli import cli

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
SCRIPT = ROOT / "scripts" / "readme_figures.py"
FIGURES = ROOT / "docs" / "figures.json"
#: Blocks whose text is rendered from docs/figures.json (timings that depend on the machine).
MEASURED_BLOCKS = {"quickstart-time": "quickstart", "bench-model": "model",
                   "montecarlo-scaling": "montecarlo", "montecarlo-1000": "montecarlo_1000",
                   "viz-step": "viz_step", "viz-run-to-end": "viz_step"}
#: Blocks recomputed from the model and the CLI on every check.
COMPUTED_BLOCKS = {"compare", "controls-h20", "cost-gpt3", "json-commands"}


def _blocks(text: str) -> dict[str, str]:
    return {m.group(1): m.group(2) for m in re.finditer(
        r"<!-- figures:([\w-]+) -->(.*?)<!-- /figures:\1 -->", text, re.S)}


def test_readme_figures_match_what_the_script_generates_now():
    """Reruns the compare example (3 scenarios), the console examples and the parameter table
    and renders the timings from docs/figures.json; any difference fails with the diff."""
    result = subprocess.run([sys.executable, str(SCRIPT), "--check"], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


def test_every_figure_the_readme_quotes_sits_in_a_generated_block():
    blocks = _blocks(README.read_text(encoding="utf-8"))
    assert set(MEASURED_BLOCKS) | COMPUTED_BLOCKS <= set(blocks)
    assert "$ gpumarket cost training --model gpt-3" in blocks["cost-gpt3"]
    assert "$ gpumarket controls h20 --destination China --date 2024-06" in blocks["controls-h20"]
    assert "history no-controls cloud-loophole-closed" in blocks["compare"]
    # the stale 0.5.0 wording is gone
    assert "(about a second)" not in README.read_text(encoding="utf-8")


def test_each_recorded_measurement_names_what_produced_it():
    figures = json.loads(FIGURES.read_text(encoding="utf-8"))["measurements"]
    assert set(MEASURED_BLOCKS.values()) <= set(figures)
    for name, record in figures.items():
        assert record["value"] and record["machine"] and record["date"], name
        command = record["produced_by"]
        scripts = [w for w in command.split() if w.endswith(".py")]
        if scripts:
            assert all((ROOT / s).is_file() for s in scripts), (name, command)
        else:
            assert command.startswith("gpumarket "), (name, command)
            assert command.split()[1] in cli.commands, (name, command)


def test_the_console_examples_are_the_commands_real_output():
    """Independent of the script: each line of the README's console blocks is a line of the
    command's output today (long lines cut with ' ...')."""
    from click.testing import CliRunner

    blocks = _blocks(README.read_text(encoding="utf-8"))
    for name in ("controls-h20", "cost-gpt3"):
        body = blocks[name].strip().removeprefix("```console").removesuffix("```").strip()
        command, *shown = body.splitlines()
        args = command.removeprefix("$ gpumarket ").split()
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 0, result.output
        real = result.output.splitlines()
        for line in shown:
            if line.strip() == "...":
                continue
            if line.endswith(" ..."):
                assert any(r.startswith(line.removesuffix(" ...")) for r in real), (name, line)
            else:
                assert line in real, (name, line)


# --------------------------------------------------------------------------- --json ---

def _leaf_commands(group: click.Group, prefix: str = "") -> dict[str, click.Command]:
    out = {}
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            out.update(_leaf_commands(command, f"{prefix}{name} "))
        else:
            out[prefix + name] = command
    return out


def _readme_commands_without_json() -> set[str]:
    text = README.read_text(encoding="utf-8")
    m = re.search(r"Every\s+command(?:\s+except\s+(.*?))?\s+takes\s+`--json`", text, re.S)
    assert m, "the README says which commands take --json"
    return {" ".join(name.split()) for name in re.findall(r"`([\w\s]+)`", m.group(1) or "")}


def test_the_readme_names_exactly_the_commands_without_json():
    """The README's list of exceptions equals the CLI's, read by click introspection."""
    commands = _leaf_commands(cli)
    without = {name for name, c in commands.items()
               if not any("--json" in p.opts for p in c.params)}
    assert _readme_commands_without_json() == without
    assert "viz" in without, "viz serves a web app: it has no --json"
    # commands that print results in 0.5.0 keep their --json
    for name in ("chips", "controls", "scenarios", "validate", "cost training",
                 "cost inference", "cost cluster"):
        assert name in commands and name not in without, name


def test_commands_with_json_print_json():
    from click.testing import CliRunner

    for args in (["chips", "--json"], ["scenarios", "--json"],
                 ["cost", "training", "--model", "gpt-3", "--json"]):
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 0, result.output
        json.loads(result.output)


# ------------------------------------------------------------------------ docs/model ---

def test_docs_model_lists_every_field_of_the_scenario_schema():
    import pydantic

    import scenarios.schema as schema

    text = (ROOT / "docs" / "model.md").read_text(encoding="utf-8")
    table = _blocks(text)["parameters"]
    sections = re.split(r"^### ", table, flags=re.M)
    by_class = {s.split("\n", 1)[0].strip(): s for s in sections[1:]}
    classes = {n: c for n, c in vars(schema).items() if isinstance(c, type)
               and issubclass(c, pydantic.BaseModel) and c.__module__ == schema.__name__
               and not n.startswith("_")}
    assert len(classes) >= 20
    for name, cls in classes.items():
        assert name in by_class, f"docs/model.md has no table for {name}"
        for field in cls.model_fields:
            row = re.search(rf"^\| `{field}` \|(.*)\|$", by_class[name], re.M)
            assert row, f"docs/model.md: {name}.{field} missing"
            cells = [c.strip() for c in row.group(1).split(" | ")]
            assert all(cells), f"docs/model.md: {name}.{field} has an empty cell: {cells}"


def test_docs_model_walks_the_phases_step_calls_in_order():
    """The month's phases in docs/model.md are the calls of `ComputeMarket.step()`."""
    import inspect

    from market.model import ComputeMarket

    source = inspect.getsource(ComputeMarket.step).split('"""')[-1]
    # self._phase() or [module.]phase(self), in the order step() makes them
    calls = [m.group(1) or m.group(2) for m in re.finditer(
        r"self\.(_\w+)\(\)|(?:\w+\.)?(\w+)\(self\)", source)]
    text = (ROOT / "docs" / "model.md").read_text(encoding="utf-8")
    block = text.split("## One month", 1)[1].split("```")[1]
    listed = [m.split(".")[-1] for m in re.findall(r"^([\w.]+)\(\)", block, re.M)]
    assert listed == calls and len(calls) >= 9


def test_the_readme_names_every_order_kind_and_the_chips_table_columns():
    """The `orders` row lists the `order_kind` values the outputs write, and the `chips`
    section the columns its text table prints (the rest are said to be `--json` only)."""
    from click.testing import CliRunner

    from market.outputs import ORDER_KINDS

    text = README.read_text(encoding="utf-8")
    row = next(line for line in text.splitlines() if line.startswith("| `orders` |"))
    listed = re.search(r"\(`order_kind`: (.*?)\) \|$", row).group(1)
    assert re.findall(r"`(\w+)`", listed) == list(ORDER_KINDS.values())
    header = CliRunner().invoke(cli, ["chips"]).output.splitlines()[0]
    columns = re.split(r"\s{2,}", header.strip())
    section = text.split("### `gpumarket chips")[1].split("\n### ")[0]
    shown = section.split("The text table shows")[1].split("the tag after")[0]
    assert "Only `--json` has" in section
    assert re.findall(r"`([^`]+)`", " ".join(shown.split())) == columns
