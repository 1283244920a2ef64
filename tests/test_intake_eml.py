"""Issue 19: ``ingest-mail --eml FILE…`` (a mailbox exported by hand), the intake API and its replies."""
from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from intake_fixtures import LUC_NGAN_CONTACT, XLSX, filled_return, make_email
from tracker import contacts
from tracker.extensions import db
from tracker.models import IntakeRecord, OutboundMessage, ReturnVersion

RECEIVED = "from mx.bacgiang.gov.vn by mail.bacgiang.gov.vn; Thu, 9 May 2024 22:30:00 +0700"


def saved(tmp_path: Path, name: str, raw: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(raw)
    return str(path)


def test_saved_messages_are_processed_once_with_the_received_time(app, runner, tmp_path):
    raw = make_email(LUC_NGAN_CONTACT, [("Báo cáo.xlsx", filled_return(app, "219"), XLSX)],
                     date=datetime(2024, 5, 8, tzinfo=UTC), extra={"Received": RECEIVED})
    path = saved(tmp_path, "thư 1.eml", raw)
    result = runner.invoke(args=["ingest-mail", "--eml", path])
    assert result.exit_code == 0, result.output
    assert "Đã nhận [219], phiên bản 1" in result.output
    with app.app_context():
        version = db.session.scalar(select(ReturnVersion))
        # The receiving server's Received header, not the client's Date: 22:30 on 9/5 is still on time.
        assert version.received_at == datetime(2024, 5, 9, 15, 30, tzinfo=UTC) and version.source == "email"
    again = runner.invoke(args=["ingest-mail", "--eml", path, path])
    assert again.exit_code == 0 and "đã xử lý từ trước: 2" in again.output
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(ReturnVersion)) == 1
        assert db.session.scalar(select(func.count()).select_from(OutboundMessage)
                                 .where(OutboundMessage.kind == "intake_reply")) == 1


def test_the_command_explains_bad_invocations(app, runner, tmp_path):
    no_mailbox = runner.invoke(args=["ingest-mail"])
    assert no_mailbox.exit_code != 0 and "INTAKE_IMAP_HOST" in no_mailbox.output
    path = saved(tmp_path, "a.eml", make_email())
    assert "--eml" in runner.invoke(args=["ingest-mail", path]).output
    assert "Cần ít nhất một tệp .eml" in runner.invoke(args=["ingest-mail", "--eml"]).output
    app.config.update(INTAKE_IMAP_HOST="mail.bacgiang.gov.vn", INTAKE_IMAP_SECURITY="none")
    plain = runner.invoke(args=["ingest-mail"])
    assert plain.exit_code != 0 and "không mã hoá" in plain.output
    assert runner.invoke(args=["ingest-mail", "--dry-run", "--eml", path]).exit_code == 0
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(IntakeRecord)) == 0


def test_the_api_lists_processed_messages_for_staff_only(app, runner, client, tmp_path, token_for):
    runner.invoke(args=["ingest-mail", "--eml", saved(tmp_path, "link.eml", make_email(
        LUC_NGAN_CONTACT, body="https://drive.google.com/file/d/1/view", message_id="<link@demo.bacgiang.vn>"))])
    staff = {"Authorization": f"Bearer {token_for('staff')}"}
    body = client.get("/api/v1/intake", headers=staff).get_json()
    (row,) = body["records"]
    assert {"message_id", "received_at", "sender", "unit", "state", "reason", "version"} <= set(row)
    assert (row["message_id"], row["sender"], row["state"], row["unit"], row["version"]) == (
        "<link@demo.bacgiang.vn>", LUC_NGAN_CONTACT, "ignored", None, None)
    assert "drive.google.com" in row["reason"]
    assert client.get("/api/v1/intake?state=accepted", headers=staff).get_json() == {"records": []}
    bad = client.get("/api/v1/intake?state=lost", headers=staff)
    assert bad.status_code == 400 and bad.get_json()["error"]["code"] == "bad_state"
    unit = client.get("/api/v1/intake", headers={"Authorization": f"Bearer {token_for('unit', '219')}"})
    assert unit.status_code == 403


