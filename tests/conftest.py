"""Shared fixtures: a real database (SQLite file, or PostgreSQL via TRACKER_TEST_DATABASE_URL) built
by the migrations once per run, wiped and re-seeded with the 2024 plan before each test."""
from __future__ import annotations

import os
import secrets
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from servers import PG_URL
from smtp import smtp_server  # noqa: F401  (a real SMTP server on loopback, for every test module)
from tracker import create_app
from tracker.extensions import db
from tracker.models import User

ROOT = Path(__file__).resolve().parent.parent


def _with_search_path(url: str, schema: str) -> str:
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options=-csearch_path%3D{schema}"



def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the browser journeys last. Their one sync Playwright driver keeps an event loop running in the
    main thread until the session ends, and any test after them that calls ``asyncio.run`` (pyHanko
    signing a PDF) would fail with "cannot be called from a running event loop"."""
    items.sort(key=lambda item: item.path.parent.name == "e2e")

@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A fresh, migrated database for this run: a SQLite file, or a new PostgreSQL schema."""
    if PG_URL:
        url = PG_URL.replace("postgresql://", "postgresql+psycopg://", 1) if PG_URL.startswith("postgresql://") else PG_URL
        schema = f"test_{uuid.uuid4().hex[:12]}"
        admin = create_engine(url)
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        scoped = _with_search_path(url, schema)
    else:
        scoped = "sqlite:///" + str(tmp_path_factory.mktemp("db") / "tracker.db")
    app = create_app({"SQLALCHEMY_DATABASE_URI": scoped, "TESTING": True})
    with app.app_context():
        from flask_migrate import upgrade

        upgrade(directory=str(ROOT / "migrations"))
        db.engine.dispose()
    yield scoped
    if PG_URL:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def wipe(database: Any) -> None:
    tables = list(reversed(db.metadata.sorted_tables))
    if database.engine.dialect.name == "postgresql":
        names = ", ".join(f'"{t.name}"' for t in tables)
        db.session.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    else:
        for table in tables:
            db.session.execute(table.delete())
    db.session.commit()


@pytest.fixture
def app_config(tmp_path: Path, database_url: str) -> dict[str, Any]:
    return {
        "TESTING": True,
        "SECRET_KEY": secrets.token_hex(16),
        "SQLALCHEMY_DATABASE_URI": database_url,
        "WTF_CSRF_ENABLED": False,
        "RATELIMIT_ENABLED": False,
        "PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000",
        "OUTBOX_DIR": str(tmp_path / "outbox"),
        "MAIL_SERVER": None,
        # Mail queued by a request goes out right after its commit, in the request: tests read it at once.
        "MAIL_SEND_AFTER_REQUEST": "inline",
        "PUBLIC_BASE_URL": "https://tracker.example.vn",
        # Tests build many short-lived apps; pooled PostgreSQL connections they leave behind would be
        # closed by the garbage collector, which psycopg reports as a ResourceWarning (an error here).
        "SQLALCHEMY_ENGINE_OPTIONS": {"poolclass": NullPool} if PG_URL else {},
    }


@pytest.fixture
def app(app_config: dict[str, Any]) -> Iterator[Any]:
    """The app over a wiped database holding the 2024 plan, demo users and contacts."""
    from tracker.accounts import hash_password
    from tracker.seed import seed, seed_demo

    app = create_app(app_config)
    with app.app_context():
        wipe(db)
        report = seed(Path(app.config["REPORT_FORMS_DIR"]))
        seed_demo(report, hash_password)
        db.session.commit()
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def client(app: Any) -> Any:
    return app.test_client()


@pytest.fixture
def runner(app: Any) -> Any:
    return app.test_cli_runner()


def demo_email(role: str, unit: str | None = None) -> str:
    return {"admin": "admin@demo.bacgiang.vn", "staff": "canbo@demo.bacgiang.vn"}.get(
        role, f"donvi{unit}@demo.bacgiang.vn")


@pytest.fixture
def login_as(app: Any, client: Any) -> Callable[..., User]:
    """Log the test client in as a demo user: ``login_as("unit", "219")``, ``login_as("staff")``."""

    def _login(role: str, unit: str | None = None) -> Any:
        with app.app_context():
            user = db.session.scalar(db.select(User).where(User.email == demo_email(role, unit)))
            assert user is not None, (role, unit)
            user_id, session_key = user.id, user.get_id()
        with client.session_transaction() as session:
            session["_user_id"] = session_key
            session["_fresh"] = True
        return user_id

    return _login


@pytest.fixture
def token_for(app: Any) -> Callable[..., str]:
    """Return a fresh API token of a demo user."""
    from tracker.accounts import issue_token

    def _token(role: str, unit: str | None = None) -> str:
        with app.app_context():
            user = db.session.scalar(db.select(User).where(User.email == demo_email(role, unit)))
            token = issue_token(user)
            db.session.commit()
            return token

    return _token
