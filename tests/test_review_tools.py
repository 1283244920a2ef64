"""Issue 18 through the app: what changed between versions (pages, API), outlier flags (list, unit page,
API, export), staff bounds and verifications, access, and that none of it changes a unit's status."""
from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any

import openpyxl
from sqlalchemy import func, insert, select

from test_outliers import full_values
from test_returns import blank, make_return, post  # noqa: F401  (fixtures)
from tracker import value_packs
from tracker.extensions import db
from tracker.models import (Assignment, AuditEvent, OutlierBound, OutlierVerification, Plan, ReturnValue,
                            ReturnVersion, Review, Unit)
from tracker.outliers import cell_key
from versions import version_row

PLAN = "bacgiang-2024"
PL03_UNITS = ["213", "215", "216", "217", "219", "220", "221", "222"]


def store(app: Any, unit_code: str, number: int, values: dict[str, float], *, plan: str = PLAN,
          complete: bool = True, packed: bool = True) -> int:
    """Store version ``number`` of the unit's return with ``values`` ({cell key: number}); return its id."""
    with app.app_context():
        assignment = db.session.scalar(select(Assignment).join(Unit).join(Plan).where(
            Unit.code == unit_code, Plan.code == plan))
        version = version_row(assignment.id, number, datetime(2024, 5, 8, 3, number, tzinfo=UTC), complete,
                              errors=0 if complete else 1, form_code=assignment.form_code, label=f"{plan}-{unit_code}")
        rows = []
        for key, value in values.items():
            indicator, period, breakdown = key.split("|")
            rows.append({"version_id": version.id, "sheet": indicator.split(".")[0], "indicator": indicator,
                         "period": period, "breakdown": breakdown, "value": value, "text": None})
        db.session.execute(insert(ReturnValue), rows)
        if packed:
            value_packs.store_pack(version.id, ((r["indicator"], r["period"], r["breakdown"], r["value"]) for r in rows))
        db.session.commit()
        return version.id


def province_with_one_outlier(app: Any, packed: bool = True) -> None:
    """Eight PL03 districts with the same figures per child; Lục Ngạn (219) reports 50 times the abused children."""
    for index, code in enumerate(PL03_UNITS):
        values = full_values(_pl03(app), 1.0 + index * 0.25)
        if code == "219":
            values[cell_key("B03.victims", "base", "total")] *= 50
        store(app, code, 1, values, packed=packed or index % 2 == 0)


def _pl03(app: Any) -> Any:
    return app.extensions["tracker.forms"]["PL03"]


