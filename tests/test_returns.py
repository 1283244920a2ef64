"""Issue 4: returns uploaded through the HTTP interface, parsed, checked and kept as versions."""
from __future__ import annotations

import hashlib
import io
from typing import Any

import openpyxl
import pandas as pd
import pytest
from sqlalchemy import func, select

import badfiles
from forms_fixtures import consistent_values, shipped_forms
from returns_fixtures import fill_workbook
from tracker.extensions import db
from tracker.identity import META_SHEET_NAME
from tracker.models import AuditEvent, ReturnValue, ReturnVersion

PLAN = "bacgiang-2024"
FORMS = shipped_forms()


def narrative_texts(form) -> dict[str, str]:
    return {s.code: f"Nội dung mục {s.code}: đã thực hiện đầy đủ." for s in form.narrative.sections if s.answer}


@pytest.fixture
def blank(client, login_as):
    def _blank(unit: str) -> bytes:
        login_as("staff")
        response = client.get(f"/plans/{PLAN}/units/{unit}/blank-form.xlsx")
        assert response.status_code == 200, response.get_data(as_text=True)[:300]
        return response.data

    return _blank


@pytest.fixture
def make_return(blank):
    """Fill unit's blank form with a valid full return, with ``changes`` applied (None = blank)."""

    def _make(unit: str = "219", changes: dict | None = None, texts: dict | None = None) -> bytes:
        form = FORMS["PL02" if unit == "218" else "PL03"]
        values: dict[Any, Any] = dict(consistent_values(form))
        values.update(changes or {})
        all_texts = narrative_texts(form)
        all_texts.update(texts or {})
        return fill_workbook(blank(unit), form, values, all_texts)

    return _make


def post(client, unit: str, data: bytes, name: str = "bao-cao.xlsx", token: str | None = None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.post(f"/api/v1/plans/{PLAN}/units/{unit}/returns", headers=headers,
                       data={"file": (io.BytesIO(data), name)}, content_type="multipart/form-data")


def version_count(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(ReturnVersion))


def test_full_return_is_complete(app, client, make_return, token_for):
    data = make_return("219")
    response = post(client, "219", data, token=token_for("unit", "219"))
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["complete"] is True and body["version"] == 1
    assert body["sha256"] == hashlib.sha256(data).hexdigest()
    assert body["status"] == "late" and body["late"] is True  # received in 2026, long after 10/5/2024
    assert [i for i in body["issues"] if i["severity"] == "error"] == []
    assert body["received_at"].endswith("+00:00")
    with app.app_context():
        version = db.session.get(ReturnVersion, body["id"])
        assert version.file.content == data and version.size == len(data)
        stored = db.session.scalar(select(ReturnValue.value).where(
            ReturnValue.version_id == version.id, ReturnValue.indicator == "B01.children_0_6",
            ReturnValue.period == "base", ReturnValue.breakdown == "male"))
        assert stored == consistent_values(FORMS["PL03"])[("B01", "children_0_6", "base_male")]


def test_lucnam_returns_pl02(client, make_return, token_for):
    response = post(client, "218", make_return("218"), token=token_for("unit", "218"))
    assert response.status_code == 201 and response.get_json()["complete"] is True


def test_blank_cells_make_it_incomplete_and_are_named(client, make_return, token_for):
    form = FORMS["PL03"]
    sheet = form.sheet("B01")
    data = make_return("219", {("B01", "communes", "base_total"): None, ("B01", "villages", "current_total"): None})
    body = post(client, "219", data, token=token_for("unit", "219")).get_json()
    assert body["complete"] is False and body["status"] == "incomplete"
    blanks = {(i["sheet"], i["cell"]) for i in body["issues"] if "còn trống" in i["message"]}
    assert blanks == {(sheet.name, sheet.cell("communes", "base_total")), (sheet.name, sheet.cell("villages", "current_total"))}


def test_text_in_a_numeric_cell_is_an_error_at_that_cell(client, make_return, token_for):
    sheet = FORMS["PL03"].sheet("B02")
    data = make_return("219", {("B02", "g_a", "base_male"): "hai"})
    issues = post(client, "219", data, token=token_for("unit", "219")).get_json()["issues"]
    at_cell = [i for i in issues if i["cell"] == sheet.cell("g_a", "base_male") and i["sheet"] == sheet.name]
    assert at_cell and at_cell[0]["severity"] == "error" and "«hai»" in at_cell[0]["message"]


@pytest.mark.parametrize("change, rule_cell", [
    # equality (column-wise): total != male + female
    ({("B01", "children_0_6", "base_total"): 9999}, ("B01", "children_0_6", "base_total")),
    # inequality across sheets: child-friendly communes <= communes of Biểu 01
    ({("B04", "child_friendly_communes", "base_total"): 999}, ("B04", "child_friendly_communes", "base_total")),
    # sum over rows: the de-duplicated total is at most the sum of the groups
    ({("B02", "special_total", "base_male"): 900, ("B02", "special_total", "base_total"): 910},
     ("B02", "special_total", "base_male")),
])
def test_each_kind_of_rule_reports_an_error(client, make_return, token_for, change, rule_cell):
    sheet = FORMS["PL03"].sheet(rule_cell[0])
    body = post(client, "219", make_return("219", change), token=token_for("unit", "219")).get_json()
    assert body["complete"] is False
    errors = [i for i in body["issues"] if i["severity"] == "error" and i["sheet"] == sheet.name]
    assert errors, body["issues"]


def test_warnings_do_not_block(client, make_return, token_for):
    values = consistent_values(FORMS["PL03"])
    # A stock value that more than doubles between the periods is a warning only.
    change = {("B01", "villages", "current_total"): values[("B01", "villages", "base_total")] * 2}
    body = post(client, "219", make_return("219", change), token=token_for("unit", "219")).get_json()
    assert body["complete"] is True
    assert any(i["severity"] == "warning" for i in body["issues"])


def test_a_file_for_another_unit_is_refused(app, client, make_return, token_for):
    response = post(client, "219", make_return("220"), token=token_for("unit", "219"))
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["code"] == "wrong_return"
    assert "Huyện Sơn Động" in error["message"] and "Huyện Lục Ngạn" in error["message"]
    assert version_count(app) == 0
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "upload_refused")) == 1


