"""Dated units: ``units-import`` of the three list formats, lookups at a date, ``GET /api/v1/units``."""
from __future__ import annotations

import json
import time
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tracker.extensions import db
from tracker.models import Assignment, Plan, Unit, UnitMerge, in_force_on, unit_by_code

UNITS = Path(__file__).resolve().parent.parent / "report_forms" / "units"
MAP_2024 = UNITS / "vn_units_20240501.json.gz"
MAP_2025 = UNITS / "vn_units_20250701.json.gz"


def _import(runner, path: Path, as_of: str):
    result = runner.invoke(args=["units-import", str(path), "--as-of", as_of])
    assert result.exit_code == 0, result.output
    return result.output


def _count(on: date, level: int) -> int:
    return db.session.scalar(select(func.count()).select_from(Unit).where(in_force_on(on), Unit.level == level))


@pytest.fixture
def national(app, runner):
    """The seeded database with the whole 2024 map and then the whole 2025 map imported."""
    _import(runner, MAP_2024, "2024-05-01")
    started = time.perf_counter()
    output = _import(runner, MAP_2025, "2025-07-01")
    return output, time.perf_counter() - started


def test_2025_map_counts_and_2024_names_kept(app, national, token_for, client):
    output, seconds = national
    # 3,321 communes and 24 provinces made from others or renamed, 10 provinces stay as they were; the seed
    # already holds Tỉnh Bắc Ninh's 99 communes of the demo plan, which stay as they are.
    assert "thêm 3245 đơn vị" in output and "giữ nguyên 110;" in output
    assert seconds < 60, f"the 2025 import took {seconds:.1f} s"
    with app.app_context():
        assert _count(date(2025, 7, 1), 1) == 34
        assert _count(date(2025, 7, 1), 3) == 3321
        assert _count(date(2025, 7, 1), 2) == 0  # no district level any more
        assert _count(date(2024, 5, 1), 1) == 63
        assert _count(date(2024, 5, 1), 2) == 705
        assert _count(date(2024, 5, 1), 3) == 10595
        assert unit_by_code("24", date(2024, 5, 1)).name == "Tỉnh Bắc Giang"
        assert unit_by_code("24", date(2025, 7, 1)).name == "Tỉnh Bắc Ninh"
        assert unit_by_code("219", date(2024, 5, 1)).name == "Huyện Lục Ngạn"
        assert unit_by_code("219", date(2025, 7, 1)) is None
        assert unit_by_code("219", date(2025, 7, 1), or_before=True).valid_to == date(2025, 7, 1)
        # The 2024 plan's assignments still point at the 2024 versions.
        plan = db.session.scalar(select(Plan).where(Plan.code == "bacgiang-2024"))
        names = {a.unit.code: a.unit.name for a in plan.assignments}
        assert names["219"] == "Huyện Lục Ngạn"
    headers = {"Authorization": f"Bearer {token_for('staff')}"}
    body = client.get("/api/v1/units?as_of=2025-07-01&level=1", headers=headers).get_json()
    assert len(body["units"]) == 34
    province = next(u for u in body["units"] if u["code"] == "24")
    assert province["name"] == "Tỉnh Bắc Ninh" and province["valid_from"] == "2025-07-01"
    assert province["valid_to"] is None and province["parent"] is None
    assert {m["code"] for m in province["merged_from"]} == {"24", "27"}
    body = client.get("/api/v1/units?as_of=2025-07-01&parent=24", headers=headers).get_json()
    assert len(body["units"]) == 99
    bac_giang = next(u for u in body["units"] if u["code"] == "07210")
    assert bac_giang["name"] == "Phường Bắc Giang" and bac_giang["level"] == 3 and bac_giang["parent"] == "24"
    sources = {m["code"]: m for m in bac_giang["merged_from"]}
    assert {"07201", "07207"} <= set(sources)
    assert sources["07201"]["name"] == "Phường Thọ Xương" and sources["07201"]["share"] == "full"
    assert all(m["hint"] for m in bac_giang["merged_from"])
    old = client.get("/api/v1/units?as_of=2024-05-01&parent=219", headers=headers).get_json()["units"]
    assert {u["name"] for u in old} >= {"Xã Kiên Thành", "Xã Kiên Lao"}
    assert all(u["valid_to"] == "2025-07-01" and u["parent"] == "219" for u in old)
    assert len(client.get("/api/v1/units?as_of=2025-07-01&level=3", headers=headers).get_json()["units"]) == 3321