def outliers(client: Any, token: str) -> list[dict[str, Any]]:
    response = client.get(f"/api/v1/plans/{PLAN}/outliers", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    return response.get_json()["items"]


def status_snapshot(client: Any, token: str) -> Any:
    body = client.get(f"/api/v1/plans/{PLAN}/status?as_of=2024-05-20T00:00:00%2B07:00",
                      headers={"Authorization": f"Bearer {token}"}).get_json()
    return body["units"]


# --------------------------------------------------------------------------------------- what changed

def test_two_versions_differing_in_two_cells_list_exactly_those(app, client, make_return, token_for) -> None:
    token = token_for("unit", "219")
    assert post(client, "219", make_return("219"), token=token).status_code == 201
    # One change breaks the row's total = male + female (an error appears), the other breaks nothing.
    staff_total = ("B04", "staff_district", "base_total")
    events = ("B04", "comm_events", "base_total")
    from forms_fixtures import consistent_values
    base = consistent_values(_pl03(app))
    second = post(client, "219", make_return("219", {staff_total: base[staff_total] + 1,
                                                     events: base[events] + 3}), token=token)
    assert second.status_code == 201
    with app.app_context():
        v1, v2 = db.session.scalars(select(ReturnVersion).join(Assignment).join(Unit)
                                    .where(Unit.code == "219").order_by(ReturnVersion.version)).all()
        issues = {n: {(i.severity, i.sheet, i.cell, i.indicator, i.message) for i in v.issues} for n, v in ((1, v1), (2, v2))}
    response = client.get(f"/api/v1/plans/{PLAN}/units/219/versions/2/changes", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    body = response.get_json()
    assert body["since"] == 1 and body["version"] == 2
    got = [(c["sheet"], c["cell"], c["indicator_code"], c["period"], c["breakdown"], c["old"], c["new"])
           for c in body["changes"]]
    form = _pl03(app)
    assert got == [
        ("Biểu 04", form.address(staff_total)[1], "B04.staff_district", "Năm 2023", "Tổng số", base[staff_total],
         base[staff_total] + 1),
        ("Biểu 04", form.address(events)[1], "B04.comm_events", "Năm 2023", "Tổng số", base[events], base[events] + 3)]
    assert body["changes"][0]["indicator"] == form.indicator("B04.staff_district").label
    added = {(i["severity"], i["sheet"], i["cell"], i["indicator"], i["message"]) for i in body["issues_added"]}
    assert added == issues[2] - issues[1] and added and body["issues_removed"] == []
    # Any pair on request: back from 2 to 1 the same cells change and the error disappears.
    back = client.get(f"/api/v1/plans/{PLAN}/units/219/versions/1/changes?since=2",
                      headers={"Authorization": f"Bearer {token}"}).get_json()
    assert [(c["old"], c["new"]) for c in back["changes"]] == [(new, old) for *_, old, new in got]
    assert {(i["severity"], i["sheet"], i["cell"], i["indicator"], i["message"]) for i in back["issues_removed"]} == added
    # The result page after the re-upload and the unit page say it in words.
    page = client.get(f"/plans/{PLAN}/units/219/versions/2", headers={"Authorization": f"Bearer {token}"})
    assert "So với lần 1: 2 ô thay đổi" in page.get_data(as_text=True)
    home = client.get(f"/plans/{PLAN}/units/219", headers={"Authorization": f"Bearer {token}"}).get_data(as_text=True)
    assert "Những gì đã thay đổi: lần 2 so với lần 1" in home and "So với lần 1: 2 ô thay đổi" in home
    picked = client.get(f"/plans/{PLAN}/units/219?changes=1&since=2",
                        headers={"Authorization": f"Bearer {token}"}).get_data(as_text=True)
    assert "lần 1 so với lần 2" in picked


def test_a_unit_sees_only_its_own_units_changes(app, client, token_for) -> None:
    for number in (1, 2):
        store(app, "219", number, {cell_key("B01.births", "base", "total"): 100.0 + number})
        store(app, "218", number, {cell_key("B01.births", "base", "total"): 200.0 + number})
    own, other, staff = token_for("unit", "219"), token_for("unit", "218"), token_for("staff")

    def get(path: str, token: str) -> Any:
        return client.get(path, headers={"Authorization": f"Bearer {token}"})

    path = f"/api/v1/plans/{PLAN}/units/219/versions/2/changes"
    assert get(path, own).status_code == 200
    assert [(c["old"], c["new"]) for c in get(path, staff).get_json()["changes"]] == [(101, 102)]
    refused = get(path, other)
    assert refused.status_code == 403 and refused.get_json()["error"]["code"] == "forbidden"
    assert get(f"/plans/{PLAN}/units/219?changes=2&since=1", other).status_code == 403
    assert get(f"/api/v1/plans/{PLAN}/units/218/versions/2/changes", own).status_code == 403
    # Bad or missing versions: specific 4xx in JSON, never a 500.
    assert get(f"{path}?since=9", own).status_code == 404
    assert get(f"{path}?since=abc", own).get_json()["error"]["code"] == "bad_request"
    assert get(f"{path}?since=2", own).get_json()["error"]["code"] == "same_version"
    first = get(f"/api/v1/plans/{PLAN}/units/219/versions/1/changes", own)
    assert first.status_code == 404 and first.get_json()["error"]["code"] == "no_previous_version"
    assert get(f"/plans/{PLAN}/units/219?changes=7", own).status_code == 404
    assert get(f"/plans/{PLAN}/units/219?since=x", own).status_code == 400


# --------------------------------------------------------------------------------------- outliers

def test_the_plans_outlier_list_flags_the_one_unit(app, client, token_for, login_as) -> None:
    # Half the versions have no pack (stored before packs existed): the list reads their rows instead.
    province_with_one_outlier(app, packed=False)
    items = outliers(client, token_for("staff"))
    assert [(i["unit"], i["indicator"], i["period"], i["breakdown"], i["reason"]) for i in items] == [
        ("219", "B03.victims", "base", "total", "robust_z")]
    item = items[0]
    assert set(item) >= {"unit", "indicator", "period", "breakdown", "value", "reason", "reference", "verified"}
    assert item["verified"] is False
    assert abs(item["rate"] / item["reference"] - 50) < 1e-9
    assert client.get(f"/api/v1/plans/{PLAN}/outliers",
                      headers={"Authorization": f"Bearer {token_for('unit', '219')}"}).status_code == 403
    login_as("staff")
    page = client.get(f"/plans/{PLAN}/outliers").get_data(as_text=True)
    assert "Số liệu bất thường" in page and "Huyện Lục Ngạn" in page and "Khác xa các đơn vị khác" in page
    assert 'data-unit="219"' in page and page.count('data-unit="') == 1
    unit_page = client.get(f"/plans/{PLAN}/units/219").get_data(as_text=True)
    assert "Số liệu bất thường (1)" in unit_page and "Tổng số trẻ em bị xâm hại" in unit_page
    assert "Số liệu bất thường (0)" in client.get(f"/plans/{PLAN}/units/213").get_data(as_text=True)


def test_an_officer_does_not_see_flags(app, client, login_as) -> None:
    province_with_one_outlier(app)
    login_as("unit", "219")
    page = client.get(f"/plans/{PLAN}/units/219").get_data(as_text=True)
    assert "Số liệu bất thường" not in page
    assert client.get(f"/plans/{PLAN}/outliers").status_code == 403


def test_verifying_a_flag_keeps_it_visible_as_verified(app, client, token_for, login_as) -> None:
    province_with_one_outlier(app)
    staff = token_for("staff")
    before = status_snapshot(client, staff)
    flag = outliers(client, staff)[0]
    login_as("staff")
    form = {k: flag[k] for k in ("indicator", "period", "breakdown", "reason")}
    form.update(value=repr(flag["value"]), note="Đã gọi điện: huyện có một vụ xâm hại tập thể.", back="list")
    response = client.post(f"/plans/{PLAN}/units/219/outliers/verify", data=form)
    assert response.status_code == 303 and response.headers["Location"].endswith(f"/plans/{PLAN}/outliers")
    again = outliers(client, staff)
    assert len(again) == 1 and again[0]["verified"] is True
    assert again[0]["verification"]["note"] == form["note"]
    page = client.get(f"/plans/{PLAN}/outliers").get_data(as_text=True)
    assert "Đã xác minh" in page and form["note"] in page
    with app.app_context():
        event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "outlier.verify"))
        assert event.target == f"{PLAN}/219" and event.detail["indicator"] == "B03.victims"
        assert db.session.scalar(select(func.count()).select_from(OutlierVerification)) == 1
    # A flag that does not stand is refused, and nothing is stored.
    wrong = dict(form, value="1")
    refused = client.post(f"/plans/{PLAN}/units/219/outliers/verify", data=wrong)
    assert refused.status_code == 409 and "không còn bị đánh dấu" in refused.get_data(as_text=True)
    assert client.post(f"/plans/{PLAN}/units/219/outliers/verify", data=dict(form, note="x" * 2001)).status_code == 422
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(OutlierVerification)) == 1
    assert status_snapshot(client, staff) == before


