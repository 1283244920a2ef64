"""Gunicorn settings for the tracker: `gunicorn -c gunicorn.conf.py` from the repository root.

Every value can be changed through the environment without editing this file (see docs/production.md).
"""
from __future__ import annotations

import os
import sys

import gunicorn.http.wsgi

from tracker import config as defaults

# No "Server: gunicorn" (nor a version) in answers: gunicorn has no setting for the header it writes.
gunicorn.http.wsgi.SERVER = "tracker"

wsgi_app = "tracker:create_app()"

# Loopback only: the reverse proxy (nginx) terminates HTTPS and forwards to us.
bind = os.environ.get("TRACKER_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("TRACKER_WORKERS", os.environ.get("WEB_CONCURRENCY", "2")))
# Threads wait on the database and on the parse worker without blocking the whole process.
worker_class = "gthread"
threads = int(os.environ.get("TRACKER_THREADS", "4"))

# Each worker's threads share one parse child, so an upload may queue behind the others' parses:
# allow every thread its full parse time plus the database work before the arbiter gives up.
_parse_timeout = float(os.environ.get("TRACKER_PARSE_TIMEOUT", defaults.PARSE_TIMEOUT))
timeout = int(os.environ.get("TRACKER_GUNICORN_TIMEOUT", max(60, int(_parse_timeout * (threads + 1)) + 30)))
graceful_timeout = int(os.environ.get("TRACKER_GRACEFUL_TIMEOUT", max(30, int(_parse_timeout) + 10)))
keepalive = 5

# Off: each worker starts its own warm parse child after the fork (tracker.isolation), and no
# database connection or parse child is ever shared between processes.
preload_app = False

# A worker that has served many uploads is replaced, so slow leaks in a C extension cannot pile up.
max_requests = int(os.environ.get("TRACKER_MAX_REQUESTS", "2000"))
max_requests_jitter = 200

# Trust X-Forwarded-* only from the proxy in front of us (set TRACKER_PROXY_FIX=1 in the app too).
forwarded_allow_ips = os.environ.get("TRACKER_FORWARDED_ALLOW_IPS", "127.0.0.1")

# Request headers stay small; the body limit is the app's MAX_CONTENT_LENGTH.
limit_request_line = 8190
limit_request_fields = 100

accesslog = os.environ.get("TRACKER_ACCESS_LOG", "-")
errorlog = os.environ.get("TRACKER_ERROR_LOG", "-")
loglevel = os.environ.get("TRACKER_LOG_LEVEL", "info")
proc_name = "tracker"


def on_starting(server) -> None:  # noqa: ANN001 - gunicorn's hook signature
    """Refuse to start with the public development SECRET_KEY or an empty one, naming the setting."""
    from flask import Flask

    from tracker import ROOT, load_settings, secret_key_problem

    probe = Flask("tracker", instance_path=str(ROOT / "instance"), instance_relative_config=True)
    load_settings(probe, None)  # the same layers the app reads: defaults, instance/config.py, TRACKER_*
    problem = secret_key_problem(probe.config)
    if problem is not None:
        sys.stderr.write(f"tracker: refusing to start: {problem}\n")
        sys.stderr.flush()
        raise SystemExit(3)


def post_worker_init(worker) -> None:  # noqa: ANN001 - gunicorn's hook signature
    """Move what the app loaded (about 140,000 objects: modules, forms, mappings) out of the collector's reach.

    A full garbage collection walks every tracked object; with the app's own it took 0.2-0.3 s and fell, at
    random, inside whichever request allocated past the threshold (a national status list every third
    call). Frozen objects are never walked; only what requests create is.
    """
    import gc

    gc.collect()
    gc.freeze()


def worker_exit(server, worker) -> None:  # noqa: ANN001 - gunicorn's hook signature
    """Stop the worker's parse child with it, so a restart never leaves an orphan behind."""
    from tracker import isolation

    isolation.shutdown()
