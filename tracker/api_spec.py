"""The OpenAPI 3.1 description of the JSON API under /api/v1, served at /api/v1/openapi.json.

Every route the app registers under /api/v1 must appear here with each of its methods
(tests/test_openapi.py fails otherwise), and every answer it gives must match (schemathesis in CI).
A new API route is documented in this file in the same change.
"""
from __future__ import annotations

from typing import Any

from .compliance import ReviewState, Status

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref("Error")}}}


def _errors(*statuses: int) -> dict[str, Any]:
    texts = {
        400: "Bad request: a parameter or the upload is malformed (`error.code` says which)",
        401: "No valid token or session (`unauthorized`)",
        403: "The token's user may not act for this unit or plan (`forbidden`)",
        404: "No such plan, unit or blank form (`not_found`)",
        405: "Method not allowed",
        408: "The request body did not arrive in time (`request_timeout`)",
        409: "The unit is exempt from this plan (`exempt`)",
        413: "Too large (`too_large`) or over the unit's storage quota (`quota_exceeded`)",
        415: "Not a spreadsheet the tracker reads",
        422: "The file is not a usable return of this unit (`wrong_return`, `identity_edited`, `parse_failed`…)",
        429: "Too many uploads for this unit and plan (`too_many_uploads`); see Retry-After",
        503: "Storage or the parser failed for a reason that is not the file's (`storage_failed`, `parse_killed`)",
    }
    answers = {str(s): _error(texts[s]) for s in statuses}
    if 429 in statuses:
        answers["429"]["headers"] = {"Retry-After": {"description": "Seconds until the next upload is accepted",
                                                     "schema": {"type": "string", "pattern": "^[0-9]+$"}}}
    return answers


_PLAN_CODE = {"name": "plan_code", "in": "path", "required": True, "description": "Plan code",
              "example": "bacgiang-2024", "schema": {"type": "string", "minLength": 1, "maxLength": 64}}
_UNIT_CODE = {"name": "unit_code", "in": "path", "required": True, "description": "Unit code",
              "example": "219", "schema": {"type": "string", "minLength": 1, "maxLength": 16}}
# The instants the app computes with (timeutil.as_utc: years 1900-2200 in UTC), in the RFC 3339 shape
# it reads: upper-case T and Z, seconds 00-59. The years stop one short at each end, so that no offset
# can move an instant the document accepts out of the app's range.
AS_OF_PATTERN = (r"^(190[1-9]|19[1-9][0-9]|2[01][0-9]{2})-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-5][0-9]"
                 r"(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})$")
_AS_OF = {"name": "as_of", "in": "query", "required": False,
          "description": "The instant to evaluate at, ISO 8601 with an offset, years 1901-2199 (default: now)",
          "example": "2024-05-12T00:00:00+07:00",
          "schema": {"type": "string", "format": "date-time", "pattern": AS_OF_PATTERN}}
