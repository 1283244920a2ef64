"""Read a message of the intake mailbox: its headers and attachments, safely, with the standard library.

Pure: bytes in, a ``MailMessage`` out; no database, no clock, no network. The MIME tree is walked with
``email`` and ``policy.default`` (RFC 2231 and encoded-word filenames come out decoded, Vietnamese
intact after NFC), into nested ``message/rfc822`` parts (a forwarded return), under a depth and a part
count limit. Each attachment's size is checked on its encoded form BEFORE it is decoded, so a 2 GB
base64 part costs nothing. Outlook's winmail.dat (``application/ms-tnef``) is refused with a message
saying how to send instead. Every attachment is classified: a spreadsheet for the upload path, a PDF
(a signed report), or unusable with the reason and what to send instead; the body is searched for links
to cloud drives, which the tracker cannot fetch.
"""
from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import getaddresses, parsedate_to_datetime

from .guard import safe_filename

SPREADSHEET = "spreadsheet"
PDF = "pdf"
UNUSABLE = "other"

SPREADSHEET_EXTENSIONS = (".xlsx", ".xls", ".ods")
SPREADSHEET_TYPES = {
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": ".xlsx",
    "application/vnd.ms-excel": ".xls",
    "application/vnd.oasis.opendocument.spreadsheet": ".ods",
}
MACRO_EXTENSIONS = (".xlsm", ".xlsb", ".xltm", ".xlam")
ARCHIVE_EXTENSIONS = (".zip", ".rar", ".7z", ".tar", ".gz", ".tgz")
TNEF_TYPES = ("application/ms-tnef", "application/vnd.ms-tnef")

SEND_INSTEAD = ("Hãy gửi lại thư, đính kèm trực tiếp tệp Excel (.xlsx) của biểu mẫu do hệ thống phát hành "
                "cho đơn vị (tải ở trang của đơn vị) đã điền số liệu, hoặc tải tệp lên trực tiếp trên hệ thống.")
MACRO_REASON = ("Tệp {name} là bảng tính có macro ({ext}): hệ thống không nhận tệp có thể chứa mã chạy tự động. "
                "Hãy mở tệp bằng Excel, chọn Lưu thành (Save As) định dạng Sổ làm việc Excel (.xlsx) rồi gửi lại.")
ARCHIVE_REASON = ("Tệp {name} là tệp nén: hệ thống không mở tệp nén gửi qua thư. Hãy giải nén và đính kèm trực "
                  "tiếp tệp .xlsx của biểu mẫu.")
PDF_ONLY_REASON = ("Thư chỉ có tệp PDF ({names}): bản PDF không có số liệu để hệ thống kiểm tra. " + SEND_INSTEAD)
OTHER_REASON = "Tệp {name} không phải biểu mẫu số liệu (.xlsx, .xls, .ods) nên không được xử lý."
LINK_REASON = ("Thư có đường dẫn tới kho lưu trữ trực tuyến ({links}) thay cho tệp đính kèm: hệ thống không tải "
               "tệp từ đường dẫn. " + SEND_INSTEAD)
NOTHING_REASON = "Thư không có tệp đính kèm nào. " + SEND_INSTEAD
TNEF_REASON = ("Thư được gửi từ Outlook ở định dạng riêng của Outlook (winmail.dat) nên không đọc được tệp đính "
               "kèm. Hãy chọn định dạng thư HTML hoặc Văn bản thường (Plain Text) trong Outlook rồi gửi lại.")
TOO_LARGE_REASON = ("Tệp {name} lớn hơn {limit} MB cho phép nên không được đọc. Hãy xoá hình ảnh hoặc trang tính "
                    "không cần thiết rồi gửi lại.")
MESSAGE_TOO_LARGE_REASON = ("Thư có dung lượng {size} MB, lớn hơn {limit} MB hệ thống đọc được. Hãy gửi riêng tệp "
                            "Excel của biểu mẫu, không kèm hình ảnh hay tệp lớn khác.")
