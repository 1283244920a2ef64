"""A real SMTP server for tests: aiosmtpd on a free loopback port, keeping what it receives.

The ``smtp_server`` fixture is imported by conftest.py, so every test module can ask for it.
"""
from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller


@dataclass
class Received:
    """One message as the server got it: the envelope and the parsed message (policy=default)."""

    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    raw: bytes
    peer: tuple[str, int]  # the client's address: one value per SMTP connection

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    @property
    def key(self) -> str:
        return str(self.message["X-Tracker-Key"] or "")

    def text(self) -> str:
        part = self.message.get_body(preferencelist=("plain",))
        return part.get_content() if part is not None else ""

    def html(self) -> str:
        part = self.message.get_body(preferencelist=("html",))
        return part.get_content() if part is not None else ""


@dataclass
class _Handler:
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw = envelope.original_content or envelope.content
        parsed = message_from_bytes(raw, policy=policy.default)
        with self.lock:
            self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), parsed, raw,
                                          tuple(session.peer)))
        return "250 Message accepted for delivery"


def free_port() -> int:
    """Return a loopback TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class SmtpServer:
    """A running aiosmtpd server; ``messages`` lists what it has received so far."""

    def __init__(self) -> None:
        self.host = "127.0.0.1"
        self.port = free_port()
        self._handler = _Handler()
        self._controller: Controller | None = None

    @property
    def messages(self) -> list[Received]:
        with self._handler.lock:
            return list(self._handler.received)

    def clear(self) -> None:
        with self._handler.lock:
            self._handler.received.clear()

    def start(self) -> None:
        self._controller = Controller(self._handler, hostname=self.host, port=self.port, ready_timeout=5)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def configure(self, app: Any) -> None:
        """Point ``app`` at this server (plain SMTP, short timeout)."""
        app.config.update(MAIL_SERVER=self.host, MAIL_PORT=self.port, MAIL_USE_TLS=False,
                          MAIL_USE_SSL=False, MAIL_TIMEOUT=2.0)


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """A started SMTP server on a free loopback port, stopped after the test."""
    server = SmtpServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()