def test_second_import_changes_nothing(app, national, runner):
    with app.app_context():
        before = (db.session.scalar(select(func.count()).select_from(Unit)),
                  db.session.scalar(select(func.count()).select_from(UnitMerge)),
                  db.session.scalar(select(func.count()).select_from(Unit).where(Unit.valid_to.is_(None))))
    output = _import(runner, MAP_2025, "2025-07-01")
    assert "không thay đổi gì" in output
    output = _import(runner, MAP_2024, "2024-05-01")
    assert "không thay đổi gì" in output
    with app.app_context():
        after = (db.session.scalar(select(func.count()).select_from(Unit)),
                 db.session.scalar(select(func.count()).select_from(UnitMerge)),
                 db.session.scalar(select(func.count()).select_from(Unit).where(Unit.valid_to.is_(None))))
    assert after == before
    assert before[0] == 11363 + 3345 and before[2] == 34 + 3321
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Unit).where(Unit.valid_from == date(2025, 7, 1))) \
            == 3345


def test_csv_import_is_a_no_op_after_seed_and_closes_only_its_province(app, runner, tmp_path):
    output = _import(runner, UNITS / "bacgiang_units_20240501.csv", "2024-05-01")
    assert "không thay đổi gì" in output
    # A later list of the same province without Huyện Lục Ngạn's communes closes them, nothing else.
    lines = (UNITS / "bacgiang_units_20240501.csv").read_text(encoding="utf-8").splitlines()
    kept = [line for line in lines if ",219," not in line]
    renamed = [line.replace("Huyện Lục Nam", "Huyện Lục Nam Mới") for line in kept]
    later = tmp_path / "bacgiang_20250101.csv"
    later.write_text("\n".join(renamed) + "\n", encoding="utf-8")
    with app.app_context():
        communes_219 = db.session.scalar(select(func.count()).select_from(Unit).where(
            Unit.parent_id == unit_by_code("219", date(2024, 5, 1)).id))
    output = _import(runner, later, "2025-01-01")
    with app.app_context():
        assert unit_by_code("219", date(2025, 1, 1)) is None
        assert unit_by_code("219", date(2024, 12, 31)).name == "Huyện Lục Ngạn"
        assert unit_by_code("218", date(2025, 1, 1)).name == "Huyện Lục Nam Mới"
        assert unit_by_code("218", date(2024, 12, 31)).name == "Huyện Lục Nam"
        # Lục Nam's communes got a new version under the renamed district; the others are untouched.
        commune = unit_by_code("07444", date(2025, 1, 1))
        assert commune.valid_from == date(2025, 1, 1) and commune.parent.name == "Huyện Lục Nam Mới"
        assert unit_by_code("07558", date(2025, 1, 1)) is None  # Kiên Thành of Lục Ngạn: closed
        assert unit_by_code("07201", date(2025, 1, 1)).valid_from == date(2024, 5, 1)
    lục_nam = len([line for line in lines if ",218," in line])  # the district and its communes
    assert f"thêm {lục_nam} đơn vị, kết thúc {1 + communes_219 + lục_nam}," in output


def test_import_refuses_bad_files_and_dates(runner, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"something": []}), encoding="utf-8")
    result = runner.invoke(args=["units-import", str(bad), "--as-of", "2025-07-01"])
    assert result.exit_code != 0 and "không theo định dạng" in result.output
    result = runner.invoke(args=["units-import", str(UNITS / "bacgiang_units_20240501.csv"), "--as-of", "1/7/2025"])
    assert result.exit_code != 0 and "không hợp lệ" in result.output
    result = runner.invoke(args=["units-import", str(UNITS / "bacgiang_units_20240501.csv")])
    assert result.exit_code != 0 and "--as-of" in result.output


def test_units_api_refuses_bad_parameters(client, token_for):
    headers = {"Authorization": f"Bearer {token_for('staff')}"}
    response = client.get("/api/v1/units?as_of=01/07/2025", headers=headers)
    assert response.status_code == 400 and response.get_json()["error"]["code"] == "invalid_as_of"
    response = client.get("/api/v1/units?level=7", headers=headers)
    assert response.status_code == 400 and response.get_json()["error"]["code"] == "invalid_level"
    response = client.get("/api/v1/units?as_of=2024-05-01&parent=99999", headers=headers)
    assert response.status_code == 404 and "99999" in response.get_json()["error"]["message"]
    assert client.get("/api/v1/units").status_code == 401


def test_seeded_2024_units_answer_at_the_plan_date(app, client, token_for):
    headers = {"Authorization": f"Bearer {token_for('unit', '219')}"}
    body = client.get("/api/v1/units?as_of=2024-05-10&parent=24", headers=headers).get_json()
    names = {u["code"]: u["name"] for u in body["units"]}
    assert names["219"] == "Huyện Lục Ngạn" and names["222"] == "Thị xã Việt Yên" and len(names) == 10
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Assignment)) > 0
