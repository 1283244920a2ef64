"""Build and deliver email: SMTP over one connection per batch, or .eml files when no server is set."""
from __future__ import annotations

import smtplib
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from flask import current_app, render_template
from flask_mail import Message

from .extensions import mail
from .timeutil import utc_now


class HeaderInjection(ValueError):
    """A header value we were about to build holds CR or LF."""


def _clean(value: str) -> str:
    if "\r" in value or "\n" in value:
        raise HeaderInjection("CR/LF in an email header value")
    return value


def build_message(subject: str, recipients: Sequence[str], text: str, html: str = "",
                  cc: Sequence[str] = ()) -> Message:
    """Return a Message; raise HeaderInjection when any header value carries CR or LF."""
    message = Message(subject=_clean(subject), recipients=[_clean(r) for r in recipients],
                      cc=[_clean(c) for c in cc], body=text, html=html or None,
                      sender=_clean(current_app.config["MAIL_DEFAULT_SENDER"]))
    return message


@dataclass(frozen=True)
class Delivery:
    message: Message
    error: str | None  # None when delivered
    eml_path: str = ""


def _outbox_write(message: Message) -> str:
    outbox = Path(current_app.config["OUTBOX_DIR"])
    outbox.mkdir(parents=True, exist_ok=True)
    stamp = utc_now().strftime("%Y%m%dT%H%M%S%f")
    path = outbox / f"{stamp}-{abs(hash(message.subject)) % 10**8:08d}.eml"
    path.write_bytes(message.as_bytes())
    return str(path)


def deliver(messages: Sequence[Message]) -> list[Delivery]:
    """Send ``messages`` over one SMTP connection (or write them to the outbox); never raises.

    A connection failure marks every message undelivered with the reason, so the caller can retry.
    """
    if not messages:
        return []
    if not current_app.config.get("MAIL_SERVER"):
        return [Delivery(m, None, _outbox_write(m)) for m in messages]
    results: list[Delivery] = []
    timeout = float(current_app.config["MAIL_TIMEOUT"])
    previous = socket.getdefaulttimeout()
    # Flask-Mail passes no timeout to smtplib; a default socket timeout bounds connect and every read.
    socket.setdefaulttimeout(timeout)
    try:
        with mail.connect() as connection:
            for message in messages:
                try:
                    connection.send(message)
                    results.append(Delivery(message, None))
                except (smtplib.SMTPException, OSError) as exc:
                    results.append(Delivery(message, f"{type(exc).__name__}: {exc}"[:500]))
    except (smtplib.SMTPException, OSError) as exc:
        done = {id(r.message) for r in results}
        reason = f"{type(exc).__name__}: {exc}"[:500]
        results.extend(Delivery(m, reason) for m in messages if id(m) not in done)
    finally:
        socket.setdefaulttimeout(previous)
    return results


def render_pair(name: str, **context: Any) -> tuple[str, str]:
    """Render ``email/<name>.txt`` and ``email/<name>.html`` with ``context``."""
    return (render_template(f"email/{name}.txt", **context),
            render_template(f"email/{name}.html", **context))


def public_url(path: str) -> str:
    return current_app.config["PUBLIC_BASE_URL"].rstrip("/") + path


def send_password_reset(user: Any, token: str) -> Delivery:
    """Email ``user`` a link to reset the password."""
    from flask import url_for

    link = public_url(url_for("auth.reset_password", token=token))
    text, html = render_pair("password_reset", user=user, link=link,
                             minutes=current_app.config["PASSWORD_RESET_MAX_AGE"] // 60)
    message = build_message("[Sở LĐTBXH Bắc Giang] Đặt lại mật khẩu", [user.email], text, html)
    return deliver([message])[0]
