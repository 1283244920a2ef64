"""Bench 2: the status of a plan with every commune of Vietnam (10,595) as a reporting unit.

About 30,000 versions and 2,000 reviews are inserted in bulk; then, on SQLite and on PostgreSQL:
``standings.plan_standings`` (the dashboard's query set), the dashboard page (query + render of all
rows) and ``GET /api/v1/plans/<plan>/status`` (JSON of all rows), each a median of several runs.
Every statement is counted with a ``before_cursor_execute`` listener: the unit table must come from
one query, not one per unit.
"""
from __future__ import annotations

import argparse
import statistics
import sys
from datetime import datetime, timezone
from typing import Any

from bench.common import (BenchResult, QueryCounter, Target, bench_main, figure, login_session, make_app, pg_available,
                          scratch_database, temp_dir, timed)

LIMIT_MS = 300.0
AS_OF = datetime(2024, 5, 20, 3, 0, tzinfo=timezone.utc)


def _one_database(result: BenchResult, kind: str, runs: int) -> None:
    from tracker.extensions import db
    from tracker.models import Plan
    from tracker.standings import plan_standings

    with scratch_database(kind) as url:
        app = make_app(url, temp_dir("bench-status-"))
        with app.app_context():
            setup, (by_level, plan, counts, (session_key, token)) = timed(_populate)
            plan_id = plan.id
            versions, reviews = counts
            units = len(by_level[3])
            result.notes.append(f"{kind}: {units:,} communes assigned, {versions:,} versions, {reviews:,} reviews "
                                f"inserted in {setup:.1f} s (not part of the figures).")
            plan = db.session.get(Plan, plan_id)
            engine = db.engine
            samples: list[float] = []
            for _ in range(runs):
                db.session.expire_all()
                with QueryCounter(engine) as counter:
                    seconds, rows = timed(lambda: plan_standings(plan, AS_OF))
                samples.append(seconds)
            if len(rows) != units:
                raise RuntimeError(f"plan_standings returned {len(rows)} rows for {units} units")
            standings_queries = counter.count
            db.session.remove()
        client = app.test_client()
        login_session(client, session_key)
        as_of = AS_OF.isoformat().replace("+", "%2B")
        page_samples: list[float] = []
        api_samples: list[float] = []
        page_counts: list[int] = []
        api_counts: list[int] = []
        with app.app_context():
            engine = db.engine
        for _ in range(runs):
            with QueryCounter(engine) as counter:
                seconds, response = timed(lambda: client.get(f"/plans/national-2024/dashboard?as_of={as_of}"))
            if response.status_code != 200:
                raise RuntimeError(f"dashboard answered {response.status_code}")
            page_samples.append(seconds)
            page_counts.append(counter.count)
            with QueryCounter(engine) as counter:
                seconds, response = timed(lambda: client.get(f"/api/v1/plans/national-2024/status?as_of={as_of}",
                                                             headers={"Authorization": f"Bearer {token}"}))
            if response.status_code != 200 or len(response.get_json()["units"]) != units:
                raise RuntimeError(f"status API answered {response.status_code}")
            api_samples.append(seconds)
            api_counts.append(counter.count)
        api_bytes = len(response.data)
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
    label = "SQLite" if kind == "sqlite" else "PostgreSQL"
    result.figures.append(figure(f"{label}: plan_standings (10,595 units)", samples,
                                 note=f"{standings_queries} SQL statements per call"))
    result.figures.append(figure(f"{label}: dashboard page, whole request", page_samples,
                                 note=f"{max(page_counts)} SQL statements per request"))
    result.figures.append(figure(f"{label}: GET /status API, whole request", api_samples,
                                 note=f"{max(api_counts)} SQL statements per request, {api_bytes / 1e6:.1f} MB JSON"))
    standings_ms = statistics.median(samples) * 1000
    for name, figure_samples, statements in (("plan_standings", samples, standings_queries),
                                             ("/status API", api_samples, max(api_counts)),
                                             ("dashboard page", page_samples, max(page_counts))):
        median_ms = statistics.median(figure_samples) * 1000
        result.targets.append(Target(f"{label}: {name} of 10,595 units ≤ {LIMIT_MS:.0f} ms",
                                     f"{median_ms:.0f} ms", median_ms <= LIMIT_MS,
                                     "" if median_ms <= LIMIT_MS else _why(name, standings_ms, median_ms, api_bytes)))
        # 3 for the standings (assignments, versions, reviews) plus the request's own few lookups.
        result.targets.append(Target(f"{label}: {name}: one query for the unit table, none per unit",
                                     f"{statements} statements in all", statements <= 12))


def _populate() -> tuple[Any, Any, tuple[int, int], tuple[str, str]]:
    from bench.nation import add_staff, add_versions, load_nation, make_plan

    levels = load_nation()
    plan = make_plan("national-2024", [{"unit": c["code"], "form": "PL03"} for c in levels[3]])
    return levels, plan, add_versions(plan), add_staff()


def _why(name: str, standings_ms: float, median_ms: float, api_bytes: int) -> str:
    if name == "plan_standings":
        return ("Python work per unit, not SQL round trips: the database already reduces each unit's history to "
                "its first, first error-free and latest versions (window function), yet profiled about 45% is "
                "executing and type-processing those rows (10,595 per query, aware datetimes) and about 50% is "
                "compliance.standing for 10,595 units (each validating its aware datetimes); meeting 300 ms needs "
                "the standing computed in SQL or cached per plan, and a paged dashboard")
    rest = "rendering and sorting 10,595 table rows" if name == "dashboard page" else \
        f"building {api_bytes / 1e6:.1f} MB of JSON for 10,595 units"
    return f"plan_standings alone takes {standings_ms:.0f} ms of the {median_ms:.0f} ms; {rest} takes the rest"


def body(result: BenchResult, args: argparse.Namespace) -> None:
    runs = 3 if args.quick else 5
    _one_database(result, "sqlite", runs)
    reason = pg_available()
    if reason:
        result.targets.append(Target("PostgreSQL: status of 10,595 units ≤ 300 ms", "not measured", None,
                                     f"PostgreSQL unreachable: {reason}"))
    else:
        _one_database(result, "postgresql", runs)


def main(argv: list[str] | None = None) -> int:
    return bench_main(2, "Status of a national plan (10,595 communes, ~30,000 versions)", body, argv)


if __name__ == "__main__":
    sys.exit(main())
