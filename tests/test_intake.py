"""Issue 19: returns that arrive by email, read from a real IMAP server (Dovecot) by ``ingest-mail``.

Each test starts its own Dovecot on a free loopback port with an empty maildir, delivers messages by
IMAP APPEND with an explicit INTERNALDATE (the time the mailbox received them), runs the command as
cron would, and looks at the database, the mailbox's flags and the replies an SMTP server received.
"""
from __future__ import annotations

import socket
import threading
import time
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import pytest
from sqlalchemy import func, select

from imap import Dovecot, dovecot  # noqa: F401  (the fixture)
from intake_fixtures import LUC_NGAN_CONTACT, PLAN, STAFF, XLSX, filled_return, make_email
from smtp import free_port
from tracker.extensions import db
from tracker.models import (AuditEvent, IntakeMessage, IntakeRecord, OutboundMessage, Plan, ReturnIssue,
                            ReturnVersion, Unit)
from tracker.standings import plan_standings

# The mailbox received these before the deadline (10/5/2024 00:00 +07:00); the senders' Date headers lie.
ARRIVED = datetime(2024, 5, 9, 3, 0, tzinfo=UTC)  # 09/05/2024 10:00 in Vietnam
CLIENT_DATE = datetime(2024, 5, 11, 8, 0, tzinfo=UTC)
STRANGER = "nguyenvana.lucngan@gmail.com"


def run(app: Any, *args: str) -> Any:
    return app.test_cli_runner().invoke(args=["ingest-mail", *args])


def count(app: Any, model: Any, *where: Any) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model).where(*where))


def replies(app: Any) -> list[OutboundMessage]:
    with app.app_context():
        rows = db.session.scalars(select(OutboundMessage).where(OutboundMessage.kind == "intake_reply")
                                  .order_by(OutboundMessage.id)).all()
        db.session.expunge_all()
        return list(rows)


def status_of(app: Any, unit_code: str) -> str:
    with app.app_context():
        plan = db.session.scalar(select(Plan).where(Plan.code == PLAN))
        unit = db.session.scalar(select(Unit).where(Unit.code == unit_code))
        return plan_standings(plan, datetime.now(UTC), unit_ids=[unit.id])[0].standing.status.value


def flags(server: Dovecot, folder: str = "INBOX") -> list[bytes]:
    # \Recent belongs to the session that first sees a message, not to the message.
    return [line.replace(b"\\Recent", b"").replace(b"( ", b"(").replace(b" )", b")")
            for _, line in server.folder_state(folder)]


@pytest.fixture
def mail_app(app: Any, dovecot: Dovecot, smtp_server: Any) -> Any:  # noqa: F811
    dovecot.configure(app)
    smtp_server.configure(app)
    return app


def test_a_contacts_return_is_counted_with_the_mailboxs_arrival_time(mail_app, dovecot, smtp_server):  # noqa: F811
    data = filled_return(mail_app, "219")
    raw = make_email(LUC_NGAN_CONTACT, [("Bao-cao-Luc-Ngan.xlsx", data, XLSX)], message_id="<bc219@demo.bacgiang.vn>",
                     date=CLIENT_DATE)
    dovecot.deliver(raw, ARRIVED)
    assert status_of(mail_app, "219") == "overdue"

    result = run(mail_app)
    assert result.exit_code == 0, result.output
    assert "Đã nhận [219], phiên bản 1" in result.output
    with mail_app.app_context():
        version = db.session.scalar(select(ReturnVersion))
        assert version.source == "email" and version.sender == LUC_NGAN_CONTACT
        assert version.received_at == ARRIVED  # INTERNALDATE, not the Date header nor the time of the run
        assert version.message_date == CLIENT_DATE and version.message_id == "<bc219@demo.bacgiang.vn>"
        assert version.assignment.unit.code == "219" and version.complete and version.file.content == data
        record = db.session.scalar(select(IntakeRecord))
        assert (record.state, record.version_id, record.unit.code) == ("accepted", version.id, "219")
    assert status_of(mail_app, "219") == "on_time"
    assert any(b"$TrackerProcessed" in line for line in flags(dovecot))
    sent = [m for m in smtp_server.messages if LUC_NGAN_CONTACT in m.rcpt_tos]
    assert len(sent) == 1 and "Đã nhận" in sent[0].text() and "Phiên bản 1" in sent[0].text()
    assert "09/05/2024 10:00" in sent[0].text()