def test_a_staff_bound_on_the_forms_page_flags_a_value_outside_it(app, client, token_for, login_as) -> None:
    province_with_one_outlier(app)
    login_as("staff")
    page = client.get("/forms/PL03")
    assert page.status_code == 200 and "Số thôn, tổ dân phố" in page.get_data(as_text=True)
    # Villages: 200 × size in every unit; a maximum of 300 leaves out the four biggest (base and Q1).
    bad = client.post("/forms/PL03", data={"min:B01.villages": "400", "max:B01.villages": "300"})
    assert bad.status_code == 422 and "mức tối thiểu lớn hơn mức tối đa" in bad.get_data(as_text=True)
    assert client.post("/forms/PL03", data={"max:B01.villages": "ba trăm"}).status_code == 422
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(OutlierBound)) == 0
    saved = client.post("/forms/PL03", data={"min:B01.villages": "", "max:B01.villages": "300"})
    assert saved.status_code == 303
    items = [i for i in outliers(client, token_for("staff")) if i["reason"] == "bounds"]
    expected = sorted(code for index, code in enumerate(PL03_UNITS) if 200 * (1 + index * 0.25) > 300)
    assert sorted({i["unit"] for i in items}) == expected
    assert {(i["indicator"], i["reference"]) for i in items} == {("B01.villages", 300.0)}
    assert len(items) == 2 * len(expected)  # both periods
    # The page shows the bound as Vietnamese write it, and posting it back changes nothing.
    assert 'value="300"' in client.get("/forms/PL03").get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(AuditEvent.detail).where(AuditEvent.action == "outlier.bounds"))["max"] == 300


