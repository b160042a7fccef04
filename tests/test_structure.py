"""The import structure, read with `ast` (nothing is imported): no import cycle in `voxline/`,
and each layer imports nothing from the layers above it.

Every import counts: module level, inside functions, and under `if TYPE_CHECKING:` (a cycle
that only type checkers see is still two modules that know each other; pass a narrow protocol
down instead). `from pkg import name` is an edge to `pkg.name` when that is a module, else to
`pkg`.
"""

from __future__ import annotations

import ast
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Web frameworks and the transports: what a transport-free layer must not know.
WEB = ("flask", "werkzeug", "flask_sock", "simple_websocket")
TRANSPORTS = ("voxline.server", "voxline.realtime")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def package_modules(package: str) -> dict[str, Path]:
    """{dotted name: file} of every module of a top-level package of the checkout."""
    return {module_name(p): p for p in sorted((ROOT / package).rglob("*.py"))}


def imported_names(path: Path, module: str) -> Iterator[tuple[str, int]]:
    """(absolute dotted name, line) of every import in the file, at any depth; `from X import
    a` gives `X.a` (a module, or an attribute of module X: the graph keeps what exists)."""
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node, module, is_package)
            for alias in node.names:
                yield f"{base}.{alias.name}", node.lineno


def _absolute(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    parts = module.split(".")
    # A package's own module is its __init__: level 1 means the package itself.
    keep = len(parts) - node.level + (1 if is_package else 0)
    return ".".join(parts[:keep] + ([node.module] if node.module else []))


def import_graph(package: str = "voxline") -> dict[str, dict[str, int]]:
    """{module: {imported module of the same package: line}}."""
    modules = package_modules(package)
    graph: dict[str, dict[str, int]] = {name: {} for name in modules}
    for name, path in modules.items():
        for target, line in imported_names(path, name):
            resolved = _nearest_module(target, modules)
            if resolved is not None and resolved != name:
                graph[name].setdefault(resolved, line)
    return graph


def _nearest_module(target: str, modules: dict[str, Path]) -> str | None:
    """`target` if it is a module of ours; `pkg` for `pkg.attribute`; None if not ours."""
    if target in modules:
        return target
    parent = target.rpartition(".")[0]
    return parent if parent in modules and f"{parent}." in f"{target}." else None


def cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """One shortest cycle path (first module repeated at the end) per strongly connected
    component of more than one module."""
    found = []
    for component in _components(graph):
        if len(component) > 1:
            start = min(component)
            found.append(_shortest_cycle(graph, start, component))
    return sorted(found)


def _components(graph: dict[str, dict[str, int]]) -> list[set[str]]:
    """Tarjan's strongly connected components (iterative: no recursion limit)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    result: list[set[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, edges = work[-1]
            child = next(edges, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                result.append(component)
    return result


def _shortest_cycle(graph: dict[str, dict[str, int]], start: str, within: set[str]) -> list[str]:
    came_from: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for child in sorted(graph[node]):
            if child == start:
                path = [node]
                while path[-1] != start:
                    path.append(came_from[path[-1]])
                return [*reversed(path), start]
            if child in within and child not in came_from:
                came_from[child] = node
                queue.append(child)
    raise AssertionError(f"no cycle through {start}")


def describe(path: list[str], graph: dict[str, dict[str, int]]) -> str:
    """`a -> b (a.py:12) -> ...` for a cycle path."""
    steps = [path[0]]
    for here, there in zip(path, path[1:], strict=False):
        steps.append(f"{there} (line {graph[here][there]} of {here})")
    return " -> ".join(steps)


@dataclass(frozen=True)
class Layer:
    """Files of one layer and the imports they must not make (name prefixes)."""

    name: str
    files: tuple[str, ...]  # globs relative to the checkout
    forbidden: tuple[str, ...]

    def violations(self) -> list[str]:
        found = set()
        for pattern in self.files:
            for path in sorted(ROOT.glob(pattern)):
                module = module_name(path)
                for target, line in imported_names(path, module):
                    for prefix in self.forbidden:
                        if target == prefix or target.startswith(prefix + "."):
                            found.add(f"{path.relative_to(ROOT)}:{line} imports {target}")
        return sorted(found)


CORE_FORBIDDEN = WEB + TRANSPORTS
LAYERS = [
    Layer("synthesis", ("voxline/synthesis/**/*.py",), CORE_FORBIDDEN),
    Layer("engines", ("voxline/engines/**/*.py",), CORE_FORBIDDEN),
    Layer("audio", ("voxline/audio/**/*.py",), CORE_FORBIDDEN),
    Layer("voices", ("voxline/voices/**/*.py",), CORE_FORBIDDEN),
    Layer("scheduler", ("voxline/scheduler*.py", "voxline/scheduler*/**/*.py"), CORE_FORBIDDEN),
    Layer("tape", ("voxline/tape.py",), CORE_FORBIDDEN),
    # Sessions sit beside the HTTP server, not above it: only the websocket route adapter
    # (in voxline/server/) joins the two.
    Layer("realtime", ("voxline/realtime/**/*.py",), ("voxline.server",)),
    # Installs on an Asterisk host in seconds: HTTP to the server only.
    Layer("telephony", ("telephony/**/*.py",), ("torch", "voxline.server")),
]
# The one place the HTTP door meets sessions.
WEBSOCKET_ADAPTER = "voxline/server/realtime_ws.py"


def test_only_the_websocket_adapter_joins_http_and_sessions():
    others = tuple(str(p.relative_to(ROOT)) for p in sorted(ROOT.glob("voxline/server/**/*.py"))
                   if str(p.relative_to(ROOT)) != WEBSOCKET_ADAPTER)
    layer = Layer("server", others, ("voxline.realtime",))
    assert not layer.violations(), "\n".join(layer.violations())
@pytest.mark.parametrize("layer", LAYERS, ids=[layer.name for layer in LAYERS])
def test_layer_imports_nothing_from_above(layer):
    assert not layer.violations(), "\n".join(layer.violations())


def test_no_import_cycle_in_voxline():
    graph = import_graph("voxline")
    found = cycles(graph)
    groups = [sorted(c) for c in _components(graph) if len(c) > 1]
    assert not found, (
        "import cycles (one path each):\n"
        + "\n".join(describe(c, graph) for c in found)
        + "\nmodules in cycles together:\n"
        + "\n".join(", ".join(g) for g in sorted(groups))
    )


def test_the_graph_sees_every_kind_of_import(tmp_path, monkeypatch):
    """The reader itself: relative, function-level and TYPE_CHECKING imports are edges, and a
    cycle among them is found with its path."""
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("from . import b\n")
    (package / "a.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.sub.b import B\n"
    )
    (package / "sub" / "b.py").write_text("def f():\n    from ..c import C\n")
    (package / "c.py").write_text("import pkg.a\nfrom pkg import sub\n")
    monkeypatch.setattr(f"{__name__}.ROOT", tmp_path)
    graph = import_graph("pkg")
    assert graph["pkg.a"] == {"pkg.sub.b": 3}
    assert graph["pkg.sub.b"] == {"pkg.c": 2}
    assert graph["pkg.c"] == {"pkg.a": 1, "pkg.sub": 2}
    assert graph["pkg.sub"] == {"pkg.sub.b": 1}
    assert cycles(graph) == [["pkg.a", "pkg.sub.b", "pkg.c", "pkg.a"]]
