"""The consolidated workbook: totals equal the units' sums, the right version is used, text is defused."""
from __future__ import annotations

import hashlib
import io
from datetime import datetime, timedelta, timezone
from pathlib import Path

import re

import openpyxl
import pytest
import versions
from sqlalchemy import insert, select

from tracker.catalog_folder import load_forms
from tracker.compliance import Status
from tracker.export import ExportInput, ExportIssue, ExportUnit, ExportValue, neutralize
from tracker.export_writer import build_workbook
from tracker.extensions import db
from tracker.models import AuditEvent, ReturnIssue, ReturnValue, Review

VN = timezone(timedelta(hours=7))
DEADLINE = datetime(2024, 5, 10, 0, 0, tzinfo=VN)
PLAN = "bacgiang-2024"
AS_OF = "2024-05-20T00:00:00+07:00"
EVIL = '=HYPERLINK("http://evil.example/x","bấm vào")'


@pytest.fixture(scope="module")
def forms():
    return load_forms(Path(__file__).resolve().parent.parent / "report_forms")


CHILDREN = load_forms(Path(__file__).resolve().parent.parent / "report_forms")["PL03"].sheet("B01").row("children")


def fake_value(unit: str, version: int, key: tuple[str, str, str]) -> float:
    digest = hashlib.sha256(f"{unit}/{version}/{key}".encode()).digest()
    value = digest[0] * 3 + digest[1] % 7
    return value + 0.25 if key[0] == "B07" else float(value)


def add_version(app, unit_code: str, number: int, received_at: datetime, complete: bool, errors: int = 0,
                values: dict | None = None, texts: dict | None = None, issues: list | None = None) -> int:
    """Store a version row (``versions.add_version``) with these values, texts and issues; return its id."""
    version_id = versions.add_version(app, unit_code, number, received_at, complete, errors)
    with app.app_context():
        rows = [{"version_id": version_id, "sheet": sheet, "indicator": f"{sheet}.{row}", "period": period,
                 "breakdown": breakdown, "value": value, "text": None}
                for (sheet, row, period, breakdown), value in (values or {}).items()]
        rows += [{"version_id": version_id, "sheet": sheet, "indicator": indicator, "period": "", "breakdown": "",
                  "value": None, "text": text} for (sheet, indicator), text in (texts or {}).items()]
        if rows:
            db.session.execute(insert(ReturnValue), rows)
        for severity, cell, message in issues or []:
            db.session.add(ReturnIssue(version_id=version_id, severity=severity, sheet="Biểu 01", cell=cell,
                                       indicator="B01.children", message=message))
        db.session.commit()
    return version_id


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


def book(content: bytes) -> openpyxl.Workbook:
    return openpyxl.load_workbook(io.BytesIO(content))


def biểu_values(ws) -> dict[tuple[str, str, int], dict[str, object]]:
    """Return {(band, label, n): {column header: value}} of a Biểu sheet laid out with indicators as rows.

    The band is the period (and breakdown) line above a block; headers are the unit names and "Toàn tỉnh";
    n counts the lines of the block with that label before this one (a label may repeat under two groups).
    """
    rows = list(ws.iter_rows(values_only=True))
    header_at = next(i for i, r in enumerate(rows) if r[0] == "STT")
    names = [str(v) if v is not None else "" for v in rows[header_at + 1]]
    names[-1] = rows[header_at][-1]  # "Toàn tỉnh" spans both header rows
    table: dict[tuple[str, str, str], dict[str, object]] = {}
    band = ""
    for r in rows[header_at + 2:]:
        if r[0] and r[1] is None and isinstance(r[0], str) and r[0].startswith(("Năm", "Quý")):
            band = r[0]
            continue
        if r[1] is None or r[2] is None:
            continue
        n = sum(1 for key in table if key[:2] == (band, str(r[1])))
        table[(band, str(r[1]), n)] = {names[i]: r[i] for i in range(3, len(r)) if names[i]}
    return table


