"""No module of `dopr_robot` depends on being imported after another: each imports alone, and the
static graph of module-level imports has no cycle (issue 28).

A cycle that works today works only for the import orders someone happened to try; the first
user who imports the other end first gets a partially initialised module. The graph test reads
the source with `ast`, so it also catches a cycle that no import order here happens to trip.
Imports inside functions are deferred by design and not counted; neither are those under
`if TYPE_CHECKING:`, which never run.
"""

from __future__ import annotations

import ast
import graphlib
import subprocess
import sys
from pathlib import Path

PACKAGE = "dopr_robot"
ROOT = Path(__file__).resolve().parents[1] / PACKAGE


def module_files() -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its own name)."""
    modules = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _base(module: str, path: Path, node: ast.ImportFrom) -> str:
    """The absolute module a `from ... import` names (relative levels resolved)."""
    if not node.level:
        return node.module or ""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for _ in range(node.level - 1):
        package = package.rpartition(".")[0]
    return f"{package}.{node.module}" if node.module else package


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _module_level_imports(body: list[ast.stmt]):
    """Import statements that run when the module is imported: top level, and inside top-level
    `if`/`try`/`with` and class bodies, but not inside functions."""
    for node in body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If):
            if not _is_type_checking(node):
                yield from _module_level_imports(node.body)
            yield from _module_level_imports(node.orelse)
        elif isinstance(node, ast.Try):
            for block in (node.body, node.orelse, node.finalbody):
                yield from _module_level_imports(block)
            for handler in node.handlers:
                yield from _module_level_imports(handler.body)
        elif isinstance(node, ast.With | ast.ClassDef):
            yield from _module_level_imports(node.body)


def import_graph() -> dict[str, set[str]]:
    """module -> the package modules it imports at module level. `from a import b` counts as an
    import of `a.b` when that is a module, else of `a`."""
    modules = module_files()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for module, path in modules.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in _module_level_imports(tree.body):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = _base(module, path, node)
                targets = [
                    f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base
                    for a in node.names
                ]
            graph[module] |= {t for t in targets if t in modules and t != module}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """A cycle of the graph (each module imports the next), or [] when there is none; the
    standard library's topological sort finds it."""
    try:
        list(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as error:
        return error.args[1]
    return []


def test_the_graph_finds_a_cycle_it_is_shown():
    """The detector itself: a planted two-module cycle is found, a chain is not."""
    assert sorted(set(find_cycle({"a": {"b"}, "b": {"a"}, "c": {"a"}}))) == ["a", "b"]
    assert find_cycle({"a": {"b"}, "b": set()}) == []


def test_relative_imports_resolve_to_package_modules():
    graph = import_graph()
    assert "dopr_robot.envs.adapter" in graph["dopr_robot.envs.gym_adapter"]
    assert "dopr_robot.errors" in graph["dopr_robot.envs.adapter"]


def test_no_module_level_import_cycle():
    cycle = find_cycle(import_graph())
    assert cycle == [], f"modules that import each other in a circle: {' -> '.join(cycle)}"


#: imports every module named on the command line, each as the first package module imported:
#: the package's modules are dropped from sys.modules between them (third-party ones stay, so
#: torch loads once per process); prints the modules that failed, with the error
ALONE = """
import importlib, sys, traceback
failed = []
for name in sys.argv[1:]:
    for loaded in [m for m in sys.modules if m == "dopr_robot" or m.startswith("dopr_robot.")]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except Exception:
        failed.append(name + ": " + traceback.format_exc(limit=-3))
print("\\n".join(failed))
sys.exit(1 if failed else 0)
"""


def test_every_module_imports_alone_in_a_fresh_interpreter():
    names = sorted(module_files())
    batches = [names[i::2] for i in range(2)]  # two interpreters, run side by side
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", ALONE, *batch],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=ROOT.parent,
        )
        for batch in batches
    ]
    reports = [process.communicate(timeout=240)[0] for process in processes]
    assert all(p.returncode == 0 for p in processes), "\n".join(reports)
