"""Bench 9: the status of a plan over every commune of the map of 01/07/2025 (3,321 communes, 34 provinces).

The map is built as a user builds it: ``units-import`` of the 2024 national list (10,595 communes) and
then of the 2025 list (which closes them and links the new communes to the old ones), both timed. A
plan over the 3,321 new communes gets about 9,500 versions in bulk; then, on SQLite and on PostgreSQL:
``standings.plan_standings``, the dashboard page and ``GET /api/v1/plans/<plan>/status``, medians of
several runs, with every SQL statement counted, the per-plan cache (tracker.standing_cache) forgotten
before each (bench 2 shows the warm figures).
"""
from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from bench.common import (BenchResult, QueryCounter, Target, bench_main, figure, login_session, make_app,
                          pg_available, scratch_database, served_heap, temp_dir, timed)

ROOT = Path(__file__).resolve().parent.parent
MAP_2024 = ROOT / "report_forms" / "units" / "vn_units_20240501.json.gz"
MAP_2025 = ROOT / "report_forms" / "units" / "vn_units_20250701.json.gz"
DEADLINE = datetime(2026, 6, 9, 17, 0, tzinfo=timezone.utc)  # 10/6/2026 00:00 in Vietnam
AS_OF = DEADLINE + timedelta(days=10)
PLAN = "communes-2026"
LIMIT_MS = 300.0
IMPORT_LIMIT_S = 30.0


def _import_maps() -> tuple[float, float, int]:
    """Import both national lists; return (seconds 2024, seconds 2025, communes in force on 01/07/2025)."""
    from sqlalchemy import func, select

    from tracker.extensions import db
    from tracker.models import Unit, in_force_on
    from tracker.unit_import import import_units
    from tracker.unit_lists import read_unit_list

    first, _ = timed(lambda: (import_units(read_unit_list(MAP_2024), date(2024, 5, 1)), db.session.commit()))
    second, _ = timed(lambda: (import_units(read_unit_list(MAP_2025), date(2025, 7, 1)), db.session.commit()))
    communes = db.session.scalar(select(func.count()).select_from(Unit).where(
        Unit.level == 3, in_force_on(date(2025, 7, 1))))
    return first, second, communes


def _populate() -> tuple[Any, tuple[int, int], tuple[str, str]]:
    from sqlalchemy import select

    from bench.nation import PERIODS, add_staff, add_versions
    from tracker.extensions import db
    from tracker.models import Unit, in_force_on
    from tracker.seed import load_plan

    codes = db.session.scalars(select(Unit.code).where(Unit.level == 3, in_force_on(date(2025, 7, 1)))
                               .order_by(Unit.code)).all()
    plan = load_plan({"code": PLAN, "title": "Kế hoạch thử tải trên danh mục 01/7/2025", "issuer": "Sở (thử tải)",
                      "deadline": DEADLINE, "deadline_text": "trước ngày 10/6/2026", "periods": PERIODS,
                      "department_email": "so@example.vn", "units_as_of": date(2025, 7, 1),
                      "assignments": [{"unit": code, "form": "PL03"} for code in codes]})
    db.session.commit()
    return plan, add_versions(plan, deadline=DEADLINE), add_staff()