TOO_DEEP_REASON = ("Thư lồng nhiều lớp thư chuyển tiếp hoặc có quá nhiều phần nên hệ thống chỉ đọc {parts} phần "
                   "đầu. Hãy gửi một thư mới, đính kèm trực tiếp tệp báo cáo.")

# Hosts of the cloud drives officers share returns through instead of attaching them.
CLOUD_HOSTS = ("drive.google.com", "docs.google.com", "onedrive.live.com", "1drv.ms", "sharepoint.com",
               "dropbox.com", "box.com", "mega.nz", "wetransfer.com", "we.tl", "fshare.vn", "mediafire.com",
               "icloud.com", "terabox.com", "drive.proton.me")
_LINK = re.compile(r"https?://[^\s<>\"')\]]+", re.IGNORECASE)


@dataclass(frozen=True)
class MimeLimits:
    """Caps of one message: the raw size, each attachment (decoded), nesting depth and part count."""

    max_message_bytes: int = 40 * 1024 * 1024
    max_attachment_bytes: int = 10 * 1024 * 1024
    max_depth: int = 8
    max_parts: int = 200


@dataclass(frozen=True)
class Attachment:
    """One attachment: ``kind`` is spreadsheet, pdf or other; ``data`` is empty when it was not decoded.

    ``reason`` says why an attachment cannot be used (Vietnamese, with what to send instead); it is
    empty for a spreadsheet or PDF the tracker goes on to read.
    """

    filename: str
    content_type: str
    kind: str
    data: bytes
    sha256: str
    size: int
    reason: str = ""

    @property
    def usable(self) -> bool:
        return not self.reason


@dataclass(frozen=True)
class MailMessage:
    """The facts of one message the intake needs; ``problems`` are message-level refusals."""

    message_id: str
    sender: str
    sender_name: str
    subject: str
    date: datetime | None
    received: datetime | None  # the top Received header's time: the arrival for a saved .eml
    attachments: tuple[Attachment, ...]
    links: tuple[str, ...]
    problems: tuple[str, ...] = ()
    auto_submitted: bool = False
    raw_sha256: str = ""

    @property
    def spreadsheets(self) -> tuple[Attachment, ...]:
        return tuple(a for a in self.attachments if a.kind == SPREADSHEET and a.usable)

    def nothing_usable_reason(self) -> str:
        """Return why no attachment of the message can be read ('' when one can)."""
        if self.spreadsheets:
            return ""
        if self.problems:
            return " ".join(self.problems)
        pdfs = [a.filename for a in self.attachments if a.kind == PDF and a.usable]
        if pdfs:
            return PDF_ONLY_REASON.format(names=", ".join(pdfs))
        if self.links:
            return LINK_REASON.format(links=", ".join(self.links[:3]))
        unusable = [a.reason for a in self.attachments if a.reason]
        if unusable:
            return " ".join(unusable)
        return NOTHING_REASON


def _mb(n: int) -> str:
    return f"{n / (1024 * 1024):.0f}"


def nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def read_message(raw: bytes, limits: MimeLimits = MimeLimits(), declared_size: int | None = None) -> MailMessage:
    """Return the facts of the raw RFC 5322 message ``raw``.

    A message larger than ``limits.max_message_bytes`` (by ``declared_size``, the server's RFC822.SIZE,
    or by ``len(raw)``) is read for its headers only and carries the problem "too large"; its body
    is never parsed. Malformed headers never raise: a missing Message-ID becomes one derived from
    the bytes, a bad Date None.
    """
    size = max(len(raw), declared_size or 0)
    raw_sha = hashlib.sha256(raw).hexdigest()
    walker = _Walker(limits)
    if size > limits.max_message_bytes:
        message = BytesParser(policy=policy.default).parsebytes(raw, headersonly=True)
        walker.problems.append(MESSAGE_TOO_LARGE_REASON.format(size=_mb(size), limit=_mb(limits.max_message_bytes)))
    else:
        message = BytesParser(policy=policy.default).parsebytes(raw)
        walker.walk(message, 0)
    sender_name, sender = _sender(message)
    return MailMessage(
        message_id=_message_id(message, raw_sha), sender=sender, sender_name=sender_name,
        subject=_header(message, "Subject")[:500], date=_date(_header(message, "Date")),
        received=_received(message), attachments=tuple(walker.attachments),
        links=tuple(dict.fromkeys(walker.links)), problems=tuple(dict.fromkeys(walker.problems)),
        auto_submitted=_auto_submitted(message, sender), raw_sha256=raw_sha)


