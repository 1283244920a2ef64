"""The consolidated workbook: totals equal the units' sums, the right version is used, text is defused."""
from __future__ import annotations

import hashlib
import io
from datetime import datetime, timedelta, timezone
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
from sqlalchemy import insert, select

from tracker.catalog import load_forms
from tracker.compliance import Status
from tracker.export import (MISSING_SHEET, ExportInput, ExportIssue, ExportUnit, ExportValue, build_workbook,
                            neutralize)
from tracker.extensions import db
from tracker.models import (Assignment, AuditEvent, Plan, ReturnIssue, ReturnValue, ReturnVersion, Review,
                            Unit)

VN = timezone(timedelta(hours=7))
DEADLINE = datetime(2024, 5, 10, 0, 0, tzinfo=VN)
PLAN = "bacgiang-2024"
AS_OF = "2024-05-20T00:00:00+07:00"
EVIL = '=HYPERLINK("http://evil.example/x","bấm vào")'


@pytest.fixture(scope="module")
def forms():
    return load_forms(Path(__file__).resolve().parent.parent / "report_forms")


def fake_value(unit: str, version: int, key: tuple[str, str, str]) -> float:
    digest = hashlib.sha256(f"{unit}/{version}/{key}".encode()).digest()
    value = digest[0] * 3 + digest[1] % 7
    return value + 0.25 if key[0] == "B07" else float(value)


def add_version(app, unit_code: str, number: int, received_at: datetime, complete: bool, errors: int = 0,
                values: dict | None = None, texts: dict | None = None, issues: list | None = None) -> int:
    with app.app_context():
        assignment = db.session.scalar(select(Assignment).join(Unit).join(Plan).where(
            Unit.code == unit_code, Plan.code == PLAN))
        version = ReturnVersion(
            assignment=assignment, version=number, form_code=assignment.form_code, form_version=1,
            file_kind="xlsx", filename=f"{unit_code}-{number}.xlsx", size=10,
            sha256=hashlib.sha256(f"{unit_code}-{number}".encode()).hexdigest(), received_at=received_at,
            complete=complete, errors=errors)
        db.session.add(version)
        db.session.flush()
        rows = [{"version_id": version.id, "sheet": sheet, "indicator": f"{sheet}.{row}", "period": period,
                 "breakdown": breakdown, "value": value, "text": None}
                for (sheet, row, period, breakdown), value in (values or {}).items()]
        rows += [{"version_id": version.id, "sheet": sheet, "indicator": indicator, "period": "", "breakdown": "",
                  "value": None, "text": text} for (sheet, indicator), text in (texts or {}).items()]
        if rows:
            db.session.execute(insert(ReturnValue), rows)
        for severity, cell, message in issues or []:
            db.session.add(ReturnIssue(version_id=version.id, severity=severity, sheet="Biểu 01", cell=cell,
                                       indicator="B01.children", message=message))
        db.session.commit()
        return version.id


def full_values(form, unit: str, version: int) -> dict[tuple[str, str, str, str], float]:
    values = {}
    for sheet in form.sheets:
        for row, column, _ in sheet.input_cells():
            values[(sheet.code, row.code, column.period, column.breakdown)] = fake_value(
                unit, version, (sheet.code, row.code, column.key))
    return values


@pytest.fixture
def returns(app, forms):
    """Used versions: 213 v2, 219 v1 (v2 has errors), 218 v1 (PL02). 215's only version was returned."""
    pl03, pl02 = forms["PL03"], forms["PL02"]
    add_version(app, "213", 1, DEADLINE - timedelta(days=5), True, values=full_values(pl03, "213", 1))
    add_version(app, "213", 2, DEADLINE - timedelta(days=2), True, values=full_values(pl03, "213", 2),
                texts={("Đề cương", "I"): EVIL})
    add_version(app, "219", 1, DEADLINE - timedelta(days=3), True, values=full_values(pl03, "219", 1))
    add_version(app, "219", 2, DEADLINE + timedelta(days=1), False, errors=1, values=full_values(pl03, "219", 2),
                issues=[("error", "E8", "@Tổng số trẻ em phải bằng Nam + Nữ"), ("warning", "H8", "Tăng hơn 50%")])
    returned = add_version(app, "215", 1, DEADLINE - timedelta(days=1), True, values=full_values(pl03, "215", 1))
    add_version(app, "218", 1, DEADLINE + timedelta(days=2), True, values=full_values(pl02, "218", 1))
    with app.app_context():
        db.session.add(Review(version_id=returned, state="returned", reason="-Sai biểu 02", created_at=DEADLINE))
        db.session.commit()
    return {"213": full_values(pl03, "213", 2), "219": full_values(pl03, "219", 1),
            "218": full_values(pl02, "218", 1)}


