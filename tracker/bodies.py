"""Read every request body in full before the app sees the request, under a time limit (408).

A client that announces a body and then sends it slowly (or never) must not hold anything but its
own thread: the app reads the body before any database work, so no transaction ever waits on a
client. Under gunicorn the socket is reachable in ``environ["gunicorn.socket"]``; the body is read
with a timeout for each read (``idle``) and one for the whole body (``total``), and a client that
misses either gets 408 and a closed connection. Bodies up to ``memory_bytes`` stay in memory; larger
ones are spooled to a temporary file, so a 10 MiB upload never sits twice in RAM.

Behind nginx with request buffering on (docs/production.md) bodies arrive at once and these limits
never trigger; they make the bare gunicorn set-up safe on its own.
"""
from __future__ import annotations

import json
import socket
import tempfile
import time
from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.wsgi import ClosingIterator

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

CHUNK = 64 * 1024
TIMEOUT_MESSAGE = ("Máy chủ đã chờ quá lâu mà chưa nhận đủ dữ liệu gửi lên nên đã dừng. "
                   "Vui lòng kiểm tra đường truyền rồi gửi lại.")
INCOMPLETE_MESSAGE = "Dữ liệu gửi lên bị ngắt giữa chừng. Vui lòng gửi lại."


SPOOL_KEY = "tracker.body_spool"


def close_spool(environ: dict[str, Any]) -> None:
    """Close the request's spooled body (the app calls it when the request ends)."""
    spool = environ.pop(SPOOL_KEY, None)
    if spool is not None:
        spool.close()


class BodyTimeout(Exception):
    """The client did not send its announced body in time."""


class BodyIncomplete(Exception):
    """The client closed the connection before sending its announced body."""


class BufferedBody:
    """WSGI middleware: the wrapped app always gets a complete, seekable ``wsgi.input``."""

    def __init__(self, app: WSGIApp, idle: float, total: float, max_bytes: int | None,
                 memory_bytes: int = 1024 * 1024) -> None:
        self.app = app
        self.idle = idle
        self.total = total
        self.max_bytes = max_bytes
        self.memory_bytes = memory_bytes

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        length_text = environ.get("CONTENT_LENGTH") or ""
        chunked = "chunked" in (environ.get("HTTP_TRANSFER_ENCODING") or "").lower()
        try:
            length = int(length_text) if length_text else 0
        except ValueError:
            return self.app(environ, start_response)  # Werkzeug answers the malformed header
        if length <= 0 and not chunked:
            return self.app(environ, start_response)
        if self.max_bytes is not None and length > self.max_bytes:
            # Too large to read at all: Flask answers 413 from the header alone, reading nothing.
            return self.app(environ, start_response)
        try:
            spool, size = self._read(environ, length if not chunked else None)
        except BodyTimeout:
            return _answer(environ, start_response, "408 Request Timeout", "request_timeout", TIMEOUT_MESSAGE)
        except BodyIncomplete:
            return _answer(environ, start_response, "400 Bad Request", "incomplete_body", INCOMPLETE_MESSAGE)
        environ["wsgi.input"] = spool
        environ[SPOOL_KEY] = spool  # closed by close_spool at the end of the request
        environ["CONTENT_LENGTH"] = str(size)
        environ["wsgi.input_terminated"] = True
        environ.pop("HTTP_TRANSFER_ENCODING", None)
        try:
            answer = self.app(environ, start_response)
        except BaseException:
            spool.close()
            raise
        return ClosingIterator(answer, [spool.close])

    def _read(self, environ: dict[str, Any], length: int | None) -> tuple[Any, int]:
        """Return (spooled body at offset 0, its size); raise BodyTimeout or BodyIncomplete."""
        stream = environ["wsgi.input"]
        sock = environ.get("gunicorn.socket")
        previous = sock.gettimeout() if sock is not None else None
        spool = tempfile.SpooledTemporaryFile(max_size=self.memory_bytes)
        deadline = time.monotonic() + self.total
        size = 0
        limit = self.max_bytes
        try:
            while length is None or size < length:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise BodyTimeout()
                if sock is not None:
                    sock.settimeout(min(self.idle, remaining))
                want = CHUNK if length is None else min(CHUNK, length - size)
                try:
                    chunk = stream.read(want)
                except (socket.timeout, TimeoutError) as exc:
                    raise BodyTimeout() from exc
                except OSError as exc:
                    raise BodyIncomplete() from exc
                if not chunk:
                    if length is None:
                        break
                    raise BodyIncomplete()
                spool.write(chunk)
                size += len(chunk)
                if limit is not None and length is None and size > limit:
                    break  # a chunked body past the cap: Flask refuses it with 413 on what we kept
        except BaseException:
            spool.close()
            raise
        finally:
            if sock is not None:
                try:
                    sock.settimeout(previous)
                except OSError:
                    pass
        spool.seek(0)
        return spool, size


def _answer(environ: dict[str, Any], start_response: Callable[..., Any], status: str, code: str,
            message: str) -> Iterable[bytes]:
    """Answer without the app: JSON on the API, plain Vietnamese text elsewhere; close the connection."""
    if (environ.get("PATH_INFO") or "").startswith("/api/"):
        body = json.dumps({"error": {"code": code, "message": message}}, ensure_ascii=False).encode()
        kind = "application/json"
    else:
        body = message.encode()
        kind = "text/plain; charset=utf-8"
    start_response(status, [("Content-Type", kind), ("Content-Length", str(len(body))),
                            ("Connection", "close"), ("Cache-Control", "no-store")])
    return [body]
