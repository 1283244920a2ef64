"""Issue 7: a backup taken while uploads go on restores every version with its bytes intact."""
from __future__ import annotations

import hashlib
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url

from test_bad_input import build_return, post
from tracker import cli_ops, create_app
from tracker.backup import BackupError, backup
from tracker.extensions import db
from tracker.models import ReturnFile, ReturnVersion


def is_sqlite(app: Any) -> bool:
    return make_url(app.config["SQLALCHEMY_DATABASE_URI"]).get_backend_name() == "sqlite"


@pytest.fixture
def runner(app: Any) -> Any:
    if "backup" not in app.cli.commands:
        cli_ops.init_app(app)
    return app.test_cli_runner()


def versions_in(uri: str) -> dict[int, tuple[str, str, int]]:
    """Return {version id: (declared sha256, sha256 of the stored bytes, size)} of the database at ``uri``."""
    restored = create_app({"SQLALCHEMY_DATABASE_URI": uri, "TESTING": True})
    with restored.app_context():
        rows = db.session.execute(select(ReturnVersion.id, ReturnVersion.sha256, ReturnFile.content,
                                         ReturnVersion.size)
                                  .join(ReturnFile, ReturnFile.version_id == ReturnVersion.id)).all()
        total = len(db.session.scalars(select(ReturnVersion.id)).all())
        db.engine.dispose()
    assert total == len(rows)  # no version without its file
    return {vid: (sha, hashlib.sha256(content).hexdigest(), size) for vid, sha, content, size in rows}


def test_backup_while_uploading_restores_every_version_intact(app, client, token_for, tmp_path):
    if not is_sqlite(app):
        pytest.skip("the online backup API is SQLite's; PostgreSQL uses pg_dump (tested below)")
    before_units = ["219", "220", "221"]
    during_units = ["213", "215", "216", "217", "222"]
    for unit in before_units:
        response = post(client, unit, build_return(app, unit), token=token_for("unit", unit))
        assert response.status_code == 201, response.get_json()
    during = [(unit, build_return(app, unit), token_for("unit", unit)) for unit in during_units]
    started = threading.Event()
    failures: list[Any] = []

    def keep_uploading() -> None:
        writer = app.test_client()
        for unit, data, token in during:
            response = post(writer, unit, data, token=token)
            if response.status_code != 201:
                failures.append((unit, response.status_code, response.get_data(as_text=True)[:200]))
            started.set()

    thread = threading.Thread(target=keep_uploading)
    thread.start()
    assert started.wait(60)
    copies = [backup(app.config["SQLALCHEMY_DATABASE_URI"], tmp_path / f"copy{i}.db") for i in range(3)]
    thread.join(120)
    assert not thread.is_alive() and failures == []
    # Each copy is a standalone file: no -wal beside it holds part of its state.
    for copy in copies:
        assert not Path(f"{copy}-wal").exists()
        connection = sqlite3.connect(copy)
        try:
            assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        finally:
            connection.close()
    live = versions_in(app.config["SQLALCHEMY_DATABASE_URI"])
    assert len(live) == len(before_units) + len(during_units)
    counts = []
    for copy in copies:
        restored = versions_in(f"sqlite:///{copy}")
        counts.append(len(restored))
        assert len(restored) >= len(before_units) + 1  # taken after the writer's first commit
        for vid, (sha, actual, size) in restored.items():
            assert sha == actual, vid
            assert live[vid] == (sha, actual, size)
    assert counts == sorted(counts)


def test_backup_command_writes_a_dated_copy_into_a_folder(app, client, runner, token_for, tmp_path):
    if not is_sqlite(app):
        pytest.skip("SQLite only; see the PostgreSQL test")
    assert post(client, "219", build_return(app, "219"), token=token_for("unit", "219")).status_code == 201
    result = runner.invoke(args=["backup", str(tmp_path)])
    assert result.exit_code == 0, result.output
    [copy] = list(tmp_path.glob("tracker-*.db"))
    assert "Đã sao lưu" in result.output and str(copy) in result.output
    assert len(versions_in(f"sqlite:///{copy}")) == 1


def test_backup_of_postgresql_points_to_pg_dump(app, runner, tmp_path):
    url = "postgresql+psycopg://tracker:secret-pw@db.internal:5432/tracker"
    with pytest.raises(BackupError, match="pg_dump") as caught:
        backup(url, tmp_path / "x.db")
    assert "secret-pw" not in str(caught.value) and "postgresql://tracker:***@db.internal" in str(caught.value)
    assert not (tmp_path / "x.db").exists()
    if not is_sqlite(app):
        result = runner.invoke(args=["backup", str(tmp_path / "x.db")])
        assert result.exit_code != 0 and "pg_dump" in result.output


def test_backup_refuses_what_it_cannot_copy(tmp_path):
    with pytest.raises(BackupError, match="bộ nhớ"):
        backup("sqlite://", tmp_path / "x.db")
    with pytest.raises(BackupError, match="Không tìm thấy"):
        backup(f"sqlite:///{tmp_path / 'missing.db'}", tmp_path / "x.db")
    live = tmp_path / "live.db"
    sqlite3.connect(live).close()
    with pytest.raises(BackupError, match="khác tệp"):
        backup(f"sqlite:///{live}", live)
    assert not (tmp_path / "missing.db").exists()
