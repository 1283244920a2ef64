"""Issue 20: a plan with many units — dashboard roll-up, drill-down, search and paging; status API paging,
``?parent`` and the streamed JSON lines / CSV. Over real rows, at a fixed instant, on SQLite and PostgreSQL.

The plan has 2 provinces × 3 districts × 40 communes = 240 reporting communes (above ROLLUP_THRESHOLD),
each with a history built from its number, so every status occurs.
"""
from __future__ import annotations

import csv
import io
import json
import re
from datetime import date, datetime, timedelta, timezone

import pytest
from sqlalchemy import insert, select

from test_dashboard import counts, units_in_table
from tracker import rollup
from tracker.compliance import Status, summarize
from tracker.extensions import db
from tracker.models import Assignment, Plan, ReturnVersion, Review, Unit
from tracker.standings import plan_standings
from tracker.views.dashboard import TableRow, sort_rows

VN = timezone(timedelta(hours=7))
DEADLINE = datetime(2024, 5, 10, 0, 0, tzinfo=VN)
AS_OF = DEADLINE + timedelta(days=3)
AS_OF_PARAM = "2024-05-13T00:00:00%2B07:00"
PLAN = "quocgia-thu"
PROVINCES = ("91", "92")


SINCE = date(2020, 1, 1)  # the units exist long before the plan

def _code(p: int, d: int, c: int) -> str:
    return f"9{p}{d}{c:02d}"


@pytest.fixture
def large(app):
    """Create the 240-commune plan; return its code."""
    with app.app_context():
        rows = []
        for p, province in enumerate(PROVINCES):
            rows.append(Unit(code=province, name=f"Tỉnh Thử {'AB'[p]}", kind="Tỉnh", level=1, valid_from=SINCE))
        db.session.add_all(rows)
        db.session.flush()
        districts = []
        for p, province in enumerate(rows):
            for d in range(3):
                districts.append(Unit(code=f"9{p}{d}", name=f"Huyện Thử {'AB'[p]}{d}", kind="Huyện", level=2,
                                      parent_id=province.id, valid_from=SINCE))
        db.session.add_all(districts)
        db.session.flush()
        communes = []
        for index, district in enumerate(districts):
            p, d = divmod(index, 3)
            for c in range(40):
                name = "Xã Kiên Lao" if (p, d, c) == (1, 2, 7) else f"Xã Thử {p}{d}{c:02d}"
                communes.append(Unit(code=_code(p, d, c), name=name, kind="Xã", level=3, parent_id=district.id,
                                  valid_from=SINCE))
        db.session.add_all(communes)
        db.session.flush()
        plan = Plan(code=PLAN, title="Kế hoạch thử toàn quốc", issuer="Bộ", deadline=DEADLINE)
        db.session.add(plan)
        db.session.flush()
        assignments = [Assignment(plan_id=plan.id, unit_id=u.id, form_code=None if i % 37 == 5 else "PL03",
                                  exempt_reason="Miễn" if i % 37 == 5 else None) for i, u in enumerate(communes)]
        db.session.add_all(assignments)
        db.session.flush()
        versions = []
        for i, a in enumerate(assignments):
            for n in range(1, i % 4 + 1):
                received = DEADLINE + timedelta(hours=(i % 7) * 13 - 40 + n * 9)
                complete = (i + n) % 3 != 0
                versions.append({"assignment_id": a.id, "version": n, "form_code": "PL03", "form_version": 1,
                                 "file_kind": "xlsx", "filename": "f.xlsx", "size": 1, "sha256": f"{i:032x}{n:032x}",
                                 "received_at": received, "complete": complete, "errors": 0 if complete else 2,
                                 "warnings": i % 3})
        db.session.execute(insert(ReturnVersion), versions)
        latest = db.session.execute(select(ReturnVersion.id, ReturnVersion.received_at)
                                    .where(ReturnVersion.version == 1)).all()
        db.session.execute(insert(Review), [{"version_id": vid, "state": "returned", "reason": "=Sửa Biểu 03",
                                             "reviewer_id": None, "created_at": at + timedelta(hours=1)}
                                            for vid, at in latest[::9]])
        db.session.commit()
    return PLAN