_INSTANT = {"type": ["string", "null"], "format": "date-time"}

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object", "required": ["error"],
        "properties": {"error": {"type": "object", "required": ["code", "message"],
                                 "properties": {"code": {"type": "string"},
                                                "message": {"type": "string", "description": "Vietnamese"},
                                                "last_reminded_at": {"type": "string", "format": "date-time"}}}},
    },
    "Plan": {
        "type": "object", "required": ["code", "title", "deadline", "deadline_local"],
        "properties": {"code": {"type": "string"}, "title": {"type": "string"},
                       "deadline": {"type": "string", "format": "date-time"},
                       "deadline_local": {"type": "string", "format": "date-time"}},
    },
    "UnitStanding": {
        "type": "object",
        "required": ["code", "name", "form", "status", "late", "complete", "first_received_at",
                     "latest_received_at", "errors", "warnings", "review"],
        "properties": {
            "code": {"type": "string"}, "name": {"type": "string"},
            "form": {"type": ["string", "null"], "description": "PL02, PL03…; null when exempt"},
            "status": {"type": "string", "enum": [s.value for s in Status]},
            "late": {"type": "boolean"}, "complete": {"type": "boolean"},
            "first_received_at": _INSTANT, "latest_received_at": _INSTANT,
            "errors": {"type": "integer", "minimum": 0}, "warnings": {"type": "integer", "minimum": 0},
            "counted_version": {"type": ["integer", "null"]}, "last_reminded_at": _INSTANT,
            "review": {"oneOf": [{"type": "null"}, {
                "type": "object", "required": ["state", "reason"],
                "properties": {"state": {"type": "string", "enum": [r.value for r in ReviewState]},
                               "reason": {"type": ["string", "null"]}}}]},
        },
    },
    "PlanStatus": {
        "type": "object", "required": ["plan", "as_of", "deadline", "units"],
        "properties": {"plan": {"type": "string"}, "as_of": {"type": "string", "format": "date-time"},
                       "deadline": {"type": "string", "format": "date-time"},
                       "units": {"type": "array", "items": _ref("UnitStanding")}},
    },
    "Issue": {
        "type": "object", "required": ["severity", "sheet", "cell", "indicator", "message"],
        "additionalProperties": False,
        "properties": {"severity": {"type": "string", "enum": ["error", "warning"]}, "sheet": {"type": "string"},
                       "cell": {"type": ["string", "null"]}, "indicator": {"type": ["string", "null"]},
                       "message": {"type": "string"}},
    },
    "ReturnVersion": {
        "type": "object",
        "required": ["id", "version", "sha256", "received_at", "complete", "late", "status", "errors", "warnings",
                     "issues"],
        "properties": {
            "id": {"type": "integer"}, "version": {"type": "integer", "minimum": 1},
            "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
            "received_at": {"type": "string", "format": "date-time"},
            "complete": {"type": "boolean"}, "late": {"type": "boolean"},
            "status": {"type": "string", "enum": [s.value for s in Status]},
            "errors": {"type": "integer", "minimum": 0}, "warnings": {"type": "integer", "minimum": 0},
            "issues": {"type": "array", "items": _ref("Issue")},
            "message": {"type": "string", "description": "Set when the same file was already stored"},
        },
    },
}

def _obj(keys: list[str], **properties: Any) -> dict[str, Any]:
    """Return an object schema: ``keys`` required, the named ones typed, other keys allowed."""
    return {"type": "object", "required": keys, "properties": properties}


_NUMBER = {"name": "number", "in": "path", "required": True, "description": "Version number",
           "example": 1, "schema": {"type": "integer", "minimum": 1, "maximum": 2147483647}}
_N = {**_NUMBER, "name": "n"}
_SINCE = {"name": "since", "in": "query", "required": False, "description": "Compare with this version",
          "schema": {"type": "integer", "minimum": 1, "maximum": 2147483647}}
_NULLABLE_STR = {"type": ["string", "null"]}

