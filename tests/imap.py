"""A real IMAP server for tests: Debian's Dovecot on a free loopback port with a temporary maildir.

The ``dovecot`` fixture writes its own dovecot.conf (plain IMAP and IMAPS with a self-signed
certificate, a passwd-file with one test user), starts ``dovecot -F`` as a child process in its own
process group, waits for the port, and stops it after the test. Messages are delivered by IMAP
APPEND with an explicit INTERNALDATE, as a mail server's delivery would set it. Without Dovecot the
tests skip with the reason, except under TRACKER_REQUIRE_SERVICES=1 (CI), where that is a failure.
"""
from __future__ import annotations

import imaplib
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from smtp import free_port

DOVECOT = "/usr/sbin/dovecot"
USER = "intake"


def _require_dovecot() -> None:
    if not Path(DOVECOT).exists():
        reason = "Dovecot is not installed (Debian package dovecot-imapd); the IMAP tests need it"
        if os.environ.get("TRACKER_REQUIRE_SERVICES") == "1":
            pytest.fail(f"{reason} (TRACKER_REQUIRE_SERVICES=1: they must run here)", pytrace=False)
        pytest.skip(reason)


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], log: Path, seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"dovecot exited with {proc.returncode}: {log.read_text() if log.exists() else ''}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
                sock.settimeout(2)
                if sock.recv(100).startswith(b"* OK"):
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"dovecot did not answer on {port}: {log.read_text() if log.exists() else ''}")


def _self_signed(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
                    "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


class Dovecot:
    """A running Dovecot: ``port`` plain IMAP, ``ssl_port`` IMAPS (``cafile`` trusts it), one user."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.ssl_port = free_port()
        self.user = USER
        self.password = secrets.token_hex(8)
        self.proc: subprocess.Popen[bytes] | None = None
        self.cafile = ""

    def _conf(self) -> Path:
        root = self.root
        if os.geteuid() == 0:
            internal, login = "dovecot", "dovenull"
        else:
            internal = login = pwd.getpwuid(os.getuid()).pw_name
        mail_user = pwd.getpwnam(internal)
        for sub in ("run", "state", "mail"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(root / "mail", mail_user.pw_uid, mail_user.pw_gid)
        cert, key = _self_signed(root)
        self.cafile = str(cert)
        (root / "passwd").write_text(f"{self.user}:{{PLAIN}}{self.password}::::::\n")
        conf = root / "dovecot.conf"
        conf.write_text(f"""
instance_name = tracker-test-{self.port}
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
info_log_path = {root}/dovecot.log
listen = 127.0.0.1
protocols = imap
default_internal_user = {internal}
default_login_user = {login}
first_valid_uid = {mail_user.pw_uid}
last_valid_uid = 0
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:{root}/mail/%u
ssl = yes
ssl_cert = <{cert}
ssl_key = <{key}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = static
  args = uid={mail_user.pw_uid} gid={mail_user.pw_gid} home={root}/mail/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {self.ssl_port}
    ssl = yes
  }}
}}
service stats {{
  unix_listener stats-reader {{
    mode = 0666
  }}
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
namespace inbox {{
  inbox = yes
  separator = /
  mailbox Processed {{
    auto = create
  }}
}}
""")
        return conf

    def start(self) -> None:
        conf = self._conf()
        self.proc = subprocess.Popen([DOVECOT, "-F", "-c", str(conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        _wait_for_port(self.port, self.proc, self.root / "dovecot.log")

    def stop(self) -> None:
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGCONT)  # in case a test froze it
            self.proc.terminate()
            self.proc.wait(timeout=10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.proc = None

    def freeze(self) -> None:
        """SIGSTOP every process of this Dovecot: the port still accepts, nobody answers."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGCONT)

    # -- a mail client's view
    def client(self) -> imaplib.IMAP4:
        imap = imaplib.IMAP4("127.0.0.1", self.port, timeout=10)
        imap.login(self.user, self.password)
        return imap

    def deliver(self, raw: bytes, internaldate: datetime, folder: str = "INBOX") -> None:
        """APPEND ``raw`` to ``folder`` with the server's arrival time set to ``internaldate``."""
        imap = self.client()
        try:
            typ, data = imap.append(folder, "", imaplib.Time2Internaldate(internaldate), raw)
            assert typ == "OK", data
        finally:
            imap.logout()

    def folder_state(self, folder: str = "INBOX") -> list[tuple[str, bytes]]:
        """Return (uid, FLAGS response) of every message in ``folder``, without changing anything."""
        imap = self.client()
        try:
            imap.select(f'"{folder}"', readonly=True)
            typ, data = imap.uid("FETCH", "1:*", "(FLAGS)")
            result = []
            for line in data:
                if isinstance(line, bytes) and b"UID" in line:
                    uid = line.split(b"UID ")[1].split()[0].rstrip(b")").decode()
                    result.append((uid, line))
            return result
        finally:
            imap.logout()

    def configure(self, app: Any, security: str = "none", processed_folder: str = "", timeout: float = 5.0) -> None:
        """Point ``app``'s intake settings at this server."""
        app.config.update(INTAKE_IMAP_HOST="127.0.0.1", INTAKE_IMAP_PORT=self.ssl_port if security == "ssl"
                          else self.port, INTAKE_IMAP_USER=self.user, INTAKE_IMAP_PASSWORD=self.password,
                          INTAKE_IMAP_FOLDER="INBOX", INTAKE_IMAP_SECURITY=security, INTAKE_IMAP_TIMEOUT=timeout,
                          INTAKE_IMAP_CAFILE=self.cafile, INTAKE_IMAP_PROCESSED_FOLDER=processed_folder or None)


@pytest.fixture
def dovecot() -> Iterator[Dovecot]:
    """A started Dovecot with an empty mailbox, stopped after the test."""
    _require_dovecot()
    # Not pytest's tmp_path: its parents are private to our user, and Dovecot's mail processes run as
    # the dovecot user when the tests run as root.
    root = Path(tempfile.mkdtemp(prefix="tracker-dovecot-"))
    root.chmod(0o755)
    server = Dovecot(root)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