def _whole(app):
    with app.app_context():
        plan = db.session.scalar(select(Plan).where(Plan.code == PLAN))
        return plan_standings(plan, AS_OF)


def _page(client, query: str = "") -> str:
    response = client.get(f"/plans/{PLAN}/dashboard?as_of={AS_OF_PARAM}{query}")
    assert response.status_code == 200, response.status_code
    return response.get_data(as_text=True)


def _rollup_rows(html: str) -> dict[str, list[int]]:
    table = re.search(r'data-testid="rollup">(.*?)</table>', html, re.S)
    assert table is not None
    result = {}
    for code, cells in re.findall(r'<tr data-group="(\d+)">(.*?)</tr>', table.group(1), re.S):
        result[code] = [int(n) for n in re.findall(r'<td class="num">(\d+)</td>', cells)]
    return result


def test_the_whole_plan_is_rolled_up_by_province_and_paged(app, client, login_as, large):
    login_as("staff")
    whole = _whole(app)
    html = _page(client)
    summary = summarize(s.standing for s in whole)
    assert counts(html) == {s.value: summary.count(s) for s in Status}
    assert sum(counts(html).values()) == 240 and summary.count(Status.OVERDUE) and summary.count(Status.LATE)
    by_province = _rollup_rows(html)
    assert list(by_province) == list(PROVINCES)
    for province in PROVINCES:
        mine = summarize(s.standing for s in whole if s.unit_code.startswith("9" + str(PROVINCES.index(province))))
        assert by_province[province] == [mine.count(s) for s in Status]
    assert units_in_table(html) == [s.unit_code for s in whole[:rollup.PER_PAGE]]
    assert "Đơn vị 1–50 trong 240 (trang 1/5)" in html
    second = _page(client, "&page=2")
    assert units_in_table(second) == [s.unit_code for s in whole[50:100]]
    last = _page(client, "&page=99")  # past the end: the last page
    assert units_in_table(last) == [s.unit_code for s in whole[200:]]


def test_drilling_down_province_then_district(app, client, login_as, large):
    login_as("staff")
    whole = _whole(app)
    html = _page(client, "&parent=92")
    assert 'aria-current="page">Tỉnh Thử B</a>' in html
    by_district = _rollup_rows(html)
    assert list(by_district) == ["910", "911", "912"]
    for code, numbers in by_district.items():
        mine = summarize(s.standing for s in whole if s.unit_code.startswith(code))
        assert numbers == [mine.count(s) for s in Status]
    in_province = [s for s in whole if s.unit_code.startswith("91")]
    assert units_in_table(html) == [s.unit_code for s in in_province[:50]]
    assert "trong 120" in html
    district = _page(client, "&parent=912")
    assert 'data-testid="rollup"' not in district  # the communes themselves: no level left to roll up
    assert units_in_table(district) == [s.unit_code for s in whole if s.unit_code.startswith("912")]
    assert "Tỉnh Thử B</a> › <a" in district and "Huyện Thử B2" in district


def test_search_by_name_or_code_and_filter_and_sort_in_the_database(app, client, login_as, large):
    login_as("staff")
    whole = _whole(app)
    assert units_in_table(_page(client, "&q=kiên lao")) == ["91207"]
    assert units_in_table(_page(client, "&q=90015")) == ["90015"]
    assert units_in_table(_page(client, "&q=Thử 11")) == [s.unit_code for s in whole
                                                          if s.unit_name.startswith("Xã Thử 11")]
    overdue = [s.unit_code for s in whole if s.standing.status is Status.OVERDUE]
    assert units_in_table(_page(client, "&status=overdue")) == overdue[:50]
    rows = [TableRow(s.unit_code, s.unit_name, s.form_code, s.standing) for s in whole]
    for column in ("unit", "status", "latest", "errors", "review"):
        for direction in ("asc", "desc"):
            expected = [r.unit_code for r in sort_rows(rows, column, direction == "desc")][50:100]
            got = units_in_table(_page(client, f"&sort={column}&dir={direction}&page=2"))
            assert got == expected, (column, direction)
    assert client.get(f"/plans/{PLAN}/dashboard?parent=nope").status_code == 404
    assert client.get(f"/plans/{PLAN}/dashboard?page=x").status_code == 400


