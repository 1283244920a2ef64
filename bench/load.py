"""Load test: gunicorn on loopback, N concurrent uploaders posting returns for S seconds.

    .venv/bin/python -m bench.load --uploaders 20 --seconds 60 [--workers 2] [--out FILE]

Everything is scratch and local: a temporary instance folder with its own SQLite database (migrated
and seeded with ``flask db upgrade`` and ``flask seed --demo``), API tokens from
``flask create-token``, gunicorn from this virtualenv bound to a free 127.0.0.1 port with the repo's
gunicorn.conf.py. Each uploader owns one (plan, unit) and posts valid returns for it through
``POST /api/v1/plans/<plan>/units/<unit>/returns``: mostly new versions (the same figures, a different
file), every fifth request the previous file again (a duplicate, answered 200). The run is bounded in
time (--seconds) and count (--max-requests). It prints a markdown snippet: requests, statuses, 5xx,
p50/p95/max latency, throughput and what the database holds afterwards.
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
PLAN = "bacgiang-2024"
REPORTING_UNITS = ["213", "215", "216", "217", "218", "219", "220", "221", "222"]
EXTRA_PLANS = ["load-copy-b", "load-copy-c"]


@dataclass
class Tally:
    """What the uploaders saw, shared between their threads under one lock."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    samples_5xx: list[str] = field(default_factory=list)
    sent: int = 0

    def take_slot(self, limit: int) -> bool:
        with self.lock:
            if self.sent >= limit:
                return False
            self.sent += 1
            return True

    def record(self, status: int, seconds: float, body: str) -> None:
        with self.lock:
            self.statuses[status] += 1
            self.latencies.append(seconds)
            if status >= 500 and len(self.samples_5xx) < 5:
                self.samples_5xx.append(body[:300])


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def flask(env: dict[str, str], *args: str) -> str:
    result = subprocess.run([str(BIN / "flask"), "--app", "tracker", *args], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=300)
    if result.returncode != 0:
        raise SystemExit(f"flask {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def prepare(tmp: Path) -> dict[str, str]:
    """Make the scratch instance: database, seed, two copied plans; return the environment."""
    env = {**os.environ,
           "TRACKER_SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp / 'tracker.db'}",
           "TRACKER_SECRET_KEY": secrets.token_hex(16),
           "TRACKER_OUTBOX_DIR": str(tmp / "outbox"),
           "TRACKER_PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000",
           "TRACKER_MAIL_SERVER": "",
           # The load test's own units upload far past the production limits (20 an hour, 200 MiB):
           # raised for them only, so the run measures the server and not the limiter.
           "TRACKER_UPLOAD_LIMIT_OVERRIDES": json.dumps({unit: {"rate": "100000 per hour",
                                                                "quota_bytes": 100 * 1024 ** 3}
                                                         for unit in REPORTING_UNITS})}
    env.pop("DATABASE_URL", None)
    flask(env, "db", "upgrade")
    flask(env, "seed", "--demo")
    for code in EXTRA_PLANS:
        flask(env, "plan-copy", PLAN, code, "--deadline", "2030-05-10T00:00:00+07:00")
    return env


def tokens(env: dict[str, str]) -> dict[str, str]:
    return {unit: flask(env, "create-token", f"donvi{unit}@demo.bacgiang.vn").strip() for unit in REPORTING_UNITS}


def start_gunicorn(env: dict[str, str], port: int, workers: int, threads: int, log: Path) -> subprocess.Popen[bytes]:
    env = {**env, "TRACKER_BIND": f"127.0.0.1:{port}", "TRACKER_WORKERS": str(workers),
           "TRACKER_THREADS": str(threads)}
    with log.open("wb") as sink:
        proc = subprocess.Popen([str(BIN / "gunicorn"), "-c", str(ROOT / "gunicorn.conf.py")], cwd=ROOT, env=env,
                                stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"gunicorn exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=2) as response:
                if response.status == 200:
                    return proc
        except OSError:
            time.sleep(0.3)
    stop(proc)
    raise SystemExit("gunicorn did not answer within 60 s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop the gunicorn we started: SIGTERM to its own process group (arbiter, workers, parse workers)."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def fetch(url: str, token: str) -> bytes:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return response.read()


def filled(blank: bytes, form_code: str) -> bytes:
    """Fill a downloaded blank form with a complete, consistent return (the tests' own fixture)."""
    sys.path.insert(0, str(ROOT / "tests"))
    from forms_fixtures import consistent_values, shipped_forms
    from returns_fixtures import fill_workbook, sample_texts

    form = shipped_forms()[form_code]
    return fill_workbook(blank, form, consistent_values(form), sample_texts(form))


def variant(data: bytes, n: int) -> bytes:
    """Return ``data`` with its core properties stamped ``n``: the same figures, a different file."""
    sys.path.insert(0, str(ROOT / "tests"))
    from servers import variant as stamped

    return stamped(data, n)


def multipart(data: bytes, boundary: str) -> bytes:
    return (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"bao-cao.xlsx\"\r\n"
            "Content-Type: application/vnd.openxmlformats-officedocument.spreadsheetml.sheet\r\n\r\n").encode() \
        + data + f"\r\n--{boundary}--\r\n".encode()


def uploader(base_url: str, plan: str, unit: str, token: str, base: bytes, deadline: float, limit: int,
             tally: Tally, seed: int) -> None:
    previous: bytes | None = None
    n = 0
    while time.monotonic() < deadline and tally.take_slot(limit):
        n += 1
        data = previous if (previous is not None and n % 5 == 0) else variant(base, seed * 100_000 + n)
        boundary = secrets.token_hex(12)
        request = urllib.request.Request(
            f"{base_url}/api/v1/plans/{plan}/units/{unit}/returns", data=multipart(data, boundary), method="POST",
            headers={"Authorization": f"Bearer {token}", "Content-Type": f"multipart/form-data; boundary={boundary}"})
        started = time.perf_counter()
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                status, body = response.status, response.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as exc:
            status, body = exc.code, exc.read().decode("utf-8", "replace")
        except OSError as exc:  # refused, reset or timed out: counted apart from HTTP statuses
            with tally.lock:
                tally.errors[type(exc).__name__] += 1
            continue
        tally.record(status, time.perf_counter() - started, body)
        previous = data


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def report(args: argparse.Namespace, tally: Tally, elapsed: float, stored: tuple[int, int],
           gunicorn_log: str) -> str:
    total = sum(tally.statuses.values())
    five = sum(count for status, count in tally.statuses.items() if status >= 500)
    ms = [x * 1000 for x in tally.latencies]
    statuses = ", ".join(f"{status}: {count}" for status, count in sorted(tally.statuses.items()))
    locked = gunicorn_log.lower().count("database is locked")
    lines = [
        f"### Upload load test ({datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC)",
        "",
        f"`python -m bench.load --uploaders {args.uploaders} --seconds {args.seconds:g} --workers {args.workers} "
        f"--threads {args.threads}`: gunicorn (gthread, {args.workers} workers × {args.threads} threads) on "
        f"127.0.0.1, scratch SQLite database, {args.uploaders} concurrent uploaders, each on its own (plan, unit), "
        "posting complete PL02/PL03 returns (every fifth request repeats the previous file).",
        "",
        "| figure | value |",
        "|---|---|",
        f"| requests answered | {total} in {elapsed:.1f} s ({total / elapsed:.1f}/s) |",
        f"| statuses | {statuses or '—'} |",
        f"| **5xx** | **{five}** |",
        f"| connection errors | {sum(tally.errors.values())} {dict(tally.errors) or ''} |",
        f"| latency p50 / p95 / max | {percentile(ms, 0.5):.0f} / {percentile(ms, 0.95):.0f} / "
        f"{max(ms) if ms else float('nan'):.0f} ms |",
        f"| mean latency | {statistics.fmean(ms) if ms else float('nan'):.0f} ms |",
        f"| versions stored / with their file | {stored[0]} / {stored[1]} |",
        f"| \"database is locked\" in the server log | {locked} |",
        "",
        f"Machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}.",
    ]
    if tally.samples_5xx:
        lines += ["", "5xx samples:", *[f"- `{sample}`" for sample in tally.samples_5xx]]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Run the load test; print the markdown report. Exit 1 when any 5xx or connection error was seen."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uploaders", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--max-requests", type=int, default=20_000, help="stop after this many requests")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--out", type=Path, default=None, help="also write the markdown snippet here")
    args = parser.parse_args(argv)
    if not 1 <= args.uploaders <= 200 or not 0 < args.seconds <= 3600:
        parser.error("--uploaders must be 1–200 and --seconds at most 3600")

    with tempfile.TemporaryDirectory(prefix="tracker-load-") as scratch:
        tmp = Path(scratch)
        env = prepare(tmp)
        keys = tokens(env)
        port = free_port()
        base_url = f"http://127.0.0.1:{port}"
        log = tmp / "gunicorn.log"
        proc = start_gunicorn(env, port, args.workers, args.threads, log)
        try:
            targets = [(plan, unit) for plan in (PLAN, *EXTRA_PLANS) for unit in REPORTING_UNITS][:args.uploaders]
            targets += [targets[i % len(targets)] for i in range(len(targets), args.uploaders)]
            bases: dict[tuple[str, str], bytes] = {}
            for plan, unit in dict.fromkeys(targets):
                blank = fetch(f"{base_url}/api/v1/plans/{plan}/units/{unit}/template", keys[unit])
                bases[(plan, unit)] = filled(blank, "PL02" if unit == "218" else "PL03")
            tally = Tally()
            started = time.monotonic()
            deadline = started + args.seconds
            threads = [threading.Thread(target=uploader, args=(base_url, plan, unit, keys[unit], bases[(plan, unit)],
                                                              deadline, args.max_requests, tally, i))
                       for i, (plan, unit) in enumerate(targets)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            elapsed = time.monotonic() - started
        finally:
            stop(proc)
        connection = sqlite3.connect(tmp / "tracker.db")
        try:
            stored = connection.execute(
                "SELECT count(*), (SELECT count(*) FROM return_files) FROM return_versions").fetchone()
        finally:
            connection.close()
        text = report(args, tally, elapsed, stored, log.read_text(errors="replace"))
    sys.stdout.write(text)
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    five = sum(count for status, count in tally.statuses.items() if status >= 500)
    return 1 if five or tally.errors else 0


if __name__ == "__main__":
    sys.exit(main())