def test_the_same_message_read_again_or_the_command_run_twice_makes_nothing_more(mail_app, dovecot, smtp_server):  # noqa: F811
    raw = make_email(LUC_NGAN_CONTACT, [("bao-cao.xlsx", filled_return(mail_app, "219"), XLSX)])
    dovecot.deliver(raw, ARRIVED)
    dovecot.deliver(raw, ARRIVED + timedelta(minutes=5))  # the client sent it twice
    assert run(mail_app).exit_code == 0
    first = (count(mail_app, ReturnVersion), count(mail_app, IntakeRecord), count(mail_app, IntakeMessage),
             len(replies(mail_app)), len(smtp_server.messages))
    assert first == (1, 1, 1, 1, 1)

    again = run(mail_app)
    assert again.exit_code == 0 and "Thư đã đọc: 0" in again.output
    # Someone marks everything unread in a mail client: the mailbox is read again from scratch.
    client = dovecot.client()
    client.select("INBOX")
    client.uid("STORE", "1:*", "-FLAGS", "($TrackerProcessed)")
    client.logout()
    reread = run(mail_app)
    assert reread.exit_code == 0 and "đã xử lý từ trước: 2" in reread.output
    assert (count(mail_app, ReturnVersion), count(mail_app, IntakeRecord), count(mail_app, IntakeMessage),
            len(replies(mail_app)), len(smtp_server.messages)) == first
    with mail_app.app_context():
        assert db.session.scalar(select(ReturnVersion)).received_at == ARRIVED  # the first arrival counts


def test_an_unknown_sender_is_held_and_counts_only_after_staff_confirm(mail_app, dovecot, smtp_server, client,  # noqa: F811
                                                                      login_as, token_for):
    data = filled_return(mail_app, "219")
    dovecot.deliver(make_email(STRANGER, [("bao-cao.xlsx", data, XLSX)], date=CLIENT_DATE), ARRIVED)
    result = run(mail_app)
    assert result.exit_code == 0 and "Chờ xác nhận [219]" in result.output
    assert count(mail_app, ReturnVersion) == 0
    assert status_of(mail_app, "219") == "overdue"
    held = [m for m in smtp_server.messages if STRANGER in m.rcpt_tos]
    assert len(held) == 1 and "chưa được đăng ký là địa chỉ liên hệ của Huyện Lục Ngạn" in held[0].text()

    login_as("staff")
    page = client.get("/intake").get_data(as_text=True)
    assert "Thư chờ xác nhận (1)" in page and STRANGER in page and "Huyện Lục Ngạn (mã 219)" in page
    assert "(bacgiang-2024)</small>" in page  # the plan it claims: a unit may be in last year's plan too
    api = client.get("/api/v1/intake?state=held", headers={"Authorization": f"Bearer {token_for('staff')}"})
    (row,) = api.get_json()["records"]
    assert (row["state"], row["sender"], row["unit"], row["version"]) == ("held", STRANGER, "219", None)
    assert row["received_at"] == ARRIVED.isoformat()

    response = client.post(f"/intake/{row['id']}/confirm")
    assert response.status_code == 303
    with mail_app.app_context():
        version = db.session.scalar(select(ReturnVersion))
        assert version.received_at == ARRIVED and version.source == "email" and version.sender == STRANGER
        record = db.session.get(IntakeRecord, row["id"])
        assert record.state == "accepted" and record.version_id == version.id and record.content is None
        assert record.decided_by.email == STAFF
    assert status_of(mail_app, "219") == "on_time"  # on time: the mailbox had it before the deadline
    # A second click finds nothing held and stores nothing more.
    assert client.post(f"/intake/{row['id']}/confirm").status_code == 303
    assert count(mail_app, ReturnVersion) == 1
    assert "Thư này không ở trạng thái chờ xác nhận" in client.get("/intake").get_data(as_text=True)
    # The unit's contacts get the normal receipt; the stranger got exactly one reply.
    assert len([m for m in smtp_server.messages if STRANGER in m.rcpt_tos]) == 1
    assert any(LUC_NGAN_CONTACT in m.rcpt_tos and "Đã nhận báo cáo phiên bản 1" in m.subject
               for m in smtp_server.messages)


