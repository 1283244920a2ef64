"""A local SMTP sink for the reminder bench: aiosmtpd on a loopback port, in its own process.

It runs apart from the sender so that receiving does not compete with sending for one interpreter.
Protocol on stdio: it prints ``PORT <n>`` once ready; each line ``stats`` on stdin is answered with a
JSON line ``{"messages": m, "recipients": r, "connections": c, "bytes": b}``; end of input stops it.
"""
from __future__ import annotations

import json
import socket
import sys
import threading
from typing import Any

from aiosmtpd.controller import Controller


class CountingHandler:
    """Accept every message and count messages, recipients, bytes and distinct client connections."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.messages = 0
        self.recipients = 0
        self.bytes = 0
        self.peers: set[tuple[str, int]] = set()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.messages += 1
            self.recipients += len(envelope.rcpt_tos)
            self.bytes += len(envelope.original_content or envelope.content or b"")
            self.peers.add(tuple(session.peer))
        return "250 Message accepted for delivery"

    def stats(self) -> dict[str, int]:
        with self.lock:
            return {"messages": self.messages, "recipients": self.recipients, "connections": len(self.peers),
                    "bytes": self.bytes}


def main() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    handler = CountingHandler()
    controller = Controller(handler, hostname="127.0.0.1", port=port, ready_timeout=10)
    controller.start()
    print(f"PORT {port}", flush=True)
    try:
        for line in sys.stdin:
            if line.strip() == "stats":
                print(json.dumps(handler.stats()), flush=True)
    finally:
        controller.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
