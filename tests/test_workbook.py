"""The blank form a unit downloads, read back with openpyxl and pandas/calamine, and the annotated copy."""

from __future__ import annotations

import io
import re
import zipfile
import math
import shutil
from pathlib import Path

import pandas as pd
import pytest
from openpyxl import Workbook, load_workbook
from openpyxl.workbook.workbook import Workbook as OpenpyxlWorkbook

from tracker.annotation import ISSUES_SHEET_NAME, annotate
from tracker.catalog import (
    BREAKDOWN_HEADER_ROW, COVER_SHEET_NAME, FIRST_VALUE_COL, GUIDE_SHEET_NAME, LABEL_COL, PERIOD_HEADER_ROW,
    UNIT_COL, Form, column_letter,
)
from tracker.catalog_folder import load_forms
from tracker.workbook import all_extents, blank_form_filename, build_blank, excel_formula
from tracker.identity import META_FIELDS, META_SHEET_NAME, identity_checksum, read_identity

from forms_fixtures import FORMS_DIR, consistent_values, shipped_forms
from returns_fixtures import fill_workbook, make_context, sample_texts

SECRET = "kiem-tra-2024"
LUC_NAM = make_context("218", "Huyện Lục Nam")
LUC_NGAN = make_context("219", "Huyện Lục Ngạn")


@pytest.fixture(scope="module")
def forms() -> dict[str, Form]:
    return shipped_forms()


@pytest.fixture(scope="module")
def blanks(forms: dict[str, Form]) -> dict[str, bytes]:
    """Lục Nam reports on Phụ lục 02, Lục Ngạn on Phụ lục 03."""
    return {
        "PL02": build_blank(forms["PL02"], LUC_NAM, SECRET),
        "PL03": build_blank(forms["PL03"], LUC_NGAN, SECRET),
    }


def _open(data: bytes) -> OpenpyxlWorkbook:
    return load_workbook(io.BytesIO(data))


def _input_addresses(form: Form) -> dict[str, set[str]]:
    result: dict[str, set[str]] = {}
    for sheet in form.sheets:
        result[sheet.name] = {address for _, _, address in sheet.input_cells()}
    return result


def _texts(ws: object) -> list[str]:
    return [str(c.value) for row in ws.iter_rows() for c in row if c.value is not None]  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------------------------
# Identity


@pytest.mark.parametrize("code, ctx", [("PL02", LUC_NAM), ("PL03", LUC_NGAN)])
def test_metadata_sheet_is_very_hidden_and_identifies_the_file(
    forms: dict[str, Form], blanks: dict[str, bytes], code: str, ctx: object
) -> None:
    wb = _open(blanks[code])
    ws = wb[META_SHEET_NAME]
    assert ws.sheet_state == "veryHidden"
    meta = {ws.cell(row=r, column=1).value: ws.cell(row=r, column=2).value for r in range(1, ws.max_row + 1)}
    assert tuple(meta) == META_FIELDS
    form = forms[code]
    assert meta["form_code"] == code
    assert meta["form_version"] == str(form.version)
    assert meta["plan_code"] == "bacgiang-2024"
    assert meta["unit_code"] == ctx.unit_code  # type: ignore[attr-defined]
    assert meta["unit_name"] == ctx.unit_name  # type: ignore[attr-defined]
    assert meta["issued_at"] == "20/04/2024 08:00"
    assert meta["layout"] == form.layout_fingerprint
    expected = identity_checksum(code, form.version, form.layout_fingerprint, "bacgiang-2024",
                                 ctx.unit_code, SECRET)  # type: ignore[attr-defined]
    assert meta["checksum"] == expected
    assert len(expected) == 16 and int(expected, 16) >= 0


