"""Bench 3: the consolidated export of a plan with 705 district returns (every district of Vietnam).

Each district holds one complete version whose parsed values are those of a real return of its form
(PL03, or PL02 for one district in ten), parsed once by the tracker and inserted in bulk with the
numbers varied per district. The figure is the whole request ``GET /plans/<plan>/export.xlsx``
(the query set, the Toàn tỉnh totals and the XlsxWriter workbook: with 705 units every Biểu is laid out
with units as rows), on SQLite.
"""
from __future__ import annotations

import argparse
import sys
from datetime import timedelta
from typing import Any

from bench.common import (BenchResult, Target, bench_main, figure, login_session, make_app, scratch_database,
                          temp_dir, timed)

LIMIT_S = 20.0
WHY_SLOW = ("the workbook writes one cell per unit, indicator and breakdown (~330,000 with 705 units) with "
            "XlsxWriter, after the queries that fetch ~385,000 values; profile before changing either")


def _populate() -> tuple[Any, int, int, str]:
    from sqlalchemy import insert, select

    from bench.nation import DEADLINE, add_staff, load_nation, make_plan
    from forms_fixtures import consistent_values, shipped_forms
    from returns_fixtures import filled_return, sample_texts
    from tracker.extensions import db
    from tracker.models import Assignment, ReturnValue, ReturnVersion
    from tracker.parsing import parse_return

    levels = load_nation()
    districts = levels[2]
    plan = make_plan("national-districts-2024",
                     [{"unit": d["code"], "form": "PL02" if i % 10 == 4 else "PL03"} for i, d in enumerate(districts)])
    forms = shipped_forms()
    parsed = {code: parse_return(filled_return(form, consistent_values(form), sample_texts(form)), form)
              for code, form in forms.items()}
    assignments = db.session.execute(select(Assignment.id, Assignment.form_code)
                                     .where(Assignment.plan_id == plan.id).order_by(Assignment.id)).all()
    values_inserted = 0
    for index, (assignment_id, form_code) in enumerate(assignments):
        result = parsed[form_code]
        version_id = db.session.execute(insert(ReturnVersion).returning(ReturnVersion.id), [{
            "assignment_id": assignment_id, "version": 1, "form_code": form_code, "form_version": 1,
            "file_kind": "xlsx", "filename": "bao-cao.xlsx", "size": 36000, "sha256": f"{assignment_id:064x}",
            "received_at": DEADLINE - timedelta(hours=index % 200), "uploaded_by_id": None, "note": "",
            "complete": True, "errors": 0, "warnings": 0}]).scalar_one()
        scale = 1 + index % 7  # districts differ; every rule still holds when all inputs scale alike
        rows = [{"version_id": version_id, "sheet": v.sheet, "indicator": v.indicator, "period": v.period,
                 "breakdown": v.breakdown, "value": None if v.value is None else v.value * scale, "text": v.text}
                for v in result.values]
        db.session.execute(insert(ReturnValue), rows)
        values_inserted += len(rows)
    db.session.commit()
    session_key, _ = add_staff()
    return plan, len(assignments), values_inserted, session_key


def body(result: BenchResult, args: argparse.Namespace) -> None:
    from tracker.extensions import db

    runs = 1 if args.quick else 3
    with scratch_database("sqlite") as url:
        app = make_app(url, temp_dir("bench-export-"))
        with app.app_context():
            setup, (plan, units, values, session_key) = timed(_populate)
            code = plan.code
            db.session.remove()
        result.notes.append(f"{units} district returns ({values:,} parsed values) inserted in {setup:.1f} s "
                            "(not part of the figure); SQLite.")
        client = app.test_client()
        login_session(client, session_key)
        samples: list[float] = []
        size = 0
        for _ in range(runs):
            seconds, response = timed(lambda: client.get(f"/plans/{code}/export.xlsx?as_of=2024-06-01T00:00"))
            if response.status_code != 200:
                raise RuntimeError(f"export answered {response.status_code}")
            samples.append(seconds)
            size = len(response.data)
            if seconds > LIMIT_S:
                break  # one run past the target says enough; keeps `make bench` bounded
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
    result.figures.append(figure("export of 705 district returns, whole request", samples, unit="s", scale=1.0,
                                 note=f"{size / 1e6:.1f} MB workbook"))
    median = sorted(samples)[len(samples) // 2]
    result.targets.append(Target(f"consolidated export of 705 returns ≤ {LIMIT_S:.0f} s", f"{median:.1f} s",
                                 median <= LIMIT_S,
                                 "" if median <= LIMIT_S else WHY_SLOW))


def main(argv: list[str] | None = None) -> int:
    return bench_main(3, "Consolidated export of 705 district returns", body, argv)


if __name__ == "__main__":
    sys.exit(main())
