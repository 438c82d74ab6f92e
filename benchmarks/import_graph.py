"""The package's import graph against its floors (`solo_equimod.floors`): how many modules, the
imports that run back up (from a lower floor to a higher one, function-level imports included), the
import cycles among module-level imports, and the longest functions.

    python -m benchmarks.import_graph            # solo_equimod/ of this checkout
    python -m benchmarks.import_graph --top 20
"""

from __future__ import annotations

import argparse
import ast
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Graph:
    """Modules by dotted name; edges importer -> imported, each with the line and whether the import
    runs at module level (else inside a function)."""

    modules: dict[str, Path] = field(default_factory=dict)
    edges: list[tuple[str, str, int, bool]] = field(default_factory=list)


def module_name(path: Path, root: Path) -> str:
    """`root/pkg/a/b.py` -> `pkg.a.b`; a package's `__init__.py` is the package itself."""
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported(node: ast.Import | ast.ImportFrom, importer: str, is_package: bool, modules: dict[str, Path]) -> list[str]:
    """The package's modules an import statement loads: `from a import b` is `a.b` when that is a
    module, else `a`; relative imports are resolved against the importer."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names if alias.name in modules]
    base = node.module or ""
    if node.level:
        anchor = importer.split(".")[: len(importer.split(".")) - node.level + (1 if is_package else 0)]
        base = ".".join([*anchor, base] if base else anchor)
    found = [f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in modules]
    if len(found) < len(node.names) and base in modules:
        found.append(base)
    return found


def _walk(node: ast.AST, module_level: bool):
    """(statement, at module level) for every import below `node`; function bodies are not module level."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.Import, ast.ImportFrom)):
            yield child, module_level
        inner = module_level and not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        yield from _walk(child, inner)


def build_graph(root: Path) -> Graph:
    """The import graph of the package folder `root` (imports of other packages left out)."""
    graph = Graph()
    for path in sorted(root.rglob("*.py")):
        graph.modules[module_name(path, root)] = path
    for name, path in graph.modules.items():
        tree = ast.parse(path.read_text(), str(path))
        for node, module_level in _walk(tree, True):
            for target in _imported(node, name, path.name == "__init__.py", graph.modules):
                if target != name:
                    graph.edges.append((name, target, node.lineno, module_level))
    return graph


def upward_imports(graph: Graph, floor_of: Callable[[str], int]) -> list[tuple[str, str, int]]:
    """(importer, imported, line) of every import from a lower floor to a higher one."""
    return [(a, b, line) for a, b, line, _ in graph.edges if floor_of(a) < floor_of(b)]


def cycles(graph: Graph) -> list[list[str]]:
    """The strongly connected components of more than one module among module-level imports (Tarjan)."""
    succ: dict[str, set[str]] = {name: set() for name in graph.modules}
    for a, b, _, module_level in graph.edges:
        if module_level:
            succ[a].add(b)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(succ[v]):
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

    for v in sorted(succ):
        if v not in index:
            visit(v)
    return found


def longest_functions(graph: Graph, top: int) -> list[tuple[str, int]]:
    """(module:Qualified.name, lines) of the `top` longest functions and methods, longest first."""
    sizes: list[tuple[str, int]] = []

    def visit(node: ast.AST, prefix: str, module: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = f"{prefix}{child.name}"
                if not isinstance(child, ast.ClassDef):
                    sizes.append((f"{module}:{name}", child.end_lineno - child.lineno + 1))  # type: ignore[operator]
                visit(child, f"{name}.", module)

    for module, path in graph.modules.items():
        visit(ast.parse(path.read_text(), str(path)), "", module)
    return sorted(sizes, key=lambda item: (-item[1], item[0]))[:top]


def main() -> None:
    from solo_equimod.floors import FLOORS, floor_of

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=REPO / "solo_equimod", help="the package folder")
    parser.add_argument("--top", type=int, default=10, help="how many of the longest functions to list")
    args = parser.parse_args()
    graph = build_graph(args.root)
    up, loops = upward_imports(graph, floor_of), cycles(graph)
    print(f"floors (lowest first): {' < '.join(name for name, _ in FLOORS)}")
    print(f"modules: {len(graph.modules)}")
    print(f"imports: {len(graph.edges)} ({sum(1 for *_, m in graph.edges if m)} at module level)")
    print(f"upward imports: {len(up)}")
    for a, b, line in up:
        print(f"  {a}:{line} -> {b}")
    print(f"cycles (module level): {len(loops)}")
    for loop in loops:
        print(f"  {' <-> '.join(loop)}")
    print(f"longest functions (top {args.top}):")
    for name, lines in longest_functions(graph, args.top):
        print(f"  {lines:4d}  {name}")


if __name__ == "__main__":
    main()
