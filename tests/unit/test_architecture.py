"""The house rules of the code's layout (README "Layout"), checked on the imports themselves.

- Floors: the ground (`schemas`: the contract, the storage schema, the standards and the
  shared runtime) imports nothing of envnet's; the middle floor (`edge`, `aggregator`,
  `simulators`, `deploy`) imports only the ground and, for the simulators, the edge whose
  hardware they stand in for; the roof (`envnet`: the command and the demo) imports anything.
- The edge never imports the simulators: simulated drivers and buses come in through entry
  points (pyproject.toml `[project.entry-points]`).
- No import cycles between modules.
- A package imports another only through what that package offers: its `__all__`.
- The aggregator's root keeps at most 15 modules; its parts are subpackages.

Every import counts, including those inside functions (lazy imports are still dependencies).
"""

from __future__ import annotations

import ast
import importlib
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Final

import pytest

ROOT: Final = Path(__file__).resolve().parents[2]
PACKAGES: Final = ("schemas", "edge", "aggregator", "simulators", "deploy", "envnet")
FLOOR: Final = {
    "schemas": 1,
    "edge": 2,
    "aggregator": 2,
    "simulators": 2,
    "deploy": 2,
    "envnet": 3,
}
# Same-floor imports that are allowed, and why: a simulator implements the edge's driver
# interface and speaks the bytes its drivers read.
SIDEWAYS: Final = {("simulators", "edge")}


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            found[_module_name(path)] = path
    return found


def _imports(path: Path, module: str) -> Iterator[str]:
    tree = ast.parse(path.read_text(), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            yield base
            for alias in node.names:
                yield f"{base}.{alias.name}"


def _resolve(name: str) -> str | None:
    """The envnet module an imported name lives in (a module, or a name inside one)."""
    modules = _modules()
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


@cache
def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for module, path in _modules().items():
        targets = {_resolve(name) for name in _imports(path, module)}
        graph[module] = {t for t in targets if t is not None and t != module}
    return graph


def _top(module: str) -> str:
    return module.partition(".")[0]


def test_no_import_runs_up_a_floor_or_sideways() -> None:
    wrong = []
    for module, targets in _graph().items():
        for target in targets:
            a, b = _top(module), _top(target)
            if a == b or (a, b) in SIDEWAYS:
                continue
            if FLOOR[b] >= FLOOR[a]:
                wrong.append(f"{module} -> {target}")
    assert wrong == []


def _names_simulators(path: Path) -> bool:
    """Does a module import the simulators, or name one of their modules in a string (the
    way a lazy import by name would)?"""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            names = [node.value] if node.value.startswith("simulators.") else []
        else:
            continue
        if any(_top(n) == "simulators" for n in names):
            return True
    return False


def test_the_edge_never_imports_the_simulators() -> None:
    named = [m for m, path in _modules().items() if _top(m) == "edge" and _names_simulators(path)]
    assert named == []


def test_naming_the_simulators_is_found(tmp_path: Path) -> None:
    for source in (
        "import simulators.fake_i2c",
        "from simulators import drivers",
        'TARGET = "simulators.drivers:SimAirDriver"',
    ):
        (tmp_path / "m.py").write_text(source + "\n")
        assert _names_simulators(tmp_path / "m.py"), source
    (tmp_path / "m.py").write_text('"""Drivers of other packages, the simulators among them."""\n')
    assert not _names_simulators(tmp_path / "m.py")


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
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
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _without_packages(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """Edges to a package's __init__ stand for the module that defines the name; a package
    that re-exports its modules is not a cycle with them."""
    packages = {m for m, p in _modules().items() if p.name == "__init__.py"}
    return {m: {t for t in ts if t not in packages} for m, ts in graph.items()}


def test_no_import_cycles() -> None:
    assert _cycles(_without_packages(_graph())) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


@pytest.mark.parametrize("package", PACKAGES)
def test_each_package_says_what_it_offers(package: str) -> None:
    offered = importlib.import_module(package).__all__
    assert offered, f"{package}.__all__ is empty"
    for name in offered:
        assert (ROOT / package / name).is_dir() or (ROOT / package / f"{name}.py").is_file(), (
            f"{package}.__all__ names {name!r}, which is not one of its modules"
        )


def test_packages_use_each_other_only_through_what_they_offer() -> None:
    offered = {p: set(importlib.import_module(p).__all__) for p in PACKAGES}
    wrong = []
    for module, targets in _graph().items():
        for target in targets:
            a, b = _top(module), _top(target)
            if b in (a, target):
                continue
            if target.split(".")[1] not in offered[b]:
                wrong.append(f"{module} -> {target}")
    assert wrong == []


def test_the_aggregator_root_keeps_at_most_15_modules() -> None:
    root = sorted(p.name for p in (ROOT / "aggregator").glob("*.py"))
    assert len(root) <= 15, root