def test_a_small_plan_keeps_its_one_table(client, login_as):
    login_as("staff")
    html = client.get("/plans/bacgiang-2024/dashboard").get_data(as_text=True)
    assert len(units_in_table(html)) == 10
    assert 'data-testid="rollup"' not in html and 'data-testid="pager"' not in html
    assert "parent=" not in html and "q=" not in html


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_status_api_pages_and_parent(app, client, token_for, large):
    token = token_for("staff")
    url = f"/api/v1/plans/{PLAN}/status?as_of={AS_OF_PARAM}"
    whole = client.get(url, headers=_bearer(token)).get_json()["units"]
    assert [u["code"] for u in whole] == [s.unit_code for s in _whole(app)]
    body = client.get(url + "&page=3&per_page=7", headers=_bearer(token)).get_json()
    assert (body["page"], body["per_page"], body["total"], body["pages"]) == (3, 7, 240, 35)
    assert body["units"] == whole[14:21]
    under = client.get(url + "&parent=91", headers=_bearer(token)).get_json()["units"]
    assert under == [u for u in whole if u["code"].startswith("90")]  # province 91 holds districts 90x
    paged = client.get(url + "&parent=910&page=2&per_page=30", headers=_bearer(token)).get_json()
    assert paged["total"] == 40 and paged["units"] == [u for u in whole if u["code"].startswith("910")][30:]
    for query, code in (("&page=0", "invalid_page"), ("&per_page=1001", "invalid_page"), ("&page=x", "invalid_page"),
                        ("&format=xml", "invalid_format")):
        response = client.get(url + query, headers=_bearer(token))
        assert response.status_code == 400 and response.get_json()["error"]["code"] == code, query
    response = client.get(url + "&parent=00000", headers=_bearer(token))
    assert response.status_code == 404 and response.get_json()["error"]["code"] == "unknown_parent"


def test_status_api_streams_json_lines_and_csv(app, client, token_for, large):
    token = token_for("staff")
    url = f"/api/v1/plans/{PLAN}/status?as_of={AS_OF_PARAM}"
    whole = client.get(url, headers=_bearer(token)).get_json()["units"]
    lines = client.get(url + "&format=jsonl", headers=_bearer(token))
    assert lines.status_code == 200 and lines.mimetype == "application/x-ndjson"
    assert lines.headers["X-Tracker-As-Of"] == "2024-05-13T00:00:00+07:00"
    assert [json.loads(line) for line in lines.get_data(as_text=True).splitlines()] == whole
    by_accept = client.get(url, headers={**_bearer(token), "Accept": "application/x-ndjson"})
    assert by_accept.get_data() == lines.get_data()
    table = client.get(url + "&format=csv", headers=_bearer(token))
    assert table.status_code == 200 and table.headers["Content-Type"] == "text/csv; charset=utf-8"
    parsed = list(csv.DictReader(io.StringIO(table.get_data(as_text=True))))
    assert [row["code"] for row in parsed] == [u["code"] for u in whole]
    first = next(i for i, u in enumerate(whole) if u["review"] and u["review"]["reason"])
    assert parsed[first]["review_reason"] == "'=Sửa Biểu 03"  # a formula-like reason stays text
    assert parsed[0]["status"] == whole[0]["status"] and parsed[0]["late"] in ("true", "false")
    assert client.get(url, headers={**_bearer(token), "Accept": "text/csv"}).get_data() == table.get_data()


def test_a_unit_token_streams_its_own_unit_only(client, token_for):
    token = token_for("unit", "219")
    lines = client.get("/api/v1/plans/bacgiang-2024/status?format=jsonl", headers=_bearer(token))
    assert [json.loads(line)["code"] for line in lines.get_data(as_text=True).splitlines()] == ["219"]
