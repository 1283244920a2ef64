"""Consistent copies of the tracker's database while the app keeps serving.

SQLite: the online backup API (``sqlite3.Connection.backup``) copies the pages under SQLite's own
locking, so a copy taken while uploads commit is a snapshot of one committed state, WAL included;
copying the file (or ``.db`` without its ``-wal``) could catch a torn or stale state. PostgreSQL has
its own tool for this, ``pg_dump``; we do not reimplement it.
"""
from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from sqlalchemy.engine import Engine, make_url


class BackupError(Exception):
    """A backup that cannot be taken; the message says why and what to do, in Vietnamese."""


# All pages in one step: in WAL mode that step reads one snapshot while writers go on committing. Copying in
# small steps would restart the copy after every commit by another connection, forever under steady uploads.
PAGES_PER_STEP = -1


def backup(source: str | Engine, dest: str | os.PathLike[str]) -> Path:
    """Copy the SQLite database named by ``source`` (a URL or an engine) to ``dest``; return its path.

    ``dest`` may be a directory (the file is named after the database) or a file path; an existing
    file is replaced only once the new copy is complete. Raises BackupError for a database that is
    not a SQLite file (PostgreSQL: the message gives the pg_dump command), a missing source, or a
    destination that cannot be written.
    """
    url = source.url if isinstance(source, Engine) else make_url(source)
    if url.get_backend_name() != "sqlite":
        raise BackupError(
            f"Cơ sở dữ liệu {url.get_backend_name()} không sao lưu bằng lệnh này. Với PostgreSQL hãy dùng "
            f"pg_dump, ví dụ: pg_dump --format=custom --file=tracker-$(date +%F).dump "
            f"\"{url.set(password=None, drivername='postgresql').render_as_string(hide_password=True)}\" "
            "(xem docs/production.md).")
    database = url.database or ""
    if database in ("", ":memory:") or database.startswith("file::memory:"):
        raise BackupError("Cơ sở dữ liệu SQLite trong bộ nhớ không có tệp để sao lưu.")
    source_path = Path(database)
    if not source_path.is_file():
        raise BackupError(f"Không tìm thấy tệp cơ sở dữ liệu «{source_path}».")
    target = Path(dest)
    if target.is_dir():
        target = target / source_path.name
    if target.resolve() == source_path.resolve():
        raise BackupError("Tệp sao lưu phải khác tệp cơ sở dữ liệu đang dùng.")
    partial = target.with_name(target.name + ".partial")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        partial.unlink(missing_ok=True)
        # Read-only URI: the backup never creates or changes the live database.
        src = sqlite3.connect(f"{source_path.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
        try:
            dst = sqlite3.connect(partial)
            try:
                src.backup(dst, pages=PAGES_PER_STEP)
                # The copy is a standalone file: no WAL beside it for a restore to forget.
                dst.execute("PRAGMA journal_mode = DELETE")
                check = dst.execute("PRAGMA quick_check").fetchone()[0]
            finally:
                dst.close()
        finally:
            src.close()
        if check != "ok":
            raise BackupError(f"Bản sao lưu không qua được kiểm tra toàn vẹn ({check}); hãy thử lại.")
        os.replace(partial, target)
    except (sqlite3.Error, OSError) as exc:
        partial.unlink(missing_ok=True)
        raise BackupError(f"Không sao lưu được vào «{target}»: {exc}") from exc
    return target