def _header(message: Message, name: str) -> str:
    try:
        value = message.get(name)
    except Exception:  # noqa: BLE001 - policy.default parses headers lazily; a broken one is just absent
        return ""
    return nfc(" ".join(str(value).split())) if value is not None else ""


def _message_id(message: Message, raw_sha: str) -> str:
    value = _header(message, "Message-ID").strip()
    match = re.search(r"<[^<>\s]+>", value)
    if match:
        return match.group(0)[:500]
    if value and len(value) < 490 and " " not in value:
        return f"<{value.strip('<>')}>"
    # No usable Message-ID: the bytes identify the message, so re-reading it is still recognised.
    return f"<sha256.{raw_sha}@tracker.invalid>"


def _sender(message: Message) -> tuple[str, str]:
    raw = ""
    try:
        raw = str(message.get("From") or "")
    except Exception:  # noqa: BLE001
        raw = ""
    pairs = getaddresses([raw])
    for name, address in pairs:
        if "@" in address:
            return nfc(name.strip()), address.strip().lower()[:254]
    return "", ""


def _date(value: str) -> datetime | None:
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    # "-0000" means "UTC, zone unknown": parsedate_to_datetime returns it naive.
    return parsed.replace(tzinfo=timezone.utc) if parsed.tzinfo is None else parsed.astimezone(timezone.utc)


def _received(message: Message) -> datetime | None:
    try:
        values = message.get_all("Received") or []
    except Exception:  # noqa: BLE001
        return None
    if not values:
        return None
    # The first (top) Received header is the one the receiving server wrote last: the date after ";".
    top = " ".join(str(values[0]).split())
    return _date(top.rsplit(";", 1)[1].strip()) if ";" in top else None


def _auto_submitted(message: Message, sender: str) -> bool:
    """Return True for bounces, auto-replies and list mail: they get no reply (no mail loops)."""
    auto = _header(message, "Auto-Submitted").lower()
    precedence = _header(message, "Precedence").lower()
    local = sender.split("@")[0]
    return ((bool(auto) and auto != "no") or precedence in ("bulk", "junk", "list")
            or local in ("mailer-daemon", "postmaster") or local.startswith("no-reply")
            or local.startswith("noreply") or bool(_header(message, "X-Autoreply"))
            or bool(_header(message, "X-Tracker-Key")))


def _extension(name: str) -> str:
    dot = name.rfind(".")
    return name[dot:].lower() if dot > 0 else ""


def classify(filename: str, content_type: str) -> tuple[str, str]:
    """Return (kind, reason) of an attachment by its name and declared type; reason '' when usable.

    The name and type only route the attachment: the upload guard then checks its bytes, so a
    ``.xlsx`` that is not a workbook is refused there.
    """
    ext = _extension(filename)
    if ext in MACRO_EXTENSIONS:
        return UNUSABLE, MACRO_REASON.format(name=filename, ext=ext)
    if ext in SPREADSHEET_EXTENSIONS or (not ext and content_type in SPREADSHEET_TYPES):
        return SPREADSHEET, ""
    if ext == ".pdf" or (not ext and content_type == "application/pdf"):
        return PDF, ""
    if ext in ARCHIVE_EXTENSIONS or content_type in ("application/zip", "application/x-zip-compressed",
                                                      "application/x-rar-compressed", "application/x-7z-compressed"):
        return UNUSABLE, ARCHIVE_REASON.format(name=filename)
    return UNUSABLE, OTHER_REASON.format(name=filename)