SCHEMAS.update({
    "Withdrawal": _obj(["version", "withdrawn_at", "status", "counted_version"],
                       version={"type": "integer"}, withdrawn_at={"type": "string", "format": "date-time"},
                       status={"type": "string", "enum": [s.value for s in Status]},
                       counted_version={"type": ["integer", "null"]}),
    "Reminder": _obj(["plan", "unit", "name", "message_id", "queued_at", "recipients"],
                     plan={"type": "string"}, unit={"type": "string"}, name={"type": "string"},
                     message_id={"type": "integer"}, queued_at={"type": "string", "format": "date-time"},
                     recipients={"type": "array", "items": {"type": "string"}}),
    "Timeliness": _obj(["plan", "as_of", "deadline", "required", "reporting_rate", "on_time_rate", "days"],
                       plan={"type": "string"}, **{"required": {"type": "integer"}},
                       reporting_rate={"type": "number"}, on_time_rate={"type": "number"},
                       days={"type": "array", "items": _obj(
                           ["date", "received", "complete", "on_time", "reminders_sent"],
                           date={"type": "string", "format": "date"}, received={"type": "integer"},
                           complete={"type": "integer"}, on_time={"type": "integer"},
                           reminders_sent={"type": "integer"})}),
    "ReviewQueue": _obj(["plan", "versions"], plan={"type": "string"}, versions={"type": "array", "items": _obj(
        ["unit", "name", "form", "version", "received_at", "warnings", "late"], unit={"type": "string"},
        version={"type": "integer"}, warnings={"type": "integer"}, late={"type": "boolean"})}),
    "IntakeRecords": _obj(["records"], records={"type": "array", "items": _obj(
        ["id", "message_id", "received_at", "sender", "subject", "unit", "plan", "filename", "state", "reason",
         "version"], id={"type": "integer"}, unit=_NULLABLE_STR, plan=_NULLABLE_STR,
        state={"type": "string"}, version={"type": ["integer", "null"]})}),
    "VersionChanges": _obj(["version", "since", "changes", "issues_added", "issues_removed"],
                           version={"type": "integer"}, since={"type": "integer"},
                           changes={"type": "array", "items": {"type": "object"}},
                           issues_added={"type": "array", "items": {"type": "object"}},
                           issues_removed={"type": "array", "items": {"type": "object"}}),
    "SignedReport": _obj(["version", "created"], version={"type": "integer"}, created={"type": "boolean"}),
    "Units": _obj(["as_of", "units"], as_of={"type": "string", "format": "date"}, units={"type": "array", "items": _obj(
        ["code", "name", "level", "parent", "valid_from", "valid_to", "merged_from"], code={"type": "string"},
        name={"type": "string"}, level={"type": "integer", "minimum": 1, "maximum": 3}, parent=_NULLABLE_STR,
        valid_from={"type": "string", "format": "date"}, valid_to={"type": ["string", "null"], "format": "date"},
        merged_from={"type": "array", "items": _obj(["code", "name", "valid_from", "share", "hint"],
                                                    code={"type": "string"}, share={"type": "string"},
                                                    hint={"type": "boolean"})})}),
    "PlanDetail": _obj(["code", "title", "deadline", "state", "units_as_of", "periods", "visits"],
                       code={"type": "string"}, title={"type": "string"},
                       deadline={"type": "string", "format": "date-time"}, state={"type": "string"},
                       units_as_of={"type": "string", "format": "date"},
                       periods={"type": "array", "items": _obj(["label", "start", "end"], label={"type": "string"})},
                       visits={"type": "array", "items": _obj(["unit", "date", "communes"], unit={"type": "string"},
                                                              date={"type": "string", "format": "date"},
                                                              communes={"type": "array",
                                                                        "items": {"type": "string"}})}),
    "Outliers": _obj(["plan", "items"], plan={"type": "string"},
                     items={"type": "array", "items": _obj(["unit", "form", "indicator", "value", "reason"],
                                                           unit={"type": "string"}, reason={"type": "string"})}),
})


def _json(description: str, schema: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(schema)}}}


_XLSX_ANSWER = {"content": {XLSX: {"schema": {"type": "string", "contentMediaType": XLSX}}}}


