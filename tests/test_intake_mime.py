"""Issue 19: reading the intake mailbox's messages safely (tracker.intake_mime, standard library only)."""
from __future__ import annotations

import base64
from datetime import UTC, datetime
from email.message import EmailMessage

from tracker.intake_mime import (PDF, SPREADSHEET, UNUSABLE, MimeLimits, classify, cloud_links, read_message)

XLSX = ("application", "vnd.openxmlformats-officedocument.spreadsheetml.sheet")


def message(sender: str = "ldtbxh219@demo.bacgiang.vn", body: str = "Gửi Sở.") -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = f"Phòng LĐTBXH Lục Ngạn <{sender}>"
    msg["To"] = "tuyetot_sldtbxh@bacgiang.gov.vn"
    msg["Subject"] = "Báo cáo năm 2024"
    msg["Message-ID"] = "<m1@demo.bacgiang.vn>"
    msg["Date"] = "Sat, 11 May 2024 15:00:00 +0700"
    msg.set_content(body)
    return msg


def test_headers_and_an_rfc2231_vietnamese_filename():
    msg = message()
    msg.add_attachment(b"PK\x03\x04data", maintype=XLSX[0], subtype=XLSX[1], filename="Báo cáo Lục Ngạn.xlsx")
    raw = msg.as_bytes()
    assert b"filename*=utf-8''" in raw  # the client wrote RFC 2231
    mail = read_message(raw)
    assert (mail.message_id, mail.sender, mail.sender_name) == ("<m1@demo.bacgiang.vn>", "ldtbxh219@demo.bacgiang.vn",
                                                               "Phòng LĐTBXH Lục Ngạn")
    assert mail.subject == "Báo cáo năm 2024" and mail.date == datetime(2024, 5, 11, 8, 0, tzinfo=UTC)
    (att,) = mail.attachments
    assert (att.filename, att.kind, att.data, att.usable) == ("Báo cáo Lục Ngạn.xlsx", SPREADSHEET, b"PK\x03\x04data",
                                                              True)


def test_an_encoded_word_filename_in_nfd_comes_out_nfc():
    raw = ("From: a@b.vn\r\nSubject: x\r\nMessage-ID: <e@b.vn>\r\nMIME-Version: 1.0\r\n"
           "Content-Type: multipart/mixed; boundary=BB\r\n\r\n--BB\r\nContent-Type: text/plain\r\n\r\nhi\r\n--BB\r\n"
           "Content-Type: application/vnd.ms-excel; name=\"=?utf-8?b?" +
           base64.b64encode("Hiệp Hòa.xls".encode()).decode() + "?=\"\r\nContent-Transfer-Encoding: base64\r\n"
           "Content-Disposition: attachment\r\n\r\n" + base64.b64encode(b"\xd0\xcf\x11\xe0").decode() +
           "\r\n--BB--\r\n").encode()
    (att,) = read_message(raw).attachments
    assert att.filename == "Hiệp Hòa.xls" and att.kind == SPREADSHEET and att.data == b"\xd0\xcf\x11\xe0"


def test_a_forwarded_message_is_read_inside():
    inner = message(sender="ldtbxh218@demo.bacgiang.vn")
    inner.add_attachment(b"PK\x03\x04inner", maintype=XLSX[0], subtype=XLSX[1], filename="Lục Nam.xlsx")
    outer = message(sender="canbo@demo.bacgiang.vn", body="Chuyển tiếp thư của Lục Nam.")
    outer.add_attachment(inner)
    mail = read_message(outer.as_bytes())
    assert mail.sender == "canbo@demo.bacgiang.vn"  # the forwarder is who sent it to us
    assert [(a.filename, a.data) for a in mail.spreadsheets] == [("Lục Nam.xlsx", b"PK\x03\x04inner")]


def test_winmail_dat_is_refused_with_a_message():
    msg = message()
    msg.add_attachment(b"\x78\x9f\x3e\x22", maintype="application", subtype="ms-tnef", filename="winmail.dat")
    mail = read_message(msg.as_bytes())
    assert mail.attachments == () and "winmail.dat" in mail.problems[0] and "Outlook" in mail.problems[0]
    assert "HTML" in mail.nothing_usable_reason()


def test_size_is_checked_on_the_encoded_part_before_decoding():
    big = b"\x00" * (3 * 1024 * 1024 + 1)
    msg = message()
    msg.add_attachment(big, maintype=XLSX[0], subtype=XLSX[1], filename="lon.xlsx")
    limits = MimeLimits(max_attachment_bytes=1024 * 1024)
    (att,) = read_message(msg.as_bytes(), limits).attachments
    assert att.data == b"" and not att.usable and "lớn hơn 1 MB" in att.reason
    # The size on record is the bound taken from the base64 text, not a decoded length.
    assert att.size == len(big) + 2  # base64 padding rounds the bound up to whole 3-byte groups
    # A part whose decoded bytes fit stays usable: the bound is not too strict.
    ok = message()
    ok.add_attachment(b"\x01" * 1024 * 1023, maintype=XLSX[0], subtype=XLSX[1], filename="vua.xlsx")
    (fits,) = read_message(ok.as_bytes(), limits).attachments
    assert fits.usable and len(fits.data) == 1024 * 1023