def test_a_held_return_can_be_refused_by_staff(mail_app, dovecot, client, login_as):  # noqa: F811
    dovecot.deliver(make_email(STRANGER, [("bao-cao.xlsx", filled_return(mail_app, "218"), XLSX)]), ARRIVED)
    assert run(mail_app).exit_code == 0
    with mail_app.app_context():
        record_id = db.session.scalar(select(IntakeRecord.id))
    login_as("staff")
    assert client.post(f"/intake/{record_id}/reject", data={"reason": "Không phải cán bộ huyện"}).status_code == 303
    with mail_app.app_context():
        record = db.session.get(IntakeRecord, record_id)
        assert record.state == "refused" and "Không phải cán bộ huyện" in record.reason and record.content is None
    assert client.post(f"/intake/{record_id}/confirm").status_code == 303
    assert count(mail_app, ReturnVersion) == 0


def test_an_attachment_with_errors_gets_one_reply_listing_them(mail_app, dovecot, smtp_server):  # noqa: F811
    data = filled_return(mail_app, "219", {("B01", "children_0_6", "base_total"): "mười hai",
                                           ("B01", "communes", "base_total"): None})
    dovecot.deliver(make_email(LUC_NGAN_CONTACT, [("bao-cao.xlsx", data, XLSX)]), ARRIVED)
    assert run(mail_app).exit_code == 0
    assert run(mail_app).exit_code == 0
    with mail_app.app_context():
        version = db.session.scalar(select(ReturnVersion))
        assert not version.complete and version.errors >= 2
        issues = db.session.scalars(select(ReturnIssue).where(ReturnIssue.version_id == version.id,
                                                              ReturnIssue.severity == "error")).all()
        expected = [(i.cell, i.message) for i in issues]
    sent = [m for m in smtp_server.messages if LUC_NGAN_CONTACT in m.rcpt_tos]
    assert len(sent) == 1
    text = sent[0].text()
    assert "chưa đầy đủ" in text and "Trang tính «" in text
    for cell, message in expected:  # every error, at its cell, in the result page's own words
        assert f"ô {cell}" in text and message in text
    assert expected and len(replies(mail_app)) == 1


def test_a_refused_attachment_gets_the_upload_pages_words(mail_app, dovecot, smtp_server):  # noqa: F811
    # Lục Nam's form sent by Lục Ngạn's contact: the sender may not speak for Lục Nam.
    other = filled_return(mail_app, "218")
    not_a_workbook = b"PK\x03\x04 this is not a workbook"
    dovecot.deliver(make_email(LUC_NGAN_CONTACT, [("hong.xlsx", not_a_workbook, XLSX),
                                                  ("luc-nam.xlsx", other, XLSX)]), ARRIVED)
    assert run(mail_app).exit_code == 0
    with mail_app.app_context():
        states = dict(db.session.execute(select(IntakeRecord.filename, IntakeRecord.state)).all())
    assert states == {"hong.xlsx": "refused", "luc-nam.xlsx": "held"}
    (reply,) = [m for m in smtp_server.messages if LUC_NGAN_CONTACT in m.rcpt_tos]
    from tracker.guard import Refusal, inspect

    with pytest.raises(Refusal) as refused:
        inspect(not_a_workbook, "hong.xlsx")
    assert refused.value.message.split(".")[0] in reply.text()


