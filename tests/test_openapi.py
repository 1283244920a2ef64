"""Issue 13: the JSON API is described by an OpenAPI 3.1 document, and fuzzed against it.

The schemathesis run sends bounded, generated requests to every operation with a valid token of each
role (and none): no answer may be a 500, and every answer must match the document (status code,
content type, headers, body schema).
"""
from __future__ import annotations

import re
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tracker.api_spec import document

EXAMPLES = 15  # per operation and role: bounded, so CI stays within its time


def _on_the_demo(case: Any) -> bool:
    """Point ``case`` at the demo plan, unit 219 and version 1; False when it has no such parameter."""
    demo = {"plan_code": "bacgiang-2024", "unit_code": "219", "number": 1, "n": 1}
    names = set(case.path_parameters or {}) & set(demo)
    for name in names:
        case.path_parameters[name] = demo[name]
    return bool(names)


def _openapi_path(rule: str) -> str:
    return re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule)


def test_every_api_route_of_the_app_is_in_the_document(app):
    paths = document()["paths"]
    missing = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1"):
            continue
        path = _openapi_path(rule.rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            if method.lower() not in paths.get(path, {}):
                missing.append(f"{method} {path}")
    assert not missing, f"document these routes in tracker/api_spec.py: {missing}"
    # And nothing is documented that the app does not serve.
    served = {_openapi_path(r.rule) for r in app.url_map.iter_rules()}
    assert set(paths) <= served, set(paths) - served


def test_the_document_is_served_and_is_valid_openapi_3_1(client):
    answer = client.get("/api/v1/openapi.json")
    assert answer.status_code == 200
    body = answer.get_json()
    assert body["openapi"] == "3.1.0"
    assert body == document()
    schema = schemathesis.openapi.from_dict(body)
    operations = [op for op in schema.get_all_operations()]
    assert len(operations) == sum(len(methods) for methods in body["paths"].values())
    for path in body["paths"].values():
        for operation in path.values():
            assert "200" in operation["responses"]


@pytest.fixture
def role_headers(token_for: Any) -> list[dict[str, str]]:
    """Headers of a valid token of each role, and of no token at all."""
    tokens = [token_for("admin"), token_for("staff"), token_for("unit", "219")]
    return [{"Authorization": f"Bearer {token}"} for token in tokens] + [{}]


def test_the_api_answers_as_documented(app: Any, role_headers: list[dict[str, str]]) -> None:
    # Driven by hand (not the pytest plugin): one Hypothesis run per operation, every role per example.
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    tried = []
    for result in schema.get_all_operations():
        operation = result.ok()

        @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def run(case: Any) -> None:
            for headers in role_headers:
                case.call_and_validate(headers=headers)
            if not _on_the_demo(case):
                return
            # Generated codes almost never name a plan or unit, so nearly every answer above is a 404:
            # the same case again on the demo plan and unit reaches the handlers. Only "schema-valid data
            # is accepted" is left out there: an upload's content is checked beyond its schema (415, 422).
            for headers in role_headers:
                case.call_and_validate(headers=headers, excluded_checks=[positive_data_acceptance])

        run()
        tried.append(operation.label)
    documented = {f"{method.upper()} {path}" for path, methods in document()["paths"].items() for method in methods}
    assert documented - {"GET /api/v1/openapi.json"} <= set(tried), (documented, tried)


def test_the_fuzzing_catches_an_answer_that_does_not_match(app, role_headers, monkeypatch):
    # The checks above can fail: with one more required field in the document, the real answer no longer fits.
    from tracker import api_spec

    monkeypatch.setitem(api_spec.SCHEMAS["Plan"], "required", [*api_spec.SCHEMAS["Plan"]["required"], "owner"])
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    operation = schema["/api/v1/plans"]["GET"]
    case = operation.Case()
    from schemathesis.core.failures import FailureGroup

    with pytest.raises(FailureGroup) as info:
        case.call_and_validate(headers=role_headers[0])
    assert any("violates schema" in str(failure) for failure in info.value.exceptions)


def test_every_api_route_and_command_is_in_the_readme(app):
    """The README's tables are where staff and integrators look first: every command the app registers and
    every API route is named there (the document itself and the blank form's older name are named in prose)."""
    from pathlib import Path

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    assert not [c for c in app.cli.commands if f"flask --app tracker {c}" not in readme]
    api = readme.split("## API")[1].split("\n## ")[0]
    named = {re.sub(r"<[^>]+>", "<>", m) for m in re.findall(r"`(?:GET|POST|PUT|PATCH|DELETE) ([^`\[ ?]+)", api)}
    in_prose = {"/openapi.json", "/plans/<>/units/<>/template"}
    missing = sorted({rule.rule for rule in app.url_map.iter_rules() if rule.rule.startswith("/api/v1")
                      and re.sub(r"<[^>]+>", "<>", rule.rule[len("/api/v1"):]) not in named | in_prose})
    assert not missing, f"name these routes in the README's API table: {missing}"
    for field in ("valid_from", "valid_to", "merged_from", "units_as_of", "--units-as-of", "--keep-exemptions"):
        assert field in readme, field


# RFC 3339 instants, some of which the app cannot compute with (years outside 1900-2200 in UTC, a
# lower-case "z", a leap second): each one the document accepts must be one the app accepts.
INSTANTS = ["2024-05-12T00:00:00+07:00", "1901-01-01T00:00:00+14:00", "2199-12-31T23:59:59-14:00",
            "9630-12-08T22:51:22Z", "0001-01-01T00:00:00+14:00", "1900-01-01T00:00:00+07:00",
            "2200-12-31T23:59:59-14:00", "2024-05-12t00:00:00z", "2024-05-12T23:59:60Z"]


def test_every_as_of_the_document_accepts_is_one_the_app_accepts(client, token_for):
    import jsonschema_rs

    headers = {"Authorization": f"Bearer {token_for('admin')}"}
    tried = []
    for path, methods in document()["paths"].items():
        for method, operation in methods.items():
            params = [p for p in operation.get("parameters", []) if p["name"] == "as_of"]
            if method != "get" or not params or params[0]["schema"].get("format") != "date-time":
                continue
            valid = jsonschema_rs.validator_for(params[0]["schema"], validate_formats=True).is_valid
            url = path.replace("{plan_code}", "bacgiang-2024")
            accepted = [instant for instant in INSTANTS if valid(instant)]
            for instant in accepted:
                answer = client.get(url, query_string={"as_of": instant}, headers=headers)
                assert answer.status_code == 200, (path, instant, answer.get_data(as_text=True)[:300])
            assert INSTANTS[0] in accepted, (path, accepted)
            tried.append(path)
    assert len(set(tried)) >= 3, tried