def document() -> dict[str, Any]:
    """Return the OpenAPI 3.1 document of /api/v1 as a plain dict."""
    return {
        "openapi": "3.1.0",
        "info": {"title": "Tracker API (Sở LĐTBXH Bắc Giang)", "version": "1",
                 "description": "Report collection and compliance. Authenticate with `Authorization: Bearer "
                                "<token>` (tokens from `flask create-token`). Errors are "
                                "`{\"error\": {\"code\", \"message\"}}` with a Vietnamese message."},
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}, "schemas": SCHEMAS},
        "paths": {
            "/api/v1/openapi.json": {"get": {
                "operationId": "openapi", "summary": "This document", "security": [],
                "responses": {"200": {"description": "The OpenAPI document",
                                      "content": {"application/json": {"schema": {"type": "object"}}}}}}},
            "/api/v1/plans": {"get": {
                "operationId": "listPlans", "summary": "Plans, latest deadline first",
                "responses": {"200": {"description": "Every plan",
                                      "content": {"application/json": {"schema": {
                                          "type": "array", "items": _ref("Plan")}}}},
                              **_errors(401)}}},
            "/api/v1/plans/{plan_code}": {"get": {
                "operationId": "planDetail", "summary": "A plan's calendar: periods, visits, the map date of its units",
                "parameters": [_PLAN_CODE],
                "responses": {"200": _json("The plan", "PlanDetail"), **_errors(401, 403, 404)}}},
            "/api/v1/units": {"get": {
                "operationId": "listUnits", "summary": "Administrative units in force on a date",
                "parameters": [{"name": "as_of", "in": "query", "required": False, "example": "2025-07-01",
                                "description": "The date (default: today in Vietnam)",
                                "schema": {"type": "string", "format": "date"}},
                               {"name": "parent", "in": "query", "required": False,
                                "schema": {"type": "string", "maxLength": 16}},
                               {"name": "level", "in": "query", "required": False,
                                "schema": {"type": "integer", "enum": [1, 2, 3]}}],
                "responses": {"200": _json("The units", "Units"), **_errors(400, 401, 404)}}},
            "/api/v1/plans/{plan_code}/status": {"get": {
                "operationId": "planStatus", "summary": "Each unit's standing at as_of (a unit token: its own unit)",
                "parameters": [_PLAN_CODE, _AS_OF,
                               {"name": "page", "in": "query", "required": False,
                                "schema": {"type": "integer", "minimum": 1, "maximum": 10**7}},
                               {"name": "per_page", "in": "query", "required": False,
                                "schema": {"type": "integer", "minimum": 1, "maximum": 1000}},
                               {"name": "format", "in": "query", "required": False,
                                "schema": {"type": "string", "enum": ["json", "jsonl", "csv"]}},
                               {"name": "parent", "in": "query", "required": False,
                                "description": "Only the units under this unit code",
                                "schema": {"type": "string", "maxLength": 16}}],
                "responses": {"200": {"description": "Standings (paged with page/per_page; streamed as jsonl or csv)",
                                      "content": {"application/json": {"schema": _ref("PlanStatus")},
                                                  "application/x-ndjson": {"schema": {"type": "string"}},
                                                  "text/csv": {"schema": {"type": "string"}}}},
                              **_errors(400, 401, 404)}}},
            "/api/v1/plans/{plan_code}/export.xlsx": {"get": {
                "operationId": "planExport", "summary": "Consolidated workbook at as_of (department only)",
                "parameters": [_PLAN_CODE, _AS_OF],
                "responses": {"200": {"description": "The consolidated workbook", **_XLSX_ANSWER},
                              **_errors(400, 401, 403, 404)}}},
            "/api/v1/plans/{plan_code}/units/{unit_code}/blank-form.xlsx": {"get": {
                "operationId": "blankForm", "summary": "The unit's blank form",
                "parameters": [_PLAN_CODE, _UNIT_CODE],
                "responses": {"200": {"description": "The blank form (workbook)", **_XLSX_ANSWER},
                              **_errors(401, 403, 404)}}},
            "/api/v1/plans/{plan_code}/units/{unit_code}/template": {"get": {
                "operationId": "blankFormTemplateAlias",
                "summary": "The unit's blank form (older name of blank-form.xlsx, kept; answers the same)",
                "parameters": [_PLAN_CODE, _UNIT_CODE],
                "responses": {"200": {"description": "The blank form (workbook)", **_XLSX_ANSWER},
                              **_errors(401, 403, 404)}}},
            "/api/v1/plans/{plan_code}/units/{unit_code}/returns": {"post": {
                "operationId": "uploadReturn", "summary": "Upload a filled return as the unit's next version",
                "parameters": [_PLAN_CODE, _UNIT_CODE],
                "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
                    "type": "object", "required": ["file"],
                    "properties": {"file": {"type": "string", "contentMediaType": "application/octet-stream"},
                                   "note": {"type": "string", "maxLength": 2000,
                                            "description": "Department staff only"}}}}}},
                "responses": {"201": {"description": "A new version",
                                      "content": {"application/json": {"schema": _ref("ReturnVersion")}}},
                              "200": {"description": "The same file was already stored: that version",
                                      "content": {"application/json": {"schema": _ref("ReturnVersion")}}},
                              **_errors(400, 401, 403, 404, 408, 409, 413, 415, 422, 429, 503)}}},
            "/api/v1/plans/{plan_code}/units/{unit_code}/signed-report": {"post": {
                "operationId": "uploadSignedReport", "summary": "Upload the signed report (PDF) of the unit",
                "parameters": [_PLAN_CODE, _UNIT_CODE],
                "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
                    "type": "object", "required": ["file"],
                    "properties": {"file": {"type": "string", "contentMediaType": "application/pdf"}}}}}},
                "responses": {"201": _json("A new signed report", "SignedReport"),
                              "200": _json("The same file was already stored", "SignedReport"),
                              **_errors(400, 401, 403, 404, 408, 409, 413, 415, 422, 503)}}},
            "/api/v1/plans/{plan_code}/units/{unit_code}/versions/{number}/withdraw": {"post": {
                "operationId": "withdrawVersion", "summary": "Withdraw a version (it no longer counts)",
                "parameters": [_PLAN_CODE, _UNIT_CODE, _NUMBER],
                "responses": {"200": _json("Withdrawn", "Withdrawal"), **_errors(400, 401, 403, 404, 409)}}},
            "/api/v1/plans/{plan_code}/units/{unit_code}/remind": {"post": {
                "operationId": "remindUnit", "summary": "Send the unit a reminder by hand (department only)",
                "parameters": [_PLAN_CODE, _UNIT_CODE],
                "responses": {"201": _json("Queued and sent", "Reminder"), "200": _json("Queued", "Reminder"),
                              **_errors(400, 401, 403, 404, 409, 422, 429)}}},
            "/api/v1/plans/{plan_code}/timeliness": {"get": {
                "operationId": "planTimeliness", "summary": "Day-by-day receipts and reminders (department only)",
                "parameters": [_PLAN_CODE, _AS_OF],
                "responses": {"200": _json("The series", "Timeliness"), **_errors(400, 401, 403, 404)}}},
            "/api/v1/plans/{plan_code}/review-queue": {"get": {
                "operationId": "reviewQueue", "summary": "Versions waiting for review (department only)",
                "parameters": [_PLAN_CODE],
                "responses": {"200": _json("The queue", "ReviewQueue"), **_errors(401, 403, 404)}}},
            "/api/v1/intake": {"get": {
                "operationId": "intakeRecords", "summary": "Returns received by email, one row per attachment",
                "parameters": [{"name": "state", "in": "query", "required": False,
                                "schema": {"type": "string", "enum": ["accepted", "held", "refused", "ignored"]}}],
                "responses": {"200": _json("The records", "IntakeRecords"), **_errors(400, 401, 403)}}},
            "/api/v1/plans/{plan_code}/units/{unit_code}/versions/{n}/changes": {"get": {
                "operationId": "versionChanges", "summary": "What changed since the previous (or ?since) version",
                "parameters": [_PLAN_CODE, _UNIT_CODE, _N, _SINCE],
                "responses": {"200": _json("The changes", "VersionChanges"), **_errors(400, 401, 403, 404)}}},
            "/api/v1/plans/{plan_code}/outliers": {"get": {
                "operationId": "planOutliers", "summary": "Figures flagged as unusual (department only)",
                "parameters": [_PLAN_CODE],
                "responses": {"200": _json("The flags", "Outliers"), **_errors(401, 403, 404)}}},
        },
    }
