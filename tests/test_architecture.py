"""The shape of the house, checked: rules about how modules may depend on each other."""
from __future__ import annotations

import ast
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
