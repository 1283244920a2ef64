"""Bench 5: blank workbooks for every unit of a province, and the zip of them.

The province with the most districts (Hà Nội: 30) gets a plan over all its districts (PL03, and
PL02 for one in three, so both forms are built). Figures: ``workbook.build_blank`` per workbook
(each unit in turn, several rounds), and the whole request ``GET /plans/<plan>/blank-forms.zip``
that builds every unit's workbook and zips them.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import zipfile
from io import BytesIO
from typing import Any

from bench.common import (BenchResult, Target, bench_main, figure, login_session, make_app, scratch_database,
                          temp_dir, timed)

LIMIT_S = 0.2


def _populate() -> tuple[str, str, list[Any], str]:
    from sqlalchemy import select

    from bench.nation import add_staff, load_nation, make_plan
    from tracker.extensions import db
    from tracker.models import Assignment

    levels = load_nation()
    per_province: dict[str, list[dict[str, Any]]] = {}
    for district in levels[2]:
        per_province.setdefault(district["parent_code"], []).append(district)
    code, districts = max(per_province.items(), key=lambda item: len(item[1]))
    name = next(p["name"] for p in levels[1] if p["code"] == code)
    plan = make_plan("province-blanks-2024", [{"unit": d["code"], "form": "PL02" if i % 3 == 0 else "PL03"}
                                              for i, d in enumerate(districts)])
    assignments = list(db.session.scalars(select(Assignment).where(Assignment.plan_id == plan.id)))
    session_key, _ = add_staff()
    return plan.code, name, assignments, session_key


def body(result: BenchResult, args: argparse.Namespace) -> None:
    from tracker import forms
    from tracker.extensions import db
    from tracker.workbook import build_blank

    rounds = 1 if args.quick else 2
    with scratch_database("sqlite") as url:
        app = make_app(url, temp_dir("bench-blanks-"))
        with app.app_context():
            setup, (plan_code, province, assignments, session_key) = timed(_populate)
            jobs = [(forms.get(a.form_code), forms.workbook_context(a)) for a in assignments]
            secret = app.config["SECRET_KEY"]
            per_workbook: list[float] = []
            for _ in range(rounds):
                for form, ctx in jobs:
                    per_workbook.append(timed(lambda: build_blank(form, ctx, secret))[0])
            db.session.remove()
        client = app.test_client()
        login_session(client, session_key)
        zip_samples: list[float] = []
        size = members = 0
        for _ in range(rounds):
            seconds, response = timed(lambda: client.get(f"/plans/{plan_code}/blank-forms.zip"))
            if response.status_code != 200:
                raise RuntimeError(f"blank-forms.zip answered {response.status_code}")
            zip_samples.append(seconds)
            size = len(response.data)
            members = len(zipfile.ZipFile(BytesIO(response.data)).namelist())
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
    if members != len(jobs):
        raise RuntimeError(f"the zip holds {members} workbooks for {len(jobs)} units")
    n = len(jobs)
    result.figures.append(figure(f"build_blank, one workbook ({province}: {n} districts)", per_workbook))
    result.figures.append(figure(f"blank-forms.zip of {n} workbooks, whole request", zip_samples, unit="s", scale=1.0,
                                 note=f"{size / 1e6:.1f} MB zip"))
    zip_per = statistics.median(zip_samples) / n
    result.figures.append(figure("blank-forms.zip, per workbook", [s / n for s in zip_samples]))
    one = statistics.median(per_workbook)
    result.targets.append(Target(f"blank workbook ≤ {LIMIT_S} s each", f"{one:.3f} s", one <= LIMIT_S))
    result.targets.append(Target(f"zip of the province's workbooks ≤ {LIMIT_S} s per workbook", f"{zip_per:.3f} s",
                                 zip_per <= LIMIT_S,
                                 "" if zip_per <= LIMIT_S else
                                 f"the request builds each workbook with the same build_blank ({one:.3f} s here) "
                                 "and adds the unit and parent lookups per assignment and the deflate; compare "
                                 "the two figures of the same run"))
    result.notes.append(f"{province}'s {n} districts (the province with the most districts); the database fill "
                        f"({setup:.1f} s) is not timed. Its 579 communes would take about {579 * one:.0f} s at the "
                        "same rate; districts keep `make bench` short.")


def main(argv: list[str] | None = None) -> int:
    return bench_main(5, "Blank workbooks for a province, and their zip", body, argv)


if __name__ == "__main__":
    sys.exit(main())
