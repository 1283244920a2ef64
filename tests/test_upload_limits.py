"""Issue 13: upload limits per unit and plan (rate 429, quota 413, nothing stored), coalesced receipts,
and the usage staff see on the unit page. Runs on SQLite or PostgreSQL like the rest of the suite."""
from __future__ import annotations

from datetime import timedelta
import pytest
from sqlalchemy import func, select

from servers import variant
from test_bad_input import build_return, post, stored_counts
from tracker import outbox
from tracker.extensions import db
from tracker.models import AuditEvent, OutboundMessage
from tracker.timeutil import utc_now
from tracker.upload_limits import parse_rate

UNIT = "219"


def test_rate_setting_is_parsed_and_bad_values_are_refused():
    assert parse_rate("20 per hour") == (20, timedelta(hours=1))
    assert parse_rate("5 per 10 minutes") == (5, timedelta(minutes=10))
    assert parse_rate("100/day") == (100, timedelta(days=1))
    with pytest.raises(ValueError):
        parse_rate("many")


def test_thirty_rapid_uploads_give_429_after_the_limit_and_store_nothing_more(app, client, token_for):
    token = token_for("unit", UNIT)
    base = build_return(app, UNIT)
    answers = [post(client, UNIT, variant(base, n), token=token) for n in range(30)]
    statuses = [a.status_code for a in answers]
    refused = answers[-1]
    assert statuses == [201] * 20 + [429] * 10, statuses
    error = refused.get_json()["error"]
    assert error["code"] == "too_many_uploads"
    assert "thử lại sau" in error["message"] and "phút nữa" in error["message"]
    retry_after = int(refused.headers["Retry-After"])
    assert 3000 < retry_after <= 3600
    counts = stored_counts(app)
    assert counts["ReturnVersion"] == 20 and counts["ReturnFile"] == 20
    with app.app_context():
        limited = db.session.scalar(select(func.count()).select_from(AuditEvent)
                                    .where(AuditEvent.action == "upload_limited"))
        receipts = db.session.scalar(select(func.count()).select_from(OutboundMessage)
                                     .where(OutboundMessage.kind == "receipt"))
    assert limited == 10
    # Twenty versions, coalesced receipts: one sent at once, one naming the other nineteen.
    assert receipts == 2
    # Another unit is not held back by this one.
    other = post(client, "220", build_return(app, "220"), token=token_for("unit", "220"))
    assert other.status_code == 201


def test_refused_files_count_against_the_rate(app, client, token_for):
    app.config["UPLOAD_RATE"] = "3 per hour"
    token = token_for("unit", UNIT)
    for _ in range(3):
        assert post(client, UNIT, b"not a workbook at all", token=token).status_code in (400, 415, 422)
    answer = post(client, UNIT, build_return(app, UNIT), token=token)
    assert answer.status_code == 429
    assert stored_counts(app)["ReturnVersion"] == 0


def test_an_upload_over_the_quota_gives_413_quota_exceeded_and_stores_nothing(app, client, token_for):
    token = token_for("unit", UNIT)
    base = build_return(app, UNIT)
    app.config["UPLOAD_QUOTA_BYTES"] = int(len(base) * 1.5)
    assert post(client, UNIT, base, token=token).status_code == 201
    answer = post(client, UNIT, variant(base, 2), token=token)
    assert answer.status_code == 413, answer.get_data(as_text=True)[:300]
    error = answer.get_json()["error"]
    assert error["code"] == "quota_exceeded"
    assert "vượt giới hạn" in error["message"]
    assert "Retry-After" not in answer.headers
    assert stored_counts(app)["ReturnVersion"] == 1


def test_raised_limits_for_named_units(app, client, token_for):
    app.config["UPLOAD_RATE"] = "1 per hour"
    app.config["UPLOAD_LIMIT_OVERRIDES"] = {UNIT: {"rate": "50 per hour"}}
    base = build_return(app, UNIT)
    token = token_for("unit", UNIT)
    assert [post(client, UNIT, variant(base, n), token=token).status_code for n in range(3)] == [201] * 3
    other_token = token_for("unit", "220")
    other = build_return(app, "220")
    assert [post(client, "220", variant(other, n), token=other_token).status_code for n in range(2)] == [201, 429]


def test_receipts_are_coalesced_and_name_every_version(app, client, token_for, smtp_server):
    smtp_server.configure(app)
    app.config["RECEIPT_COALESCE_SECONDS"] = 120
    token = token_for("unit", UNIT)
    base = build_return(app, UNIT)
    for n in range(3):
        assert post(client, UNIT, variant(base, n), token=token).status_code == 201
    # The first receipt went at once; versions 2 and 3 wait for the window, in one message.
    assert len(smtp_server.messages) == 1
    assert "phiên bản 1 " in smtp_server.messages[0].subject
    with app.app_context():
        report = outbox.flush_pending(as_of=utc_now() + timedelta(seconds=121))
    assert report.sent == 1
    assert len(smtp_server.messages) == 2
    second = smtp_server.messages[1]
    assert "phiên bản 2, 3 " in second.subject
    text = second.text()
    assert "Phiên bản 2:" in text and "- Phiên bản: 3" in text


def test_staff_see_each_units_usage_officers_do_not(app, client, login_as, token_for):
    token = token_for("unit", UNIT)
    post(client, UNIT, build_return(app, UNIT), token=token)
    login_as("staff")
    page = client.get(f"/plans/bacgiang-2024/units/{UNIT}").get_data(as_text=True)
    assert "Mức sử dụng tải lên" in page
    assert "1/20 lần trong giờ qua" in page
    assert "/ 200,0 MB" in page
    login_as("unit", UNIT)
    page = client.get(f"/plans/bacgiang-2024/units/{UNIT}").get_data(as_text=True)
    assert "Mức sử dụng tải lên" not in page