def _encoded_size_bound(part: Message) -> int:
    """Return an upper bound of the decoded size from the encoded payload, without decoding it."""
    payload = part.get_payload(decode=False)
    length = len(payload) if isinstance(payload, (str, bytes)) else 0
    cte = str(part.get("Content-Transfer-Encoding", "")).strip().lower()
    if cte == "base64" and isinstance(payload, str):
        # 4 characters carry 3 bytes; line breaks carry none (counted in C, nothing is decoded).
        return (length - payload.count("\n") - payload.count("\r") - payload.count(" ")) * 3 // 4
    return length


def cloud_links(text: str) -> list[str]:
    """Return the links in ``text`` that point at a known cloud drive, in order, without duplicates."""
    found: list[str] = []
    for match in _LINK.finditer(text):
        link = match.group(0).rstrip(".,;")
        host = re.sub(r"^https?://", "", link, flags=re.IGNORECASE).split("/")[0].split(":")[0].lower()
        if any(host == h or host.endswith("." + h) for h in CLOUD_HOSTS) and link not in found:
            found.append(link)
    return found


@dataclass
class _Walker:
    limits: MimeLimits
    parts: int = 0
    attachments: list[Attachment] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def walk(self, part: Message, depth: int) -> None:
        self.parts += 1
        if depth > self.limits.max_depth or self.parts > self.limits.max_parts:
            self.problems.append(TOO_DEEP_REASON.format(parts=self.limits.max_parts))
            return
        content_type = part.get_content_type()
        if part.is_multipart():
            payload = part.get_payload()
            for child in payload if isinstance(payload, list) else []:
                self.walk(child, depth + 1)
            return
        filename = self._filename(part)
        if content_type in TNEF_TYPES or filename.lower() == "winmail.dat":
            self.problems.append(TNEF_REASON)
            return
        disposition = (part.get_content_disposition() or "").lower()
        if not filename and content_type in ("text/plain", "text/html") and disposition != "attachment":
            self._scan_text(part)
            return
        if not filename:
            if content_type in SPREADSHEET_TYPES or content_type == "application/pdf":
                filename = "tep-dinh-kem" + SPREADSHEET_TYPES.get(content_type, ".pdf")
            else:
                return  # inline images of a signature, calendar parts...: nothing the tracker reads
        if disposition == "inline" and content_type.startswith("image/"):
            return
        kind, reason = classify(filename, content_type)
        if kind == UNUSABLE:
            # Not decoded: its bytes are never read, only their hash, to record it once.
            digest = hashlib.sha256(f"{filename}\0{_encoded_size_bound(part)}".encode()).hexdigest()
            self.attachments.append(Attachment(filename, content_type, kind, b"", digest,
                                               _encoded_size_bound(part), reason))
            return
        bound = _encoded_size_bound(part)
        limit = self.limits.max_attachment_bytes
        if bound > limit + 4:
            digest = hashlib.sha256(f"{filename}\0{bound}".encode()).hexdigest()
            self.attachments.append(Attachment(filename, content_type, kind, b"", digest, bound,
                                               TOO_LARGE_REASON.format(name=filename, limit=limit // (1024 * 1024))))
            return
        data = part.get_payload(decode=True) or b""
        if len(data) > limit:
            self.attachments.append(Attachment(filename, content_type, kind, b"", hashlib.sha256(data).hexdigest(),
                                               len(data), TOO_LARGE_REASON.format(name=filename,
                                                                                  limit=limit // (1024 * 1024))))
            return
        self.attachments.append(Attachment(filename, content_type, kind, data, hashlib.sha256(data).hexdigest(),
                                           len(data)))

    @staticmethod
    def _filename(part: Message) -> str:
        try:
            name = part.get_filename() or ""
        except Exception:  # noqa: BLE001 - a malformed parameter is a nameless part, not a crash
            name = ""
        # The upload path's own cleaning: NFC, last path component only, no control or bidi characters.
        return safe_filename(name) if name.strip() else ""

    def _scan_text(self, part: Message) -> None:
        try:
            text = part.get_content() if isinstance(part, EmailMessage) else str(part.get_payload(decode=True))
        except Exception:  # noqa: BLE001 - an undecodable body has no links we can read
            return
        if isinstance(text, str):
            self.links.extend(cloud_links(text[:1_000_000]))
