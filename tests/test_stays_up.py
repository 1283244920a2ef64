"""Issue 13: one client, upload or mail server cannot take the tracker down for everyone else.

Each test starts a real gunicorn (the repo's gunicorn.conf.py, gthread) on loopback over the suite's
database: a SQLite file, or PostgreSQL with TRACKER_TEST_DATABASE_URL set. Run it both ways.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select

from servers import (Browser, api_upload, half_request, read_answer, server_env, silent_listener,
                     start_gunicorn, variant)
from test_bad_input import build_return
from tracker.extensions import db
from tracker.models import OutboundMessage

pytestmark = pytest.mark.slow

PLAN = "bacgiang-2024"
STAFF = "canbo@demo.bacgiang.vn"
SILENT_SECONDS = 40
# Seconds: what "promptly" means for one request, set between the failure and a loaded machine. Before
# the fix the same requests waited the 30 s busy timeout on the lock and then failed with 500; on the
# shared 2-core machine running both suites at once a login took 5.06 s, so 5 s failed without a lock.
PROMPT = 15.0
PROMPT_UPLOAD = 20.0
MAIL_TIMEOUT = 15


def officer(unit: str) -> str:
    return f"donvi{unit}@demo.bacgiang.vn"


def _keep_busy(until: float, work: Callable[[int], list[tuple[str, int, float]]],
               seen: list[tuple[str, int, float]], lock: threading.Lock, errors: list[BaseException]) -> None:
    n = 0
    while time.monotonic() < until:
        n += 1
        try:
            results = work(n)
        except BaseException as exc:  # noqa: BLE001 - reported by the test below
            errors.append(exc)
            return
        with lock:
            seen.extend(results)


def test_half_requests_lock_nothing_and_everyone_else_answers_promptly(app, tmp_path, database_url, token_for):
    tokens = {unit: token_for("unit", unit) for unit in ("219", "220")}
    filled = build_return(app, "220")
    env = server_env(database_url, tmp_path, SECRET_KEY=app.config["SECRET_KEY"], PROXY_FIX="1",
                     RATELIMIT_LOGIN="1000 per minute", UPLOAD_RATE="1000 per hour")
    server = start_gunicorn(env, tmp_path / "gunicorn.log")
    for n in range(4):  # warm both workers' parse children first: their start is not what is measured
        assert api_upload(server.url, PLAN, "220", tokens["220"], variant(filled, 1000 + n)).status == 201
    seen: list[tuple[str, int, float]] = []
    lock = threading.Lock()
    errors: list[BaseException] = []
    try:
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        slow = {
            # The attack: any bearer header, a body announced and never completed.
            "login with a bogus bearer": half_request(server.port, "/login", {**form, "Authorization": "Bearer x"},
                                                      100_000, b"email=a"),
            "login without bearer": half_request(server.port, "/login", form, 100_000, b"email=a"),
            "API upload with a valid token": half_request(
                server.port, f"/api/v1/plans/{PLAN}/units/219/returns",
                {"Authorization": f"Bearer {tokens['219']}", "Content-Type": "multipart/form-data; boundary=xx"},
                5_000_000, b"--xx\r\n"),
        }
        until = time.monotonic() + SILENT_SECONDS

        def staff_work(n: int) -> list[tuple[str, int, float]]:
            browser = Browser(server.url)
            login = browser.login(STAFF)
            dashboard = browser.get(f"/plans/{PLAN}/dashboard")
            return [("staff login", login.status, login.seconds), ("dashboard", dashboard.status, dashboard.seconds)]

        def officer_work(n: int) -> list[tuple[str, int, float]]:
            browser = Browser(server.url)
            login = browser.login(officer("219"))
            home = browser.get(f"/plans/{PLAN}/units/219")
            return [("officer login", login.status, login.seconds), ("officer home", home.status, home.seconds)]

        def upload_work(n: int) -> list[tuple[str, int, float]]:
            answer = api_upload(server.url, PLAN, "220", tokens["220"], variant(filled, n))
            return [("upload", answer.status, answer.seconds)]

        threads = [threading.Thread(target=_keep_busy, args=(until, work, seen, lock, errors))
                   for work in (staff_work, officer_work, upload_work)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(SILENT_SECONDS + 60)
        remaining = until - time.monotonic()
        if remaining > 0:
            time.sleep(remaining)
        slow_answers = {name: read_answer(sock) for name, sock in slow.items()}
        for sock in slow.values():
            sock.close()
    finally:
        server.stop()
    log = server.log.read_text(errors="replace")
    assert not errors, errors
    kinds = {kind for kind, _, _ in seen}
    assert kinds == {"staff login", "dashboard", "officer login", "officer home", "upload"}, kinds
    # A login answers 302 to the home page; everything else 200 or 201 (a new version).
    bad = [(kind, status) for kind, status, _ in seen
           if not (status == 302 if kind.endswith("login") else 200 <= status < 300)]
    assert not bad, (bad, log[-3000:])
    slowest = max(seen, key=lambda item: item[2] / (PROMPT_UPLOAD if item[0] == "upload" else PROMPT))
    assert slowest[2] < (PROMPT_UPLOAD if slowest[0] == "upload" else PROMPT), slowest
    assert sum(1 for kind, _, _ in seen if kind == "upload") >= 3
    # The silent clients were told off (408) and their connections closed; nothing else happened to them.
    for name, answer in slow_answers.items():
        assert answer.startswith(b"HTTP/1.1 408"), (name, answer[:200])
    assert "database is locked" not in log.lower()


def test_a_mail_server_that_never_answers_slows_nobody(app, tmp_path, database_url, token_for):
    listener, port = silent_listener()
    tokens = {unit: token_for("unit", unit) for unit in ("219", "220")}
    returns = {unit: build_return(app, unit) for unit in tokens}
    env = server_env(database_url, tmp_path, SECRET_KEY=app.config["SECRET_KEY"], MAIL_SERVER="127.0.0.1",
                     MAIL_PORT=str(port), MAIL_TIMEOUT=str(MAIL_TIMEOUT), RATELIMIT_LOGIN="1000 per minute",
                     UPLOAD_RATE="1000 per hour")
    server = start_gunicorn(env, tmp_path / "gunicorn.log")
    timings: list[tuple[str, int, float]] = []
    try:
        for n in range(4):  # warm both workers' parse children: their start is not what is measured
            assert api_upload(server.url, PLAN, "220", tokens["220"], variant(returns["220"], 1000 + n)).status == 201
        started = time.monotonic()
        first = api_upload(server.url, PLAN, "219", tokens["219"], returns["219"])
        timings.append(("upload 219", first.status, first.seconds))
        # While the receipt of 219 waits on the silent server, everybody else goes on.
        browser = Browser(server.url)
        timings.append(("staff login", *_status_time(browser.login(STAFF))))
        forgot = Browser(server.url)
        forgot.get("/password/forgot")
        timings.append(("password reset", *_status_time(forgot.post_form("/password/forgot",
                                                                         {"email": officer("220")}))))
        while time.monotonic() - started < 10:
            timings.append(("dashboard", *_status_time(browser.get(f"/plans/{PLAN}/dashboard"))))
            other = api_upload(server.url, PLAN, "220", tokens["220"], variant(returns["220"], len(timings)))
            timings.append(("upload 220", other.status, other.seconds))
        time.sleep(MAIL_TIMEOUT + 6 - (time.monotonic() - started))  # the sender gives up and stores why
    finally:
        server.stop()
        listener.close()
    assert first.status == 201, first.text[:300]
    assert all(status in (200, 201, 302) for _, status, _ in timings), timings
    # Waiting on the silent server would take MAIL_TIMEOUT (15 s) at least.
    slowest = max(timings, key=lambda item: item[2] / (PROMPT_UPLOAD if item[0].startswith("upload") else PROMPT))
    assert slowest[2] < (PROMPT_UPLOAD if slowest[0].startswith("upload") else PROMPT), slowest
    with app.app_context():
        receipts = db.session.scalars(select(OutboundMessage).where(OutboundMessage.kind == "receipt")).all()
        assert {r.unit_key for r in receipts} == {"219", "220"}
        assert not any(r.status == "sent" for r in receipts)
        # The first one was tried by the background sender, timed out, and waits for a retry.
        tried = [r for r in receipts if r.attempts == 1 and r.status == "pending"]
        assert tried, [(r.unit_key, r.status, r.attempts, r.last_error) for r in receipts]
        assert all("timed out" in r.last_error.lower() or "timeout" in r.last_error.lower() for r in tried)


def _status_time(answer: Any) -> tuple[int, float]:
    return answer.status, answer.seconds