def test_checksum_detects_an_edited_identity_or_another_secret() -> None:
    base = identity_checksum("PL03", 1, "abc", "bacgiang-2024", "219", SECRET)
    assert identity_checksum("PL03", "1", "abc", "bacgiang-2024", "219", SECRET) == base
    assert identity_checksum("PL03", 1, "abc", "bacgiang-2024", "218", SECRET) != base
    assert identity_checksum("PL02", 1, "abc", "bacgiang-2024", "219", SECRET) != base
    assert identity_checksum("PL03", 2, "abc", "bacgiang-2024", "219", SECRET) != base
    assert identity_checksum("PL03", 1, "abd", "bacgiang-2024", "219", SECRET) != base
    assert identity_checksum("PL03", 1, "abc", "bacgiang-2024", "219", "other") != base
    import numpy as np

    rows = [("form_code", "PL03"), ("form_version", "1"), ("layout", "abc"), ("plan_code", "bacgiang-2024"),
            ("unit_code", "219"), ("checksum", base)]
    assert read_identity(np.array(rows, dtype=object), SECRET).checksum_ok
    rows[4] = ("unit_code", "218")
    assert not read_identity(np.array(rows, dtype=object), SECRET).checksum_ok


def test_calamine_reads_metadata_as_text(blanks: dict[str, bytes]) -> None:
    frames = pd.read_excel(io.BytesIO(blanks["PL03"]), sheet_name=None, header=None, engine="calamine")
    meta = dict(zip(frames[META_SHEET_NAME][0], frames[META_SHEET_NAME][1]))
    # "219" typed as text must not come back as the float 219.0
    assert meta["unit_code"] == "219"
    assert meta["form_version"] == "1"


# ---------------------------------------------------------------------------------------------
# Sheets per unit and extents


def test_lục_nam_gets_pl02_sheets_and_lục_ngạn_pl03(forms: dict[str, Form], blanks: dict[str, bytes]) -> None:
    pl02, pl03 = _open(blanks["PL02"]), _open(blanks["PL03"])
    assert pl02.sheetnames == [COVER_SHEET_NAME, *forms["PL02"].excel_sheet_names(), META_SHEET_NAME]
    assert pl03.sheetnames == [COVER_SHEET_NAME, *forms["PL03"].excel_sheet_names(), META_SHEET_NAME]
    assert "Biểu 06" in pl03.sheetnames and "Biểu 06" not in pl02.sheetnames
    assert "UBND HUYỆN LỤC NAM" in _texts(pl02[COVER_SHEET_NAME])
    assert "UBND HUYỆN LỤC NGẠN" in _texts(pl03[COVER_SHEET_NAME])


@pytest.mark.parametrize("code", ["PL02", "PL03"])
def test_every_sheet_stays_inside_the_extents_the_guard_allows(
    forms: dict[str, Form], blanks: dict[str, bytes], code: str
) -> None:
    wb = _open(blanks[code])
    extents = all_extents(forms[code])
    assert set(extents) == set(wb.sheetnames)
    for ws in wb.worksheets:
        max_row, max_col = extents[ws.title]
        assert ws.max_row <= max_row, ws.title
        assert ws.max_column <= max_col, ws.title
        ranges = list(ws.merged_cells.ranges)
        for index, merged in enumerate(ranges):
            assert merged.max_row <= max_row and merged.max_col <= max_col, (ws.title, merged.coord)
            # overlapping merges make Excel "repair" the file and drop content
            for other in ranges[index + 1:]:
                assert merged.isdisjoint(other), (ws.title, merged.coord, other.coord)


# ---------------------------------------------------------------------------------------------
# Locking and validation


@pytest.mark.parametrize("code", ["PL02", "PL03"])
def test_only_input_cells_are_unlocked_under_sheet_protection(
    forms: dict[str, Form], blanks: dict[str, bytes], code: str
) -> None:
    form = forms[code]
    wb = _open(blanks[code])
    assert wb.security is not None and wb.security.lockStructure
    inputs = _input_addresses(form)
    for sheet in form.sheets:
        ws = wb[sheet.name]
        assert ws.protection.sheet, sheet.name
        # officers may widen columns and rows to read long labels
        assert ws.protection.formatColumns is False and ws.protection.formatRows is False
        # Ghi chú of each data row stays open too: warnings ask for an explanation there.
        remarks = {f"{column_letter(sheet.note_col)}{row.excel_row}" for row in sheet.data_rows}
        for row in ws.iter_rows(min_row=1, max_row=sheet.max_row, max_col=sheet.max_col):
            for cell in row:
                wanted_locked = cell.coordinate not in inputs[sheet.name] | remarks
                assert cell.protection.locked is wanted_locked, (sheet.name, cell.coordinate)
        for _, _, address in sheet.computed_cells():
            assert ws[address].protection.locked
        assert inputs[sheet.name], sheet.name
    narrative = wb[form.narrative.name]
    assert narrative.protection.sheet
    answers = {s.cell for s in form.narrative.sections if s.answer}
    for row in narrative.iter_rows(min_row=1, max_row=form.narrative.max_row, max_col=form.narrative.max_col):
        for cell in row:
            assert cell.protection.locked is (cell.coordinate not in answers), cell.coordinate
    for address in answers:
        assert narrative[address].alignment.wrap_text
    for name in (COVER_SHEET_NAME, GUIDE_SHEET_NAME, META_SHEET_NAME):
        assert wb[name].protection.sheet, name
    assert all(c.protection.locked for row in wb[GUIDE_SHEET_NAME].iter_rows() for c in row)


