"""The shape of the house, checked: rules about how modules may depend on each other."""
from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def test_no_test_module_imports_a_conftest() -> None:
    # tests/ and tests/e2e/ each have a conftest.py; in one run the module name "conftest" is whichever
    # pytest loaded last, so `from conftest import X` works alone and breaks the whole suite's collection.
    offenders = []
    for path in sorted(TESTS.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [node.module] if isinstance(node, ast.ImportFrom) else (
                [alias.name for alias in node.names] if isinstance(node, ast.Import) else [])
            if "conftest" in names:
                offenders.append(f"{path.relative_to(TESTS)}:{node.lineno}")
    assert offenders == [], f"import shared test helpers from a named module, not conftest: {offenders}"


def test_no_view_imports_another_view() -> None:
    # A view module is one that defines a blueprint; what two views share lives below them (a use-case
    # module, or views/helpers.py and views/lookup.py, which define no routes).
    views = TESTS.parent / "tracker" / "views"
    view_names = {p.stem for p in views.glob("*.py") if "Blueprint(" in p.read_text(encoding="utf-8")}
    assert {"dashboard", "unit", "api", "api_returns"} <= view_names
    offenders = []
    for path in sorted(views.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ImportFrom) or node.level != 1:
                continue
            imported = {node.module} if node.module else {alias.name for alias in node.names}
            if imported & view_names:
                offenders.append(f"{path.name}:{node.lineno} imports {sorted(imported & view_names)}")
    assert offenders == [], f"a view imports another view: {offenders}"


ROOT = TESTS.parent
sys.path.insert(0, str(ROOT / "scripts"))
import import_graph  # noqa: E402  (scripts/ is not a package: the one module that reads the house's imports)

DOC = ROOT / "docs" / "architecture.md"
REASON = "Over 600 lines because"


def test_every_module_is_short_or_says_why_it_is_long() -> None:
    long = {}
    for name, path in import_graph.module_files().items():
        text = path.read_text(encoding="utf-8")
        lines = text.count("\n")
        docstring = ast.get_docstring(ast.parse(text)) or ""
        if lines > 600 and REASON not in docstring:
            long[name] = lines
    assert long == {}, f"split these modules or write '{REASON} …' in their docstring: {long}"


def test_imports_point_down_only() -> None:
    # Deferred imports inside functions count too: a cycle hidden in a function is still a cycle.
    assert import_graph.cycles(import_graph.graph()) == []


def test_cycles_are_found_when_there_are_some() -> None:
    assert import_graph.cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_areas_import_only_the_areas_below_them() -> None:
    assert import_graph.upward(import_graph.graph(), import_graph.areas(DOC)) == []


def test_an_import_from_a_higher_area_is_found() -> None:
    area_of = {"tracker.a": "Bottom", "tracker.b": "Top"}
    assert import_graph.upward({"tracker.a": {"tracker.b"}, "tracker.b": set()}, area_of) == [
        "tracker.a (Bottom) -> tracker.b (Top)"]


def test_the_architecture_page_names_every_module_and_no_other() -> None:
    named = set(re.findall(r"`(tracker/[\w/]+\.py)`", DOC.read_text(encoding="utf-8")))
    existing = {str(path.relative_to(ROOT)) for path in import_graph.module_files().values()}
    assert sorted(existing - named) == [], "modules missing from docs/architecture.md"
    assert sorted(named - existing) == [], "docs/architecture.md names modules that do not exist"


def test_the_picture_is_drawn_from_todays_imports() -> None:
    committed = (ROOT / "docs" / "architecture.dot").read_text(encoding="utf-8")
    assert committed == import_graph.dot(import_graph.graph()), (
        "regenerate: python scripts/import_graph.py --dot > docs/architecture.dot && "
        "python scripts/import_graph.py --svg docs/architecture.svg")
