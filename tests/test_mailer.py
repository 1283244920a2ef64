"""Building and delivering email: CR/LF guard, Vietnamese headers, one connection per batch, the outbox."""
from __future__ import annotations

import time
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import pytest
from smtp import SmtpServer, free_port

from tracker import mailer
from tracker.mailer import HeaderInjection, build_message, deliver, encode_subject

SUBJECT = "[Sở LĐTBXH Bắc Giang] Tổng hợp tình hình nộp báo cáo ngày 07/05/2024: 0/9 đơn vị đã nộp đầy đủ"


@pytest.mark.parametrize("field, value", [
    ("subject", "Nhắc hạn\r\nBcc: ke-xau@example.com"),
    ("subject", "Nhắc hạn\nX-Evil: 1"),
    ("recipients", ["ldtbxh213@demo.bacgiang.vn\r\nBcc: ke-xau@example.com"]),
    ("cc", ["ok@example.vn", "x@example.vn\rBcc: y@example.com"]),
    ("reply_to", "a@example.vn\nBcc: y@example.com"),
    ("headers", {"X-Tracker-Key": "a\r\nBcc: y@example.com"}),
    ("headers", {"X-Bad\r\nBcc": "y@example.com"}),
    ("headers", {"X Bad": "name with a space"}),
])
def test_header_values_with_cr_or_lf_are_refused(app: Any, field: str, value: Any) -> None:
    arguments: dict[str, Any] = {"subject": "Thư", "recipients": ["a@example.vn"], "text": "Nội dung"}
    arguments[field] = value
    with app.app_context(), pytest.raises(HeaderInjection):
        build_message(**arguments)


def test_sender_from_settings_with_cr_lf_is_refused(app: Any) -> None:
    app.config["MAIL_DEFAULT_SENDER"] = "Sở <a@example.vn>\r\nBcc: y@example.com"
    with app.app_context(), pytest.raises(HeaderInjection):
        build_message("Thư", ["a@example.vn"], "x")


@pytest.mark.parametrize("subject", [
    SUBJECT,
    "Đã nhận báo cáo phiên bản 12 (chưa đầy đủ) – Thị xã Việt Yên",
    "a" * 30 + " Đ " + "b" * 30 + " ơ ư ă â ê ô " * 12,
    "Only ASCII here, long enough to be folded by the generator at some point or other, surely",
])
def test_subject_round_trips_with_every_space_and_short_lines(app: Any, subject: str) -> None:
    with app.app_context():
        raw = build_message(subject, ["a@example.vn"], "Chào", "<p>Chào</p>").as_bytes()
    assert message_from_bytes(raw, policy=policy.default)["Subject"] == subject
    head = raw.split(b"\r\n\r\n")[0]
    assert all(len(line) <= 78 for line in head.split(b"\r\n"))


def test_the_wire_form_keeps_every_header_short_and_every_value_whole(app: Any) -> None:
    # Written with compat32 and CRLF (the modern generator refolded every header: half a national reminder run).
    recipients = [f"Nguyễn Văn Ánh {i} <donvi{i}@demo.bacgiang.vn>" for i in range(40)]
    with app.app_context():
        message = build_message(SUBJECT, recipients, "Kính gửi\nnội dung", "<p>Kính gửi</p>",
                                cc=["Phòng Trẻ em và Bình đẳng giới <treem@demo.bacgiang.vn>"],
                                reply_to="Sở LĐTBXH Bắc Giang <so@demo.bacgiang.vn>",
                                headers={"X-Tracker-Key": "bacgiang-2024/219/deadline_approaching/d3"})
        message.msgId = "<reminder.d3.219@tracker.example.vn>"  # as the outbox sets it
        raw = message.as_bytes()
    assert b"\n" not in raw.replace(b"\r\n", b"")  # CRLF only, as SMTP wants
    head = raw.split(b"\r\n\r\n")[0]
    assert all(len(line) <= 78 for line in head.split(b"\r\n"))
    parsed = message_from_bytes(raw, policy=policy.default)
    assert parsed["Subject"] == SUBJECT and parsed["Message-ID"] == "<reminder.d3.219@tracker.example.vn>"
    assert parsed["X-Tracker-Key"] == "bacgiang-2024/219/deadline_approaching/d3"
    assert sorted((a.display_name, a.addr_spec) for a in parsed["To"].addresses) == sorted(
        (f"Nguyễn Văn Ánh {i}", f"donvi{i}@demo.bacgiang.vn") for i in range(40))
    assert parsed["Cc"].addresses[0].display_name == "Phòng Trẻ em và Bình đẳng giới"
    assert parsed["Reply-To"].addresses[0].display_name == "Sở LĐTBXH Bắc Giang"
    assert parsed.get_body(("plain",)).get_content().replace("\r\n", "\n").rstrip("\n") == "Kính gửi\nnội dung"


