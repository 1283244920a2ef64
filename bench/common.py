"""Shared pieces of the benchmarks: timing, figures, scratch databases, national units, the app.

Every bench module exposes ``main(argv) -> int`` (``python -m bench.<name> --out result.json``) and
writes one ``BenchResult`` as JSON; ``bench.run_all`` runs each one in its own process, so a bench
that leaks memory or a worker process cannot colour the next one, and each is bounded in time.
"""
from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import os
import secrets
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
UNITS_GZ = DATA / "vn_units_20240501.json.gz"
DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/test"

# The fixtures under tests/ build valid returns from the shipped forms; the benches reuse them.
for _path in (str(ROOT), str(ROOT / "tests")):
    if _path not in sys.path:
        sys.path.insert(0, _path)


@dataclass
class Figure:
    """One measured quantity: the median of ``runs`` samples, with the spread kept for the record."""

    label: str
    median: float
    unit: str
    runs: int
    low: float
    high: float
    note: str = ""


@dataclass
class Target:
    """One target of issue 9 checked against a figure of the same run."""

    text: str
    measured: str
    met: bool | None  # None: not measured
    why: str = ""


@dataclass
class BenchResult:
    number: int
    title: str
    figures: list[Figure] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    error: str = ""

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, indent=1)

    @staticmethod
    def from_json(text: str) -> BenchResult:
        raw = json.loads(text)
        result = BenchResult(raw["number"], raw["title"], seconds=raw.get("seconds", 0.0),
                             error=raw.get("error", ""), notes=list(raw.get("notes", [])))
        result.figures = [Figure(**f) for f in raw.get("figures", [])]
        result.targets = [Target(**t) for t in raw.get("targets", [])]
        return result


def figure(label: str, samples: list[float], unit: str = "ms", scale: float = 1000.0, note: str = "") -> Figure:
    """Return the Figure of ``samples`` (seconds, shown times ``scale`` in ``unit``)."""
    scaled = [s * scale for s in samples]
    return Figure(label, statistics.median(scaled), unit, len(scaled), min(scaled), max(scaled), note)


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Return (seconds, result) of one call of ``fn``."""
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def interleaved(fns: dict[str, Callable[[], Any]], runs: int, warmup: int = 1,
                budget: float | None = None) -> dict[str, list[float]]:
    """Return the seconds of ``runs`` calls of each function, taken in turn (A, B, C, A, B, C …).

    Taking the contenders in turn makes a ratio fair on a shared machine: a burst of load from
    another process slows every contender of that round, not one of them. Stops early (after at
    least three rounds) once ``budget`` seconds have passed.
    """
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    samples: dict[str, list[float]] = {name: [] for name in fns}
    began = time.perf_counter()
    for round_no in range(runs):
        for name, fn in fns.items():
            samples[name].append(timed(fn)[0])
        if budget is not None and round_no >= 2 and time.perf_counter() - began > budget:
            break
    return samples


def ratio(a: list[float], b: list[float]) -> float:
    """Return median(a) / median(b)."""
    return statistics.median(a) / statistics.median(b)


def read_national_units() -> list[dict[str, Any]]:
    """Return the GSO rows of every unit of Vietnam on 01/05/2024 (63 + 705 + 10,595)."""
    from tracker.seed import read_units_json

    # read_units_json reads a plain JSON path: unpack the repository's gzip copy next to it once.
    with tempfile.TemporaryDirectory(prefix="bench-units-") as tmp:
        plain = Path(tmp) / "vn_units_20240501.json"
        plain.write_bytes(gzip.decompress(UNITS_GZ.read_bytes()))
        return read_units_json(plain)


# ---------------------------------------------------------------------------------------------
# Scratch databases


def pg_url() -> str:
    return os.environ.get("BENCH_PG_URL", DEFAULT_PG_URL)


def pg_available() -> str:
    """Return "" when the scratch PostgreSQL answers, else why not."""
    from sqlalchemy import create_engine, text

    url = _psycopg(pg_url())
    try:
        engine = create_engine(url)
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        engine.dispose()
        return ""
    except Exception as exc:  # noqa: BLE001 - any failure means "not available", with its reason
        return f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"


def _psycopg(url: str) -> str:
    return "postgresql+psycopg://" + url.split("://", 1)[1] if url.startswith("postgresql://") else url


@contextlib.contextmanager
def scratch_database(kind: str) -> Iterator[str]:
    """Yield the URL of a fresh, migrated database ("sqlite": a temp file; "postgresql": a new schema).

    The schema or file is dropped afterwards; instance/ is never touched.
    """
    from sqlalchemy import create_engine, text

    tmp = Path(tempfile.mkdtemp(prefix="bench-db-"))
    admin = None
    schema = ""
    try:
        if kind == "sqlite":
            url = "sqlite:///" + str(tmp / "tracker.db")
        else:
            base = _psycopg(pg_url())
            schema = f"bench_{uuid.uuid4().hex[:12]}"
            admin = create_engine(base)
            with admin.begin() as conn:
                conn.execute(text(f'CREATE SCHEMA "{schema}"'))
            url = f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{schema}"
        app = make_app(url, tmp)
        with app.app_context():
            from flask_migrate import upgrade

            from tracker.extensions import db

            with contextlib.redirect_stderr(open(os.devnull, "w")):
                upgrade(directory=str(ROOT / "migrations"))
            db.engine.dispose()
        yield url
    finally:
        if admin is not None:
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            admin.dispose()
        shutil.rmtree(tmp, ignore_errors=True)


def temp_dir(prefix: str) -> Path:
    """Return a new temporary folder, removed when the bench process exits."""
    import atexit

    path = Path(tempfile.mkdtemp(prefix=prefix))
    atexit.register(shutil.rmtree, path, True)
    return path


def make_app(url: str, tmp: Path, **extra: Any) -> Any:
    """Return the tracker app over ``url`` with test-like settings (no CSRF, no rate limit, cheap hashes)."""
    import logging

    from tracker import create_app

    # Alembic and the app log at INFO; a bench prints its own summary only.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    config = {
        "SQLALCHEMY_DATABASE_URI": url,
        "SECRET_KEY": secrets.token_hex(16),
        "WTF_CSRF_ENABLED": False,
        "RATELIMIT_ENABLED": False,
        "PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000",
        "OUTBOX_DIR": str(tmp / "outbox"),
        "MAIL_SERVER": None,
        "PUBLIC_BASE_URL": "https://tracker.example.vn",
    }
    config.update(extra)
    return create_app(config)


class QueryCounter:
    """Count the SQL statements an engine executes while active (a before_cursor_execute listener)."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.statements: list[str] = []
        self.parameters: list[Any] = []

    def _hook(self, conn: Any, cursor: Any, statement: str, parameters: Any = None, *args: Any) -> None:
        self.statements.append(statement)
        self.parameters.append(parameters)

    def __enter__(self) -> QueryCounter:
        from sqlalchemy import event

        event.listen(self.engine, "before_cursor_execute", self._hook)
        return self

    def __exit__(self, *exc: object) -> None:
        from sqlalchemy import event

        event.remove(self.engine, "before_cursor_execute", self._hook)

    @property
    def count(self) -> int:
        return len(self.statements)


