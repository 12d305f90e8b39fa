"""The packages of fuzz/ form layers: no import cycle between them, imports inside functions
included (a lazy import hides a cycle from Python, not from a reader)."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FUZZ = ROOT / "fuzz"


def _unit(module: str) -> str:
    """fuzz.engine.runner -> engine; fuzz.cli -> cli (a top-level module is its own unit)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def package_imports() -> dict[str, dict[str, list[str]]]:
    """unit -> imported unit -> the files that import it."""
    edges: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for path in FUZZ.rglob("*.py"):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        src = _unit(module)
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
                if node.module == "fuzz":
                    names = [f"fuzz.{a.name}" for a in node.names]
            else:
                continue
            for name in names:
                if name.startswith("fuzz."):
                    dst = _unit(name)
                    if dst != src:
                        edges[src][dst].append(str(path.relative_to(ROOT)))
    return edges


def cycles(edges: dict[str, dict[str, list[str]]]) -> list[list[str]]:
    found: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        for nxt in sorted(edges.get(node, {})):
            if nxt == path[0]:
                found.append(path + [nxt])
            elif nxt not in path and nxt > path[0]:  # each cycle once, from its smallest unit
                visit(nxt, path + [nxt])

    for start in sorted(edges):
        visit(start, [start])
    return found


def test_the_scan_sees_the_imports():
    edges = package_imports()
    assert "history" in edges["engine"] and "history" in edges["oracles"]


def test_no_cycle_between_packages():
    edges = package_imports()
    problems = [" -> ".join(c) + "  (" + "; ".join(
        f"{a}->{b}: {edges[a][b][0]}" for a, b in zip(c, c[1:])) + ")" for c in cycles(edges)]
    assert problems == []


def test_the_cycle_finder_finds_a_cycle():
    edges = {"a": {"b": ["x"]}, "b": {"c": ["y"]}, "c": {"a": ["z"]}}
    assert cycles(edges) == [["a", "b", "c", "a"]]


def test_history_depends_on_nothing_of_the_rig():
    assert set(package_imports().get("history", {})) == set()