def _validated(ws: object) -> dict[str, set[str]]:
    result: dict[str, set[str]] = {}
    for dv in ws.data_validations.dataValidation:  # type: ignore[attr-defined]
        cells = result.setdefault(dv.type, set())
        for cell_range in dv.sqref.ranges:
            for row, col in cell_range.cells:
                cells.add(f"{_letter(col)}{row}")
    return result


def _letter(col: int) -> str:
    from openpyxl.utils import get_column_letter

    return get_column_letter(col)


@pytest.mark.parametrize("code", ["PL02", "PL03"])
def test_data_validation_covers_every_numeric_input_and_nothing_else(
    forms: dict[str, Form], blanks: dict[str, bytes], code: str
) -> None:
    form = forms[code]
    wb = _open(blanks[code])
    for sheet in form.sheets:
        ws = wb[sheet.name]
        expected: dict[str, set[str]] = {}
        for row, _, address in sheet.input_cells():
            expected.setdefault("decimal" if row.number == "decimal" else "whole", set()).add(address)
        assert _validated(ws) == expected, sheet.name
        validations = ws.data_validations.dataValidation
        # one validation per number kind, covering its cells through several ranges
        assert len(validations) == len(expected)
        for dv in validations:
            assert dv.operator == "greaterThanOrEqual" and dv.formula1 == "0"
            assert dv.showErrorMessage and dv.showInputMessage and dv.errorStyle == "stop"
            assert "không âm" in dv.prompt and "không âm" in dv.error
            assert len(dv.prompt) <= 255 and len(dv.promptTitle) <= 32 and len(dv.errorTitle) <= 32


def test_money_sheet_takes_decimals(forms: dict[str, Form], blanks: dict[str, bytes]) -> None:
    ws = _open(blanks["PL03"])["Biểu 07"]
    kinds = _validated(ws)
    assert set(kinds) == {"decimal"}
    address = forms["PL03"].sheet("B07").cell("total", "base_total")
    assert address in kinds["decimal"]
    assert ws[address].number_format == "[$-42A]#,##0.00"  # Vietnamese separators: 1.234,50


# ---------------------------------------------------------------------------------------------
# Layout


@pytest.mark.parametrize("code", ["PL02", "PL03"])
def test_computed_cells_hold_excel_formulas(forms: dict[str, Form], blanks: dict[str, bytes], code: str) -> None:
    form = forms[code]
    wb = _open(blanks[code])
    assert form.computed
    for computed in form.computed:
        sheet_name, address = form.address(computed.key)
        value = wb[sheet_name][address].value
        assert isinstance(value, str) and value.startswith("="), (sheet_name, address, value)
        assert value == excel_formula(form, computed.key)
    sheet = form.sheet("B02")
    pct = wb[sheet.name][sheet.cell("special_supported_pct", "base_total")].value
    top = sheet.cell("special_supported", "base_total")
    bottom = sheet.cell("special_total", "base_total")
    assert f"{top}/{bottom}" in pct and "*100" in pct and "IFERROR" in pct


def test_sex_ratio_at_birth_reads_biểu_01_across_sheets(forms: dict[str, Form], blanks: dict[str, bytes]) -> None:
    form = forms["PL03"]
    b06 = form.sheet("B06")
    formula = _open(blanks["PL03"])["Biểu 06"][b06.cell("srb", "base_total")].value
    b01 = form.sheet("B01")
    assert f"'Biểu 01'!{b01.cell('births', 'base_male')}/'Biểu 01'!{b01.cell('births', 'base_female')}" in formula