def test_a_halving_since_the_source_plan_is_flagged(app, client, token_for, login_as) -> None:
    form = _pl03(app)
    for index, code in enumerate(PL03_UNITS):
        store(app, code, 1, full_values(form, 1.0 + index * 0.25))
    login_as("admin")
    copied = client.post("/admin/plans/copy", data={"source": PLAN, "code": "bacgiang-2025",
                                                    "deadline": "2025-05-10T00:00", "title": "Kế hoạch 2025"})
    assert copied.status_code in (302, 303), copied.get_data(as_text=True)[:400]
    with app.app_context():
        new_plan = db.session.scalar(select(Plan).where(Plan.code == "bacgiang-2025"))
        assert new_plan.copied_from_id == db.session.scalar(select(Plan.id).where(Plan.code == PLAN))
    births = cell_key("B01.births", "base", "total")
    for index, code in enumerate(PL03_UNITS):
        values = full_values(form, 1.0 + index * 0.25)
        if code == "216":
            values[births] /= 2
        store(app, code, 1, values, plan="bacgiang-2025")
    body = client.get("/api/v1/plans/bacgiang-2025/outliers",
                      headers={"Authorization": f"Bearer {token_for('staff')}"}).get_json()
    yoy = [i for i in body["items"] if i["reason"] == "year_over_year"]
    assert [(i["unit"], i["indicator"], i["period"], i["breakdown"]) for i in yoy] == [("216", "B01.births", "base", "total")]
    size = 1.0 + 2 * 0.25
    assert yoy[0]["reference"] == 105 * size and yoy[0]["value"] == 105 * size / 2


def test_flags_are_a_sheet_of_the_export_and_change_no_status(app, client, token_for, login_as) -> None:
    province_with_one_outlier(app)
    staff = token_for("staff")
    before = status_snapshot(client, staff)
    with app.app_context():
        counts = (db.session.scalar(select(func.count()).select_from(ReturnVersion)),
                  db.session.scalar(select(func.count()).select_from(Review)))
    response = client.get(f"/api/v1/plans/{PLAN}/export.xlsx?as_of=2024-05-20T00:00:00%2B07:00",
                          headers={"Authorization": f"Bearer {staff}"})
    assert response.status_code == 200
    book = openpyxl.load_workbook(io.BytesIO(response.data), read_only=True)
    rows = [row for row in book["Số liệu bất thường"].iter_rows(values_only=True) if any(row)]
    book.close()
    header = next(i for i, row in enumerate(rows) if row[:3] == ("STT", "Đơn vị", "Biểu mẫu"))
    flags = rows[header + 1:]
    assert len(flags) == 1
    assert flags[0][1] == "Huyện Lục Ngạn" and flags[0][2] == "Phụ lục 03" and flags[0][3] == "Biểu 03"
    assert flags[0][5] == "Tổng số trẻ em bị xâm hại" and flags[0][9] == "Khác xa các đơn vị khác"
    login_as("staff")
    client.get(f"/plans/{PLAN}/outliers")
    client.get(f"/plans/{PLAN}/units/219")
    assert status_snapshot(client, staff) == before
    with app.app_context():
        assert counts == (db.session.scalar(select(func.count()).select_from(ReturnVersion)),
                          db.session.scalar(select(func.count()).select_from(Review)))


def test_a_returned_version_is_not_counted(app, client, token_for) -> None:
    province_with_one_outlier(app)
    with app.app_context():
        version_id = db.session.scalar(select(ReturnVersion.id).join(Assignment).join(Unit).where(Unit.code == "219"))
        db.session.add(Review(version_id=version_id, state="returned", reason="Sai số liệu Biểu 03",
                              created_at=datetime(2024, 5, 9, tzinfo=UTC)))
        db.session.commit()
    assert outliers(client, token_for("staff")) == []


