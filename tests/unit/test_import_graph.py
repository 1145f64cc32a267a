"""The package's import graph: dependencies point one way, with no circles.

Every ``import`` and ``from … import`` of an ``outlast`` module anywhere in a module counts (a lazy
import inside a function is a dependency too), except those under ``if TYPE_CHECKING:``. The one
circle allowed is the client's type-only one, which is not counted for that reason.
"""

from __future__ import annotations

import ast
from pathlib import Path

import outlast

PACKAGE = Path(outlast.__file__).parent


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _type_checking_lines(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def _imports(path: Path, name: str, modules: set[str]) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    skip = _type_checking_lines(tree)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skip:
            continue
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        for target in targets:
            # The longest module name the target starts with (``a.b.c`` → module ``a.b``).
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_graph() -> dict[str, set[str]]:
    paths = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    modules = set(paths)
    graph = {name: _imports(path, name, modules) for name, path in paths.items()}
    # A package's __init__ re-exporting its modules is not a dependency of those modules on it.
    for name, deps in graph.items():
        deps.difference_update(
            p for p in list(deps) if name.startswith(p + ".") and paths[p].name == "__init__.py"
        )
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for dep in graph.get(node, ()):
            if dep not in index:
                visit(dep)
                low[node] = min(low[node], low[dep])
            elif dep in on_stack:
                low[node] = min(low[node], index[dep])
        if low[node] == index[node]:
            component: list[str] = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_package_has_no_import_circles() -> None:
    assert cycles(import_graph()) == []


def test_the_agent_interface_is_a_leaf() -> None:
    graph = import_graph()
    assert graph["outlast.agents.base"] <= {"outlast.protocol.outputs"}


def test_the_transports_are_siblings_under_the_composition_root() -> None:
    graph = import_graph()
    http = {m for m in graph if m.startswith("outlast.http")}
    a2a = {m for m in graph if m.startswith("outlast.a2a")}
    assert not any(graph[m] & a2a for m in http), "http imports a2a"
    assert not any(graph[m] & http for m in a2a), "a2a imports http"
    importers = {m for m, deps in graph.items() if "outlast.server" in deps}
    assert importers <= {"outlast.cli"}, "only the command line starts the composition root"


def test_the_engine_and_the_store_know_no_transport() -> None:
    graph = import_graph()
    below = {
        m
        for m in graph
        if m.startswith(("outlast.engine", "outlast.store", "outlast.protocol", "outlast.agents"))
    }
    transports = ("outlast.http", "outlast.a2a", "outlast.server", "outlast.cli", "outlast.client")
    offending = {m: sorted(d for d in graph[m] if d.startswith(transports)) for m in below}
    assert {m: d for m, d in offending.items() if d} == {}


def test_the_circle_finder_finds_circles() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert cycles(graph) == [["a", "b", "c"]]