def line_of(table, column, sheet, row):
    """Return the line of ``row`` (of ``sheet``) in the block of ``column``."""
    lines = [r for r in sheet.data_rows if column.breakdown in r.breakdowns]
    n = sum(1 for r in lines[:lines.index(row)] if r.label == row.label)
    return table[(band(column), row.label, n)]


def units_rows(ws) -> dict[str, dict[str, object]]:
    """Return {unit name: {"period | column header": value}} of a Biểu laid out with units as rows."""
    rows = list(ws.iter_rows(values_only=True))
    header_at = next(i for i, r in enumerate(rows) if r[0] == "STT")
    periods, current = [], ""
    for value in rows[header_at]:
        current = value if value not in (None, "STT", "Đơn vị") else current
        periods.append(current)
    heads = [f"{p} | {h}" for p, h in zip(periods, rows[header_at + 1])]
    return {r[1]: {heads[i]: r[i] for i in range(2, len(r))} for r in rows[header_at + 2:] if r[1]}


def band(column) -> str:
    return column.period_label if column.breakdown_label == "Triệu đồng" else \
        f"{column.period_label} - {column.breakdown_label}"


SHORT = {"213": "TP. Bắc Giang", "219": "Lục Ngạn", "218": "Lục Nam", "215": "Yên Thế"}
INTERNAL_CODE = re.compile(r"\b(B0\d\.\w+|PL0\d|bacgiang-2024|hotline_111|[a-z]+_[a-z0-9_]+)\b")


def test_province_total_is_the_sum_over_both_forms(client, login_as, forms, returns):
    login_as("staff")
    response = client.get(f"/plans/{PLAN}/export.xlsx", query_string={"as_of": AS_OF})
    assert response.status_code == 200
    assert response.mimetype == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert "bang-tong-hop-bacgiang-2024-20240520-0000.xlsx" in response.headers["Content-Disposition"]
    wb = book(response.data)
    pl03, pl02 = forms["PL03"], forms["PL02"]
    checked = shared = 0
    for sheet in pl03.sheets:
        if sheet.code == "B07":
            continue  # units as rows: checked below
        table = biểu_values(wb[sheet.name])
        for row, column, _ in sheet.input_cells():
            key = (sheet.code, row.code, column.period, column.breakdown)
            line = line_of(table, column, sheet, row)
            units = ["213", "219"]
            try:
                pl02_row = pl02.sheet(sheet.code).row(row.code)
            except KeyError:
                pl02_row = None
            if pl02_row is not None and pl02_row.total_key == row.total_key and column.breakdown in pl02_row.breakdowns:
                units.append("218")  # Lục Nam reports the same indicator on Phụ lục 02
                shared += 1
            assert line["Toàn tỉnh"] == pytest.approx(sum(returns[u][key] for u in units)), key
            for unit in ("213", "219"):
                assert line[SHORT[unit]] == pytest.approx(returns[unit][key])
            # 215's figures were returned for correction: its cell stays empty.
            assert line[SHORT["215"]] is None
            checked += 1
    assert checked > 400 and shared > 300
    # Lục Nam's own figures stand in its column, and "x" where its form lacks the indicator.
    b06 = biểu_values(wb["Biểu 06"])
    assert "Lục Nam" not in next(iter(b06.values()))  # Biểu 06 is not on Phụ lục 02
    b04 = biểu_values(wb["Biểu 04"])
    drowning = pl03.sheet("B04").row("comm_events")
    line = line_of(b04, pl03.sheet("B04").column("base_total"), pl03.sheet("B04"), drowning)
    assert line["Lục Nam"] == "x" and line["Toàn tỉnh"] == pytest.approx(
        returns["213"][("B04", "comm_events", "base", "total")] + returns["219"][("B04", "comm_events", "base", "total")])
    # A percentage is recomputed from the totals, not summed.
    pct = line_of(b06, pl03.sheet("B06").column("base_female_pct"), pl03.sheet("B06"),
                  pl03.sheet("B06").row("party_committee"))
    total = sum(returns[u][("B06", "party_committee", "base", "total")] for u in ("213", "219"))
    female = sum(returns[u][("B06", "party_committee", "base", "female")] for u in ("213", "219"))
    assert pct["Toàn tỉnh"] == pytest.approx(female / total * 100)
    # Biểu 07 (kinh phí) has units as rows and a "Toàn tỉnh" line over both forms.
    b07 = units_rows(wb["Biểu 07"])
    head = f"Năm 2023 | {pl03.sheet('B07').row('total').label} (Triệu đồng)"
    assert b07["Toàn tỉnh"][head] == pytest.approx(sum(returns[u][("B07", "total", "base", "total")]
                                                      for u in ("213", "219", "218")))
    assert b07["Huyện Lục Nam"][head] == pytest.approx(returns["218"][("B07", "total", "base", "total")])
    # Exempt Hiệp Hòa appears on no Biểu.
    assert not any("Hiệp Hòa" in str(c.value) for ws in wb.worksheets[1:-1] for r in ws.iter_rows() for c in r)