def test_data_sheet_headers_print_setup_and_panes(forms: dict[str, Form], blanks: dict[str, bytes]) -> None:
    form = forms["PL03"]
    sheet = form.sheet("B01")
    ws = _open(blanks["PL03"])[sheet.name]
    merged = {r.coord for r in ws.merged_cells.ranges}
    assert {"A4:A5", "B4:B5", "C4:C5", "D4:F4", "G4:I4", "J4:J5"} <= merged
    assert ws.cell(PERIOD_HEADER_ROW, FIRST_VALUE_COL).value == "Năm 2023"
    assert ws.cell(PERIOD_HEADER_ROW, FIRST_VALUE_COL + 3).value == "Quý I/2024"
    assert [ws.cell(BREAKDOWN_HEADER_ROW, c).value for c in range(4, 7)] == ["Tổng số", "Nam", "Nữ"]
    assert ws.cell(PERIOD_HEADER_ROW, sheet.note_col).value == "Ghi chú"
    children = sheet.row("children")
    assert ws.cell(children.excel_row, LABEL_COL).value == children.label
    assert ws.cell(children.excel_row, UNIT_COL).value == "Người"
    group = next(row for row in sheet.rows if row.is_group)
    assert ws.cell(group.excel_row, LABEL_COL).font.b
    assert not ws.cell(children.excel_row, LABEL_COL).font.b
    assert ws.cell(children.excel_row, LABEL_COL).alignment.wrap_text
    assert ws.freeze_panes == "D6"
    assert ws.print_title_rows == "$4:$5"
    assert ws.page_setup.orientation == "landscape"
    assert int(ws.page_setup.paperSize) == int(ws.PAPERSIZE_A4)
    assert ws.sheet_properties.pageSetUpPr.fitToPage and ws.page_setup.fitToWidth == 1
    assert ws.column_dimensions["B"].width >= 36
    # an input cell is shaded; a cell the row lacks (communes has no Nam/Nữ) is locked and grey
    shaded = ws[sheet.cell("children", "base_male")].fill.fgColor.rgb
    assert shaded.endswith("FFF2CC")
    assert ws[f"E{sheet.row('communes').excel_row}"].protection.locked


def test_plan_period_labels_override_the_form(forms: dict[str, Form]) -> None:
    ctx = make_context(periods=(("base", "Năm 2023 (01/01–31/12)"), ("current", "Quý I năm 2024")))
    ws = _open(build_blank(forms["PL03"], ctx))["Biểu 03"]
    assert ws.cell(PERIOD_HEADER_ROW, FIRST_VALUE_COL).value == "Năm 2023 (01/01–31/12)"
    assert ws.cell(PERIOD_HEADER_ROW, FIRST_VALUE_COL + 3).value == "Quý I năm 2024"


