"""Issue 13: production settings: no start with a forgeable SECRET_KEY, headers of a real gunicorn."""
from __future__ import annotations

import re
import subprocess
import time
import urllib.request

import pytest

from servers import BIN, ROOT, server_env, start_gunicorn
from smtp import free_port
from tracker import InsecureSecretKey, create_app


@pytest.mark.parametrize("key", [None, "", "dev-only-change-me", "short"])
def test_create_app_refuses_a_development_or_empty_key_outside_debug(monkeypatch, key):
    monkeypatch.delenv("TRACKER_SECRET_KEY", raising=False)
    if key is not None:
        monkeypatch.setenv("TRACKER_SECRET_KEY", key)
    with pytest.raises(InsecureSecretKey, match="SECRET_KEY"):
        create_app()


def test_make_run_keeps_working_with_its_development_key(monkeypatch):
    monkeypatch.delenv("TRACKER_SECRET_KEY", raising=False)
    monkeypatch.setenv("TRACKER_DEVELOPMENT", "1")
    assert create_app().config["SECRET_KEY"] == "dev-only-change-me"
    assert "TRACKER_DEVELOPMENT=1" in (ROOT / "Makefile").read_text()


@pytest.mark.parametrize("key", [None, "dev-only-change-me"])
def test_gunicorn_with_no_key_exits_with_a_clear_message(tmp_path, key):
    env = server_env("sqlite:///" + str(tmp_path / "t.db"), tmp_path)
    del env["TRACKER_SECRET_KEY"]
    if key:
        env["TRACKER_SECRET_KEY"] = key
    env["TRACKER_BIND"] = f"127.0.0.1:{free_port()}"
    result = subprocess.run([str(BIN / "gunicorn"), "-c", str(ROOT / "gunicorn.conf.py")], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "refusing to start" in result.stderr and "SECRET_KEY" in result.stderr, result.stderr[-2000:]
    assert "Booting worker" not in result.stderr


def test_gunicorn_sends_no_server_version_and_no_store_on_private_answers(app, tmp_path, database_url, token_for):
    token = token_for("staff")
    server = start_gunicorn(server_env(database_url, tmp_path), tmp_path / "gunicorn.log", workers=1, threads=2)
    try:
        with urllib.request.urlopen(f"{server.url}/login", timeout=10) as response:
            login_headers = response.headers
        request = urllib.request.Request(f"{server.url}/api/v1/plans", headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            api_headers = response.headers
        time.sleep(0.1)
    finally:
        server.stop()
    for headers in (login_headers, api_headers):
        assert "gunicorn" not in (headers.get("Server") or "").lower()
        assert not any(ch.isdigit() for ch in headers.get("Server") or "")
    assert api_headers["Cache-Control"] == "no-store"


def test_a_served_worker_freezes_what_the_app_loaded():
    # gunicorn.conf.py's post_worker_init: the app's own objects leave the collector's walk, so a full
    # collection inside a request no longer costs a walk over every module, form and mapping.
    import gc
    import runpy

    hooks = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    create_app({"TESTING": True, "SECRET_KEY": "x" * 32, "SQLALCHEMY_DATABASE_URI": "sqlite://"})
    gc.unfreeze()
    try:
        hooks["post_worker_init"](None)
        assert gc.get_freeze_count() > 50_000
    finally:
        gc.unfreeze()


CRON_LINE = re.compile(r"[\d*/,-]+( +[\d*/,-]+){4} ")  # minute hour day month weekday, then the command


def test_timer_examples_run_both_commands_with_the_production_paths_and_settings():
    """The cron and systemd examples of ingest-mail and send-reminders run where production.md installs the
    code and read its settings file: cron starts with an empty environment, so a line that does not read
    /etc/tracker/env runs with the development key refused or on the wrong database."""
    docs = {name: (ROOT / "docs" / name).read_text(encoding="utf-8")
            for name in ("production.md", "reminders.md", "intake.md")}
    for name, text in docs.items():
        lines = text.splitlines()
        for line in lines:
            if line.startswith("WorkingDirectory="):
                assert line == "WorkingDirectory=/srv/tracker", (name, line)
            if line.startswith("EnvironmentFile="):
                assert line == "EnvironmentFile=/etc/tracker/env", (name, line)
            if line.startswith("ExecStart=") and "flask" in line:
                assert line.startswith("ExecStart=/srv/tracker/.venv/bin/flask --app tracker "), (name, line)
        cron = [line for line in lines if CRON_LINE.match(line) and "flask --app tracker" in line]
        assert cron, name
        for line in cron:
            assert "cd /srv/tracker && set -a && . /etc/tracker/env && set +a && flock -n " in line, (name, line)
    intake = docs["intake.md"]
    for command in ("ingest-mail", "send-reminders"):
        assert any(f"flask --app tracker {command}" in line and CRON_LINE.match(line)
                   for line in intake.splitlines()), command
    assert "ExecStart=/srv/tracker/.venv/bin/flask --app tracker ingest-mail" in intake
    assert "ExecStart=/srv/tracker/.venv/bin/flask --app tracker send-reminders" in docs["reminders.md"]
    assert "ingest-mail" in docs["production.md"] and "intake.md" in docs["production.md"]