def test_no_cell_shows_an_internal_code(client, login_as, returns):
    login_as("staff")
    wb = book(client.get(f"/plans/{PLAN}/export.xlsx", query_string={"as_of": AS_OF}).data)
    seen = 0
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for cell in row:
                if isinstance(cell.value, str):
                    seen += 1
                    assert not INTERNAL_CODE.search(cell.value), (ws.title, cell.coordinate, cell.value)
                    assert cell.value != "'-", (ws.title, cell.coordinate)
    assert seen > 500


def test_every_sheet_prints_a4_landscape_fitted_with_headers_and_page_numbers(client, login_as, returns):
    login_as("staff")
    wb = book(client.get(f"/plans/{PLAN}/export.xlsx", query_string={"as_of": AS_OF}).data)
    assert wb.sheetnames[0] == "Thông tin" and wb.sheetnames[-2:] == ["Lỗi và cảnh báo", "Số liệu bất thường"]
    assert [n for n in wb.sheetnames[1:-2]] == [f"Biểu 0{i}" for i in range(1, 8)]
    for ws in wb.worksheets:
        assert ws.page_setup.orientation == "landscape", ws.title
        assert int(ws.page_setup.paperSize) == 9, ws.title  # A4
        assert ws.sheet_properties.pageSetUpPr.fitToPage, ws.title
        assert ws.page_setup.fitToWidth in (None, 1) and ws.page_setup.fitToHeight == 0, ws.title
        assert ws.print_title_rows, ws.title
        assert "Trang &P/&N" in (ws.oddFooter.right.text or ""), ws.title
    # Vietnamese number formats, bordered cells, wrapped labels.
    b01 = wb["Biểu 01"]
    numbers = [c for r in b01.iter_rows() for c in r if isinstance(c.value, (int, float))]
    assert numbers and all(c.number_format.startswith("[$-42A]#,##0") for c in numbers)
    assert all(c.border.left.style == "thin" for c in numbers)
    labels = [c for c in b01["B"] if isinstance(c.value, str) and c.row > 6]
    assert labels and all(c.alignment.wrap_text for c in labels)


def test_first_sheet_lists_versions_used_and_missing_units(client, login_as, returns):
    login_as("admin")
    wb = book(client.get(f"/plans/{PLAN}/export.xlsx", query_string={"as_of": AS_OF}).data)
    rows = [[c for c in r] for r in wb["Thông tin"].iter_rows(values_only=True)]
    text = "\n".join(" | ".join(str(c) for c in r if c is not None) for r in rows)
    assert "SỞ LAO ĐỘNG - THƯƠNG BINH VÀ XÃ HỘI TỈNH BẮC GIANG" in text and "BẢNG TỔNG HỢP SỐ LIỆU BÁO CÁO" in text
    assert "Kế hoạch số …/KH-SLĐTBXH" in text
    assert "Số liệu tính đến 20/05/2024 00:00" in text
    assert "hết ngày 09/05/2024 (hạn: trước ngày 10/5/2024)" in text
    assert "Toàn tỉnh" in text and "tính lại từ các tổng" in text
    missing_at = next(i for i, r in enumerate(rows) if r[0] == "III. ĐƠN VỊ CHƯA CÓ BÁO CÁO ĐẦY ĐỦ")
    by_unit = {r[1]: r for r in rows[:missing_at] if r[0] and str(r[0]).isdigit() and r[1]}
    assert by_unit["Thành phố Bắc Giang"][4] == "Lần 2" and by_unit["Huyện Lục Ngạn"][4] == "Lần 1"
    assert "Lần gửi mới nhất (lần 2) chưa được tổng hợp" in by_unit["Huyện Lục Ngạn"][9]
    assert by_unit["Huyện Hiệp Hòa"][2] == "Miễn báo cáo"
    missing = {r[1]: r for r in rows[missing_at + 2:] if r[1]}
    # Lục Ngạn's v2 has errors: a draft, so its complete v1 still counts and it is not missing (issue 12).
    assert sorted(missing) == sorted(["Huyện Yên Thế", "Huyện Tân Yên", "Huyện Lạng Giang",
                                      "Huyện Sơn Động", "Huyện Yên Dũng", "Thị xã Việt Yên"])
    assert missing["Huyện Yên Thế"][7] == "Trả lại để chỉnh sửa: -Sai biểu 02"


