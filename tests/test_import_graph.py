"""The package keeps its floors (`solo_equimod.floors`): no import runs from a lower floor to a higher
one and no two modules import each other at module level. Checked twice: by a naive line scanner
written here, and by `benchmarks/import_graph.py`'s `ast` walk, which must find the same imports; both
are first shown to catch an upward import and a cycle in a small package made for it."""

from __future__ import annotations

import re
from pathlib import Path

from benchmarks import import_graph
from solo_equimod.floors import floor_of
from tests.conftest import REPO

FROM = re.compile(r"^(\s*)from\s+([\w.]+)\s+import\s+(\(?)(.*)$")
IMPORT = re.compile(r"^(\s*)import\s+([\w.]+)")


def naive_edges(root: Path) -> set[tuple[str, str, bool]]:
    """(importer, imported, unindented) read line by line: `from a import b` is `a.b` when a file or
    folder `a/b` exists, else `a`; a parenthesised name list is read up to its `)`."""
    package = root.name

    def exists(dotted: str) -> bool:
        path = root.parent / dotted.replace(".", "/")
        return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()

    edges = set()
    for path in root.rglob("*.py"):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        importer = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        lines = path.read_text().splitlines()
        for i, line in enumerate(lines):
            found: list[tuple[str, str]] = []
            if m := FROM.match(line):
                indent, module, paren, rest = m.groups()
                names = rest
                j = i
                while paren and ")" not in names:
                    j += 1
                    names += lines[j]
                names = names.split("#")[0].strip("() ")
                targets = [f"{module}.{n.split(' as ')[0].strip()}" for n in names.split(",") if n.strip()]
                hits = [t for t in targets if exists(t)]
                found = [(indent, t) for t in hits] + ([(indent, module)] if len(hits) < len(targets) else [])
            elif m := IMPORT.match(line):
                found = [(m.group(1), m.group(2))]
            for indent, target in found:
                if (target == package or target.startswith(f"{package}.")) and exists(target) and target != importer:
                    edges.add((importer, target, indent == ""))
    return edges


def naive_cycle(edges: set[tuple[str, str, bool]]) -> list[str] | None:
    """One cycle among the unindented imports, by depth-first search, or None."""
    succ: dict[str, list[str]] = {}
    for a, b, top in edges:
        if top:
            succ.setdefault(a, []).append(b)
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(v: str, path: list[str]) -> list[str] | None:
        state[v] = 1
        for w in succ.get(v, []):
            if state.get(w) == 1:
                return path[path.index(w):] + [w] if w in path else [v, w]
            if w not in state and (loop := visit(w, [*path, w])):
                return loop
        state[v] = 2
        return None

    for v in sorted(succ):
        if v not in state and (loop := visit(v, [v])):
            return loop
    return None


def _tiny_package(tmp_path: Path) -> Path:
    """low (floor 0) imports high (floor 1) inside a function; a <-> b import each other."""
    root = tmp_path / "tiny"
    root.mkdir()
    (root / "__init__.py").write_text("")
    (root / "high.py").write_text("VALUE = 1\n")
    (root / "low.py").write_text("def f():\n    from tiny.high import VALUE\n    return VALUE\n")
    (root / "a.py").write_text("from tiny import b\n")
    (root / "b.py").write_text("from tiny.a import (\n    x,\n)\n")
    return root


def test_both_checkers_catch_an_upward_import_and_a_cycle(tmp_path: Path) -> None:
    root = _tiny_package(tmp_path)
    floors = {"tiny": 0, "tiny.low": 0, "tiny.a": 0, "tiny.b": 0, "tiny.high": 1}
    graph = import_graph.build_graph(root)
    assert import_graph.upward_imports(graph, floors.__getitem__) == [("tiny.low", "tiny.high", 2)]
    assert import_graph.cycles(graph) == [["tiny.a", "tiny.b"]]
    naive = naive_edges(root)
    assert naive == {("tiny.low", "tiny.high", False), ("tiny.a", "tiny.b", True), ("tiny.b", "tiny.a", True)}
    assert [(a, b) for a, b, _ in naive if floors[a] < floors[b]] == [("tiny.low", "tiny.high")]
    assert sorted(naive_cycle(naive) or []) == ["tiny.a", "tiny.a", "tiny.b"]


def test_no_upward_import_and_no_cycle_in_the_package() -> None:
    root = REPO / "solo_equimod"
    naive = naive_edges(root)
    upward = sorted((a, b) for a, b, _ in naive if floor_of(a) < floor_of(b))
    assert upward == [], upward
    assert naive_cycle(naive) is None
    graph = import_graph.build_graph(root)
    assert {(a, b, top) for a, b, _, top in graph.edges} == naive  # the script sees the same imports
    assert import_graph.upward_imports(graph, floor_of) == [] and import_graph.cycles(graph) == []


def test_every_module_is_on_a_floor() -> None:
    graph = import_graph.build_graph(REPO / "solo_equimod")
    assert len(graph.modules) > 50
    for module in graph.modules:
        floor_of(module)  # a ValueError names a module no floor lists