def read(content: bytes) -> dict[str, pd.DataFrame]:
    return pd.read_excel(io.BytesIO(content), sheet_name=None, engine="calamine")


def header(column, unit_label: str) -> str:
    return f"{column.period_label} · {column.breakdown_label} · {unit_label}"


def test_totals_equal_the_sums_of_the_units_values(client, login_as, forms, returns):
    login_as("staff")
    response = client.get(f"/plans/{PLAN}/export.xlsx", query_string={"as_of": AS_OF})
    assert response.status_code == 200
    assert response.mimetype == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert "attachment" in response.headers["Content-Disposition"]
    assert "bang-tong-hop-bacgiang-2024-20240520-0000.xlsx" in response.headers["Content-Disposition"]
    sheets = read(response.data)
    names = {"213": "Thành phố Bắc Giang", "219": "Huyện Lục Ngạn", "218": "Huyện Lục Nam", "215": "Huyện Yên Thế"}
    checked = 0
    for form_code, units in (("PL03", ["213", "219"]), ("PL02", ["218"])):
        form = forms[form_code]
        for sheet in form.sheets:
            frame = sheets[f"{form_code} {sheet.name}"].set_index("Mã chỉ tiêu")
            for row, column, _ in sheet.input_cells():
                key = (sheet.code, row.code, column.period, column.breakdown)
                expected = sum(returns[u][key] for u in units)
                assert frame.loc[row.indicator, header(column, "Tổng cộng")] == pytest.approx(expected), key
                for unit in units:
                    assert frame.loc[row.indicator, header(column, names[unit])] == pytest.approx(returns[unit][key])
                # 215's figures were returned for correction: its column stays empty.
                if form_code == "PL03":
                    assert pd.isna(frame.loc[row.indicator, header(column, names["215"])])
                checked += 1
    assert checked > 500
    # A percentage is recomputed from the totals, not summed.
    b06 = sheets["PL03 Biểu 06"].set_index("Mã chỉ tiêu")
    total = sum(returns[u][("B06", "party_committee", "base", "total")] for u in ("213", "219"))
    female = sum(returns[u][("B06", "party_committee", "base", "female")] for u in ("213", "219"))
    assert b06.loc["B06.party_committee", "Năm 2023 · Tỷ lệ nữ (%) · Tổng cộng"] == pytest.approx(female / total * 100)
    # Exempt Hiệp Hòa has no column anywhere.
    assert not any("Hiệp Hòa" in str(c) for c in sheets["PL03 Biểu 01"].columns)


def test_missing_and_issues_sheets(client, login_as, returns):
    login_as("admin")
    sheets = read(client.get(f"/plans/{PLAN}/export.xlsx", query_string={"as_of": AS_OF}).data)
    missing = sheets[MISSING_SHEET]
    assert sorted(missing["Mã đơn vị"].astype(str)) == ["215", "216", "217", "219", "220", "221", "222"]
    row_215 = missing[missing["Mã đơn vị"].astype(str) == "215"].iloc[0]
    assert row_215["Tình trạng"] == "Chưa đầy đủ" and row_215["Ý kiến của Sở"] == "Trả lại để chỉnh sửa: -Sai biểu 02"
    issues = sheets["Lỗi và cảnh báo"]
    assert list(issues["Mức độ"]) == ["Lỗi", "Cảnh báo"]
    assert list(issues["Phiên bản"]) == [2, 2]
    assert issues.iloc[0]["Nội dung"] == "'@Tổng số trẻ em phải bằng Nam + Nữ"
    units = sheets["Đơn vị"].set_index("Mã đơn vị")
    assert units.loc[213, "Phiên bản được tổng hợp"] == 2 and units.loc[219, "Phiên bản được tổng hợp"] == 1
    assert "20/05/2024 00:00" in sheets["Thông tin"].to_string()