def test_issues_sheet_speaks_in_labels(client, login_as, returns):
    login_as("admin")
    ws = book(client.get(f"/plans/{PLAN}/export.xlsx", query_string={"as_of": AS_OF}).data)["Lỗi và cảnh báo"]
    rows = [r for r in ws.iter_rows(values_only=True) if r[0] and str(r[0]).isdigit()]
    assert [r[3] for r in rows] == ["Lỗi", "Cảnh báo"]
    assert [r[2] for r in rows] == ["Lần 2", "Lần 2"]
    assert rows[0][1] == "Huyện Lục Ngạn" and rows[0][4] == "Biểu 01" and rows[0][5] == "E8"
    assert rows[0][6] == "Tổng số trẻ em (dưới 16 tuổi)"
    assert rows[0][7] == "'@Tổng số trẻ em phải bằng Nam + Nữ"


def test_formula_like_text_is_text_never_a_formula(client, login_as, returns):
    login_as("staff")
    content = client.get(f"/plans/{PLAN}/export.xlsx", query_string={"as_of": AS_OF}).data
    workbook = openpyxl.load_workbook(io.BytesIO(content))
    seen = []
    for sheet in workbook.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                assert cell.data_type != "f", (sheet.title, cell.coordinate, cell.value)
                if isinstance(cell.value, str) and cell.value.lstrip("'").startswith("@Tổng"):
                    seen.append(cell.value)
    assert seen == ["'@Tổng số trẻ em phải bằng Nam + Nữ"]


@pytest.mark.parametrize(("text", "expected"), [
    ("=1+1", "'=1+1"), ("+84 912", "'+84 912"), ("-5", "-5"), ("- Đã làm", "- Đã làm"), ("@SUM(A1)", "'@SUM(A1)"),
    ("\tx", "'\tx"), ("\rx", "'\rx"), ("Bình thường", "Bình thường"), ("", ""), (12.5, 12.5), (None, None),
])
def test_neutralize(text, expected):
    assert neutralize(text) == expected


def test_export_is_audited_and_as_of_hides_later_versions(app, client, login_as, returns):
    login_as("staff")
    early = book(client.get(f"/plans/{PLAN}/export.xlsx", query_string={"as_of": "2024-05-06T00:00"}).data)
    children = CHILDREN
    line = biểu_values(early["Biểu 01"])[("Năm 2023 - Tổng số", children.label, 0)]
    # Only 213 v1 had arrived: its figures, and no value for 219 yet.
    assert line["TP. Bắc Giang"] == pytest.approx(fake_value("213", 1, ("B01", "children", "base_total")))
    assert line["Lục Ngạn"] is None
    assert line["Toàn tỉnh"] == pytest.approx(fake_value("213", 1, ("B01", "children", "base_total")))
    with app.app_context():
        events = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "export")).all()
        assert len(events) == 1 and events[0].target == PLAN and events[0].detail["via"] == "dashboard"
        assert events[0].actor == "canbo@demo.bacgiang.vn"
    assert client.get(f"/plans/{PLAN}/export.xlsx?as_of=sai").status_code == 400


