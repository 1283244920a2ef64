"""Forms at the commune level: rows marked for districts only drop out of a commune's blank form, parse,
rules and export, while a district's return keeps them."""
from __future__ import annotations

import io

import openpyxl
import pytest
from sqlalchemy import select

from forms_fixtures import consistent_values, shipped_forms
from returns_fixtures import fill_workbook, sample_texts
from tracker.catalog_loader import FormDefinitionError, load_form
from tracker.extensions import db
from tracker.form_levels import form_at_level
from tracker.models import ReturnValue, ReturnVersion

PLAN = "bacninh-2026"
COMMUNE = "07210"  # Phường Bắc Giang
DISTRICT_ONLY = [("B01", "communes"), ("B04", "staff_district"), ("B04", "child_friendly_communes"),
                 ("B06", "party_committee"), ("B07", "district_budget")]


def test_commune_form_skips_rows_marked_for_districts_only():
    full = shipped_forms()["PL03"]
    commune = form_at_level(full, 3)
    assert form_at_level(full, 2) is full and form_at_level(full, None) is full
    assert commune.level == 3 and commune.code == full.code and commune.version == full.version
    for sheet_code, row_code in DISTRICT_ONLY:
        assert full.indicator(f"{sheet_code}.{row_code}").levels == (2,)
        row = commune.indicator(f"{sheet_code}.{row_code}")
        assert row.input_breakdowns == () and not row.required and "không áp dụng ở cấp xã" in row.label
        assert row.excel_row == full.indicator(f"{sheet_code}.{row_code}").excel_row  # layout kept
    dropped_keys = {k for k in full.input_keys() if (k[0], k[1]) in DISTRICT_ONLY}
    assert dropped_keys and not dropped_keys & set(commune.input_keys())
    assert set(commune.input_keys()) == set(full.input_keys()) - {
        k for k in full.input_keys() if full.indicator(f"{k[0]}.{k[1]}").levels == (2,)}
    # The rule "child-friendly communes <= communes" reads a district-only row: skipped at commune level.
    full_rules = {r.id: r for r in full.rules}
    commune_rules = {r.id: r for r in commune.rules}
    reading = [r.id for r in full.rules if any((k[0], k[1]) in DISTRICT_ONLY for i in r.instances for k in i.cells)]
    assert reading
    for rule_id in reading:
        kept = commune_rules.get(rule_id)
        assert kept is None or all((k[0], k[1]) not in DISTRICT_ONLY for i in kept.instances for k in i.cells)
    assert set(commune_rules) <= set(full_rules)
    assert not any((c.key[0], c.key[1]) in DISTRICT_ONLY for c in commune.computed)


def test_levels_must_name_administrative_levels(tmp_path):
    source = (shipped_forms()["PL03"].source).read_text(encoding="utf-8")
    bad = source.replace('breakdowns = ["total"], levels = [2] }', 'breakdowns = ["total"], levels = [7] }', 1)
    assert bad != source
    path = tmp_path / "PL03.toml"
    path.write_text(bad, encoding="utf-8")
    with pytest.raises(FormDefinitionError, match="levels phải là danh sách cấp hành chính") as error:
        load_form(path)
    assert error.value.line == bad[:bad.index("levels = [7]")].count("\n") + 1


def _blank(client, headers, plan: str, unit: str) -> bytes:
    response = client.get(f"/api/v1/plans/{plan}/units/{unit}/template", headers=headers)
    assert response.status_code == 200
    return response.data


