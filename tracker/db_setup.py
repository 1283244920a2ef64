"""Engine settings that each database needs to behave under concurrent uploads."""
from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

# ``engine.connect().execution_options(**READ_ONLY)`` opens a transaction that never takes the write lock.
READ_ONLY = {"tracker_read_only": True}


def _reads_only(connection: Any) -> bool:
    return bool(connection.get_execution_options().get("tracker_read_only"))


def tune_engine(engine: Engine, busy_timeout: float) -> None:
    """On SQLite: WAL, foreign keys, a busy timeout, and BEGIN IMMEDIATE for every writing transaction.

    pysqlite starts transactions lazily and upgrades a read lock to a write lock mid-transaction; two
    uploads doing that at once deadlock and one fails at once with "database is locked", whatever the
    busy timeout. Taking the write lock at BEGIN makes writers queue on the busy timeout instead.
    Connections opened with READ_ONLY (the bearer-token lookup) begin DEFERRED: in WAL mode they read
    a snapshot and never wait for, or hold, the write lock.
    """
    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        cursor.execute("PRAGMA foreign_keys = ON")
        if engine.url.database not in (None, "", ":memory:"):
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN" if _reads_only(connection) else "BEGIN IMMEDIATE")
