"""Build and deliver email: SMTP over one connection per batch, or .eml files when no server is set.

Flask-Mail builds the MIME message (Vietnamese subjects and names come out RFC 2047 encoded), but we
open the SMTP connection ourselves: Flask-Mail reads the server and its "suppress when TESTING" switch
once at ``init_app`` and passes no timeout to smtplib, so a dead server could hang a cron run.
"""
from __future__ import annotations

import base64
import hashlib
import re
import smtplib
import ssl
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from email import charset as email_charset
from email import policy
from email.mime.base import MIMEBase
from email.mime.text import MIMEText
from email.utils import parseaddr
from pathlib import Path
from typing import Any

from flask import current_app, render_template
from flask_mail import Message, email_dispatched

from .timeutil import utc_now

# RFC 5322 field names: printable ASCII without colon or space.
_HEADER_NAME = re.compile(r"^[!-9;-~]+$")


class HeaderInjection(ValueError):
    """A header value we were about to build holds CR or LF."""


def _clean(value: str) -> str:
    if "\r" in value or "\n" in value:
        raise HeaderInjection("CR/LF in an email header value")
    return value


def encode_subject(subject: str) -> str:
    """Return ``subject`` as folded RFC 2047 encoded words that keep every space (ASCII is returned as is).

    CPython's header folders (``email.header.Header`` and the policy folder alike) can leave a space
    between two encoded words, where RFC 2047 says readers drop it: "0/9 đơn vị" arrived as "0/9đơn vị".
    Here each space travels inside an encoded word, and no character is split across two words.
    """
    if subject.isascii():
        return subject
    words: list[str] = []
    chunk = ""
    for char in subject:
        # 39 bytes of UTF-8 make 52 base64 characters: with "Subject: " a line stays under 78.
        if len((chunk + char).encode("utf-8")) > 39:
            words.append(chunk)
            chunk = char
        else:
            chunk += char
    words.append(chunk)
    return "\r\n ".join(f"=?utf-8?b?{base64.b64encode(w.encode('utf-8')).decode('ascii')}?=" for w in words)


_WIRE = policy.compat32.clone(linesep="\r\n")


class TrackerMessage(Message):
    """A Flask-Mail Message whose Subject keeps its spaces and whose body lines stay short."""

    def _mimetext(self, text: str | None, subtype: str = "plain") -> MIMEText:
        # Flask-Mail registers utf-8 with no body encoding (8bit), so a long HTML line breaks the
        # SMTP limit of 998 octets ("Line too long"); quoted-printable wraps every line at 76.
        utf8 = email_charset.Charset("utf-8")
        utf8.body_encoding = email_charset.QP
        return MIMEText(text or "", _subtype=subtype, _charset=utf8)  # type: ignore[arg-type]

    def as_bytes(self) -> bytes:
        # Written with compat32 and CRLF: every header here is already encoded and folded (Flask-Mail's
        # Header values, our Subject), and the modern policy's generator re-parsed and refolded each one,
        # 2.6 ms a message, half of a national reminder run.
        return self._message().as_bytes(policy=_WIRE)

    def _message(self) -> MIMEBase:
        msg = super()._message()
        if self.subject and not self.subject.isascii():
            # compat32 stores the pre-folded value as is; the SMTP policy then writes its short lines unchanged.
            msg.policy = policy.compat32
            msg.replace_header("Subject", encode_subject(self.subject))
            msg.policy = policy.SMTP
        return msg


def build_message(subject: str, recipients: Sequence[str], text: str, html: str = "",
                  cc: Sequence[str] = (), reply_to: str = "",
                  headers: Mapping[str, str] | None = None) -> TrackerMessage:
    """Return a Message ready for ``deliver``.

    Raises HeaderInjection when the subject, any address, the sender, the reply-to address or an
    extra header (name or value) carries CR or LF, or a header name is not a valid field name.
    """
    extra: dict[str, str] = {}
    for name, value in (headers or {}).items():
        if not _HEADER_NAME.match(_clean(name)):
            raise HeaderInjection(f"invalid email header name {name!r}")
        extra[name] = _clean(value)
    return TrackerMessage(subject=_clean(subject), recipients=[_clean(r) for r in recipients],
                   cc=[_clean(c) for c in cc], body=text, html=html or None,
                   reply_to=_clean(reply_to) or None, extra_headers=extra or None,
                   sender=_clean(current_app.config["MAIL_DEFAULT_SENDER"]))


@dataclass(frozen=True)
class Delivery:
    """What became of one message: ``error`` is None when the server (or the outbox) took it."""

    message: Message
    error: str | None
    eml_path: str = ""


