"""A return's identity, in one place: the very hidden ``_tracker`` sheet every blank form carries, and the
one check of an uploaded file's identity against what the upload was expected to be.

The sheet is a key/value list (``META_FIELDS``): form, form version, layout fingerprint, plan, unit, the
unit's name, when it was issued and an HMAC checksum over the fields that decide how the file is read
(form, version, layout, plan, unit), so a hand-edited identity is detected. ``check_identity`` is
called by the parser (form, version and layout, before any value is read) and by the upload use case
(plan and unit of the assignment); it returns the refusal, or None when the file is what was expected.
Refusal messages come from the one table in ``tracker.guard``.
"""
from __future__ import annotations

import hashlib
import hmac
import math
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from openpyxl.worksheet.worksheet import Worksheet

from .guard import Refusal

META_SHEET_NAME = "_tracker"
META_FIELDS = ("form_code", "form_version", "layout", "plan_code", "unit_code", "unit_name", "issued_at",
               "checksum")
META_MAX_ROW = len(META_FIELDS)
META_MAX_COL = 2


@dataclass(frozen=True)
class Identity:
    """What the hidden identity sheet says the file is; ``checksum_ok`` is False when it was edited."""

    form_code: str
    form_version: int
    layout: str
    plan_code: str
    unit_code: str
    unit_name: str
    checksum_ok: bool


@dataclass(frozen=True)
class Expected:
    """What an upload must be. Fields left None are not checked (the parser knows no assignment).

    ``form_names`` maps form codes to the names officials use ("Phụ lục 03") for the messages.
    """

    form_code: str
    form_version: int | None = None
    layout: str | None = None
    plan_code: str | None = None
    unit_code: str | None = None
    unit_name: str | None = None
    form_names: Mapping[str, str] = field(default_factory=dict)


def identity_checksum(form_code: str, form_version: int | str, layout: str, plan_code: str, unit_code: str,
                      secret: str = "") -> str:
    """Return the first 16 hex digits of HMAC-SHA256(secret, form|version|layout|plan|unit)."""
    message = "|".join((form_code, str(form_version), layout, plan_code, unit_code)).encode("utf-8")
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()[:16]


def identity_values(form_code: str, form_version: int, layout: str, plan_code: str, unit_code: str,
                    unit_name: str, issued_at_text: str, secret: str = "") -> dict[str, str]:
    """Return the identity sheet's {field: text} for one unit's blank form, checksum included."""
    return {"form_code": form_code, "form_version": str(form_version), "layout": layout, "plan_code": plan_code,
            "unit_code": unit_code, "unit_name": unit_name, "issued_at": issued_at_text,
            "checksum": identity_checksum(form_code, form_version, layout, plan_code, unit_code, secret)}


def write_identity_sheet(ws: Worksheet, values: Mapping[str, str], style_cell: Callable[[Any], None],
                         protect: Callable[[Worksheet], None]) -> None:
    """Write ``values`` (``identity_values``) into ``ws`` as text, protect it and make it very hidden.

    ``style_cell`` styles each written cell and ``protect`` locks the sheet (both the workbook's own).
    """
    for row, key in enumerate(META_FIELDS, start=1):
        for col, text in ((1, key), (2, values[key])):
            cell = ws.cell(row=row, column=col)
            style_cell(cell)
            # Text cells: "213" must come back as "213", not the float 213.0.
            cell.value = text
            cell.data_type = "s"
    ws.column_dimensions["A"].width = 14
    ws.column_dimensions["B"].width = 40
    protect(ws)
    ws.sheet_state = "veryHidden"


def _text(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return unicodedata.normalize("NFC", str(value)).strip()


def read_identity(grid: Any, secret: str = "") -> Identity:
    """Return the identity in the identity sheet's cells (a 2-D array, or None when the sheet is absent).

    Raises Refusal("no_identity") when there is no identity sheet to read.
    """
    if grid is None or len(grid.shape) != 2 or grid.shape[1] < 2:
        raise Refusal("no_identity")
    meta = {_text(k): _text(v) for k, v in zip(grid[:, 0], grid[:, 1])}
    try:
        version = int(float(meta.get("form_version", "")))
    except ValueError:
        version = -1
    expected = identity_checksum(meta.get("form_code", ""), version, meta.get("layout", ""),
                                 meta.get("plan_code", ""), meta.get("unit_code", ""), secret)
    return Identity(meta.get("form_code", ""), version, meta.get("layout", ""), meta.get("plan_code", ""),
                    meta.get("unit_code", ""), meta.get("unit_name", ""),
                    hmac.compare_digest(expected, meta.get("checksum", "")))


def check_identity(identity: Identity, expected: Expected) -> Refusal | None:
    """Return the refusal of a file whose identity is not ``expected``; None when it is.

    In order: another form, plan or unit (``wrong_return``, naming both); an edited identity
    (``identity_edited``); another version of the form (``old_form``); a layout fingerprint other than
    the form's (``layout_changed``: a blank issued for another layout of this version).
    """
    names = expected.form_names
    wanted = (expected.form_code, expected.plan_code, expected.unit_code)
    found = (identity.form_code, identity.plan_code, identity.unit_code)
    if any(w is not None and w != f for w, f in zip(wanted, found)):
        where = "" if expected.unit_name is None else f" của {expected.unit_name} (mã {expected.unit_code})"
        plan = "" if expected.plan_code is None else f", kế hoạch {expected.plan_code}"
        return Refusal("wrong_return", found=(
            f"{names.get(identity.form_code, identity.form_code)} của {identity.unit_name or 'đơn vị khác'} "
            f"(mã {identity.unit_code}), kế hoạch {identity.plan_code}"),
            expected=f"{names.get(expected.form_code, expected.form_code)}{where}{plan}")
    if not identity.checksum_ok:
        return Refusal("identity_edited")
    if expected.form_version is not None and identity.form_version != expected.form_version:
        return Refusal("old_form", form=expected.form_code, found=identity.form_version,
                       version=expected.form_version)
    if expected.layout is not None and identity.layout != expected.layout:
        return Refusal("layout_changed", where="Thông tin nhận dạng của tệp",
                       expected=f"bố cục {expected.layout}", found=f"bố cục {identity.layout or 'không rõ'}")
    return None