def test_cover_is_the_official_report_page_and_opens_first(forms: dict[str, Form]) -> None:
    ctx = make_context(plan_document="Kế hoạch số …/KH-SLĐTBXH ngày …/4/2024")
    wb = _open(build_blank(forms["PL03"], ctx))
    assert wb.active.title == COVER_SHEET_NAME
    ws = wb[COVER_SHEET_NAME]
    joined = "\n".join(_texts(ws))
    for expected in ("UBND HUYỆN LỤC NGẠN", "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", "Độc lập - Tự do - Hạnh phúc",
                     "Số:", "Lục Ngạn, ngày", "BÁO CÁO", "Kính gửi: Sở Lao động - Thương binh và Xã hội tỉnh Bắc Giang.",
                     "(Kèm theo Kế hoạch số …/KH-SLĐTBXH ngày …/4/2024 của Sở Lao động - Thương binh và Xã hội "
                     "tỉnh Bắc Giang)", "Nơi nhận:", "- Lưu: VT.", "(Ký tên, đóng dấu)", "Người lập biểu (họ tên)"):
        assert expected in joined, expected
    # The title is said once ("BÁO CÁO" then the subject), and no system word is printed.
    assert "Kết quả thực hiện công tác trẻ em" in joined and "Báo cáo kết quả" not in joined
    for system_word in ("PL03", "phiên bản", "bacgiang-2024", "mã ", "THỦ TRƯỞNG ĐƠN VỊ", "Ngày phát hành",
                        "hạn chót", "…/BC-UBND"):
        assert system_word not in joined, system_word
    # The form and its version: in the hidden sheet and a small footer only.
    assert ws.oddFooter.left.text == "Phụ lục 03, phiên bản mẫu 1" and ws.oddFooter.left.size == 7
    assert wb[META_SHEET_NAME].sheet_state == "veryHidden"
    # Number, date, signer title and name are unlocked inputs at the cells the form declares.
    cover = forms["PL03"].cover
    for key in ("report_number", "report_date", "signer_title", "signer_name"):
        cell = ws[cover.field(key).cell]
        assert cell.protection.locked is False, key
    assert ws.protection.sheet and ws[cover.field("report_date").cell].number_format == "dd/mm/yyyy"
    lists = [dv for dv in ws.data_validations.dataValidation if dv.type == "list"]
    assert len(lists) == 1 and str(lists[0].sqref) == cover.field("signer_title").cell
    assert lists[0].formula1 == '"TM. ỦY BAN NHÂN DÂN / CHỦ TỊCH,KT. CHỦ TỊCH / PHÓ CHỦ TỊCH"'
    assert [dv.type for dv in ws.data_validations.dataValidation if str(dv.sqref) == cover.field("report_date").cell] \
        == ["date"]
    assert wb.properties.creator == "Sở Lao động - Thương binh và Xã hội tỉnh Bắc Giang"


def test_every_biểu_prints_the_covers_date_and_signer_and_page_numbers(forms: dict[str, Form],
                                                                       blanks: dict[str, bytes]) -> None:
    wb = _open(blanks["PL03"])
    cover = forms["PL03"].cover
    for sheet in forms["PL03"].sheets:
        ws = wb[sheet.name]
        formulas = [str(c.value) for r in ws.iter_rows(min_row=sheet.last_data_row + 1) for c in r
                    if isinstance(c.value, str) and c.value.startswith("=")]
        assert any(f"$E$3" in f and "DAY(" in f for f in formulas), sheet.name
        assert any(f"$D$15" in f for f in formulas) and any(f"$D$21" in f for f in formulas), sheet.name
        assert cover.field("report_date").cell == "E3"
        assert "Số: …/BC-UBND" not in _texts(ws) and "THỦ TRƯỞNG ĐƠN VỊ" not in _texts(ws)
        assert ws.oddFooter.right.text == "Trang &P/&N", sheet.name
        assert ws.page_setup.orientation == "landscape" and ws.print_title_rows, sheet.name
        # Short sheets fit one page; a long one breaks before its last rows so the signature stays with them.
        assert ws.page_setup.fitToHeight == 1 or len(ws.row_breaks.brk) == 1, sheet.name


def test_narrative_rows_are_not_fixed_height(forms: dict[str, Form], blanks: dict[str, bytes]) -> None:
    import re

    form = forms["PL03"]
    wb = _open(blanks["PL03"])
    position = wb.sheetnames.index(form.narrative.name) + 1
    sheet_xml = zipfile.ZipFile(io.BytesIO(blanks["PL03"])).read(f"xl/worksheets/sheet{position}.xml").decode()
    rows = {int(m.group(1)): m.group(0) for m in re.finditer(r'<row r="(\d+)"[^>]*>', sheet_xml)}
    for section in form.narrative.sections:
        if section.answer:
            # Sized to the heading but never "custom": Excel grows the row to the answer typed into it.
            tag = rows[section.excel_row]
            assert "ht=" in tag and "customHeight" not in tag, (section.code, tag)


def test_guidance_sheet_lists_decree_09_elements_and_how_to_fill(forms: dict[str, Form],
                                                                 blanks: dict[str, bytes]) -> None:
    form = forms["PL03"]
    joined = "\n".join(_texts(_open(blanks["PL03"])[GUIDE_SHEET_NAME]))
    for element in ("Tên báo cáo", "Đối tượng thực hiện báo cáo", "Cơ quan nhận báo cáo",
                    "Thời gian chốt số liệu báo cáo", "Mẫu biểu số liệu báo cáo"):
        assert element in joined
    for value in (form.decree09.recipient, form.decree09.cutoff, form.decree09.instructions):
        assert value in joined
    assert "không phải là số 0" in joined and "số nguyên không âm" in joined
    assert "tự tính" in joined and "Không đổi tên" in joined
    assert "hết ngày 09/05/2024 (hạn: trước ngày 10/5/2024)" in joined and "tuyetot_sldtbxh@bacgiang.gov.vn" in joined
    assert "hạn chót" not in joined and "09/5/2024" not in joined