def test_formula_like_text_is_neutralised(client, login_as, returns):
    login_as("staff")
    content = client.get(f"/plans/{PLAN}/export.xlsx", query_string={"as_of": AS_OF}).data
    workbook = openpyxl.load_workbook(io.BytesIO(content))
    seen = []
    for sheet in workbook.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                assert cell.data_type != "f", (sheet.title, cell.coordinate, cell.value)
                if isinstance(cell.value, str) and "HYPERLINK" in cell.value:
                    seen.append(cell.value)
    assert seen == ["'" + EVIL]


@pytest.mark.parametrize(("text", "expected"), [
    ("=1+1", "'=1+1"), ("+84 912", "'+84 912"), ("-5", "'-5"), ("@SUM(A1)", "'@SUM(A1)"),
    ("\tx", "'\tx"), ("\rx", "'\rx"), ("Bình thường", "Bình thường"), ("", ""), (12.5, 12.5), (None, None),
])
def test_neutralize(text, expected):
    assert neutralize(text) == expected


def test_export_is_audited_and_as_of_hides_later_versions(app, client, login_as, returns):
    login_as("staff")
    early = read(client.get(f"/plans/{PLAN}/export.xlsx", query_string={"as_of": "2024-05-06T00:00"}).data)
    frame = early["PL03 Biểu 01"].set_index("Mã chỉ tiêu")
    # Only 213 v1 had arrived: its figures, and no column value for 219 yet.
    assert frame.loc["B01.children", "Năm 2023 · Tổng số · Thành phố Bắc Giang"] == pytest.approx(
        fake_value("213", 1, ("B01", "children", "base_total")))
    assert pd.isna(frame.loc["B01.children", "Năm 2023 · Tổng số · Huyện Lục Ngạn"])
    with app.app_context():
        events = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "export")).all()
        assert len(events) == 1 and events[0].target == PLAN and events[0].detail["via"] == "dashboard"
        assert events[0].actor == "canbo@demo.bacgiang.vn"
    assert client.get(f"/plans/{PLAN}/export.xlsx?as_of=sai").status_code == 400


def test_api_export(app, client, token_for, returns):
    response = client.get(f"/api/v1/plans/{PLAN}/export.xlsx", query_string={"as_of": AS_OF},
                          headers={"Authorization": f"Bearer {token_for('staff')}"})
    assert response.status_code == 200
    assert "PL03 Biểu 07" in read(response.data)
    unit = client.get(f"/api/v1/plans/{PLAN}/export.xlsx", headers={"Authorization": f"Bearer {token_for('unit', '219')}"})
    assert unit.status_code == 403 and unit.get_json()["error"]["code"] == "forbidden"
    assert client.get(f"/api/v1/plans/{PLAN}/export.xlsx").status_code == 401
    bad = client.get(f"/api/v1/plans/{PLAN}/export.xlsx?as_of=2024-05-10",
                     headers={"Authorization": f"Bearer {token_for('admin')}"})
    assert bad.status_code == 400 and bad.get_json()["error"]["code"] == "invalid_as_of"
    with app.app_context():
        assert [e.detail["via"] for e in db.session.scalars(select(AuditEvent).where(AuditEvent.action == "export"))] == ["api"]


def test_cli_export(app, runner, tmp_path, returns):
    from tracker import cli_export

    if "export" not in app.cli.commands:
        cli_export.init_app(app)
    out = tmp_path / "tong-hop.xlsx"
    result = runner.invoke(args=["export", PLAN, "--out", str(out), "--as-of", AS_OF])
    assert result.exit_code == 0, result.output
    assert "Đã ghi bảng tổng hợp" in result.output and "20/05/2024 00:00" in result.output
    frame = read(out.read_bytes())["PL03 Biểu 01"].set_index("Mã chỉ tiêu")
    assert frame.loc["B01.children", "Năm 2023 · Tổng số · Tổng cộng"] == pytest.approx(
        returns["213"][("B01", "children", "base", "total")] + returns["219"][("B01", "children", "base", "total")])
    bad = runner.invoke(args=["export", PLAN, "--out", str(out), "--as-of", "2024-05-10"])
    assert bad.exit_code != 0 and "không hợp lệ" in bad.output
    missing = runner.invoke(args=["export", "khong-co", "--out", str(out)])
    assert missing.exit_code != 0 and "Không tìm thấy kế hoạch" in missing.output
    with app.app_context():
        events = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "export")).all()
        assert [(e.actor, e.detail["via"]) for e in events] == [("cli", "cli")]


