"""Reminder and notification emails against a real SMTP server (aiosmtpd on a loopback port)."""
from __future__ import annotations

import socket
import threading
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from email import message_from_bytes
from email.header import decode_header, make_header
from pathlib import Path
from typing import Any

import pytest
from smtp import SmtpServer, free_port
from sqlalchemy import delete, func, select
from sqlalchemy import text as sql

from tracker import contacts, outbox, reminders
from tracker.extensions import db
from tracker.models import (Assignment, AuditEvent, Contact, OutboundMessage, Plan, ReturnVersion, Review,
                            Unit, User)
from tracker.contacts import NO_CONTACTS
from tracker.messages import MessageKind, MessageStatus
from versions import add_version

VN = timezone(timedelta(hours=7))
PLAN = "bacgiang-2024"
REQUIRED = ["213", "215", "216", "217", "218", "219", "220", "221", "222"]
EXEMPT = "223"
STAFF = {"admin@demo.bacgiang.vn", "canbo@demo.bacgiang.vn"}
BEFORE = "2024-05-07T08:00+07:00"  # deadline 10/05/2024 00:00: step "còn 3 ngày"
AFTER = "2024-05-11T08:00+07:00"   # the day after the deadline: first overdue notice


def contact(code: str) -> str:
    return f"ldtbxh{code}@demo.bacgiang.vn"


@pytest.fixture
def notify_app(app: Any) -> Any:
    """The app with this issue's blueprint and commands, whether or not the factory wires them yet."""
    from tracker import cli_notify
    from tracker.views import notify

    if "notify" not in app.blueprints:
        app.register_blueprint(notify.bp)
    if "send-reminders" not in app.cli.commands:
        cli_notify.init_app(app)
    return app


@pytest.fixture
def mail_app(notify_app: Any, smtp_server: SmtpServer) -> Any:
    smtp_server.configure(notify_app)
    return notify_app


