"""The shape of the code (docs/model.md, "Where each piece lives"), checked on the source: no
import cycle among the package's modules, the dependency direction, and a small orchestrator
(`market/model.py`).

Imports are read with `ast`, module-level and function-level alike (a deferred import still
ties two rooms together).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("market", "agents", "scenarios")
#: What `market` offers the agents: the pure parts and the low room of shared constants.
PURE_MARKET = {"market", "market.costs", "market.catalog", "market.controls", "market.clearing",
               "market.timeline", "market.errors", "market.world"}
PURE_CORE = ("market.costs", "market.catalog", "market.controls", "market.clearing")
PHASES = ("market.chip_trade", "market.gpu_hours", "market.hour_prices", "market.lab_builds",
          "market.power_builds", "market.cloud_orders", "market.policies", "market.collect",
          "market.world")
MAX_MODEL_LINES = 260


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Modules of the packages that `name` imports anywhere in its file."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # `from pkg import mod` imports the module pkg.mod when it is one
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base
                       for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:       # `import a.b.c` of a name inside
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules) | {"analysis"}
    known |= {_module_name(p) for p in (ROOT / "analysis").rglob("*.py")}
    return {name: _imports(name, path, known) for name, path in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in graph:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def _reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for w in graph.get(todo.pop(), ()):
            if w not in seen:
                seen.add(w)
                todo.append(w)
    return seen


def test_the_import_reader_sees_deferred_and_package_imports():
    graph = _graph()
    assert "market.model" in graph["market.outputs"]          # imported inside run_tables
    assert "market.chip_trade" in graph["market.model"]       # `from market import chip_trade`


def test_no_import_cycle_among_the_packages_modules():
    assert _cycles(_graph()) == []


def test_the_pure_core_imports_nothing_from_agents_or_analysis():
    graph = _graph()
    for name in PURE_CORE:
        bad = sorted(m for m in _reachable(graph, name)
                     if m.split(".")[0] in ("agents", "analysis"))
        assert bad == [], f"{name} reaches {bad}"


def test_agents_use_only_markets_pure_parts():
    graph = _graph()
    for name, deps in graph.items():
        if name.split(".")[0] != "agents":
            continue
        bad = sorted(d for d in deps if d.split(".")[0] == "analysis"
                     or (d.split(".")[0] == "market" and d not in PURE_MARKET))
        assert bad == [], f"{name} imports {bad}"


def test_phases_and_the_low_room_never_import_their_caller():
    graph = _graph()
    for name in PHASES:
        assert "market.model" not in _reachable(graph, name), name
    assert not any(d.split(".")[0] == "agents" for d in _reachable(graph, "market.world"))
    importers = sorted(n for n, deps in graph.items() if "market.model" in deps)
    assert all(n == "market.outputs" or n.startswith("market.cli") for n in importers), importers


def test_market_model_is_a_small_orchestrator():
    lines = (ROOT / "market" / "model.py").read_text().count("\n")
    assert lines <= MAX_MODEL_LINES, f"market/model.py has {lines} lines"
