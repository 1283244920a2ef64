"""Real servers for the tests that need them: gunicorn with the repo's gunicorn.conf.py on loopback,
HTTP clients that keep cookies and CSRF tokens, and raw sockets that misbehave."""
from __future__ import annotations

import http.cookiejar
import io
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from smtp import free_port

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
DEMO_PASSWORD = "demo-2024"
# The PostgreSQL pass: the server the whole suite runs against, or "" for a SQLite file per run.
PG_URL = os.environ.get("TRACKER_TEST_DATABASE_URL", "")


def server_env(database_url: str, tmp: Path, **settings: str) -> dict[str, str]:
    """Return the environment of a production-like app over ``database_url`` (``TRACKER_*`` settings)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("TRACKER_")}
    env.pop("DATABASE_URL", None)
    env.update({"TRACKER_SQLALCHEMY_DATABASE_URI": database_url, "TRACKER_SECRET_KEY": secrets.token_hex(32),
                "TRACKER_OUTBOX_DIR": str(tmp / "outbox"), "TRACKER_PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000",
                "TRACKER_MAIL_SERVER": "", "TRACKER_PUBLIC_BASE_URL": "https://tracker.example.vn",
                "TRACKER_LOG_LEVEL": "warning", "TRACKER_ACCESS_LOG": str(tmp / "access.log")})
    env.update({f"TRACKER_{key}": value for key, value in settings.items()})
    return env


@dataclass
class Gunicorn:
    """A gunicorn started by a test; ``url`` is its base address."""

    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        """SIGTERM to its own process group (arbiter, workers, parse children); SIGKILL after 30 s."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def start_gunicorn(env: Mapping[str, str], log: Path, workers: int = 2, threads: int = 4,
                   port: int | None = None) -> Gunicorn:
    """Start gunicorn -c gunicorn.conf.py on a free loopback port; return once /login answers 200."""
    port = port or free_port()
    env = {**env, "TRACKER_BIND": f"127.0.0.1:{port}", "TRACKER_WORKERS": str(workers),
           "TRACKER_THREADS": str(threads)}
    with log.open("wb") as sink:
        proc = subprocess.Popen([str(BIN / "gunicorn"), "-c", str(ROOT / "gunicorn.conf.py")], cwd=ROOT, env=env,
                                stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)
    server = Gunicorn(proc, port, log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"gunicorn exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{server.url}/login", timeout=2) as response:
                if response.status == 200:
                    return server
        except OSError:
            time.sleep(0.3)
    server.stop()
    raise AssertionError(f"gunicorn did not answer within 60 s:\n{log.read_text()[-3000:]}")


@dataclass
class Answer:
    status: int
    body: bytes
    headers: Any
    seconds: float

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


class Browser:
    """A cookie-keeping HTTP client that fills in the CSRF token of the page it last read."""

    def __init__(self, base_url: str, address: str | None = None) -> None:
        self.base_url = base_url
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar),
                                                  _NoRedirect())
        self.address = address  # sent as X-Forwarded-For (the app trusts it with PROXY_FIX=1)
        self.csrf = ""

    def request(self, method: str, path: str, data: bytes | None = None, headers: Mapping[str, str] | None = None,
                timeout: float = 30) -> Answer:
        all_headers = dict(headers or {})
        if self.address:
            all_headers["X-Forwarded-For"] = self.address
        req = urllib.request.Request(self.base_url + path, data=data, method=method, headers=all_headers)
        started = time.monotonic()
        try:
            with self.opener.open(req, timeout=timeout) as response:
                answer = Answer(response.status, response.read(), response.headers, time.monotonic() - started)
        except urllib.error.HTTPError as exc:
            answer = Answer(exc.code, exc.read(), exc.headers, time.monotonic() - started)
        match = re.search(rb'name="csrf_token"[^>]*value="([^"]+)"', answer.body)
        if match:
            self.csrf = match.group(1).decode()
        return answer

    def get(self, path: str, **kwargs: Any) -> Answer:
        return self.request("GET", path, **kwargs)

    def post_form(self, path: str, fields: Mapping[str, str], **kwargs: Any) -> Answer:
        body = urllib.parse.urlencode({"csrf_token": self.csrf, **fields}).encode()
        return self.request("POST", path, data=body,
                            headers={"Content-Type": "application/x-www-form-urlencoded"}, **kwargs)

    def login(self, email: str, password: str = DEMO_PASSWORD) -> Answer:
        self.get("/login")
        return self.post_form("/login", {"email": email, "password": password})


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a 302/303 is an answer of its own here


def multipart(data: bytes, name: str = "bao-cao.xlsx") -> tuple[bytes, str]:
    """Return (body, content type) of a multipart upload with ``data`` as the ``file`` part."""
    boundary = secrets.token_hex(12)
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n"
            "Content-Type: application/vnd.openxmlformats-officedocument.spreadsheetml.sheet\r\n\r\n").encode() \
        + data + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def api_upload(base_url: str, plan: str, unit: str, token: str, data: bytes, timeout: float = 60,
               address: str | None = None) -> Answer:
    body, kind = multipart(data)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": kind}
    if address:
        headers["X-Forwarded-For"] = address
    req = urllib.request.Request(f"{base_url}/api/v1/plans/{plan}/units/{unit}/returns", data=body,
                                 method="POST", headers=headers)
    started = time.monotonic()
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            return Answer(response.status, response.read(), response.headers, time.monotonic() - started)
    except urllib.error.HTTPError as exc:
        return Answer(exc.code, exc.read(), exc.headers, time.monotonic() - started)


def variant(data: bytes, n: int) -> bytes:
    """Return the return ``data`` with its core properties stamped ``n``: the same figures, another file."""
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            content = source.read(info)
            if info.filename == "docProps/core.xml":
                content = content.replace(b"</cp:coreProperties>",
                                          f"<dc:description>lần {n}</dc:description></cp:coreProperties>".encode())
            target.writestr(info, content)
    return out.getvalue()


def half_request(port: int, path: str, headers: Mapping[str, str], announced: int, sent: bytes) -> socket.socket:
    """Open a raw connection, send a request whose body is announced as ``announced`` bytes but only
    ``sent`` is sent, and return the socket (the caller keeps it silent, then reads the answer)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    lines = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", f"Content-Length: {announced}",
             *[f"{k}: {v}" for k, v in headers.items()]]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + sent)
    return sock


def read_answer(sock: socket.socket, timeout: float = 5) -> bytes:
    """Return what the server sent on ``sock`` until it closed it (or ``timeout`` of silence)."""
    sock.settimeout(timeout)
    chunks = []
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    except (TimeoutError, OSError):
        pass
    return b"".join(chunks)


def silent_listener() -> tuple[socket.socket, int]:
    """Return a listening socket on loopback that accepts connections (kernel backlog) and never answers."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    return sock, int(sock.getsockname()[1])