def _one_database(result: BenchResult, kind: str, runs: int) -> None:
    from tracker import standing_cache
    from tracker.extensions import db
    from tracker.models import Plan
    from tracker.standings import plan_standings

    label = "SQLite" if kind == "sqlite" else "PostgreSQL"
    with scratch_database(kind) as url, contextlib.ExitStack() as heap:
        app = make_app(url, temp_dir("bench-status-2025-"))
        with app.app_context():
            first, second, communes = _import_maps()
            if communes != 3321:
                raise RuntimeError(f"{communes} communes in force on 01/07/2025, expected 3,321")
            result.figures.append(figure(f"{label}: units-import of the 2024 list (11,363 units)", [first],
                                         unit="s", scale=1.0))
            result.figures.append(figure(f"{label}: units-import of the 2025 list (3,355 units, closes 11,363)",
                                         [second], unit="s", scale=1.0))
            result.targets.append(Target(f"{label}: units-import of the 2025 map ≤ {IMPORT_LIMIT_S:.0f} s",
                                         f"{second:.1f} s", second <= IMPORT_LIMIT_S))
            setup, (plan, (versions, reviews), (session_key, token)) = timed(_populate)
            heap.enter_context(served_heap())  # as a served worker after start-up (gunicorn.conf.py)
            plan_id = plan.id
            units = len(plan.assignments)
            result.notes.append(f"{kind}: {units:,} communes of the 2025 map assigned, {versions:,} versions, "
                                f"{reviews:,} reviews inserted in {setup:.1f} s (not part of the figures).")
            samples: list[float] = []
            for _ in range(runs):
                db.session.expire_all()
                standing_cache.clear()  # cold: every figure of this bench is the computing path
                plan = db.session.get(Plan, plan_id)
                with QueryCounter(db.engine) as counter:
                    seconds, rows = timed(lambda: plan_standings(plan, AS_OF))
                samples.append(seconds)
            if len(rows) != units:
                raise RuntimeError(f"plan_standings returned {len(rows)} rows for {units} units")
            standings_queries = counter.count
            engine = db.engine
            db.session.remove()
        client = app.test_client()
        login_session(client, session_key)
        as_of = AS_OF.isoformat().replace("+", "%2B")
        requests = {"page": (f"/plans/{PLAN}/dashboard?as_of={as_of}", {}),
                    "api": (f"/api/v1/plans/{PLAN}/status?as_of={as_of}", {"Authorization": f"Bearer {token}"})}
        timings: dict[str, list[float]] = {name: [] for name in requests}
        counts: dict[str, int] = {name: 0 for name in requests}
        for _ in range(runs):
            for name, (path, headers) in requests.items():
                standing_cache.clear()
                with QueryCounter(engine) as counter:
                    seconds, response = timed(lambda: client.get(path, headers=headers))
                if response.status_code != 200:
                    raise RuntimeError(f"{path} answered {response.status_code}")
                timings[name].append(seconds)
                counts[name] = max(counts[name], counter.count)
        if len(response.get_json()["units"]) != units:
            raise RuntimeError("the status API did not list every unit")
        page_samples, api_samples = timings["page"], timings["api"]
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
    result.figures.append(figure(f"{label}: plan_standings (3,321 communes)", samples,
                                 note=f"{standings_queries} SQL statements per call"))
    result.figures.append(figure(f"{label}: dashboard page, whole request", page_samples,
                                 note=f"{counts['page']} SQL statements per request"))
    result.figures.append(figure(f"{label}: GET /status API, whole request", api_samples,
                                 note=f"{counts['api']} SQL statements per request"))
    for name, figure_samples, statements in (("plan_standings", samples, standings_queries),
                                             ("/status API", api_samples, counts["api"]),
                                             ("dashboard page", page_samples, counts["page"])):
        median_ms = statistics.median(figure_samples) * 1000
        result.targets.append(Target(f"{label}: {name} of 3,321 communes ≤ {LIMIT_MS:.0f} ms",
                                     f"{median_ms:.0f} ms", median_ms <= LIMIT_MS))
        result.targets.append(Target(f"{label}: {name}: no query per unit", f"{statements} statements in all",
                                     # The dashboard's chase list, charts and review queue add a fixed number of
                                     # statements of their own (bench 2 uses the same bound): none is per unit.
                                     statements <= (20 if name == "dashboard page" else 12)))


def body(result: BenchResult, args: argparse.Namespace) -> None:
    runs = 3 if args.quick else 5
    for kind in ("sqlite", "postgresql"):
        reason = pg_available() if kind == "postgresql" else ""
        if not reason:
            _one_database(result, kind, runs)
            continue
        result.targets.append(Target("PostgreSQL: status of 3,321 communes ≤ 300 ms", "not measured", None,
                                     f"PostgreSQL unreachable: {reason}"))


def main(argv: list[str] | None = None) -> int:
    return bench_main(9, "Status of a plan over the 3,321 communes of the 2025 map", body, argv)


if __name__ == "__main__":
    sys.exit(main())