@pytest.mark.parametrize("code", ["PL02", "PL03"])
def test_every_date_a_blank_form_prints_is_dd_mm_yyyy(forms: dict[str, Form], blanks: dict[str, bytes],
                                                     code: str) -> None:
    """Dates read 31/03/2024, never 31/3/2024 beside 01/01/2024; the one exception is the plan's own
    phrase inside the deadline wording, "(hạn: trước ngày 10/5/2024)"."""
    workbook = _open(blanks[code])
    texts = [t for ws in workbook.worksheets if ws.sheet_state == "visible" for t in _texts(ws)]
    texts += [getattr(forms[code].decree09, key) for key in ("deadline", "cutoff", "instructions", "content")]
    short = [(m.group(0), text[:80]) for text in texts
             for m in re.finditer(r"(?<![\d/])\d{1,2}/\d{1,2}/\d{4}\b", text)
             if not re.fullmatch(r"\d{2}/\d{2}/\d{4}", m.group(0))
             and not text[:m.start()].endswith("hạn: trước ngày ")]
    assert short == []


def test_narrative_sheet_has_one_answer_cell_per_section(forms: dict[str, Form], blanks: dict[str, bytes]) -> None:
    form = forms["PL02"]
    ws = _open(blanks["PL02"])[form.narrative.name]
    for section in form.narrative.sections:
        assert ws.cell(section.excel_row, 1).value == section.code
        assert str(ws.cell(section.excel_row, 2).value).startswith(section.heading)
        assert ws.cell(section.excel_row, 3).value is None
        assert ws.cell(section.excel_row, 3).protection.locked is (not section.answer)


# ---------------------------------------------------------------------------------------------
# Round trip through the parser's reader


def test_calamine_frames_start_at_a1_even_when_the_first_rows_and_columns_are_empty() -> None:
    wb = Workbook()
    wb.active["C4"] = 7
    buffer = io.BytesIO()
    wb.save(buffer)
    frame = next(iter(pd.read_excel(io.BytesIO(buffer.getvalue()), sheet_name=None, header=None,
                                    engine="calamine").values()))
    assert frame.iat[3, 2] == 7
    assert frame.shape == (4, 3)


@pytest.mark.parametrize("code, ctx", [("PL02", LUC_NAM), ("PL03", LUC_NGAN)])
def test_filled_workbook_reads_back_at_the_catalogs_cells(
    forms: dict[str, Form], blanks: dict[str, bytes], code: str, ctx: object
) -> None:
    form = forms[code]
    values = consistent_values(form)
    texts = sample_texts(form)
    filled = fill_workbook(blanks[code], form, values, texts)
    frames = pd.read_excel(io.BytesIO(filled), sheet_name=None, header=None, engine="calamine")
    for (sheet_code, row_code, column_key), value in values.items():
        sheet = form.sheet(sheet_code)
        got = frames[sheet.name].iat[sheet.row(row_code).excel_row - 1, sheet.column(column_key).index - 1]
        assert math.isclose(float(got), float(value)), (sheet_code, row_code, column_key, got, value)
    narrative = frames[form.narrative.name]
    for section_code, text in texts.items():
        assert narrative.iat[form.narrative.section(section_code).excel_row - 1, 2] == text
    # the identity survives filling
    meta = dict(zip(frames[META_SHEET_NAME][0], frames[META_SHEET_NAME][1]))
    assert meta["unit_code"] == ctx.unit_code  # type: ignore[attr-defined]
    assert _open(filled)[META_SHEET_NAME].sheet_state == "veryHidden"


def test_fill_workbook_refuses_a_computed_cell(forms: dict[str, Form], blanks: dict[str, bytes]) -> None:
    form = forms["PL03"]
    with pytest.raises(KeyError):
        fill_workbook(blanks["PL03"], form, {form.computed[0].key: 5})


