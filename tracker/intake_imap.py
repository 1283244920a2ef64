"""The intake mailbox over IMAP (imaplib): read new messages by UID, flag them once processed.

IMAPS, STARTTLS, or plain IMAP on a loopback address only; every socket operation is bounded by a
timeout, so a server that stops answering ends the run with ``MailboxError`` instead of hanging it.
Messages are fetched with ``BODY.PEEK[]`` (reading never marks them \\Seen) together with the
server's INTERNALDATE (the arrival time the late/on-time rule uses). A processed message gets the
keyword ``$TrackerProcessed`` (``\\Seen`` where the server allows no keywords) and is copied or moved
to the processed folder when one is set; nothing is ever deleted or expunged by the tracker.
"""
from __future__ import annotations

import imaplib
import re
import socket
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

SECURITY_MODES = ("ssl", "starttls", "none")
LOOPBACK = ("127.0.0.1", "::1", "localhost")
_MONTHS = {m: i for i, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct",
                                       "Nov", "Dec"), start=1)}
_INTERNALDATE = re.compile(rb'INTERNALDATE "\s?(\d{1,2})-([A-Za-z]{3})-(\d{4}) (\d{2}):(\d{2}):(\d{2}) ([+-])(\d{2})(\d{2})"')
_SIZE = re.compile(rb"RFC822\.SIZE (\d+)")
_UID = re.compile(rb"UID (\d+)")


class MailboxError(Exception):
    """The mailbox could not be read; ``str()`` is a Vietnamese sentence with the English cause."""


@dataclass(frozen=True)
class ImapSettings:
    """Where and how to reach the intake mailbox."""

    host: str
    port: int
    user: str
    password: str
    folder: str = "INBOX"
    processed_folder: str = ""
    security: str = "ssl"
    timeout: float = 30.0
    keyword: str = "$TrackerProcessed"
    cafile: str = ""
    max_message_bytes: int = 40 * 1024 * 1024


def settings_from(config: Mapping[str, Any]) -> ImapSettings:
    """Return the IMAP settings of an app's ``config``; raise MailboxError when they are incomplete."""
    host = str(config.get("INTAKE_IMAP_HOST") or "")
    if not host:
        raise MailboxError("Chưa cấu hình hộp thư nhận báo cáo (INTAKE_IMAP_HOST) / the intake mailbox is not "
                           "configured.")
    security = str(config.get("INTAKE_IMAP_SECURITY") or "ssl").lower()
    if security not in SECURITY_MODES:
        raise MailboxError(f"INTAKE_IMAP_SECURITY phải là một trong {', '.join(SECURITY_MODES)} (đang là "
                           f"«{security}»).")
    if security == "none" and host not in LOOPBACK:
        raise MailboxError("Không gửi mật khẩu hộp thư qua kết nối không mã hoá tới máy khác: hãy đặt "
                           "INTAKE_IMAP_SECURITY là ssl hoặc starttls / refusing plain IMAP to a remote host.")
    port = int(config.get("INTAKE_IMAP_PORT") or (993 if security == "ssl" else 143))
    return ImapSettings(host=host, port=port, user=str(config.get("INTAKE_IMAP_USER") or ""),
                        password=str(config.get("INTAKE_IMAP_PASSWORD") or ""),
                        folder=str(config.get("INTAKE_IMAP_FOLDER") or "INBOX"),
                        processed_folder=str(config.get("INTAKE_IMAP_PROCESSED_FOLDER") or ""),
                        security=security, timeout=float(config.get("INTAKE_IMAP_TIMEOUT") or 30.0),
                        keyword=str(config.get("INTAKE_IMAP_KEYWORD") or "$TrackerProcessed"),
                        cafile=str(config.get("INTAKE_IMAP_CAFILE") or ""),
                        max_message_bytes=int(config.get("INTAKE_MAX_MESSAGE_BYTES") or 40 * 1024 * 1024))


@dataclass(frozen=True)
class Fetched:
    """One message as fetched: ``raw`` holds only the header when the message was over the size cap."""

    uid: str
    raw: bytes
    internaldate: datetime
    size: int
    truncated: bool


def parse_internaldate(response: bytes) -> datetime:
    """Return the INTERNALDATE in a FETCH response as an aware UTC datetime; raise MailboxError if absent."""
    match = _INTERNALDATE.search(response)
    if match is None:
        raise MailboxError(f"Máy chủ thư không trả về INTERNALDATE / no INTERNALDATE in {response[:200]!r}")
    day, month, year, hh, mm, ss, sign, oh, om = match.groups()
    offset = timedelta(hours=int(oh), minutes=int(om)) * (1 if sign == b"+" else -1)
    local = datetime(int(year), _MONTHS[month.decode().title()], int(day), int(hh), int(mm), int(ss),
                     tzinfo=timezone(offset))
    return local.astimezone(timezone.utc)


def _quote(name: str) -> str:
    if not name.isascii() or any(c in name for c in '\r\n"\\'):
        raise MailboxError(f"Tên thư mục «{name}» chỉ được gồm chữ cái không dấu / folder names must be plain ASCII.")
    return f'"{name}"'


