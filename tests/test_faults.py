"""Issue 7: faults while storing returns and concurrent uploads against a real threaded server.

Runs on whichever database the suite uses: a SQLite file, or PostgreSQL with
TRACKER_TEST_DATABASE_URL set. Run it both ways.
"""
from __future__ import annotations

import http.client
import io
import json
import threading
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import pytest
from sqlalchemy import event, func, select
from werkzeug.datastructures import FileStorage
from werkzeug.serving import make_server
from werkzeug.test import encode_multipart

from test_bad_input import NOTHING, build_return, post, stored_counts
from tracker.extensions import db
from tracker.models import AuditEvent, ReturnFile, ReturnVersion
from tracker.plans import copy_plan

PLAN = "bacgiang-2024"
REPORTING_UNITS = ["213", "215", "216", "217", "218", "219", "220", "221", "222"]


# ---------------------------------------------------------------- the database failing mid-upload


@pytest.fixture
def failing_insert(app: Any) -> Iterator[list[str]]:
    """Make the database fail the first INSERT into return_values, as a full disk or lost server would."""
    seen: list[str] = []
    with app.app_context():
        engine = db.engine
    dbapi = engine.dialect.dbapi

    def fail(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        seen.append(statement.split("(")[0].strip())
        if statement.lstrip().upper().startswith("INSERT INTO RETURN_VALUES"):
            raise dbapi.OperationalError("disk I/O error")

    event.listen(engine, "before_cursor_execute", fail)
    yield seen
    event.remove(engine, "before_cursor_execute", fail)


def test_database_failing_mid_upload_stores_nothing_and_answers_503(app, client, token_for, failing_insert):
    token = token_for("unit", "219")
    data = build_return(app, "219")
    response = post(client, "219", data, token=token)
    # The version row (and its file) reached the database before the failure: the rollback must undo them.
    assert any(s.upper().startswith("INSERT INTO RETURN_VERSIONS") for s in failing_insert)
    assert response.status_code == 503, response.get_data(as_text=True)[:300]
    error = response.get_json()["error"]
    assert error["code"] == "storage_failed"
    assert "chưa được lưu" in error["message"] and "tải lên lại" in error["message"]
    assert "disk I/O" not in error["message"]
    assert stored_counts(app) == NOTHING
    failing_insert.clear()


def test_after_the_database_recovers_the_same_file_is_stored(app, client, token_for):
    token = token_for("unit", "219")
    data = build_return(app, "219")
    with app.app_context():
        engine = db.engine
    dbapi = engine.dialect.dbapi
    failures = [1]

    def fail_once(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if failures and statement.lstrip().upper().startswith("INSERT INTO RETURN_FILES"):
            failures.pop()
            raise dbapi.OperationalError("server closed the connection unexpectedly")

    event.listen(engine, "before_cursor_execute", fail_once)
    try:
        assert post(client, "219", data, token=token).status_code == 503
    finally:
        event.remove(engine, "before_cursor_execute", fail_once)
    assert stored_counts(app) == NOTHING
    retry = post(client, "219", data, token=token)
    assert retry.status_code == 201, retry.get_json()
    assert retry.get_json()["version"] == 1
    with app.app_context():
        version = db.session.scalar(select(ReturnVersion))
        assert version.file.content == data


# ---------------------------------------------------------------- a real threaded server


class LiveServer:
    """The app served by Werkzeug's threaded server on a free loopback port, in a daemon thread."""

    def __init__(self, app: Any) -> None:
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.port = self.server.server_port
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def upload(self, plan: str, unit: str, data: bytes, token: str, timeout: float = 120) -> tuple[int, str]:
        boundary, body = encode_multipart({"file": FileStorage(io.BytesIO(data), filename="bao-cao.xlsx")})
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            connection.request("POST", f"/api/v1/plans/{plan}/units/{unit}/returns", body=body, headers={
                "Authorization": f"Bearer {token}", "Content-Type": f"multipart/form-data; boundary={boundary}"})
            response = connection.getresponse()
            return response.status, response.read().decode("utf-8", "replace")
        finally:
            connection.close()

    def get(self, path: str) -> int:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            connection.request("GET", path)
            response = connection.getresponse()
            response.read()
            return response.status
        finally:
            connection.close()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


@pytest.fixture
def live(app: Any) -> Iterator[LiveServer]:
    server = LiveServer(app)
    yield server
    server.stop()


def run_together(calls: list[Any]) -> list[Any]:
    """Run every zero-argument call in its own thread, released at once; return their results in order."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def runner(index: int) -> None:
        barrier.wait()
        try:
            results[index] = calls[index]()
        except Exception as exc:  # noqa: BLE001 - reported by the assertions below
            results[index] = exc

    threads = [threading.Thread(target=runner, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    return results


def test_twenty_concurrent_uploads_for_different_units(app, live, token_for):
    with app.app_context():
        for code in ("bacgiang-2024-b", "bacgiang-2024-c"):
            copy_plan(PLAN, code, datetime(2025, 5, 9, 17, 0, tzinfo=timezone.utc))
        db.session.commit()
    targets = [(plan, unit) for plan in (PLAN, "bacgiang-2024-b", "bacgiang-2024-c") for unit in REPORTING_UNITS][:20]
    tokens = {unit: token_for("unit", unit) for unit in REPORTING_UNITS}
    returns = {target: build_return(app, target[1], target[0]) for target in targets}
    results = run_together([lambda t=t: live.upload(t[0], t[1], returns[t], tokens[t[1]]) for t in targets])
    problems = [(t, r) for t, r in zip(targets, results) if not isinstance(r, tuple) or r[0] != 201]
    assert problems == [], problems
    assert not any("locked" in body.lower() for _, body in results)
    with app.app_context():
        stored = db.session.execute(select(ReturnVersion.assignment_id, ReturnVersion.version, ReturnVersion.sha256,
                                          ReturnFile.content)
                                   .join(ReturnFile, ReturnFile.version_id == ReturnVersion.id)).all()
    assert len(stored) == 20 and len({row.assignment_id for row in stored}) == 20
    assert all(row.version == 1 for row in stored)
    assert {row.content for row in stored} == set(returns.values())
    assert live.get("/login") == 200  # still serving


def test_two_concurrent_identical_uploads_make_one_version(app, live, token_for):
    token = token_for("unit", "219")
    data = build_return(app, "219")
    results = run_together([lambda: live.upload(PLAN, "219", data, token) for _ in range(2)])
    assert all(isinstance(r, tuple) for r in results), results
    assert sorted(status for status, _ in results) == [200, 201], results
    bodies = [json.loads(body) for _, body in results]
    assert {b["version"] for b in bodies} == {1} and len({b["id"] for b in bodies}) == 1
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(ReturnVersion)) == 1
        assert db.session.scalar(select(func.count()).select_from(ReturnFile)) == 1
        uploads = db.session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "upload"))
        assert uploads == 1