@pytest.mark.parametrize(("attachments", "body", "reason"), [
    ([("bao-cao.xlsm", b"PK\x03\x04macro", ("application", "vnd.ms-excel.sheet.macroEnabled.12"))],
     "Gửi Sở báo cáo.", "bảng tính có macro (.xlsm)"),
    ([], "Kính gửi Sở, báo cáo ở đây: https://drive.google.com/file/d/1AbC/view?usp=sharing", "drive.google.com"),
    ([("bao-cao-ky.pdf", b"%PDF-1.7 signed", ("application", "pdf"))], "Gửi bản ký.", "chỉ có tệp PDF"),
    ([("bao-cao.zip", b"PK\x03\x04zip", ("application", "zip"))], "Gửi tệp nén.", "tệp nén"),
], ids=["xlsm", "cloud-link", "pdf-only", "zip"])
def test_a_message_with_no_usable_attachment_is_listed_and_answered_once(mail_app, dovecot, smtp_server,  # noqa: F811
                                                                          client, login_as, attachments, body,
                                                                          reason):
    dovecot.deliver(make_email(LUC_NGAN_CONTACT, attachments, body=body), ARRIVED)
    assert run(mail_app).exit_code == 0
    assert run(mail_app).exit_code == 0
    with mail_app.app_context():
        (record,) = db.session.scalars(select(IntakeRecord)).all()
        assert record.state == "ignored" and reason in record.reason
        assert "Hãy" in record.reason  # says what to send instead
    (reply,) = [m for m in smtp_server.messages if LUC_NGAN_CONTACT in m.rcpt_tos]
    assert reason in reply.text() and "Bỏ qua" in reply.text()
    login_as("staff")
    page = client.get("/intake?state=ignored").get_data(as_text=True)
    assert reason in page and LUC_NGAN_CONTACT in page
    assert count(mail_app, ReturnVersion) == 0


def test_vietnamese_attachment_names_survive(mail_app, dovecot, token_for, client):  # noqa: F811
    rfc2231 = "Báo cáo Lục Ngạn – Phụ lục 03 (đã ký).xlsx"
    data = filled_return(mail_app, "219")
    dovecot.deliver(make_email(LUC_NGAN_CONTACT, [(rfc2231, data, XLSX)]), ARRIVED)
    # An older client: the name as an RFC 2047 encoded word in both parameters, decomposed (macOS NFD).
    import unicodedata
    from email.header import Header

    message = EmailMessage()
    message["From"] = STAFF
    message["Subject"] = "Báo cáo Lục Nam"
    message["Message-ID"] = "<old-client@demo.bacgiang.vn>"
    message.set_content("Gửi báo cáo.")
    encoded_name = "Huyện Lục Nam — báo cáo.xlsx"
    message.add_attachment(filled_return(mail_app, "218"), maintype=XLSX[0], subtype=XLSX[1], filename="x.xlsx")
    part = message.get_payload()[1]
    word = Header(unicodedata.normalize("NFD", encoded_name), "utf-8").encode()
    del part["Content-Disposition"]
    part["Content-Disposition"] = f'attachment; filename="{word}"'
    part.set_param("name", word)
    dovecot.deliver(message.as_bytes(), ARRIVED)

    assert run(mail_app).exit_code == 0
    with mail_app.app_context():
        names = {v.assignment.unit.code: v.filename for v in db.session.scalars(select(ReturnVersion))}
    assert names == {"219": rfc2231, "218": encoded_name}
    body = client.get("/api/v1/intake", headers={"Authorization": f"Bearer {token_for('staff')}"}).get_json()
    assert {r["filename"] for r in body["records"]} == {rfc2231, encoded_name}
    assert {r["state"] for r in body["records"]} == {"accepted"}  # staff's own address is trusted


def test_imaps_with_a_processed_folder_moves_and_never_deletes(mail_app, dovecot):  # noqa: F811
    dovecot.configure(mail_app, security="ssl", processed_folder="Processed")
    dovecot.deliver(make_email(LUC_NGAN_CONTACT, [("bao-cao.xlsx", filled_return(mail_app, "219"), XLSX)]), ARRIVED)
    result = run(mail_app)
    assert result.exit_code == 0, result.output
    assert flags(dovecot, "INBOX") == []
    (moved,) = flags(dovecot, "Processed")
    assert b"$TrackerProcessed" in moved and b"\\Deleted" not in moved
    assert count(mail_app, ReturnVersion) == 1