def _explain(exc: BaseException, settings: ImapSettings, doing: str) -> MailboxError:
    where = f"{settings.host}:{settings.port}"
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return MailboxError(f"Máy chủ thư {where} không trả lời trong {settings.timeout:g} giây khi {doing}; lần chạy "
                            f"dừng lại, các thư chưa xử lý vẫn nằm nguyên trong hộp thư và sẽ được đọc ở lần chạy "
                            f"sau / the IMAP server stopped answering ({type(exc).__name__}).")
    if isinstance(exc, ssl.SSLError):
        return MailboxError(f"Không thiết lập được kết nối mã hoá tới máy chủ thư {where} khi {doing} / TLS failed: "
                            f"{exc}")
    if isinstance(exc, imaplib.IMAP4.error):
        return MailboxError(f"Máy chủ thư {where} từ chối khi {doing} / the IMAP server said: {exc}")
    return MailboxError(f"Không kết nối được máy chủ thư {where} khi {doing} / {type(exc).__name__}: {exc}")


class Mailbox:
    """An open, selected intake folder; use as a context manager. Raises MailboxError on any failure."""

    def __init__(self, settings: ImapSettings, readonly: bool = False) -> None:
        self.settings = settings
        self.readonly = readonly  # EXAMINE instead of SELECT: a dry run cannot change a flag
        self._imap: imaplib.IMAP4 | None = None
        self._keywords = True
        self._move = False

    # -- connection
    def __enter__(self) -> Mailbox:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=self.settings.cafile or None)
        return context

    def open(self) -> None:
        s = self.settings
        try:
            if s.security == "ssl":
                self._imap = imaplib.IMAP4_SSL(s.host, s.port, ssl_context=self._context(), timeout=s.timeout)
            else:
                self._imap = imaplib.IMAP4(s.host, s.port, timeout=s.timeout)
                if s.security == "starttls":
                    self._imap.starttls(ssl_context=self._context())
            self._imap.login(s.user, s.password)
            typ, data = self._imap.select(_quote(s.folder), readonly=self.readonly)
            if typ != "OK":
                raise imaplib.IMAP4.error(f"SELECT {s.folder}: {data!r}")
            flags = b" ".join(x for x in self._imap.untagged_responses.get("PERMANENTFLAGS", []) if x)
            self._keywords = b"\\*" in flags
            # The greeting's capabilities are the pre-login ones: servers announce MOVE after login.
            typ, caps = self._imap.capability()
            self._move = typ == "OK" and b"MOVE" in b" ".join(c for c in caps if c).upper().split()
        except (OSError, imaplib.IMAP4.error, ssl.SSLError) as exc:
            self._abandon()
            raise _explain(exc, s, "đăng nhập và mở thư mục") from exc

    def _abandon(self) -> None:
        if self._imap is not None:
            try:
                self._imap.shutdown()
            except (OSError, imaplib.IMAP4.error):
                pass
            self._imap = None

    def close(self) -> None:
        """Log out; never raises (a dead server is already reported by the call that met it)."""
        if self._imap is None:
            return
        try:
            self._imap.logout()
        except (OSError, imaplib.IMAP4.error, ssl.SSLError):
            self._abandon()
        self._imap = None

    def _call(self, doing: str, *args: str) -> list[Any]:
        assert self._imap is not None, "mailbox not open"
        try:
            typ, data = self._imap.uid(*args)
        except (OSError, imaplib.IMAP4.error, ssl.SSLError) as exc:
            self._abandon()
            raise _explain(exc, self.settings, doing) from exc
        if typ != "OK":
            raise MailboxError(f"Máy chủ thư từ chối khi {doing} / the IMAP server said: {typ} {data!r}")
        return list(data)

    # -- reading
    def pending_uids(self) -> list[str]:
        """Return the UIDs of messages not yet flagged processed (and not deleted), oldest first."""
        criteria = f"UNKEYWORD {self.settings.keyword}" if self._keywords else "UNSEEN"
        data = self._call("tìm thư mới", "SEARCH", f"UNDELETED {criteria}")
        uids = b" ".join(d for d in data if d).split()
        return sorted((u.decode() for u in uids), key=int)

    def fetch(self, uid: str) -> Fetched:
        """Return the message ``uid`` with its INTERNALDATE; only its header when over the size cap."""
        meta = self._call("đọc thư", "FETCH", uid, "(UID INTERNALDATE RFC822.SIZE)")
        head = b" ".join(part[0] if isinstance(part, tuple) else part for part in meta if part)
        internaldate = parse_internaldate(head)
        size_match = _SIZE.search(head)
        size = int(size_match.group(1)) if size_match else 0
        truncated = size > self.settings.max_message_bytes
        section = "BODY.PEEK[HEADER]" if truncated else "BODY.PEEK[]"
        data = self._call("đọc thư", "FETCH", uid, f"({section})")
        raw = next((part[1] for part in data if isinstance(part, tuple) and len(part) > 1), None)
        if raw is None:
            raise MailboxError(f"Máy chủ thư không trả về nội dung thư UID {uid} / empty FETCH response.")
        return Fetched(uid=uid, raw=bytes(raw), internaldate=internaldate, size=size, truncated=truncated)

    # -- after processing
    def mark_processed(self, uid: str) -> None:
        """Flag ``uid`` processed, then copy or move it to the processed folder when one is set."""
        flag = self.settings.keyword if self._keywords else "\\Seen"
        self._call("đánh dấu thư đã xử lý", "STORE", uid, "+FLAGS.SILENT", f"({flag})")
        target = self.settings.processed_folder
        if target:
            # MOVE keeps the message (in the other folder); without MOVE a COPY leaves the flagged original.
            self._call("chuyển thư sang thư mục đã xử lý", "MOVE" if self._move else "COPY", uid, _quote(target))
