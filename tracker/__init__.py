"""The report collection and compliance tracker of Sở LĐTBXH Bắc Giang.

``create_app`` reads like a table of contents: settings, extensions, blueprints, error pages, CLI.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

from flask import Flask

ROOT = Path(__file__).resolve().parent.parent


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app; ``test_config`` overrides every other settings layer."""
    app = Flask(__name__, instance_path=str(ROOT / "instance"), instance_relative_config=True,
                template_folder=str(ROOT / "templates"))
    load_settings(app, test_config)
    refuse_development_key(app)
    buffer_bodies(app)
    trust_proxies(app)
    register_forms(app)
    register_extensions(app)
    register_blueprints(app)
    register_errorhandlers(app)
    register_template_helpers(app)
    register_commands(app)
    return app


def load_settings(app: Flask, test_config: Mapping[str, Any] | None) -> None:
    app.config.from_object("tracker.config")
    app.config.from_pyfile("config.py", silent=True)
    if os.environ.get("DATABASE_URL"):
        app.config["SQLALCHEMY_DATABASE_URI"] = os.environ["DATABASE_URL"]
    app.config.from_prefixed_env("TRACKER")
    if test_config:
        app.config.from_mapping(test_config)
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    uri = app.config.get("SQLALCHEMY_DATABASE_URI")
    if not uri:
        uri = "sqlite:///" + str(Path(app.instance_path) / "tracker.db")
    # psycopg 3 is the PostgreSQL driver we ship; plain postgresql:// would ask for psycopg2.
    for prefix in ("postgres://", "postgresql://"):
        if uri.startswith(prefix):
            uri = "postgresql+psycopg://" + uri[len(prefix):]
    app.config["SQLALCHEMY_DATABASE_URI"] = uri
    if not app.config.get("REPORT_FORMS_DIR"):
        app.config["REPORT_FORMS_DIR"] = str(ROOT / "report_forms")
    app.config.setdefault("OUTBOX_DIR", str(Path(app.instance_path) / "outbox"))


DEVELOPMENT_KEYS = frozenset({"dev-only-change-me", "dev", "change-me", "secret"})


def secret_key_problem(config: Mapping[str, Any]) -> str | None:
    """Return why SECRET_KEY cannot serve production (None when it can, or in debug/testing/DEVELOPMENT)."""
    if config.get("DEBUG") or config.get("TESTING") or config.get("DEVELOPMENT"):
        return None
    key = config.get("SECRET_KEY")
    if not key or not str(key).strip():
        return ("SECRET_KEY is empty: set TRACKER_SECRET_KEY (or SECRET_KEY in instance/config.py) to a long "
                "random value, e.g. python -c 'import secrets; print(secrets.token_hex(32))'.")
    if str(key) in DEVELOPMENT_KEYS or len(str(key)) < 16:
        return ("SECRET_KEY is the public development key (or shorter than 16 characters): set "
                "TRACKER_SECRET_KEY (or SECRET_KEY in instance/config.py) to a long random value. Sessions, "
                "reset links and the workbooks' identity checksum are signed with it.")
    return None


class InsecureSecretKey(RuntimeError):
    """The app would serve with a forgeable SECRET_KEY."""


def refuse_development_key(app: Flask) -> None:
    problem = secret_key_problem(app.config)
    if problem is not None:
        raise InsecureSecretKey(problem)


def buffer_bodies(app: Flask) -> None:
    """Read request bodies in full (408 when too slow) before the app, so no transaction waits on a client."""
    from flask import request

    from .bodies import BufferedBody, close_spool

    @app.teardown_request
    def _close_body(_exc: BaseException | None) -> None:
        close_spool(request.environ)

    buffered = BufferedBody(app.wsgi_app, idle=float(app.config["BODY_IDLE_TIMEOUT"]),
                            total=float(app.config["BODY_READ_TIMEOUT"]), max_bytes=app.config.get("MAX_CONTENT_LENGTH"))
    app.wsgi_app = buffered  # type: ignore[method-assign]


def trust_proxies(app: Flask) -> None:
    hops = int(app.config.get("PROXY_FIX") or 0)
    if hops:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)  # type: ignore[method-assign]


def register_forms(app: Flask) -> None:
    from . import forms

    forms.init_app(app)


def register_extensions(app: Flask) -> None:
    from . import db_setup
    from .extensions import csrf, db, limiter, login_manager, mail, migrate

    db.init_app(app)
    with app.app_context():
        db_setup.tune_engine(db.engine, app.config["SQLITE_BUSY_TIMEOUT"])
    from . import plan_changes

    plan_changes.watch(db.session)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"))
    mail.init_app(app)
    csrf.init_app(app)
    limiter.init_app(app)
    login_manager.init_app(app)
    from . import access  # registers the user and token loaders

    access.init_app(app)


def register_blueprints(app: Flask) -> None:
    from .views.helpers import BoundedInt

    # Ids and version numbers past a 32-bit integer (PostgreSQL INTEGER) answer 404, not a driver overflow.
    app.url_map.converters["int"] = BoundedInt
    from .views import (admin, api, api_chase, api_intake, api_returns, api_reviewer, api_units, auth, dashboard,
                        documents, forms_page, intake, main, notify, plans, review, reviewer, unit)

    for module in (auth, main, unit, dashboard, notify, admin, api, api_returns, intake, api_intake, review,
                   api_chase, reviewer, api_reviewer, documents, forms_page, api_units, plans):
        app.register_blueprint(module.bp)


def register_errorhandlers(app: Flask) -> None:
    from .views import errors

    errors.init_app(app)


def register_template_helpers(app: Flask) -> None:
    from .views import helpers

    helpers.init_app(app)


def register_commands(app: Flask) -> None:
    from . import cli

    cli.init_app(app)