def with_identity(data: bytes, drop: bool = False, **fields: str) -> bytes:
    """Return ``data`` with fields of its hidden identity sheet rewritten (or the sheet dropped), as a hand edit."""
    wb = openpyxl.load_workbook(io.BytesIO(data))
    if drop:
        del wb[META_SHEET_NAME]
    else:
        for key, value in wb[META_SHEET_NAME].iter_rows(min_col=1, max_col=2):
            if key.value in fields:
                value.value = fields[key.value]
    buffer = io.BytesIO()
    wb.save(buffer)
    return buffer.getvalue()


def _older_version(app) -> dict:
    from tracker.identity import identity_checksum

    form = FORMS["PL03"]
    old = form.version - 1
    return {"form_version": str(old), "checksum": identity_checksum(form.code, old, form.layout_fingerprint, PLAN,
                                                                     "219", app.config["SECRET_KEY"])}


@pytest.mark.parametrize("edit, code, words", [
    (lambda app: {"drop": True}, "no_identity", "không tìm thấy thông tin nhận dạng"),
    # The version changed by hand, the checksum left as issued.
    (lambda app: {"form_version": str(FORMS["PL03"].version + 1)}, "identity_edited", "đã bị sửa"),
    (_older_version, "old_form", f"phiên bản {FORMS['PL03'].version - 1}, nay mẫu đã được cập nhật"),
], ids=["no_identity_sheet", "edited_identity", "older_form_version"])
def test_a_file_whose_identity_is_not_its_blanks_is_refused(app, client, make_return, token_for, edit, code,
                                                             words):
    response = post(client, "219", with_identity(make_return("219"), **edit(app)), token=token_for("unit", "219"))
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["code"] == code and words in error["message"], error
    assert version_count(app) == 0


def test_an_annotated_copy_is_corrected_and_uploaded_again_by_its_own_unit_only(app, client, make_return,
                                                                              login_as, token_for):
    form = FORMS["PL03"]
    key = ("B01", "communes", "base_total")
    first = post(client, "219", make_return("219", {key: None}), token=token_for("unit", "219"))
    assert first.status_code == 201 and first.get_json()["complete"] is False
    login_as("unit", "219")
    copy = client.get(f"/plans/{PLAN}/units/219/versions/1/annotated.xlsx").data
    corrected = fill_workbook(copy, form, {key: consistent_values(form)[key]})
    # Another unit's officer cannot pass it off as theirs: the identity sheet is the one issued to 219.
    other = post(client, "220", corrected, token=token_for("unit", "220"))
    assert other.status_code == 422 and other.get_json()["error"]["code"] == "wrong_return"
    again = post(client, "219", corrected, token=token_for("unit", "219"))
    assert again.status_code == 201, again.get_json()
    assert again.get_json()["version"] == 2 and again.get_json()["complete"] is True