def test_commune_return_round_trip_without_district_rows(app, client, token_for):
    headers = {"Authorization": f"Bearer {token_for('unit', COMMUNE)}"}
    commune = form_at_level(shipped_forms()["PL03"], 3)
    blank = _blank(client, headers, PLAN, COMMUNE)
    book = openpyxl.load_workbook(io.BytesIO(blank))
    sheet = book[commune.sheet("B01").name]
    row = commune.indicator("B01.communes").excel_row
    label_cells = [c.value for c in sheet[row] if isinstance(c.value, str)]
    assert any("không áp dụng ở cấp xã" in text for text in label_cells)
    # No unlocked (input) value cell on the district-only row; the next row still has its input cell.
    letters = [column.letter for column in commune.sheet("B01").columns]
    assert all(sheet[f"{letter}{row}"].protection.locked for letter in letters)
    villages = commune.indicator("B01.villages").excel_row
    assert any(not sheet[f"{letter}{villages}"].protection.locked for letter in letters)
    data = fill_workbook(blank, commune, consistent_values(commune), sample_texts(commune))
    response = client.post(f"/api/v1/plans/{PLAN}/units/{COMMUNE}/returns", headers=headers,
                           data={"file": (io.BytesIO(data), "bao-cao.xlsx")}, content_type="multipart/form-data")
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert [i for i in body["issues"] if i["severity"] == "error"] == [] and body["complete"] is True
    with app.app_context():
        version = db.session.scalar(select(ReturnVersion).order_by(ReturnVersion.id.desc()))
        stored = {(v.sheet, v.indicator) for v in db.session.scalars(
            select(ReturnValue).where(ReturnValue.version_id == version.id))}
        assert not any(indicator.endswith(row_code) and sheet in (s, commune.sheet(s).name)
                       for sheet, indicator in stored for s, row_code in DISTRICT_ONLY)
        assert any(indicator.endswith("villages") for _, indicator in stored)


def test_district_return_still_requires_the_district_rows(client, token_for):
    headers = {"Authorization": f"Bearer {token_for('unit', '219')}"}
    full = shipped_forms()["PL03"]
    blank = _blank(client, headers, "bacgiang-2024", "219")
    values = consistent_values(full)
    values[("B01", "communes", "base_total")] = None  # a district leaves "số xã" blank: an error
    data = fill_workbook(blank, full, values, sample_texts(full))
    response = client.post("/api/v1/plans/bacgiang-2024/units/219/returns", headers=headers,
                           data={"file": (io.BytesIO(data), "bao-cao.xlsx")}, content_type="multipart/form-data")
    body = response.get_json()
    assert response.status_code == 201 and body["complete"] is False
    cell = full.address(("B01", "communes", "base_total"))[1]
    assert any(i["cell"] == cell and i["severity"] == "error" for i in body["issues"])


def test_export_marks_district_rows_not_applicable_for_a_commune():
    from datetime import UTC, datetime

    from tracker.compliance import Status
    from tracker.export import NOT_APPLICABLE, ExportInput, ExportUnit, ExportValue
    from tracker.export_writer import build_workbook

    forms = shipped_forms()
    at = datetime(2026, 6, 1, tzinfo=UTC)

    def unit(code: str, name: str, level: int) -> ExportUnit:
        return ExportUnit(code, name, "PL03", Status.ON_TIME, False, None, 0, 0, None, None, 1, at, 1, at,
                          level=level)

    units = (unit("219", "Huyện Lục Ngạn", 2), unit(COMMUNE, "Phường Bắc Giang", 3))
    values = tuple(ExportValue(code, "B01", "communes", "base", "total", 30.0) for code in ("219", COMMUNE)) + \
        tuple(ExportValue(code, "B01", "villages", "base", "total", 12.0) for code in ("219", COMMUNE))
    data = ExportInput("bacninh-2026", "Kế hoạch", at, at, units, values)
    workbook = openpyxl.load_workbook(io.BytesIO(build_workbook(data, forms).content))
    sheet = next(ws for ws in workbook.worksheets if "Biểu 01" in ws.title)
    rows = [r for r in sheet.iter_rows(values_only=True) if r and isinstance(r[1], str)]
    # One line per period block: the first block is "Năm 2023" (base), where the values are.
    communes = next(r for r in rows if r[1].startswith("Số xã, phường, thị trấn"))
    villages = next(r for r in rows if r[1].startswith("Số thôn, tổ dân phố"))
    # The district's 30 counts, the commune's is "not applicable" and stays out of the total.
    assert communes[3:] == (30, NOT_APPLICABLE, 30)
    assert villages[3:] == (12, 12, 24)
