"""Repository contracts: the README's test command is what CI runs; the package layout holds."""

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    quickstart = text.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```(?:bash|sh)?\n(.*?)```", quickstart, re.S)
    return [line.strip() for block in blocks for line in block.splitlines()
            if line.strip() and not line.strip().startswith("#")]


def test_quickstart_has_exactly_two_commands():
    commands = _readme_commands()
    assert len(commands) == 2, commands
    assert "gpumarket" in commands[0]
    test = commands[1]
    assert "pytest" in test or "python -m pytest" in (ROOT / test.split()[-1]).read_text()


def test_ci_runs_the_readme_test_command_verbatim():
    test_command = _readme_commands()[1]
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert test_command in ci_lines


def test_pyproject_lists_the_top_level_packages():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = meta["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]
    assert packages == ["market", "agents", "scenarios", "analysis"]
    assert meta["project"]["scripts"]["gpumarket"] == "market.cli:main"
    assert {"test", "dev"} <= set(meta["project"]["optional-dependencies"])