def test_build_workbook_from_plain_values(forms):
    at = datetime(2024, 5, 20, tzinfo=VN)
    units = (
        ExportUnit("213", "Thành phố Bắc Giang", "PL03", Status.ON_TIME, False, None, 0, 0, None, None, 1, at, 1, at),
        ExportUnit("216", "Huyện Tân Yên", "PL03", Status.OVERDUE, True, 10, 0, 0, None, None, None, None),
        ExportUnit("223", "Huyện Hiệp Hòa", None, Status.EXEMPT, False, None, 0, 0, None, None, None, None),
    )
    values = (
        ExportValue("213", "B01", "B01.children", "base", "total", 120.0),
        ExportValue("213", "Biểu 01", "children", "base", "male", 60.0),  # sheet name, bare code: same cell
        ExportValue("213", "B01", "B01.nope", "base", "total", 999.0),  # not on the form: left out
    )
    issues = (ExportIssue("213", 1, "warning", "Biểu 01", "E8", "B01.children", "=cmd|' /C calc'!A0"),)
    workbook = build_workbook(ExportInput(PLAN, "Kế hoạch", DEADLINE, at, units, values, issues), forms)
    assert workbook.sheet_names[:3] == ("Thông tin", "Đơn vị", "PL03 Biểu 01")
    assert not any(name.startswith("PL02") for name in workbook.sheet_names)
    sheets = read(workbook.content)
    frame = sheets["PL03 Biểu 01"].set_index("Mã chỉ tiêu")
    assert frame.loc["B01.children", "Năm 2023 · Tổng số · Tổng cộng"] == 120
    assert frame.loc["B01.children", "Năm 2023 · Nam · Tổng cộng"] == 60
    assert pd.isna(frame.loc["B01.children", "Năm 2023 · Nữ · Tổng cộng"])
    assert not (sheets["PL03 Biểu 01"] == 999).any().any()
    assert list(sheets[MISSING_SHEET]["Mã đơn vị"].astype(str)) == ["216"]
    assert sheets["Lỗi và cảnh báo"].iloc[0]["Nội dung"] == "'=cmd|' /C calc'!A0"


def test_round_trip_real_uploads_then_export(app, client, login_as, token_for):
    """Blank form -> filled -> uploaded through the API -> parsed values -> consolidated totals."""
    from forms_fixtures import consistent_values, shipped_forms
    from returns_fixtures import fill_workbook

    form = shipped_forms()["PL03"]
    login_as("staff")
    for unit in ("219", "213"):
        blank = client.get(f"/plans/{PLAN}/units/{unit}/blank-form.xlsx")
        assert blank.status_code == 200
        texts = {s.code: "- Đã triển khai đầy đủ" for s in form.narrative.sections if s.answer}
        data = fill_workbook(blank.data, form, consistent_values(form), texts)
        upload = app.test_client().post(
            f"/api/v1/plans/{PLAN}/units/{unit}/returns", headers={"Authorization": f"Bearer {token_for('unit', unit)}"},
            data={"file": (io.BytesIO(data), "bao-cao.xlsx")}, content_type="multipart/form-data")
        assert upload.status_code == 201, upload.get_data(as_text=True)[:500]
        assert upload.get_json()["complete"] is True, upload.get_json()
    sheets = read(client.get(f"/plans/{PLAN}/export.xlsx").data)
    with app.app_context():
        stored = db.session.execute(select(ReturnValue.sheet, ReturnValue.indicator, ReturnValue.period,
                                           ReturnValue.breakdown, ReturnValue.value)
                                    .where(ReturnValue.value.is_not(None))).all()
    sums: dict[tuple[str, str, str, str], float] = {}
    for sheet, indicator, period, breakdown, value in stored:
        sums[(sheet, indicator, period, breakdown)] = sums.get((sheet, indicator, period, breakdown), 0) + value
    checked = 0
    for sheet in form.sheets:
        frame = sheets[f"PL03 {sheet.name}"].set_index("Mã chỉ tiêu")
        for row, column, _ in sheet.input_cells():
            expected = sums[(sheet.code, row.indicator, column.period, column.breakdown)]
            assert frame.loc[row.indicator, header(column, "Tổng cộng")] == pytest.approx(expected)
            checked += 1
    assert checked == len(form.input_keys())
    narrative = sheets["PL03 Đề cương"].set_index("Mục")
    assert narrative.loc["I", "Huyện Lục Ngạn"] == "'- Đã triển khai đầy đủ"
