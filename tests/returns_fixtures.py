"""Fill a generated blank form the way a unit officer would, for tests that need a real return.

``fill_workbook(blank, form, values, texts)`` opens the blank workbook with openpyxl and types values
into its input cells only (and text into the narrative answer cells), keeping every other sheet,
the hidden metadata sheet included, exactly as issued. ``filled_return`` does blank + fill in one go.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

from openpyxl import load_workbook

from tracker.catalog import Form
from tracker.expressions import CellKey
from tracker.workbook import build_blank
from tracker.workbook_base import WorkbookContext

PLAN_CODE = "bacgiang-2024"
PLAN_TITLE = "Kế hoạch kiểm tra việc thực hiện công tác trẻ em và bình đẳng giới tại địa phương năm 2024"
# A unit that reports on each shipped form in the 2024 plan.
DEFAULT_UNITS = {"PL02": ("218", "Huyện Lục Nam"), "PL03": ("219", "Huyện Lục Ngạn")}
ISSUER = "Sở Lao động - Thương binh và Xã hội tỉnh Bắc Giang"


def make_context(unit_code: str = "219", unit_name: str = "Huyện Lục Ngạn", **overrides: Any) -> WorkbookContext:
    """Return the 2024 plan's workbook context for one unit; keyword arguments replace any field."""
    fields: dict[str, Any] = {
        "plan_code": PLAN_CODE,
        "plan_title": PLAN_TITLE,
        "issuer": ISSUER,
        "unit_code": unit_code,
        "unit_name": unit_name,
        "parent_name": "Tỉnh Bắc Giang",
        "deadline_wording": "hết ngày 09/05/2024 (hạn: trước ngày 10/5/2024)",
        "deadline_text": "trước ngày 10/5/2024",
        "periods": (("base", "Năm 2023"), ("current", "Quý I/2024")),
        "period_basis": "Kỳ số liệu theo năm dương lịch và quý (không theo kỳ 15–14 của Nghị định 09/2019/NĐ-CP)",
        "department_email": "tuyetot_sldtbxh@bacgiang.gov.vn",
        "recipient": ISSUER,
        "issued_at_text": "20/04/2024 08:00",
    }
    fields.update(overrides)
    return WorkbookContext(**fields)


def sample_texts(form: Form) -> dict[str, str]:
    """Return a short Vietnamese answer for every answerable narrative section of ``form``."""
    return {
        section.code: f"Nội dung báo cáo mục {section.code}: {section.heading.lower()}."
        for section in form.narrative.sections
        if section.answer
    }


def fill_workbook(blank: bytes, form: Form, values: Mapping[CellKey, Any],
                  texts: Mapping[str, str] | None = None) -> bytes:
    """Return ``blank`` with ``values`` typed into their input cells and ``texts`` into the narrative.

    ``values`` maps (sheet code, row code, column key) to whatever an officer might type (a number,
    a string, None to clear). Raises KeyError for a key that is not an input cell of ``form`` or a
    section without an answer cell: a fixture that writes elsewhere would hide a layout bug.
    """
    inputs = set(form.input_keys())
    wb = load_workbook(io.BytesIO(blank))
    for key, value in values.items():
        if key not in inputs:
            raise KeyError(f"{key} is not an input cell of {form.code}")
        sheet_name, address = form.address(key)
        wb[sheet_name][address] = value
    narrative = wb[form.narrative.name]
    for code, text in (texts or {}).items():
        narrative[form.narrative.cell(code)] = text
    buffer = io.BytesIO()
    wb.save(buffer)
    return buffer.getvalue()


def filled_return(form: Form, values: Mapping[CellKey, Any], texts: Mapping[str, str] | None = None,
                  ctx: WorkbookContext | None = None, secret: str = "") -> bytes:
    """Return a unit's return: the blank form of ``form`` for ``ctx`` (default: a unit that uses it), filled."""
    blank = build_blank(form, ctx or make_context(*DEFAULT_UNITS.get(form.code, DEFAULT_UNITS["PL03"])), secret)
    return fill_workbook(blank, form, values, texts)