def test_identical_reupload_makes_no_version_and_correction_makes_v2(app, client, make_return, token_for):
    token = token_for("unit", "219")
    bad = make_return("219", {("B01", "communes", "base_total"): None})
    assert post(client, "219", bad, token=token).status_code == 201
    again = post(client, "219", bad, token=token)
    assert again.status_code == 200 and again.get_json()["version"] == 1 and "giống hệt" in again.get_json()["message"]
    assert version_count(app) == 1
    fixed = post(client, "219", make_return("219"), token=token)
    assert fixed.status_code == 201 and fixed.get_json()["version"] == 2 and fixed.get_json()["complete"] is True
    with app.app_context():
        first = db.session.scalar(select(ReturnVersion).where(ReturnVersion.version == 1))
        assert first.file.content == bad and first.complete is False


BAD_FILES = [
    ("pdf", lambda good: badfiles.pdf_bytes(), 415, "not_spreadsheet"),
    ("html", lambda good: badfiles.html_bytes(), 415, "not_spreadsheet"),
    ("empty", lambda good: b"", 400, "empty"),
    ("truncated", lambda good: good[: len(good) // 2], 400, "truncated"),
    ("xlsm renamed", lambda good: badfiles.xlsm_bytes(), 422, "macro"),
    ("encrypted", lambda good: badfiles.encrypted_xlsx(), 422, "encrypted"),
    ("far cell", lambda good: badfiles.far_cell_xlsx(), 422, "extent"),
    ("zip bomb", lambda good: badfiles.zip_bomb(), 422, "zip_bomb"),
]


@pytest.mark.parametrize("name, build, status, code", BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_bad_files_are_refused_and_store_nothing(app, client, make_return, token_for, name, build, status, code):
    response = post(client, "219", build(make_return("219")), token=token_for("unit", "219"))
    assert response.status_code == status, response.get_json()
    assert response.get_json()["error"]["code"] == code
    assert response.get_json()["error"]["message"]
    assert version_count(app) == 0


def test_staff_upload_on_behalf_with_note(app, client, make_return, login_as):
    data = make_return("219")
    login_as("staff")
    response = client.post(f"/plans/{PLAN}/units/219/returns", data={
        "file": (io.BytesIO(data), "nhan-qua-email.xlsx"), "note": "Nhận qua email ngày 08/5/2024"},
        content_type="multipart/form-data")
    assert response.status_code == 303
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Đầy đủ" in page
    with app.app_context():
        version = db.session.scalar(select(ReturnVersion))
        assert version.note == "Nhận qua email ngày 08/5/2024" and version.uploaded_by.email == "canbo@demo.bacgiang.vn"


def test_result_page_and_annotated_copy(client, make_return, login_as):
    sheet = FORMS["PL03"].sheet("B01")
    data = make_return("219", {("B01", "communes", "base_total"): None, ("B01", "villages", "base_total"): "abc"})
    login_as("unit", "219")
    response = client.post(f"/plans/{PLAN}/units/219/returns", data={"file": (io.BytesIO(data), "bc.xlsx")},
                           content_type="multipart/form-data")
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert f"Trang tính «{sheet.name}»" in page and sheet.cell("communes", "base_total") in page
    annotated = client.get(f"/plans/{PLAN}/units/219/versions/1/annotated.xlsx")
    assert annotated.status_code == 200
    assert "attachment" in annotated.headers["Content-Disposition"]
    book = openpyxl.load_workbook(io.BytesIO(annotated.data))
    for cell in (sheet.cell("communes", "base_total"), sheet.cell("villages", "base_total")):
        assert book[sheet.name][cell].comment is not None, cell


def test_blank_form_download_names_and_exempt_unit(client, login_as, token_for):
    login_as("unit", "219")
    response = client.get(f"/plans/{PLAN}/units/219/blank-form.xlsx")
    disposition = response.headers["Content-Disposition"]
    assert 'filename="PL03_Huyen-Luc-Ngan_bacgiang-2024.xlsx"' in disposition and "filename*=UTF-8''" in disposition
    token = token_for("staff")
    exempt = client.get(f"/api/v1/plans/{PLAN}/units/223/template", headers={"Authorization": f"Bearer {token}"})
    assert exempt.status_code == 404 and "miễn báo cáo" in exempt.get_json()["error"]["message"]
    unknown = client.get(f"/api/v1/plans/{PLAN}/units/999/template", headers={"Authorization": f"Bearer {token}"})
    assert unknown.status_code == 404


def test_api_blank_form_route_and_its_template_alias_answer_the_same(client, token_for):
    headers = {"Authorization": f"Bearer {token_for('staff')}"}
    new = client.get(f"/api/v1/plans/{PLAN}/units/219/blank-form.xlsx", headers=headers)
    old = client.get(f"/api/v1/plans/{PLAN}/units/219/template", headers=headers)
    assert new.status_code == old.status_code == 200
    assert new.headers["Content-Disposition"] == old.headers["Content-Disposition"]
    assert 'filename="PL03_Huyen-Luc-Ngan_bacgiang-2024.xlsx"' in new.headers["Content-Disposition"]
    assert openpyxl.load_workbook(io.BytesIO(new.data)).sheetnames == openpyxl.load_workbook(io.BytesIO(old.data)).sheetnames
    for path in ("blank-form.xlsx", "template"):
        exempt = client.get(f"/api/v1/plans/{PLAN}/units/223/{path}", headers=headers)
        assert exempt.status_code == 404 and "miễn báo cáo" in exempt.get_json()["error"]["message"]


def sheets_of(data: bytes) -> dict[str, pd.DataFrame]:
    return pd.read_excel(io.BytesIO(data), sheet_name=None, header=None, engine="calamine")


def to_ods(xlsx: bytes) -> bytes:
    out = io.BytesIO()
    with pd.ExcelWriter(out, engine="odf") as writer:
        for name, frame in sheets_of(xlsx).items():
            frame.to_excel(writer, sheet_name=name, header=False, index=False)
    return out.getvalue()


def to_xls(xlsx: bytes) -> bytes:
    import xlwt

    book = xlwt.Workbook(encoding="utf-8")
    for name, frame in sheets_of(xlsx).items():
        sheet = book.add_sheet(name)
        for r, row in enumerate(frame.itertuples(index=False)):
            for c, value in enumerate(row):
                if value is None or (isinstance(value, float) and value != value):
                    continue
                sheet.write(r, c, value)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def stored_values(app, version_id: int) -> dict:
    with app.app_context():
        rows = db.session.execute(select(ReturnValue.indicator, ReturnValue.period, ReturnValue.breakdown,
                                         ReturnValue.value, ReturnValue.text)
                                  .where(ReturnValue.version_id == version_id)).all()
    return {(i, p, b): (v, t) for i, p, b, v, t in rows}


def test_ods_and_xls_parse_to_the_same_values(app, client, make_return, token_for):
    xlsx = make_return("219")
    token = token_for("unit", "219")
    first = post(client, "219", xlsx, token=token).get_json()
    ods = post(client, "219", to_ods(xlsx), "bao-cao.ods", token=token)
    xls = post(client, "219", to_xls(xlsx), "bao-cao.xls", token=token)
    assert ods.status_code == 201, ods.get_json()
    assert xls.status_code == 201, xls.get_json()
    reference = stored_values(app, first["id"])
    assert len(reference) > 400
    assert stored_values(app, ods.get_json()["id"]) == reference
    assert stored_values(app, xls.get_json()["id"]) == reference


def test_receipt_email_carries_the_sha256(app, client, make_return, token_for, smtp_server):
    smtp_server.configure(app)
    data = make_return("219")
    body = post(client, "219", data, token=token_for("unit", "219")).get_json()
    receipts = [m for m in smtp_server.messages if "ldtbxh219@demo.bacgiang.vn" in m.rcpt_tos]
    assert len(receipts) == 1
    assert hashlib.sha256(data).hexdigest() == body["sha256"]
    assert body["sha256"] in receipts[0].text()
    assert f"/plans/{PLAN}/units/219/versions/1" in receipts[0].text()


def test_staff_download_every_blank_form_as_one_zip(client, login_as):
    import zipfile

    login_as("staff")
    response = client.get(f"/plans/{PLAN}/blank-forms.zip")
    assert response.status_code == 200 and "attachment" in response.headers["Content-Disposition"]
    names = sorted(zipfile.ZipFile(io.BytesIO(response.data)).namelist())
    assert len(names) == 9
    assert "PL02_Huyen-Luc-Nam_bacgiang-2024.xlsx" in names
    assert sum(name.startswith("PL03_") for name in names) == 8
    assert not any("Hiep-Hoa" in name for name in names)
    login_as("unit", "219")
    assert client.get(f"/plans/{PLAN}/blank-forms.zip").status_code == 403
