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
