"""The shape of the house, held as tests: imports run one way, faces hold no SQL, modules stay
small. Read from the source as text (``ast``), so nothing is imported or run.

An import inside a function counts as much as one at the top: a deferred import only hides a
cycle until the day someone imports the other module first.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "digest"
MAX_LINES = 400
#: Query building: what the faces (web/, cli/) must leave to the library. Catching the
#: driver's exceptions or naming the Session type is not a query.
SQL_MODULES = ("sqlalchemy", "sqlalchemy.sql", "sqlalchemy.orm")
SQL_NAMES = {"select", "col", "func", "update", "delete", "insert", "text"}


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> list[tuple[str, list[str]]]:
    """(module, names) for every import statement anywhere in the file, relative ones resolved."""
    out = []
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.extend((alias.name, []) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
            out.append((base, [alias.name for alias in node.names]))
    return out


def _own(target: str) -> str | None:
    """The module of the package that an import of ``target`` loads, if any."""
    while target and target not in MODULES:
        target = target.rpartition(".")[0]
    return target or None


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {name: set() for name in MODULES}
    for name, path in MODULES.items():
        for module, names in _imports(name, path):
            for target in [module, *(f"{module}.{n}" for n in names)]:
                own = _own(target) if target.startswith("digest") else None
                # A module importing its own package's __init__ (for a submodule) is not a loop.
                if own and own != name and not name.startswith(own + "."):
                    graph[name].add(own)
    return graph


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
        for w in sorted(graph[v]):
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


def test_no_import_cycles() -> None:
    assert _cycles(_graph()) == []


def test_the_cycle_finder_sees_a_deferred_import() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]


@pytest.mark.parametrize("face", ["digest.web", "digest.cli"])
def test_faces_build_no_queries(face: str) -> None:
    offenders = []
    for name, path in MODULES.items():
        if not name.startswith(face + "."):
            continue
        for module, names in _imports(name, path):
            if module in SQL_MODULES or (module == "sqlmodel" and SQL_NAMES & set(names)):
                offenders.append(f"{name} imports {module} {names}")
    assert offenders == []


def test_no_module_is_swollen() -> None:
    sizes = {name: len(p.read_text(encoding="utf-8").splitlines()) for name, p in MODULES.items()}
    assert {name: n for name, n in sizes.items() if n >= MAX_LINES} == {}
