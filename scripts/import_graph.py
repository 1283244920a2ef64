"""The tracker's modules and who imports whom, read from the code with ``ast``; the areas they belong to,
read from docs/architecture.md.

    python scripts/import_graph.py --dot > docs/architecture.dot   # Graphviz source
    python scripts/import_graph.py --svg docs/architecture.svg     # needs Graphviz's ``dot``
    python scripts/import_graph.py --cycles                        # prints cycles, exit 1 if any

tests/test_architecture.py uses ``import_graph`` to keep the house as docs/architecture.md draws it.
"""
from __future__ import annotations

import argparse
import ast
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "tracker"


def module_files(root: Path = ROOT) -> dict[str, Path]:
    """Return ``{"tracker.views.unit": path, ...}`` for every module of the package."""
    found = {}
    for path in sorted((root / PACKAGE).rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".")
    if not is_package:
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports_of(module: str, path: Path, known: Iterable[str], top_level_only: bool = False) -> set[str]:
    """Return the package modules ``module`` imports (``from .x import y`` counts ``.x.y`` when that is a
    module). With ``top_level_only``, imports inside functions (deferred on purpose) are left out."""
    known = set(known)
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    if top_level_only:  # module-level `if TYPE_CHECKING:` and try blocks still count
        nodes = [n for stmt in tree.body for n in ast.walk(stmt) if not isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(module, path.name == "__init__.py", node)
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for target in targets:
            # the longest known module that the target names
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != module and target != PACKAGE:
                found.add(target)
                break
    return found


def graph(root: Path = ROOT, top_level_only: bool = False) -> dict[str, set[str]]:
    files = module_files(root)
    return {name: imports_of(name, path, files, top_level_only) for name, path in files.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Return the strongly connected groups of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    sys.setrecursionlimit(max(10_000, sys.getrecursionlimit()))
    for node in sorted(edges):
        if node not in index:
            visit(node)
    return sorted(groups)


def floors(edges: dict[str, set[str]]) -> dict[str, int]:
    """Return each module's floor: 0 imports nothing of ours, else one above the highest it imports."""
    memo: dict[str, int] = {}

    def floor(node: str, seen: frozenset[str] = frozenset()) -> int:
        if node not in memo:
            below = [floor(n, seen | {node}) for n in edges.get(node, ()) if n not in seen]
            memo[node] = 1 + max(below) if below else 0
        return memo[node]

    return {node: floor(node) for node in edges}


def areas(doc: Path = ROOT / "docs" / "architecture.md") -> dict[str, str]:
    """Return ``{"tracker.rules": "Forms as data", ...}``: each module named under a ``### `` heading of
    the architecture page belongs to that area (the page, not the code, says what belongs together)."""
    found: dict[str, str] = {}
    area = ""
    for line in doc.read_text(encoding="utf-8").splitlines():
        if line.startswith("### "):
            area = line[4:].strip()
        elif area and line.startswith("| `tracker/"):
            path = line.split("`")[1]
            parts = Path(path).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = area
    return found


def upward(edges: dict[str, set[str]], area_of: dict[str, str]) -> list[str]:
    """Return every import from an area to one listed after it on the architecture page (the page lists
    the areas bottom to top), as ``"a (Area) -> b (Other)"``."""
    order = list(dict.fromkeys(area_of.values()))
    return sorted(f"{name} ({area_of[name]}) -> {target} ({area_of[target]})"
                  for name, targets in edges.items() for target in targets
                  if name in area_of and target in area_of
                  and order.index(area_of[target]) > order.index(area_of[name]))


def dot(edges: dict[str, set[str]], area_of: dict[str, str] | None = None) -> str:
    """Graphviz source: a box per area listing its modules, an arrow from an area to each area it imports
    (labelled with the number of module imports), areas ranked by their floor so arrows point down."""
    area_of = areas() if area_of is None else area_of
    area_edges: dict[str, dict[str, int]] = {}
    for name, targets in edges.items():
        here = area_of.get(name, "?")
        for target in targets:
            there = area_of.get(target, "?")
            if there != here:
                area_edges.setdefault(here, {}).setdefault(there, 0)
                area_edges[here][there] += 1
    names = sorted({area_of.get(n, "?") for n in edges})
    ids = {area: f"a{i}" for i, area in enumerate(names)}
    lines = ["digraph tracker {", '  rankdir=TB; nodesep=0.25; ranksep=0.45;',
             '  node [shape=box, style="rounded,filled", fillcolor="#f5f5f5", fontname="Helvetica", fontsize=10];',
             '  edge [color="#5f6b7a", arrowsize=0.6, fontname="Helvetica", fontsize=8, fontcolor="#5f6b7a"];']
    for area in names:
        members = sorted(n.removeprefix(PACKAGE + ".") or PACKAGE for n in edges if area_of.get(n, "?") == area)
        rows = []
        for i in range(0, len(members), 4):
            rows.append(", ".join(members[i:i + 4]))
        label = f"<B>{area}</B><BR/>" + "<BR/>".join(rows)
        lines.append(f'  {ids[area]} [label=<{label}>];')
    for area in names:
        for target, count in sorted(area_edges.get(area, {}).items()):
            width = 0.6 + min(count, 30) / 10
            lines.append(f'  {ids[area]} -> {ids[target]} [label="{count}", penwidth={width:.1f}];')
    lines.append("}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dot", action="store_true", help="print Graphviz source")
    parser.add_argument("--svg", type=Path, help="write an SVG with Graphviz's dot")
    parser.add_argument("--cycles", action="store_true", help="print import cycles; exit 1 if any")
    parser.add_argument("--top-level", action="store_true", help="module-level imports only")
    args = parser.parse_args(argv)
    edges = graph(top_level_only=args.top_level)
    if args.cycles:
        found = cycles(edges)
        for group in found:
            print(" <-> ".join(group))
        return 1 if found else 0
    source = dot(edges)
    if args.svg:
        subprocess.run(["dot", "-Tsvg", "-o", str(args.svg)], input=source, text=True, check=True)
    else:
        sys.stdout.write(source)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