def test_a_message_over_the_cap_is_read_for_its_headers_only():
    msg = message()
    msg.add_attachment(b"\x00" * 200_000, maintype=XLSX[0], subtype=XLSX[1], filename="x.xlsx")
    mail = read_message(msg.as_bytes(), MimeLimits(max_message_bytes=100_000))
    assert mail.attachments == () and mail.message_id == "<m1@demo.bacgiang.vn>" and "lớn hơn" in mail.problems[0]
    # The server's declared size decides when only the header was fetched.
    header_only = msg.as_bytes().split(b"\n\n")[0] + b"\n\n"
    assert "lớn hơn" in read_message(header_only, MimeLimits(max_message_bytes=100_000), declared_size=10**8).problems[0]


def test_deep_nesting_and_many_parts_stop_at_the_limits():
    inner = message()
    for _ in range(8):
        outer = message()
        outer.add_attachment(inner)
        inner = outer
    mail = read_message(inner.as_bytes(), MimeLimits(max_depth=4))
    assert mail.problems and "nhiều lớp" in mail.problems[0]


def test_classification_and_reasons():
    assert classify("bao-cao.XLSX", "")[0] == SPREADSHEET
    assert classify("bao-cao.ods", "")[0] == SPREADSHEET
    assert classify("bao-cao.pdf", "")[0] == PDF
    kind, reason = classify("bao-cao.xlsm", "")
    assert kind == UNUSABLE and ".xlsx" in reason and "macro" in reason
    assert "nén" in classify("bao-cao.rar", "")[1]
    assert classify("ghi-chu.docx", "")[0] == UNUSABLE


def test_cloud_links_in_the_body():
    text = ("Link: https://drive.google.com/drive/folders/abc, và https://1drv.ms/x/s!Ab, "
            "trang Sở https://sldtbxh.bacgiang.gov.vn/tin-tuc, https://xyz.sharepoint.com/:x:/g/p.")
    assert cloud_links(text) == ["https://drive.google.com/drive/folders/abc", "https://1drv.ms/x/s!Ab",
                                 "https://xyz.sharepoint.com/:x:/g/p"]
    mail = read_message(message(body=text).as_bytes())
    assert len(mail.links) == 3 and "drive.google.com" in mail.nothing_usable_reason()


def test_inline_signature_images_are_not_attachments_and_pdf_only_is_unusable():
    msg = message()
    msg.add_attachment(b"%PDF-1.7", maintype="application", subtype="pdf", filename="Báo cáo ký.pdf")
    logo = EmailMessage()
    logo.set_content(b"\x89PNG", maintype="image", subtype="png", disposition="inline")
    msg.attach(logo)
    mail = read_message(msg.as_bytes())
    assert [a.kind for a in mail.attachments] == [PDF]
    assert "chỉ có tệp PDF (Báo cáo ký.pdf)" in mail.nothing_usable_reason()


def test_no_message_id_gets_a_stable_one_and_bad_headers_do_not_raise():
    raw = b"From: <ldtbxh219@demo.bacgiang.vn>\r\nDate: not a date\r\nSubject: =?utf-8?b?!!!?=\r\n\r\nhello\r\n"
    first, second = read_message(raw), read_message(raw)
    assert first.message_id == second.message_id and first.message_id.startswith("<sha256.")
    assert first.date is None and first.attachments == ()


def test_received_header_gives_the_arrival_of_a_saved_message():
    msg = message()
    msg["Received"] = "from mx.bacgiang.gov.vn by mail.bacgiang.gov.vn; Thu, 9 May 2024 10:00:00 +0700"
    msg["Received"] = "from client by mx.bacgiang.gov.vn; Thu, 9 May 2024 09:59:00 +0700"
    # email's header order is insertion order: the top one was written by the last server.
    assert read_message(msg.as_bytes()).received == datetime(2024, 5, 9, 3, 0, tzinfo=UTC)


def test_bounces_and_auto_replies_get_no_reply():
    auto = message()
    auto["Auto-Submitted"] = "auto-replied"
    assert read_message(auto.as_bytes()).auto_submitted
    assert read_message(message(sender="mailer-daemon@bacgiang.gov.vn").as_bytes()).auto_submitted
    assert not read_message(message().as_bytes()).auto_submitted