def test_starttls_reads_the_mailbox(mail_app, dovecot):  # noqa: F811
    dovecot.configure(mail_app, security="starttls")
    dovecot.deliver(make_email(LUC_NGAN_CONTACT, [], body="Không có tệp."), ARRIVED)
    result = run(mail_app)
    assert result.exit_code == 0, result.output
    assert count(mail_app, IntakeRecord, IntakeRecord.state == "ignored") == 1


def test_dry_run_stores_flags_and_sends_nothing(mail_app, dovecot, smtp_server):  # noqa: F811
    dovecot.deliver(make_email(LUC_NGAN_CONTACT, [("bao-cao.xlsx", filled_return(mail_app, "219"), XLSX)]), ARRIVED)
    dovecot.deliver(make_email(STRANGER, [("bao-cao.xlsx", filled_return(mail_app, "218"), XLSX)]), ARRIVED)
    before = flags(dovecot)
    result = run(mail_app, "--dry-run")
    assert result.exit_code == 0, result.output
    assert "sẽ nhận [219]" in result.output and "sẽ chờ Sở xác nhận [218]" in result.output
    assert flags(dovecot) == before and all(b"$TrackerProcessed" not in line for line in before)
    assert (count(mail_app, IntakeMessage), count(mail_app, ReturnVersion), len(smtp_server.messages)) == (0, 0, 0)


# ------------------------------------------------------------------------------ a server that stops answering

class FreezingProxy:
    """Forwards a client to Dovecot, then stops forwarding anything once the client sends ``trigger``."""

    def __init__(self, upstream: int, trigger: bytes) -> None:
        self.port = free_port()
        self.upstream = upstream
        self.trigger = trigger
        self.frozen = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._sockets: list[socket.socket] = [self._listener]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        try:
            client, _ = self._listener.accept()
        except OSError:
            return
        server = socket.create_connection(("127.0.0.1", self.upstream))
        self._sockets += [client, server]
        threading.Thread(target=self._pipe, args=(client, server, True), daemon=True).start()
        threading.Thread(target=self._pipe, args=(server, client, False), daemon=True).start()

    def _pipe(self, source: socket.socket, target: socket.socket, from_client: bool) -> None:
        try:
            while chunk := source.recv(65536):
                if from_client and self.trigger in chunk:
                    self.frozen.set()
                if not self.frozen.is_set():
                    target.sendall(chunk)
        except OSError:
            return

    def close(self) -> None:
        for sock in self._sockets:
            sock.close()


def test_an_imap_server_that_stops_answering_ends_the_run_and_loses_nothing(mail_app, dovecot):  # noqa: F811
    for unit in ("219", "218"):
        sender = LUC_NGAN_CONTACT if unit == "219" else "ldtbxh218@demo.bacgiang.vn"
        dovecot.deliver(make_email(sender, [("bao-cao.xlsx", filled_return(mail_app, unit), XLSX)]), ARRIVED)
    # The server goes silent when asked to flag the first message, after its return was stored.
    proxy = FreezingProxy(dovecot.port, b"STORE")
    mail_app.config.update(INTAKE_IMAP_PORT=proxy.port, INTAKE_IMAP_TIMEOUT=1.0)
    started = time.monotonic()
    try:
        result = run(mail_app)
    finally:
        proxy.close()
    assert time.monotonic() - started < 30
    assert result.exit_code == 1
    assert "không trả lời trong 1 giây" in result.output and "vẫn nằm nguyên trong hộp thư" in result.output
    assert "stopped answering" in result.output
    assert count(mail_app, ReturnVersion) == 1  # the first return is stored; its message was not flagged
    assert all(b"$TrackerProcessed" not in line for line in flags(dovecot))

    # The whole server freezes (SIGSTOP): the connection is accepted but nobody greets.
    dovecot.freeze()
    try:
        mail_app.config.update(INTAKE_IMAP_PORT=dovecot.port)
        frozen = run(mail_app)
    finally:
        dovecot.thaw()
    assert frozen.exit_code == 1 and "không trả lời" in frozen.output
    assert count(mail_app, ReturnVersion) == 1

    # Back to normal: the next run reads both messages; the first one does not count twice.
    mail_app.config.update(INTAKE_IMAP_TIMEOUT=5.0)
    again = run(mail_app)
    assert again.exit_code == 0, again.output
    assert count(mail_app, ReturnVersion) == 2 and count(mail_app, IntakeRecord) == 2
    assert all(b"$TrackerProcessed" in line for line in flags(dovecot))
    assert len(replies(mail_app)) == 2