def _outbox_write(message: Message) -> str:
    outbox = Path(current_app.config["OUTBOX_DIR"])
    outbox.mkdir(parents=True, exist_ok=True)
    stamp = utc_now().strftime("%Y%m%dT%H%M%S%f")
    # The Message-ID is unique per message, so two messages in the same microsecond still differ.
    digest = hashlib.sha1(message.msgId.encode()).hexdigest()[:10]
    path = outbox / f"{stamp}-{digest}.eml"
    path.write_bytes(message.as_bytes())
    return str(path)


def _connect(config: Mapping[str, Any]) -> smtplib.SMTP:
    """Open, secure and log in to the configured SMTP server; raise OSError or SMTPException."""
    host = str(config["MAIL_SERVER"])
    port = int(config.get("MAIL_PORT") or 25)
    timeout = float(config.get("MAIL_TIMEOUT") or 10.0)
    context = ssl.create_default_context()
    connection: smtplib.SMTP
    if config.get("MAIL_USE_SSL"):
        connection = smtplib.SMTP_SSL(host, port, timeout=timeout, context=context)
    else:
        connection = smtplib.SMTP(host, port, timeout=timeout)
    try:
        if config.get("MAIL_USE_TLS") and not config.get("MAIL_USE_SSL"):
            connection.starttls(context=context)
        if config.get("MAIL_USERNAME") and config.get("MAIL_PASSWORD"):
            connection.login(str(config["MAIL_USERNAME"]), str(config["MAIL_PASSWORD"]))
    except BaseException:
        connection.close()
        raise
    return connection


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:500]


def _send_one(connection: smtplib.SMTP, message: Message) -> None:
    envelope_from = parseaddr(str(message.sender))[1]
    to = sorted({parseaddr(str(a))[1] for a in message.send_to})
    connection.sendmail(envelope_from, to, message.as_bytes())


def deliver(messages: Sequence[Message], on_result: Callable[[int, Delivery], None] | None = None,
            should_stop: Callable[[], bool] | None = None) -> list[Delivery]:
    """Send ``messages`` over ONE SMTP connection (or write them to OUTBOX_DIR); never raises on SMTP.

    Returns one Delivery per message tried, in order. ``on_result(index, delivery)`` is called right
    after each message is accepted or refused (the outbox marks it there). When ``should_stop()``
    turns true no further message is started, so fewer Deliveries than messages come back. A failure
    to connect marks every message undelivered with the reason; a refusal of one message marks only
    that one. Every socket operation is bounded by MAIL_TIMEOUT seconds.
    """
    if not messages:
        return []
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    config = app.config
    results: list[Delivery] = []

    def _done(delivery: Delivery) -> None:
        results.append(delivery)
        if on_result is not None:
            on_result(len(results) - 1, delivery)

    if not config.get("MAIL_SERVER"):
        for m in messages:
            if should_stop is not None and should_stop():
                break
            _done(Delivery(m, None, _outbox_write(m)))
            email_dispatched.send(app, message=m)
        return results
    try:
        connection = _connect(config)
    except (smtplib.SMTPException, OSError) as exc:
        reason = _reason(exc)
        app.logger.warning("SMTP %s:%s unreachable: %s", config["MAIL_SERVER"], config.get("MAIL_PORT"), reason)
        for m in messages:
            _done(Delivery(m, reason))
        return results
    try:
        for message in messages:
            if should_stop is not None and should_stop():
                break
            try:
                _send_one(connection, message)
            except (smtplib.SMTPException, OSError) as exc:
                _done(Delivery(message, _reason(exc)))
            else:
                _done(Delivery(message, None))
                email_dispatched.send(app, message=message)
    finally:
        try:
            connection.quit()
        except (smtplib.SMTPException, OSError):
            connection.close()
    return results


def render_pair(name: str, **context: Any) -> tuple[str, str]:
    """Return ``email/<name>.txt`` and ``email/<name>.html`` rendered with ``context``."""
    return (render_template(f"email/{name}.txt", **context),
            render_template(f"email/{name}.html", **context))


def public_url(path: str) -> str:
    """Return ``path`` as an absolute link under PUBLIC_BASE_URL (emails are read outside the app)."""
    return current_app.config["PUBLIC_BASE_URL"].rstrip("/") + path


def password_reset_message(user: Any, token: str) -> TrackerMessage:
    """Return the email with ``user``'s reset link (sent by the caller, after its commit)."""
    from flask import url_for

    link = public_url(url_for("auth.reset_password", token=token))
    text, html = render_pair("password_reset", user=user, link=link,
                             minutes=current_app.config["PASSWORD_RESET_MAX_AGE"] // 60)
    return build_message("[Sở LĐTBXH Bắc Giang] Đặt lại mật khẩu", [user.email], text, html)