def test_a_row_added_to_the_definition_appears_with_the_rows_below_shifted(tmp_path: Path) -> None:
    shutil.copytree(FORMS_DIR, tmp_path / "forms")
    path = tmp_path / "forms" / "PL03.toml"
    text = path.read_text(encoding="utf-8")
    anchor = '{ code = "villages", stt = "2", label = "Số thôn, tổ dân phố", unit = "Thôn, TDP", kind = "stock", breakdowns = ["total"] },'
    assert anchor in text
    added = ('\n  { code = "households", stt = "2a", label = "Số hộ gia đình có trẻ em", unit = "Hộ", '
             'kind = "stock", breakdowns = ["total"] },')
    path.write_text(text.replace(anchor, anchor + added), encoding="utf-8")
    original = shipped_forms()["PL03"].sheet("B01")
    form = load_forms(tmp_path / "forms")["PL03"]
    sheet = form.sheet("B01")
    new_row = sheet.row("households")
    assert new_row.excel_row == original.row("villages").excel_row + 1
    ws = _open(build_blank(form, LUC_NGAN))["Biểu 01"]
    assert ws.cell(new_row.excel_row, LABEL_COL).value == "Số hộ gia đình có trẻ em"
    assert ws.cell(new_row.excel_row, 1).value == "2a"
    address = sheet.cell("households", "base_total")
    assert not ws[address].protection.locked
    assert address in _validated(ws)["whole"]
    for row in original.rows[original.rows.index(original.row("children")):]:
        assert ws.cell(row.excel_row + 1, LABEL_COL).value == row.label
    assert ws.max_row <= all_extents(form)["Biểu 01"][0]


# ---------------------------------------------------------------------------------------------
# Annotated copy


def test_annotate_marks_each_flagged_cell_and_lists_every_issue(forms: dict[str, Form],
                                                                blanks: dict[str, bytes]) -> None:
    form = forms["PL03"]
    filled = fill_workbook(blanks["PL03"], form, consistent_values(form))
    children = form.address(("B01", "children", "base_total"))
    minority = form.address(("B01", "minority", "current_female"))
    issues = [
        (children[0], children[1], "error", "Tổng số trẻ em khác tổng ba nhóm tuổi."),
        (children[0], children[1], "warning", "Số trẻ em thay đổi hơn 50% so với năm 2023."),
        (minority[0], minority[1], "warning", "Kiểm tra lại số trẻ em dân tộc thiểu số."),
        ("Biểu 01", "E4", "warning", "Ô tiêu đề gộp: đánh dấu ô đầu của vùng gộp."),
        ("Biểu 99", "A1", "error", "Thiếu trang tính Biểu 99."),
        ("Biểu 02", "", "error", "Biểu 02 chưa có số liệu."),
        ("Biểu 02", "không phải ô", "error", "Địa chỉ ô hỏng."),
    ]
    wb = _open(annotate(filled, issues))
    assert wb.sheetnames[0] == ISSUES_SHEET_NAME and wb.active.title == ISSUES_SHEET_NAME
    ws = wb[children[0]]
    cell = ws[children[1]]
    assert cell.fill.fgColor.rgb.endswith("FFC7CE")  # the error wins over the warning
    assert "Tổng số trẻ em khác tổng ba nhóm tuổi." in cell.comment.text
    assert "Số trẻ em thay đổi hơn 50%" in cell.comment.text
    warned = ws[minority[1]]
    assert warned.fill.fgColor.rgb.endswith("FFEB9C")
    assert "dân tộc thiểu số" in warned.comment.text
    assert ws["D4"].comment is not None and ws["D4"].fill.fgColor.rgb.endswith("FFEB9C")
    # the values and the identity survive
    assert ws[children[1]].value == consistent_values(form)[("B01", "children", "base_total")]
    assert wb[META_SHEET_NAME].sheet_state == "veryHidden"

    listing = wb[ISSUES_SHEET_NAME]
    rows = [[c.value for c in row] for row in listing.iter_rows(min_row=5, max_col=5)]
    assert len(rows) == len(issues)
    assert [r[2] for r in rows] == [i[0] for i in issues]
    assert [r[4] for r in rows] == [i[3] for i in issues]
    assert rows[0][1] == "Lỗi" and rows[1][1] == "Cảnh báo"
    assert listing.cell(5, 4).hyperlink.location == f"'Biểu 01'!{children[1]}"
    assert listing.cell(8, 4).hyperlink.location == "'Biểu 01'!D4"
    for unlinked in (9, 10, 11):
        assert listing.cell(unlinked, 4).hyperlink is None
    assert "2 cảnh báo" not in listing["A1"].value and "4 lỗi, 3 cảnh báo" in listing["A1"].value
    # only flagged cells got comments
    comments = [c.coordinate for row in ws.iter_rows() for c in row if c.comment is not None]
    assert sorted(comments) == sorted({children[1], minority[1], "D4"})
    assert all(c.comment is None for row in wb["Biểu 02"].iter_rows() for c in row)