def send(app: Any, *args: str) -> Any:
    result = app.test_cli_runner().invoke(args=["send-reminders", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result


def by_kind(server: SmtpServer, kind: str) -> list[Any]:
    return [m for m in server.messages if m.key.split("/")[2] == kind]


def rows(app: Any) -> list[OutboundMessage]:
    with app.app_context():
        found = db.session.scalars(select(OutboundMessage).order_by(OutboundMessage.id)).all()
        db.session.expunge_all()
        return list(found)


def test_first_run_sends_one_deadline_notice_to_each_required_unit(mail_app: Any, smtp_server: SmtpServer) -> None:
    result = send(mail_app, "--as-of", BEFORE)
    assert result.exit_code == 0, result.output
    assert "Đã gửi: 10; sẽ thử lại sau: 0; không gửi được: 0." in result.output

    approaching = by_kind(smtp_server, "deadline_approaching")
    assert sorted(r for m in approaching for r in m.rcpt_tos) == [contact(c) for c in REQUIRED]
    assert all(contact(EXEMPT) not in m.rcpt_tos for m in smtp_server.messages)
    first = next(m for m in approaching if m.rcpt_tos == [contact("213")])
    # Parsed with policy=default, and again the way an old client would read the raw header.
    assert first.subject == "[Sở LĐTBXH Bắc Giang] Nhắc hạn nộp báo cáo: còn 3 ngày – Thành phố Bắc Giang"
    raw_subject = message_from_bytes(first.raw)["Subject"]  # compat32: the encoded words as sent
    assert "=?utf-8?" in raw_subject
    assert str(make_header(decode_header(raw_subject))) == first.subject
    text = first.text()
    assert "hạn nộp: hết ngày 09/05/2024 (hạn: trước ngày 10/5/2024)" in text and "Còn 3 ngày đến hạn nộp" in text
    assert "hạn cuối" not in text
    assert "https://tracker.example.vn/plans/bacgiang-2024/units/213" in text
    assert 'href="https://tracker.example.vn/plans/bacgiang-2024/units/213"' in first.html()
    assert first.message["Reply-To"] == "tuyetot_sldtbxh@bacgiang.gov.vn"

    digests = by_kind(smtp_server, "digest")
    assert len(digests) == 1 and set(digests[0].rcpt_tos) == STAFF
    assert "Huyện Hiệp Hòa | Miễn | Miễn báo cáo" in digests[0].text()
    assert digests[0].subject.endswith("0/9 đơn vị đã nộp đầy đủ")

    stored = rows(mail_app)
    assert len(stored) == 10 and {m.status for m in stored} == {"sent"}
    assert all(m.attempts == 1 and m.sent_at == datetime.fromisoformat(BEFORE) for m in stored)
    # The columns give enum members back, while the rows keep the plain strings stored before enums.
    assert [(type(m.kind), type(m.status)) for m in stored] == [(MessageKind, MessageStatus)] * 10
    with mail_app.app_context():
        assert sorted(db.session.execute(sql("SELECT DISTINCT kind || '/' || status FROM outbound_messages"))
                      .scalars()) == ["deadline_approaching/sent", "digest/sent"]

    again = send(mail_app, "--as-of", BEFORE)
    assert "Thư mới: 0; đã quyết định từ trước (không tạo lại): 10." in again.output
    later_same_step = send(mail_app, "--as-of", "2024-05-07T20:00+07:00")
    assert "Thư mới: 0" in later_same_step.output
    assert len(smtp_server.messages) == 10 and len(rows(mail_app)) == 10


def test_overdue_goes_only_to_units_without_a_complete_return(mail_app: Any, smtp_server: SmtpServer) -> None:
    add_version(mail_app, "213", 1, datetime.fromisoformat("2024-05-08T09:00+07:00"), complete=True)
    add_version(mail_app, "215", 1, datetime.fromisoformat("2024-05-09T23:59+07:00"), complete=True, warnings=2)
    add_version(mail_app, "216", 1, datetime.fromisoformat("2024-05-09T10:00+07:00"), complete=False, errors=3)

    send(mail_app, "--as-of", AFTER)
    overdue = by_kind(smtp_server, "overdue")
    got = sorted(r for m in overdue for r in m.rcpt_tos)
    assert got == [contact(c) for c in REQUIRED if c not in ("213", "215")]
    assert all(m.message["Cc"] is None for m in overdue)  # the department is copied from the 2nd one on
    incomplete = next(m for m in overdue if m.rcpt_tos == [contact("216")])
    assert "quá hạn 2 ngày" in incomplete.subject and "3 lỗi" in incomplete.text()

    smtp_server.clear()
    send(mail_app, "--as-of", "2024-05-14T08:00+07:00")
    second = by_kind(smtp_server, "overdue")
    assert len(second) == 7
    assert all(m.message["Cc"] == "tuyetot_sldtbxh@bacgiang.gov.vn" for m in second)
    assert all("tuyetot_sldtbxh@bacgiang.gov.vn" in m.rcpt_tos for m in second)
    assert all("nhắc lần 2" in m.subject for m in second)


def test_server_down_then_up_delivers_each_message_once(mail_app: Any, smtp_server: SmtpServer) -> None:
    mail_app.config["MAIL_PORT"] = free_port()  # nobody listens there
    started = time.monotonic()
    down = send(mail_app, "--as-of", BEFORE)
    assert time.monotonic() - started < mail_app.config["MAIL_TIMEOUT"] + 3
    assert "Đã gửi: 0; sẽ thử lại sau: 10; không gửi được: 0." in down.output
    assert "ConnectionRefusedError" in down.output
    stored = rows(mail_app)
    assert {m.status for m in stored} == {"pending"} and {m.attempts for m in stored} == {1}
    assert {m.next_attempt_at for m in stored} == {datetime.fromisoformat(BEFORE) + timedelta(minutes=5)}
    assert all("ConnectionRefusedError" in m.last_error for m in stored)
    assert smtp_server.messages == []

    too_early = send(mail_app, "--as-of", "2024-05-07T08:04+07:00")  # backoff not over yet
    assert "Đã gửi: 0; sẽ thử lại sau: 0" in too_early.output

    smtp_server.configure(mail_app)
    up = send(mail_app, "--as-of", "2024-05-07T09:00+07:00")
    assert "Đã gửi: 10" in up.output
    send(mail_app, "--as-of", "2024-05-07T10:00+07:00")
    keys = Counter(m.key for m in smtp_server.messages)
    assert len(keys) == 10 and set(keys.values()) == {1}
    stored = rows(mail_app)
    assert {m.status for m in stored} == {"sent"} and {m.attempts for m in stored} == {2}
    assert {m.last_error for m in stored} == {""}


def test_silent_server_ends_within_the_timeout(mail_app: Any) -> None:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(5)  # accepts TCP connections but never says a word
    try:
        mail_app.config.update(MAIL_PORT=listener.getsockname()[1], MAIL_TIMEOUT=0.5)
        started = time.monotonic()
        result = send(mail_app, "--as-of", BEFORE)
        assert time.monotonic() - started < 3
    finally:
        listener.close()
    assert "sẽ thử lại sau: 10" in result.output
    assert all("timed out" in m.last_error for m in rows(mail_app))


def test_message_failing_every_time_is_marked_failed(mail_app: Any) -> None:
    mail_app.config.update(MAIL_PORT=free_port(), MAIL_MAX_ATTEMPTS=2)
    send(mail_app, "--as-of", BEFORE)
    final = send(mail_app, "--as-of", "2024-05-07T09:00+07:00")
    assert "không gửi được: 10" in final.output
    stored = rows(mail_app)
    assert {m.status for m in stored} == {"failed"} and {m.attempts for m in stored} == {2}
    assert all(m.last_error.startswith("Không gửi được sau 2 lần thử") for m in stored)
    assert all(m.next_attempt_at is None for m in stored)
    assert "Đã gửi: 0; sẽ thử lại sau: 0; không gửi được: 0" in send(mail_app, "--as-of", "2024-05-07T12:00+07:00").output


def test_two_runs_at_the_same_moment_store_and_send_each_key_once(mail_app: Any, smtp_server: SmtpServer) -> None:
    as_of = datetime.fromisoformat(BEFORE)
    barrier = threading.Barrier(2)
    reports: list[reminders.RunReport] = []
    failures: list[BaseException] = []

    def worker() -> None:
        try:
            with mail_app.app_context():
                barrier.wait()
                reports.append(reminders.run(as_of))
        except BaseException as exc:  # surfaced below
            failures.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert failures == []
    assert sum(len(r.queued) for r in reports) == 10, [(len(r.queued), r.already_decided, r.problems, r.plans) for r in reports]
    assert sum(r.flush.sent for r in reports if r.flush) == 10
    with mail_app.app_context():
        per_key = db.session.execute(select(OutboundMessage.unit_key, OutboundMessage.kind, OutboundMessage.step,
                                            func.count()).group_by(OutboundMessage.unit_key, OutboundMessage.kind,
                                                                   OutboundMessage.step)).all()
    assert len(per_key) == 10 and {row[3] for row in per_key} == {1}
    assert sorted(Counter(m.key for m in smtp_server.messages).values()) == [1] * 10


def test_dry_run_prints_what_would_go_and_stores_nothing(mail_app: Any, smtp_server: SmtpServer) -> None:
    result = send(mail_app, "--as-of", BEFORE, "--dry-run")
    assert result.exit_code == 0
    assert "Chạy thử: 10 thư mới sẽ được tạo" in result.output
    for code in REQUIRED:
        assert f"{code} · Nhắc hạn nộp (d3) → {contact(code)}" in result.output
    assert f"{EXEMPT} ·" not in result.output
    assert rows(mail_app) == [] and smtp_server.messages == []

    runner = mail_app.test_cli_runner()
    unknown = runner.invoke(args=["send-reminders", "--plan", "khong-co"])
    assert unknown.exit_code != 0 and "Không tìm thấy kế hoạch mã «khong-co»" in unknown.output
    naive = runner.invoke(args=["send-reminders", "--as-of", "2024-05-07T08:00"])
    assert naive.exit_code != 0 and "múi giờ" in naive.output
    assert rows(mail_app) == [] and smtp_server.messages == []


def test_unit_without_contacts_is_logged_as_failed_and_can_be_retried(
        mail_app: Any, smtp_server: SmtpServer, client: Any, login_as: Any) -> None:
    with mail_app.app_context():
        unit_id = db.session.scalar(select(Unit.id).where(Unit.code == "220"))
        db.session.execute(delete(Contact).where(Contact.unit_id == unit_id))
        db.session.commit()
    result = send(mail_app, "--as-of", BEFORE)
    assert "220 · Nhắc hạn nộp (d3) → (không có người nhận) — KHÔNG GỬI ĐƯỢC: Đơn vị chưa có địa chỉ email liên hệ" \
        in result.output
    failed = [m for m in rows(mail_app) if m.status == MessageStatus.FAILED.value]
    assert [(m.unit_key, m.last_error, m.attempts) for m in failed] == [("220", NO_CONTACTS, 0)]
    assert len(smtp_server.messages) == 9

    login_as("staff")
    page = client.get("/mail-log?status=failed").get_data(as_text=True)
    assert NO_CONTACTS in page and "Gửi lại" in page

    login_as("admin")
    saved = client.post("/admin/units/220/contacts", data={"emails": "PhongLDTBXH@SonDong.BacGiang.gov.vn"})
    assert saved.status_code == 302
    client.post(f"/mail-log/{failed[0].id}/retry")
    assert smtp_server.messages[-1].rcpt_tos == ["phongldtbxh@sondong.bacgiang.gov.vn"]
    assert smtp_server.messages[-1].key == "bacgiang-2024/220/deadline_approaching/d3"
    assert next(m for m in rows(mail_app) if m.id == failed[0].id).status == "sent"


def test_digest_goes_to_active_staff_on_demand(mail_app: Any, smtp_server: SmtpServer, client: Any,
                                               login_as: Any) -> None:
    with mail_app.app_context():
        db.session.scalar(select(User).where(User.email == "canbo@demo.bacgiang.vn")).active = False
        assert contacts.staff_addresses() == ["admin@demo.bacgiang.vn"]
        db.session.scalar(select(User).where(User.email == "canbo@demo.bacgiang.vn")).active = True
        db.session.commit()
    add_version(mail_app, "219", 1, datetime.fromisoformat("2024-05-08T09:00+07:00"), complete=True)
    login_as("staff")
    response = client.post("/mail-log/digest", data={"plan": PLAN})
    assert response.status_code == 302
    digests = by_kind(smtp_server, "digest")
    assert len(digests) == 1 and set(digests[0].rcpt_tos) == STAFF
    assert "219 | Huyện Lục Ngạn | Phụ lục 03 | Đúng hạn" in digests[0].text()
    assert digests[0].key.startswith("bacgiang-2024/-/digest/manual-")
    assert "Bản tổng hợp: đã gửi 1 thư." in client.get("/mail-log").get_data(as_text=True)


def test_decide_digest_hour_plan_end_and_unique_keys(notify_app: Any) -> None:
    with notify_app.app_context():
        plan = db.session.scalar(select(Plan).where(Plan.code == PLAN))
        early, _ = reminders.decide(plan, datetime.fromisoformat("2024-05-07T06:59+07:00"))
        assert "digest" not in {d.kind for d in early}
        on_time, _ = reminders.decide(plan, datetime.fromisoformat("2024-05-07T07:00+07:00"))
        assert [d.step for d in on_time if d.kind == "digest"] == ["2024-05-07"]
        over, _ = reminders.decide(plan, datetime.fromisoformat("2024-07-01T08:00+07:00"))
        assert over == []

    # Deciding twice in one transaction: the unique key lets each message in once.
    as_of = datetime.fromisoformat(BEFORE)
    with notify_app.app_context():
        plan = db.session.scalar(select(Plan).where(Plan.code == PLAN))
        drafts, known = reminders.decide(plan, as_of)
        assert known == 0 and len(drafts) == 10
        assert [outbox.store(d, as_of) for d in drafts] == [True] * 10
        assert [outbox.store(d, as_of) for d in drafts] == [False] * 10  # the unique key holds
        db.session.commit()
        assert db.session.scalar(select(func.count()).select_from(OutboundMessage)) == 10
        assert reminders.decide(plan, as_of) == ([], 10)


def test_visit_approaching_goes_to_inspected_units_with_day_communes_and_sessions(mail_app: Any,
                                                                      smtp_server: SmtpServer) -> None:
    add_version(mail_app, "220", 1, datetime.fromisoformat("2024-05-09T10:00+07:00"), complete=True)
    send(mail_app, "--as-of", "2024-05-15T08:00+07:00")
    visits = by_kind(smtp_server, "visit_approaching")
    assert [m.rcpt_tos for m in visits] == [[contact("220")]]
    message = visits[0]
    assert message.subject == "[Sở LĐTBXH Bắc Giang] Lịch kiểm tra ngày 20/05/2024 – Huyện Sơn Động"
    text = message.text()
    assert "Ngày: 20/05/2024" in text and "Xã Phúc Sơn" in text and "Xã An Bá" in text
    assert "buổi sáng từ 07:00; buổi chiều từ 13:30" in text and "Đúng hạn" in text
    assert message.key == "bacgiang-2024/220/visit_approaching/2024-05-20"

    # Hiệp Hòa is exempt from the report but still inspected (06/06/2024): told of the visit, never chased.
    smtp_server.clear()
    send(mail_app, "--as-of", "2024-06-02T08:00+07:00")
    to_exempt = [m for m in smtp_server.messages if contact(EXEMPT) in m.rcpt_tos]
    assert [m.key.split("/")[2] for m in to_exempt] == ["visit_approaching"]
    assert "miễn gửi báo cáo" in to_exempt[0].text()
    visited = sorted(r for m in by_kind(smtp_server, "visit_approaching") for r in m.rcpt_tos)
    assert visited == [contact("222"), contact(EXEMPT)]  # Việt Yên's visit on 07/06 is 5 days away too


def test_receipt_arrives_with_the_sha256_of_the_upload(mail_app: Any, smtp_server: SmtpServer) -> None:
    digest = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
    with mail_app.app_context():
        assignment = db.session.scalar(select(Assignment).join(Unit).where(Unit.code == "219"))
        version = ReturnVersion(assignment=assignment, version=2, form_code="PL03", form_version=1,
                                file_kind="xlsx", filename="Báo cáo Lục Ngạn.xlsx", size=20480, sha256=digest,
                                received_at=datetime.fromisoformat("2024-05-08T14:30+07:00"), complete=False,
                                errors=4, warnings=1)
        db.session.add(version)
        assert reminders.queue_receipt(version) is True   # in the upload's transaction
        assert reminders.queue_receipt(version) is False  # same version, same key
        db.session.commit()
        report = outbox.flush_pending(10)
    assert report.sent == 1
    [receipt] = smtp_server.messages
    assert receipt.rcpt_tos == [contact("219")]
    assert receipt.subject == "[Sở LĐTBXH Bắc Giang] Đã nhận báo cáo phiên bản 2 (chưa đầy đủ) – Huyện Lục Ngạn"
    text = receipt.text()
    assert digest in text and digest in receipt.html()
    assert "chưa đầy đủ, 4 lỗi, 1 cảnh báo" in text and "08/05/2024 14:30" in text
    assert "https://tracker.example.vn/plans/bacgiang-2024/units/219/versions/2" in text


def test_returned_notice_carries_the_reason_and_what_to_do(mail_app: Any, smtp_server: SmtpServer) -> None:
    version_id = add_version(mail_app, "217", 1, datetime.fromisoformat("2024-05-08T09:00+07:00"), complete=True)
    with mail_app.app_context():
        review = Review(version_id=version_id, state="returned",
                        reason="Biểu 03: số trẻ em bị xâm hại theo hình thức không khớp tổng số.",
                        created_at=datetime.fromisoformat("2024-05-09T10:00+07:00"))
        db.session.add(review)
        assert reminders.queue_returned(review) is True
        db.session.commit()
        outbox.flush_pending(as_of=datetime.fromisoformat("2024-05-09T10:01+07:00"))
    [notice] = smtp_server.messages
    assert notice.subject.endswith("Báo cáo phiên bản 1 được trả lại để chỉnh sửa – Huyện Lạng Giang")
    text = notice.text()
    assert "Biểu 03: số trẻ em bị xâm hại theo hình thức không khớp tổng số." in text
    assert "Tải lên phiên bản mới tại: https://tracker.example.vn/plans/bacgiang-2024/units/217" in text
    assert notice.key.startswith("bacgiang-2024/217/returned/v1-r")


def test_header_with_crlf_in_a_stored_message_is_refused_not_sent(mail_app: Any, smtp_server: SmtpServer) -> None:
    with mail_app.app_context():
        plan = db.session.scalar(select(Plan).where(Plan.code == PLAN))
        db.session.add(OutboundMessage(plan_id=plan.id, unit_key="213", kind="receipt", step="v9",
                                       recipients=[contact("213")], cc=[], subject="Chào\r\nBcc: ke-xau@example.com",
                                       body_text="x", next_attempt_at=datetime.fromisoformat(BEFORE)))
        db.session.commit()
        report = outbox.flush_pending(as_of=datetime.fromisoformat(BEFORE))
    assert (report.sent, report.failed) == (0, 1)
    assert smtp_server.messages == []
    assert "xuống dòng" in rows(mail_app)[0].last_error


def test_without_smtp_server_messages_land_in_the_outbox_for_staff(notify_app: Any, client: Any,
                                                                   login_as: Any) -> None:
    result = send(notify_app, "--as-of", BEFORE)
    assert "Đã gửi: 10" in result.output
    stored = rows(notify_app)
    outbox = Path(notify_app.config["OUTBOX_DIR"])
    assert all(Path(m.eml_path).parent == outbox and Path(m.eml_path).is_file() for m in stored)

    login_as("staff")
    page = client.get("/mail-log").get_data(as_text=True)
    assert "instance/outbox/" in page and page.count(".eml<span") == 10
    # Written to the outbox is not sent: the log says which, with the unit's name instead of its code.
    assert page.count("Đã ghi vào hộp thư đi</span>") == 10 and ">Đã gửi</span>" not in page
    assert "Huyện Lục Ngạn" in page
    download = client.get(f"/mail-log/{stored[0].id}/eml")
    assert download.status_code == 200 and download.mimetype == "message/rfc822"
    assert download.data == Path(stored[0].eml_path).read_bytes()
    detail = client.get(f"/mail-log/{stored[0].id}").get_data(as_text=True)
    assert "Còn 3 ngày đến hạn nộp" in detail

    with notify_app.app_context():
        db.session.get(OutboundMessage, stored[0].id).eml_path = "/etc/passwd"
        db.session.commit()
    assert client.get(f"/mail-log/{stored[0].id}/eml").status_code == 404


def test_mail_log_is_for_department_staff(notify_app: Any, client: Any, login_as: Any) -> None:
    assert client.get("/mail-log").status_code == 302  # to the login page
    for who, expected in ((("unit", "219"), 403), (("staff",), 200), (("admin",), 200)):
        login_as(*who)
        assert client.get("/mail-log").status_code == expected, who
        assert client.post("/mail-log/digest", data={"plan": PLAN}).status_code == (403 if expected == 403 else 302)


def test_set_contacts_command_replaces_adds_and_validates(notify_app: Any) -> None:
    runner = notify_app.test_cli_runner()
    replaced = runner.invoke(args=["set-contacts", "218", "a@lucnam.gov.vn", "B@LucNam.gov.vn,a@lucnam.gov.vn"])
    assert replaced.exit_code == 0, replaced.output
    added = runner.invoke(args=["set-contacts", "218", "--add", "c@lucnam.gov.vn"])
    assert added.exit_code == 0
    bad = runner.invoke(args=["set-contacts", "218", "d@lucnam.gov.vn", "khong-hop-le@", "e@x.vn\r\nBcc: f@x.vn"])
    assert bad.exit_code != 0 and "Địa chỉ email «khong-hop-le@» không hợp lệ." in bad.output
    unknown = runner.invoke(args=["set-contacts", "999", "a@b.vn"])
    assert unknown.exit_code != 0 and "Không tìm thấy đơn vị mã «999»" in unknown.output
    with notify_app.app_context():
        emails = db.session.scalars(select(Contact.email).join(Unit).where(Unit.code == "218")
                                    .order_by(Contact.email)).all()
        events = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "contacts_changed")
                                    .order_by(AuditEvent.id)).all()
    assert emails == ["a@lucnam.gov.vn", "b@lucnam.gov.vn", "c@lucnam.gov.vn"]
    assert [(e.target, e.actor) for e in events] == [("218", "cli"), ("218", "cli")]
    assert events[0].detail == {"before": [contact("218")], "after": ["a@lucnam.gov.vn", "b@lucnam.gov.vn"]}


def test_admin_edits_contacts_on_a_form(notify_app: Any, client: Any, login_as: Any) -> None:
    login_as("staff")
    assert client.post("/admin/units/221/contacts", data={"emails": "x@y.vn"}).status_code == 403
    login_as("admin")
    form = client.get("/admin/units/221/contacts").get_data(as_text=True)
    assert contact("221") in form and 'name="emails"' in form
    bad = client.post("/admin/units/221/contacts", data={"emails": "tot@yendung.gov.vn\nxau@"})
    assert bad.status_code == 400 and "Địa chỉ email «xau@» không hợp lệ." in bad.get_data(as_text=True)
    ok = client.post("/admin/units/221/contacts",
                     data={"emails": "tot@yendung.gov.vn\nhai@yendung.gov.vn", "next": "//evil.example/x"})
    assert ok.status_code == 302 and ok.headers["Location"].endswith("/admin/units/221/contacts")
    with notify_app.app_context():
        unit = db.session.scalar(select(Unit).where(Unit.code == "221"))
        assert [c.email for c in unit.contacts] == ["hai@yendung.gov.vn", "tot@yendung.gov.vn"]
        event = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "contacts_changed")).one()
        assert event.actor == "admin@demo.bacgiang.vn" and event.target == "221"