@contextlib.contextmanager
def served_heap() -> Iterator[None]:
    """Freeze the objects alive now, as gunicorn.conf.py's ``post_worker_init`` does once a worker has loaded
    the app, and thaw them on leaving: what a served worker's full garbage collections walk is what its
    requests made, not the modules and forms (nor, here, the populated plan's setup)."""
    import gc

    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def login_session(client: Any, session_key: str) -> None:
    """Log the test client in with a user's ``get_id()`` the way Flask-Login stores it."""
    with client.session_transaction() as session:
        session["_user_id"] = session_key
        session["_fresh"] = True


def vm_hwm_kib(pid: int | str = "self") -> int:
    """Return the peak resident set size (VmHWM) of process ``pid`` in KiB, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmHWM for {pid}")


def vm_rss_kib(pid: int | str = "self") -> int:
    """Return the current resident set size (VmRSS) of process ``pid`` in KiB, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def bench_main(number: int, title: str, body: Callable[[BenchResult, argparse.Namespace], None],
               argv: list[str] | None = None, configure: Callable[[argparse.ArgumentParser], None] | None = None
               ) -> int:
    """Run ``body`` filling a BenchResult and write it as JSON to ``--out`` (stdout when absent).

    A failure inside ``body`` is recorded in ``error`` (the run goes on with the other benches).
    """
    parser = argparse.ArgumentParser(description=title)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--quick", action="store_true", help="fewer runs, for a smoke test")
    if configure is not None:
        configure(parser)
    args = parser.parse_args(argv)
    result = BenchResult(number, title)
    began = time.perf_counter()
    try:
        body(result, args)
    except Exception as exc:  # noqa: BLE001 - reported in the table, not lost in a traceback
        import traceback

        result.error = f"{type(exc).__name__}: {exc}"
        traceback.print_exc()
    result.seconds = time.perf_counter() - began
    text = result.to_json()
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    else:
        print(text)
    return 0 if not result.error else 1