def test_api_export(app, client, token_for, returns):
    response = client.get(f"/api/v1/plans/{PLAN}/export.xlsx", query_string={"as_of": AS_OF},
                          headers={"Authorization": f"Bearer {token_for('staff')}"})
    assert response.status_code == 200
    assert "Biểu 07" in book(response.data).sheetnames
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
    assert book(out.read_bytes()).sheetnames[-2:] == ["Lỗi và cảnh báo", "Số liệu bất thường"]  # as the web gives it
    line = biểu_values(book(out.read_bytes())["Biểu 01"])[("Năm 2023 - Tổng số", CHILDREN.label, 0)]
    assert line["Toàn tỉnh"] == pytest.approx(sum(returns[u][("B01", "children", "base", "total")]
                                                  for u in ("213", "219", "218")))
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
    assert workbook.sheet_names[:2] == ("Thông tin", "Biểu 01") and workbook.sheet_names[-1] == "Lỗi và cảnh báo"
    wb = book(workbook.content)
    table = biểu_values(wb["Biểu 01"])
    assert table[("Năm 2023 - Tổng số", CHILDREN.label, 0)]["Toàn tỉnh"] == 120
    assert table[("Năm 2023 - Nam", CHILDREN.label, 0)]["Toàn tỉnh"] == 60
    assert table[("Năm 2023 - Nữ", CHILDREN.label, 0)]["Toàn tỉnh"] is None
    assert not any(c.value == 999 for r in wb["Biểu 01"].iter_rows() for c in r)
    issue_rows = [r for r in wb["Lỗi và cảnh báo"].iter_rows(values_only=True) if r[0] == "1"]
    assert issue_rows[0][7] == "'=cmd|' /C calc'!A0"


def test_layout_is_chosen_from_the_shape_of_each_biểu(forms):
    from tracker.export import choose_layout, merge_sheets

    merged = {s.code: s for s in merge_sheets([forms["PL03"], forms["PL02"]])}
    assert choose_layout(merged["B07"], 9) == "units_as_rows"  # 12 figures a unit
    assert choose_layout(merged["B01"], 9) == "indicators_as_rows"
    assert choose_layout(merged["B01"], 705) == "units_as_rows"  # too many units side by side
    # Biểu 04: Phụ lục 02's eleven lines, and Phụ lục 03's drowning-campaign line (its own key) beside them.
    keys = [line.key for line in merged["B04"].rows if not line.is_group]
    assert "B04.comm_events" in keys and "B04.comm_events_drowning" in keys and len(keys) == 12
    assert set(merged["B04"].sheets) == {"PL02", "PL03"} and set(merged["B06"].sheets) == {"PL03"}


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
    wb = book(client.get(f"/plans/{PLAN}/export.xlsx").data)
    with app.app_context():
        stored = db.session.execute(select(ReturnValue.sheet, ReturnValue.indicator, ReturnValue.period,
                                           ReturnValue.breakdown, ReturnValue.value)
                                    .where(ReturnValue.value.is_not(None))).all()
    sums: dict[tuple[str, str, str, str], float] = {}
    for sheet, indicator, period, breakdown, value in stored:
        sums[(sheet, indicator, period, breakdown)] = sums.get((sheet, indicator, period, breakdown), 0) + value
    checked = 0
    for sheet in form.sheets:
        if sheet.code == "B07":
            rows = units_rows(wb["Biểu 07"])
            for row, column, _ in sheet.input_cells():
                head = f"{column.period_label} | {row.label} ({row.unit})"
                assert rows["Toàn tỉnh"][head] == pytest.approx(
                    sums[(sheet.code, row.indicator, column.period, column.breakdown)])
                checked += 1
            continue
        table = biểu_values(wb[sheet.name])
        for row, column, _ in sheet.input_cells():
            expected = sums[(sheet.code, row.indicator, column.period, column.breakdown)]
            assert line_of(table, column, sheet, row)["Toàn tỉnh"] == pytest.approx(expected)
            checked += 1
    assert checked == len(form.input_keys())