def test_encoded_words_never_split_a_character() -> None:
    encoded = encode_subject("Đ" * 100)
    assert encoded.count("=?utf-8?b?") > 1
    assert all(len(line) <= 78 - len("Subject: ") for line in encoded.split("\r\n "))
    assert str(message_from_bytes(f"Subject: {encoded}\r\n\r\n".encode(), policy=policy.default)["Subject"]) \
        == "Đ" * 100


def test_batch_goes_over_one_connection_and_long_lines_are_wrapped(app: Any, smtp_server: SmtpServer) -> None:
    smtp_server.configure(app)
    long_html = "<table>" + "<tr><td>Huyện Hiệp Hòa</td><td>Miễn báo cáo</td></tr>" * 80 + "</table>"
    with app.app_context():
        messages = [build_message(f"Thư số {n} – Bắc Giang", [f"donvi{n}@example.vn"], f"Nội dung {n}",
                                  long_html, cc=["so@example.vn"]) for n in range(3)]
        results = deliver(messages)
    assert [r.error for r in results] == [None, None, None]
    received = smtp_server.messages
    assert [m.subject for m in received] == ["Thư số 0 – Bắc Giang", "Thư số 1 – Bắc Giang", "Thư số 2 – Bắc Giang"]
    assert len({m.peer for m in received}) == 1  # one SMTP session carried the whole batch
    assert sorted(received[0].rcpt_tos) == ["donvi0@example.vn", "so@example.vn"]
    assert str(received[0].message["From"]) == "Sở LĐTBXH Bắc Giang <no-reply@sldtbxh.bacgiang.gov.vn>"
    assert received[0].html() == long_html  # wrapped by quoted-printable on the wire, intact when read
    assert max(len(line) for line in received[0].raw.split(b"\r\n")) <= 998


def test_unreachable_server_marks_every_message_undelivered(app: Any) -> None:
    app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=free_port(), MAIL_TIMEOUT=1.0)
    with app.app_context():
        messages = [build_message("Thư", ["a@example.vn"], "x"), build_message("Thư 2", ["b@example.vn"], "y")]
        started = time.monotonic()
        results = deliver(messages)
    assert time.monotonic() - started < 2
    assert all(r.error and "ConnectionRefusedError" in r.error for r in results)


def test_ssl_setting_against_a_plain_server_fails_fast(app: Any, smtp_server: SmtpServer) -> None:
    smtp_server.configure(app)
    app.config.update(MAIL_USE_SSL=True, MAIL_TIMEOUT=1.0)
    with app.app_context():
        started = time.monotonic()
        [result] = deliver([build_message("Thư", ["a@example.vn"], "x")])
    assert time.monotonic() - started < 3
    assert result.error is not None and smtp_server.messages == []


def test_starttls_refused_by_a_server_without_it_is_reported(app: Any, smtp_server: SmtpServer) -> None:
    smtp_server.configure(app)
    app.config.update(MAIL_USE_TLS=True)
    with app.app_context():
        [result] = deliver([build_message("Thư", ["a@example.vn"], "x")])
    assert result.error is not None and "STARTTLS" in result.error
    assert smtp_server.messages == []


def test_without_a_server_messages_are_written_to_the_outbox(app: Any) -> None:
    with app.app_context():
        [result] = deliver([build_message(SUBJECT, ["a@example.vn"], "Nội dung có dấu: Đồi Ngô", "<p>Đồi Ngô</p>")])
        link = mailer.public_url("/plans/bacgiang-2024/dashboard")
    assert result.error is None
    path = Path(result.eml_path)
    assert path.parent == Path(app.config["OUTBOX_DIR"]) and path.suffix == ".eml"
    parsed = message_from_bytes(path.read_bytes(), policy=policy.default)
    assert parsed["Subject"] == SUBJECT
    assert "Đồi Ngô" in parsed.get_body(("plain",)).get_content()
    assert link == "https://tracker.example.vn/plans/bacgiang-2024/dashboard"