def test_a_server_that_greets_and_then_goes_silent(mail_app):
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    held: list[socket.socket] = []

    def greet_and_hang() -> None:
        conn, _ = listener.accept()
        conn.sendall(b"* OK IMAP4rev1 ready\r\n")
        held.append(conn)  # reads nothing, answers nothing

    threading.Thread(target=greet_and_hang, daemon=True).start()
    mail_app.config.update(INTAKE_IMAP_HOST="127.0.0.1", INTAKE_IMAP_PORT=port, INTAKE_IMAP_SECURITY="none",
                           INTAKE_IMAP_USER="x", INTAKE_IMAP_PASSWORD="y", INTAKE_IMAP_TIMEOUT=0.5)
    try:
        result = run(mail_app)
    finally:
        for sock in held + [listener]:
            sock.close()
    assert result.exit_code == 1
    assert f"Máy chủ thư 127.0.0.1:{port} không trả lời trong 0.5 giây" in result.output
    assert count(mail_app, IntakeMessage) == 0 and count(mail_app, AuditEvent, AuditEvent.action.like("intake%")) == 0


# ------------------------------------------------------------------------------ the signed report beside it

def test_a_signed_report_beside_the_return_goes_to_the_signed_report_path(mail_app, dovecot, client, login_as):  # noqa: F811
    import pdf_fixtures
    from tracker.models import SignedReport

    pdf = pdf_fixtures.make_pdf(pages=2)
    dovecot.deliver(make_email(LUC_NGAN_CONTACT, [("bao-cao.xlsx", filled_return(mail_app, "219"), XLSX),
                                                  ("Báo cáo đã ký.pdf", pdf, ("application", "pdf"))]), ARRIVED)
    dovecot.deliver(make_email(STRANGER, [("bao-cao.xlsx", filled_return(mail_app, "218"), XLSX),
                                          ("ky.pdf", pdf_fixtures.make_pdf(pages=1), ("application", "pdf"))]), ARRIVED)
    dovecot.deliver(make_email(LUC_NGAN_CONTACT, [("bao-cao-2.xlsx", filled_return(mail_app, "219", {
        ("B01", "communes", "base_total"): None}), XLSX), ("js.pdf", pdf_fixtures.with_javascript(),
                                                            ("application", "pdf"))]), ARRIVED)
    result = run(mail_app)
    assert result.exit_code == 0, result.output
    with mail_app.app_context():
        (report,) = db.session.scalars(select(SignedReport)).all()
        assert (report.assignment.unit.code, report.pages, report.filename) == ("219", 2, "Báo cáo đã ký.pdf")
        assert report.received_at == ARRIVED and report.content == pdf
        states = {r.filename: (r.state, r.reason) for r in db.session.scalars(select(IntakeRecord))}
    assert states["Báo cáo đã ký.pdf"] == ("accepted", "Đã nhận báo cáo đã ký (lần 1, 2 trang).")
    assert states["ky.pdf"][0] == "held" and states["bao-cao.xlsx"][0] in ("accepted", "held")
    assert states["js.pdf"][0] == "refused" and states["js.pdf"][1]

    login_as("staff")
    with mail_app.app_context():
        held_pdf = db.session.scalar(select(IntakeRecord.id).where(IntakeRecord.filename == "ky.pdf"))
    assert client.post(f"/intake/{held_pdf}/confirm").status_code == 303
    with mail_app.app_context():
        lucnam = db.session.scalar(select(SignedReport).join(SignedReport.assignment).join(Unit)
                                   .where(Unit.code == "218"))
        assert lucnam is not None and lucnam.received_at == ARRIVED
        assert db.session.get(IntakeRecord, held_pdf).state == "accepted"