def test_annotating_an_annotated_copy_replaces_the_old_list(forms: dict[str, Form], blanks: dict[str, bytes]) -> None:
    once = annotate(blanks["PL03"], [("Biểu 01", "D6", "error", "Một")])
    twice = _open(annotate(once, [("Biểu 01", "D7", "warning", "Hai")]))
    assert twice.sheetnames.count(ISSUES_SHEET_NAME) == 1
    assert twice[ISSUES_SHEET_NAME].cell(5, 5).value == "Hai"
    assert twice[ISSUES_SHEET_NAME].max_row == 5


# ---------------------------------------------------------------------------------------------
# File names and speed


@pytest.mark.parametrize("form_code, unit, ascii_name, utf8_name", [
    ("PL03", "Huyện Lục Ngạn", "PL03_Huyen-Luc-Ngan_bacgiang-2024.xlsx", "PL03_Huyện-Lục-Ngạn_bacgiang-2024.xlsx"),
    ("PL02", "Huyện Lục Nam", "PL02_Huyen-Luc-Nam_bacgiang-2024.xlsx", "PL02_Huyện-Lục-Nam_bacgiang-2024.xlsx"),
    ("PL03", "Thành phố Bắc Giang", "PL03_Thanh-pho-Bac-Giang_bacgiang-2024.xlsx",
     "PL03_Thành-phố-Bắc-Giang_bacgiang-2024.xlsx"),
    ("PL03", "Huyện Sơn Động", "PL03_Huyen-Son-Dong_bacgiang-2024.xlsx", "PL03_Huyện-Sơn-Động_bacgiang-2024.xlsx"),
    ("PL03", "Thị xã  Việt/Yên", "PL03_Thi-xa-Viet-Yen_bacgiang-2024.xlsx", "PL03_Thị-xã-Việt-Yên_bacgiang-2024.xlsx"),
])
def test_blank_form_filename(form_code: str, unit: str, ascii_name: str, utf8_name: str) -> None:
    got_ascii, got_utf8 = blank_form_filename(form_code, unit, "bacgiang-2024")
    assert got_ascii == ascii_name
    assert got_utf8 == utf8_name
    assert got_ascii.isascii()


def test_decomposed_unicode_names_give_the_same_file_name() -> None:
    import unicodedata

    nfd = unicodedata.normalize("NFD", "Huyện Lục Ngạn")
    assert blank_form_filename("PL03", nfd, "bacgiang-2024") == blank_form_filename("PL03", "Huyện Lục Ngạn",
                                                                                "bacgiang-2024")


def test_annotate_never_turns_a_message_into_a_formula_or_grows_the_sheet(blanks: dict[str, bytes]) -> None:
    issues = [("Biểu 01", "D6", "error", "=HYPERLINK(\"http://x\")"), ("Biểu 01", "XFD1048576", "error", "Xa.")]
    wb = _open(annotate(blanks["PL03"], issues))
    listing = wb[ISSUES_SHEET_NAME]
    assert listing.cell(5, 5).value == "=HYPERLINK(\"http://x\")" and listing.cell(5, 5).data_type == "s"
    assert listing.cell(6, 4).hyperlink is None
    extents = all_extents(shipped_forms()["PL03"])
    assert wb["Biểu 01"].max_row <= extents["Biểu 01"][0]
    assert wb["Biểu 01"].max_column <= extents["Biểu 01"][1]
