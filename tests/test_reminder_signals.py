"""Issue 13: a reminder run interrupted mid-send and rerun sends every message exactly once.

`flask send-reminders` runs as a real subprocess against aiosmtpd (each message takes the server half
a second), gets SIGTERM or SIGINT after a few messages, and is run again; the count is made at the
SMTP peer, by Message-ID and by key.
"""
from __future__ import annotations

import asyncio
import signal
import subprocess
import threading
import time
from collections import Counter
from email import message_from_bytes, policy
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

from servers import BIN, ROOT, server_env
from smtp import free_port
from tracker.extensions import db
from tracker.models import OutboundMessage

BEFORE = "2024-05-07T08:00+07:00"  # three days before the deadline: one notice per required unit + digest


class SlowPeer:
    """An SMTP server that takes ``delay`` seconds to accept each message and records what it accepted."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.accepted: list[tuple[str, str]] = []  # (Message-ID, X-Tracker-Key)
        self.lock = threading.Lock()
        self.port = free_port()
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port, ready_timeout=5)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        await asyncio.sleep(self.delay)
        parsed = message_from_bytes(envelope.original_content or envelope.content, policy=policy.default)
        with self.lock:
            self.accepted.append((str(parsed["Message-ID"]), str(parsed["X-Tracker-Key"])))
        return "250 Message accepted for delivery"

    def count(self) -> int:
        with self.lock:
            return len(self.accepted)


def _run(env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen([str(BIN / "flask"), "--app", "tracker", "send-reminders", "--as-of", BEFORE],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_run_interrupted_mid_send_and_rerun_sends_every_message_exactly_once(app, tmp_path, database_url,
                                                                                signum):
    peer = SlowPeer(delay=0.5)
    peer.controller.start()
    env = server_env(database_url, tmp_path, MAIL_SERVER="127.0.0.1", MAIL_PORT=str(peer.port), MAIL_TIMEOUT="10")
    try:
        first = _run(env)
        deadline = time.monotonic() + 60
        while peer.count() < 3 and time.monotonic() < deadline and first.poll() is None:
            time.sleep(0.05)
        assert first.poll() is None, first.communicate()
        first.send_signal(signum)
        out, err = first.communicate(timeout=30)
        assert first.returncode == 1, (out, err)
        assert "trả lại hàng đợi" in err
        stopped_at = peer.count()
        with app.app_context():
            statuses = Counter(db.session.scalars(select(OutboundMessage.status)))
        total = sum(statuses.values())
        # Nothing is left claimed: what was not sent is pending again at once, what was sent is marked.
        assert statuses["sending"] == 0, statuses
        assert statuses["sent"] == stopped_at, (statuses, stopped_at)
        assert 3 <= stopped_at < total, (stopped_at, total)

        second = _run(env)
        out, err = second.communicate(timeout=120)
        assert second.returncode == 0, (out, err)
    finally:
        peer.controller.stop()
    ids = Counter(message_id for message_id, _ in peer.accepted)
    keys = Counter(key for _, key in peer.accepted)
    assert len(peer.accepted) == total
    assert all(n == 1 for n in ids.values()), ids
    assert all(n == 1 for n in keys.values()), keys
    with app.app_context():
        assert set(db.session.scalars(select(OutboundMessage.status))) == {"sent"}


def test_the_message_id_is_stable_and_derived_from_the_key(app):
    from tracker.outbox import message_id

    first = message_id("bacgiang-2024/219/overdue/o1", "Sở <no-reply@sldtbxh.bacgiang.gov.vn>")
    assert first == message_id("bacgiang-2024/219/overdue/o1", "Sở <no-reply@sldtbxh.bacgiang.gov.vn>")
    assert first != message_id("bacgiang-2024/219/overdue/o2", "Sở <no-reply@sldtbxh.bacgiang.gov.vn>")
    assert first.startswith("<") and first.endswith("@sldtbxh.bacgiang.gov.vn>")