def test_the_command_line_export_has_the_same_outlier_sheet(app, runner, tmp_path) -> None:
    """`flask --app tracker export` writes the workbook the dashboard offers, «Số liệu bất thường» included."""
    from tracker import cli_export

    province_with_one_outlier(app)
    if "export" not in app.cli.commands:
        cli_export.init_app(app)
    out = tmp_path / "tong-hop.xlsx"
    result = runner.invoke(args=["export", PLAN, "--out", str(out), "--as-of", "2024-05-20T00:00:00+07:00"])
    assert result.exit_code == 0, result.output
    book = openpyxl.load_workbook(out, read_only=True)
    rows = [row for row in book["Số liệu bất thường"].iter_rows(values_only=True) if any(row)]
    book.close()
    header = next(i for i, row in enumerate(rows) if row[:3] == ("STT", "Đơn vị", "Biểu mẫu"))
    assert [(r[1], r[3], r[5]) for r in rows[header + 1:]] == [("Huyện Lục Ngạn", "Biểu 03", "Tổng số trẻ em bị xâm hại")]


def test_the_flags_kept_per_plan_follow_every_write_they_read(app, client, token_for) -> None:
    """The flags are kept per plan (a national plan's take most of a second): a bound, a verification, a
    review in this plan and a new version in the plan it was copied from each give the flags anew."""
    from tracker import standing_cache

    province_with_one_outlier(app)
    staff = token_for("staff")

    def seen() -> list[tuple[str, str, str, bool]]:
        return sorted((i["unit"], i["indicator"], i["reason"], i["verified"]) for i in outliers(client, staff))

    first = seen()
    assert first == [("219", "B03.victims", "robust_z", False)]
    hits = standing_cache.stats["hits"]
    assert seen() == first and standing_cache.stats["hits"] > hits  # served from the entry
    with app.app_context():
        db.session.add(OutlierBound(form_code="PL03", indicator="B01.villages", max_value=300.0))
        db.session.commit()
    bounded = seen()
    assert {u for u, ind, reason, _ in bounded if reason == "bounds"} == {
        code for index, code in enumerate(PL03_UNITS) if 200 * (1 + index * 0.25) > 300}
    value = next(i["value"] for i in outliers(client, staff) if i["unit"] == "219" and i["reason"] == "robust_z")
    with app.app_context():
        plan_id, unit_id = db.session.execute(select(Plan.id, Assignment.unit_id).join(Assignment).join(Unit).where(
            Plan.code == PLAN, Unit.code == "219")).one()
        db.session.add(OutlierVerification(plan_id=plan_id, unit_id=unit_id, indicator="B03.victims", period="base",
                                           breakdown="total", reason="robust_z", value=value, note="Đã xác minh"))
        db.session.commit()
    assert ("219", "B03.victims", "robust_z", True) in seen()
    with app.app_context():
        version_id = db.session.scalar(select(ReturnVersion.id).join(Assignment).join(Unit).where(Unit.code == "219"))
        db.session.add(Review(version_id=version_id, state="returned", reason="Sai số liệu Biểu 03",
                              created_at=datetime(2024, 5, 9, tzinfo=UTC)))
        db.session.commit()
    assert not [f for f in seen() if f[0] == "219"]
    standing_cache.enabled = False
    try:
        assert seen() == sorted((i["unit"], i["indicator"], i["reason"], i["verified"]) for i in outliers(client, staff))
    finally:
        standing_cache.enabled = True


def test_the_flags_follow_a_new_version_in_the_plan_copied_from(app, client, token_for, login_as) -> None:
    form = _pl03(app)
    for index, code in enumerate(PL03_UNITS):
        store(app, code, 1, full_values(form, 1.0 + index * 0.25))
    login_as("admin")
    client.post("/admin/plans/copy", data={"source": PLAN, "code": "bacgiang-2025", "deadline": "2025-05-10T00:00",
                                           "title": "Kế hoạch 2025"})
    for index, code in enumerate(PL03_UNITS):
        store(app, code, 1, full_values(form, 1.0 + index * 0.25), plan="bacgiang-2025")
    headers = {"Authorization": f"Bearer {token_for('staff')}"}

    def year_over_year() -> list[str]:
        items = client.get("/api/v1/plans/bacgiang-2025/outliers", headers=headers).get_json()["items"]
        return sorted({i["unit"] for i in items if i["reason"] == "year_over_year"})

    assert year_over_year() == []
    # Last year's return of 216 is corrected to twice this year's births: this year's now reads as a halving.
    values = full_values(form, 1.5)
    values[cell_key("B01.births", "base", "total")] *= 2
    store(app, "216", 2, values)
    assert year_over_year() == ["216"]