def test_a_reply_that_names_no_plan_shows_on_the_mail_log_and_can_be_retried(app, runner, client, tmp_path,
                                                                           login_as):
    runner.invoke(args=["ingest-mail", "--eml", saved(tmp_path, "empty.eml", make_email(LUC_NGAN_CONTACT))])
    with app.app_context():
        reply = db.session.scalar(select(OutboundMessage).where(OutboundMessage.kind == "intake_reply"))
        assert reply.plan_id is None and reply.recipients == [LUC_NGAN_CONTACT] and reply.status == "sent"
        assert "không có tệp đính kèm" in reply.body_text
        reply.status = "failed"
        db.session.commit()
        reply_id = reply.id
    login_as("staff")
    page = client.get("/mail-log").get_data(as_text=True)
    assert "Trả lời thư gửi báo cáo" in page
    assert client.get(f"/mail-log/{reply_id}").status_code == 200
    assert client.post(f"/mail-log/{reply_id}/retry").status_code == 302
    with app.app_context():
        again = db.session.get(OutboundMessage, reply_id)
        assert again.status == "sent" and again.recipients == [LUC_NGAN_CONTACT]


@pytest.mark.parametrize(("sender", "extra"), [(LUC_NGAN_CONTACT, {"Auto-Submitted": "auto-replied"}),
                                             ("mailer-daemon@bacgiang.gov.vn", {}), ("ai-do@localhost", {})],
                         ids=["auto-replied", "bounce", "address-smtp-would-refuse"])
def test_auto_replies_bounces_and_bad_addresses_get_no_reply(app, runner, tmp_path, sender, extra):
    raw = make_email(sender, extra=extra)
    assert runner.invoke(args=["ingest-mail", "--eml", saved(tmp_path, "ooo.eml", raw)]).exit_code == 0
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(IntakeRecord)) == 1
        assert db.session.scalar(select(func.count()).select_from(OutboundMessage)) == 0


def test_the_receipt_to_the_units_other_contacts_leaves_the_sender_out(app, runner, tmp_path):
    with app.app_context():
        from tracker.models import Unit

        unit = db.session.scalar(select(Unit).where(Unit.code == "219"))
        contacts.set_contacts(unit, ["truongphong219@demo.bacgiang.vn"], add=True)
        db.session.commit()
    raw = make_email(LUC_NGAN_CONTACT, [("bc.xlsx", filled_return(app, "219"), XLSX)])
    assert runner.invoke(args=["ingest-mail", "--eml", saved(tmp_path, "bc.eml", raw)]).exit_code == 0
    with app.app_context():
        sent: dict[str, Any] = {m.kind: m.recipients for m in db.session.scalars(select(OutboundMessage))}
    assert sent == {"intake_reply": [LUC_NGAN_CONTACT], "receipt": ["truongphong219@demo.bacgiang.vn"]}


def test_two_runs_at_once_store_one_version_and_send_one_reply(app, tmp_path):
    import threading

    from tracker import forms
    from tracker import intake

    raw = make_email(LUC_NGAN_CONTACT, [("bc.xlsx", filled_return(app, "219"), XLSX)])
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def one_run() -> None:
        try:
            with app.app_context():
                settings = intake.settings_from(app.config)
                barrier.wait(timeout=10)
                intake.ingest_files([("bc.eml", raw)], datetime.now(UTC), forms.all_forms(), settings)
                db.session.remove()
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=one_run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    with app.app_context():
        counts = [db.session.scalar(select(func.count()).select_from(model)) for model in (ReturnVersion, IntakeRecord)]
        replies = db.session.scalar(select(func.count()).select_from(OutboundMessage)
                                    .where(OutboundMessage.kind == "intake_reply"))
    assert counts == [1, 1] and replies == 1


def test_the_upload_limits_apply_to_returns_by_email(app, runner, tmp_path):
    app.config.update(UPLOAD_RATE="1 per hour")
    first = make_email(LUC_NGAN_CONTACT, [("v1.xlsx", filled_return(app, "219"), XLSX)])
    second = make_email(LUC_NGAN_CONTACT, [("v2.xlsx", filled_return(app, "219", {
        ("B01", "communes", "base_total"): None}), XLSX)])
    result = runner.invoke(args=["ingest-mail", "--eml", saved(tmp_path, "1.eml", first), saved(tmp_path, "2.eml", second)])
    assert result.exit_code == 0, result.output
    with app.app_context():
        states = dict(db.session.execute(select(IntakeRecord.filename, IntakeRecord.state)).all())
        reason = db.session.scalar(select(IntakeRecord.reason).where(IntakeRecord.filename == "v2.xlsx"))
        assert db.session.scalar(select(func.count()).select_from(ReturnVersion)) == 1
    assert states == {"v1.xlsx": "accepted", "v2.xlsx": "refused"} and reason
