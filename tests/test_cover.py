"""The cover as the official report page: its number, date and signer are read back, stored with the
version, shown to staff, given by the status API and printed in the bảng tổng hợp."""
from __future__ import annotations

import io
from datetime import date

import openpyxl
import pytest
from forms_fixtures import consistent_values, shipped_forms
from returns_fixtures import fill_workbook, filled_return
from sqlalchemy import select

from tracker.catalog import COVER_SHEET_NAME
from tracker.extensions import db
from tracker.models import ReturnVersion
from tracker.parsing import parse_return

PLAN = "bacgiang-2024"
COVER = {"report_number": "125/BC-UBND", "report_date": date(2024, 5, 8),
         "signer_title": "KT. CHỦ TỊCH / PHÓ CHỦ TỊCH", "signer_name": "Nguyễn Văn An"}


def with_cover(data: bytes, cover: dict, form) -> bytes:
    wb = openpyxl.load_workbook(io.BytesIO(data))
    for key, value in cover.items():
        wb[COVER_SHEET_NAME][form.cover.field(key).cell] = value
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def test_cover_round_trips_from_a_filled_blank_to_the_status_and_the_export(app, client, login_as, token_for):
    form = shipped_forms()["PL03"]
    login_as("staff")
    blank = client.get(f"/plans/{PLAN}/units/219/blank-form.xlsx").data
    texts = {s.code: "Đã triển khai." for s in form.narrative.sections if s.answer}
    data = with_cover(fill_workbook(blank, form, consistent_values(form), texts), COVER, form)
    upload = app.test_client().post(f"/api/v1/plans/{PLAN}/units/219/returns",
                                    headers={"Authorization": f"Bearer {token_for('unit', '219')}"},
                                    data={"file": (io.BytesIO(data), "bao-cao.xlsx")}, content_type="multipart/form-data")
    assert upload.status_code == 201 and upload.get_json()["complete"] is True, upload.get_json()
    with app.app_context():
        version = db.session.scalar(select(ReturnVersion))
        assert version.cover["report_number"] == "125/BC-UBND" and version.cover["report_date"] == "2024-05-08"
    status = client.get(f"/api/v1/plans/{PLAN}/status", headers={"Authorization": f"Bearer {token_for('staff')}"})
    unit = {u["code"]: u for u in status.get_json()["units"]}["219"]
    assert unit["cover"] == {"report_number": "125/BC-UBND", "report_date": "2024-05-08",
                             "signer_title": "KT. CHỦ TỊCH / PHÓ CHỦ TỊCH", "signer_name": "Nguyễn Văn An"}
    page = client.get(f"/plans/{PLAN}/units/219").get_data(as_text=True)
    assert "Văn bản số 125/BC-UBND ngày 08/05/2024; người ký: KT. CHỦ TỊCH / PHÓ CHỦ TỊCH Nguyễn Văn An" in page
    export = openpyxl.load_workbook(io.BytesIO(client.get(f"/plans/{PLAN}/export.xlsx").data))
    row = next(r for r in export["Thông tin"].iter_rows(values_only=True) if r[1] == "Huyện Lục Ngạn")
    assert row[6] == "Số 125/BC-UBND ngày 08/05/2024"
    assert row[7] == "KT. CHỦ TỊCH / PHÓ CHỦ TỊCH Nguyễn Văn An"


def test_cover_problems_are_warnings_at_their_cells():
    form = shipped_forms()["PL03"]
    values = consistent_values(form)
    data = with_cover(filled_return(form, values), {"report_date": "mùng 8 tháng 5", "signer_title": "GIÁM ĐỐC"},
                      form)
    parsed = parse_return(data, form)
    cover = [i for i in parsed.issues if i.sheet == COVER_SHEET_NAME]
    assert all(i.severity == "warning" for i in cover)
    by_cell = {i.cell: i.message for i in cover}
    assert "không phải ngày" in by_cell[form.cover.field("report_date").cell]
    assert "không có trong danh sách" in by_cell[form.cover.field("signer_title").cell]
    assert "chưa ghi «số văn bản»" in by_cell[form.cover.field("report_number").cell]
    assert dict(parsed.cover) == {"signer_title": "GIÁM ĐỐC"}


def test_a_rearranged_cover_is_not_trusted():
    form = shipped_forms()["PL03"]
    data = filled_return(form, consistent_values(form))
    wb = openpyxl.load_workbook(io.BytesIO(data))
    ws = wb[COVER_SHEET_NAME]
    ws.protection.sheet = False
    ws[form.cover.field("report_number").label_cell] = "Ghi chú"
    ws[form.cover.field("report_number").cell] = "999/XX"
    out = io.BytesIO()
    wb.save(out)
    parsed = parse_return(out.getvalue(), form)
    assert "report_number" not in dict(parsed.cover)
    assert any("bố cục" in i.message for i in parsed.issues if i.sheet == COVER_SHEET_NAME)


@pytest.mark.parametrize("typed", ["08/05/2024", "8/5/2024", 45420])
def test_a_date_typed_as_text_or_a_serial_is_read(typed):
    form = shipped_forms()["PL02"]
    data = with_cover(filled_return(form, consistent_values(form)), {"report_date": typed}, form)
    assert dict(parse_return(data, form).cover)["report_date"] == "2024-05-08"
