"""The consolidated workbook (bảng tổng hợp) of a plan, as the department hands it up, written with XlsxWriter.

``build_workbook(data, forms)`` is pure: an ``export.ExportInput`` of plain frozen values and the loaded forms
in, a ``ConsolidatedWorkbook`` (the .xlsx bytes and its sheet names) out; ``export_query.collect_export_input``
gathers those values for a whole plan. What each Biểu holds (the merged lines, the figures and the "Toàn
tỉnh" totals) is decided in ``tracker.export``; this module lays it out on the page.

What goes in the workbook, every sheet set for A4 landscape, fitted to the page width, its header rows
repeated on every page and "Trang x/y" in the footer:

- «Thông tin»: the title block (the department, the plan's title and document number, "Số liệu tính đến"),
  how the figures were put together, the version of each unit that was used (lần gửi, receipt, the
  department's review) and the units without a complete return;
- one sheet per Biểu (matched across forms by sheet code): the rows of every form that has the Biểu, an
  indicator of two forms on one line when they share its ``total_key``; a "Toàn tỉnh" figure over every unit
  that reported the indicator, whichever form it reported on. Input cells total by plain sums; computed
  cells (percentages, ratios) are recomputed from the totals with the form's own formula. The layout is
  chosen per Biểu from its shape (``choose_layout``): indicators as rows and the units side by side, one
  block per period and breakdown, when the units fit across the page; units as rows otherwise;
- «Lỗi và cảnh báo»: the open issues of each unit's latest version, with sheet and indicator labels.

No internal code (indicator, form, plan or unit code) is printed: labels only. Text is written as text
(XlsxWriter's ``write_string``: never a formula); text supplied by units that starts with ``= + @`` (or a
tab or carriage return) is still prefixed with ``'`` so that a copy pasted elsewhere cannot run it.
Numbers carry Vietnamese formats (``[$-42A]#,##0``): LibreOffice prints 2.895,75 whatever its own locale,
Excel shows the separators of the reader's Windows settings (Vietnamese ones on the department's machines).
"""
from __future__ import annotations

import io
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

import xlsxwriter
from xlsxwriter.worksheet import Worksheet

from .catalog import Column, Form
from .compliance import ReviewState, Status
from .export import (NOT_APPLICABLE, ConsolidatedWorkbook, ExportInput, ExportIssue, ExportUnit, ExtraSheet, Figures,
                     MergedRow, MergedSheet, choose_layout, export_filename, merge_sheets, neutralize, short_unit_name)
from .timeutil import fmt_date, fmt_datetime
from .wording import deadline_wording

TOTAL_LABEL = "Toàn tỉnh"
INFO_SHEET = "Thông tin"
ISSUES_SHEET = "Lỗi và cảnh báo"
_SEVERITY_LABELS = {"error": "Lỗi", "warning": "Cảnh báo"}
_FONT = "Times New Roman"
# Width units of the page: A4 landscape with these margins holds about 150 of XlsxWriter's width units at 100%.
_PAGE_WIDTH = 150.0
_LABEL_WIDTH = 42.0
_UNIT_WIDTH = 9.0
_TOTAL_WIDTH = 10.5
_FOOTER = '&L&"Times New Roman"&8Bảng tổng hợp - &A&R&"Times New Roman"&9Trang &P/&N'
_INT_FORMAT = "[$-42A]#,##0"
_DEC_FORMAT = "[$-42A]#,##0.00"
_RATIO_FORMAT = "[$-42A]#,##0.0"


class _Styles:
    """The workbook's cell formats, made once each."""

    def __init__(self, book: xlsxwriter.Workbook) -> None:
        base = {"font_name": _FONT, "font_size": 10, "valign": "vcenter"}
        cell = {**base, "border": 1, "text_wrap": True}

        def add(**extra: Any) -> Any:
            return book.add_format({**base, **extra})

        self.title = add(bold=True, font_size=14, align="center", text_wrap=True)
        self.subtitle = add(bold=True, font_size=12, align="center", text_wrap=True)
        self.note = add(italic=True, font_size=10, align="center", text_wrap=True)
        self.org = add(bold=True, font_size=11, align="center", text_wrap=True)
        self.heading = add(bold=True, font_size=11)
        self.text = add(text_wrap=True, valign="top")
        self.header = book.add_format({**cell, "bold": True, "align": "center", "bg_color": "#DDEBF7"})
        self.band = book.add_format({**cell, "bold": True, "bg_color": "#F2F2F2"})
        self.group = book.add_format({**cell, "bold": True})
        self.group_center = book.add_format({**cell, "bold": True, "align": "center"})
        self.label = book.add_format(cell)
        self.center = book.add_format({**cell, "align": "center"})
        self.na = book.add_format({**cell, "align": "center", "font_color": "#7F7F7F"})
        self.numbers = {kind: book.add_format({**cell, "num_format": code, "align": "right"})
                        for kind, code in (("int", _INT_FORMAT), ("dec", _DEC_FORMAT), ("ratio", _RATIO_FORMAT))}
        self.totals = {kind: book.add_format({**cell, "num_format": code, "align": "right", "bold": True,
                                              "bg_color": "#FFF2CC"})
                       for kind, code in (("int", _INT_FORMAT), ("dec", _DEC_FORMAT), ("ratio", _RATIO_FORMAT))}
        self.total_label = book.add_format({**cell, "bold": True, "bg_color": "#FFF2CC"})
        self.error = book.add_format({**cell, "align": "center", "bg_color": "#FFC7CE"})
        self.warning = book.add_format({**cell, "align": "center", "bg_color": "#FFEB9C"})


def _page(ws: Worksheet, header_rows: tuple[int, int] | None) -> None:
    ws.set_landscape()
    ws.set_paper(9)  # A4
    ws.fit_to_pages(1, 0)  # the width of one page, as many pages tall as needed
    ws.set_margins(left=0.4, right=0.4, top=0.5, bottom=0.6)
    ws.set_footer(_FOOTER)
    ws.center_horizontally()
    if header_rows is not None:
        ws.repeat_rows(*header_rows)


def _lines(text: str, width: float) -> int:
    # Vietnamese diacritics make Times New Roman glyphs about 10% wider than the width unit.
    return sum(max(1, math.ceil(len(part) * 1.05 / max(width, 1.0))) for part in str(text).split("\n"))


def _row_height(ws: Worksheet, row: int, texts: Sequence[tuple[str, float]], line: float = 13.5) -> None:
    lines = max((_lines(text, width) for text, width in texts if text), default=1)
    if lines > 1:
        ws.set_row(row, lines * line + 2)


def _kind(line: MergedRow, column: Column) -> str:
    row = line.first
    if row.computed is not None or column.computed or row.unit == "%":
        return "ratio"
    return "dec" if row.number == "decimal" else "int"


def _put_number(ws: Worksheet, row: int, col: int, value: float | str | None, fmt: Any, na: Any) -> None:
    if value is None:
        ws.write_blank(row, col, None, fmt)
    elif isinstance(value, str):
        ws.write_string(row, col, value, na)
    else:
        ws.write_number(row, col, value, fmt)


def _title_block(ws: Worksheet, styles: _Styles, data: ExportInput, last_col: int, title: str) -> int:
    """Write the sheet's title lines; return the next free row."""
    ws.merge_range(0, 0, 0, last_col, title, styles.title)
    _row_height(ws, 0, [(title, _PAGE_WIDTH * 0.75)], 18)
    subtitle = f"{data.plan_title}. Số liệu tính đến {fmt_datetime(data.as_of)} (giờ Việt Nam)."
    ws.merge_range(1, 0, 1, last_col, subtitle, styles.note)
    _row_height(ws, 1, [(subtitle, _PAGE_WIDTH * 0.9)])
    return 3


def _write_info(book: xlsxwriter.Workbook, styles: _Styles, data: ExportInput, forms: Mapping[str, Form]) -> None:
    ws = book.add_worksheet(INFO_SHEET)
    widths = (5, 22, 11, 13, 9, 16, 17, 23, 25, 19)
    for index, width in enumerate(widths):
        ws.set_column(index, index, width)
    last = len(widths) - 1
    issuer = (data.issuer or "").upper()
    ws.merge_range(0, 0, 0, last, issuer, styles.org)
    _row_height(ws, 0, [(issuer, sum(widths))], 15)
    ws.merge_range(2, 0, 2, last, "BẢNG TỔNG HỢP SỐ LIỆU BÁO CÁO", styles.title)
    ws.merge_range(3, 0, 3, last, data.plan_title, styles.subtitle)
    _row_height(ws, 3, [(data.plan_title, sum(widths) * 0.8)], 16)
    row = 4
    if data.plan_document:
        line = f"(Theo {data.plan_document}{' của ' + data.issuer if data.issuer else ''})"
        ws.merge_range(row, 0, row, last, line, styles.note)
        _row_height(ws, row, [(line, sum(widths))])
        row += 1
    as_of = f"Số liệu tính đến {fmt_datetime(data.as_of)} (giờ Việt Nam); hạn nộp báo cáo: {deadline_wording(data.deadline)}."
    ws.merge_range(row, 0, row, last, as_of, styles.note)
    row += 2

    used = [u for u in data.units if u.form_code is not None]
    complete = [u for u in used if u.used_version is not None]
    form_names = {code: form.name for code, form in forms.items()}
    method = (
        f"Tổng hợp từ báo cáo của {len(complete)}/{len(used)} đơn vị phải báo cáo: với mỗi đơn vị, lấy lần gửi "
        "đầy đủ (không còn lỗi) mới nhất nhận được đến thời điểm trên; lần gửi bị Sở trả lại để chỉnh sửa "
        "không được tổng hợp.",
        "Cột «Toàn tỉnh» là tổng của mọi đơn vị có báo cáo chỉ tiêu đó, dù báo cáo theo phụ lục nào; chỉ tiêu "
        "tỷ lệ (%) và tỷ số được tính lại từ các tổng, không cộng các tỷ lệ.",
        f"Ô trống: đơn vị chưa có số liệu; «{NOT_APPLICABLE}»: chỉ tiêu không có trong phụ lục của đơn vị "
        "hoặc không áp dụng ở cấp của đơn vị (ví dụ chỉ tiêu cấp huyện của một xã).",
        "Phần báo cáo bằng lời (đề cương) và các ô ghi chú xem trong tệp báo cáo của từng đơn vị trên hệ thống.",
    )
    ws.merge_range(row, 0, row, last, "I. CÁCH TỔNG HỢP", styles.heading)
    row += 1
    for number, text in enumerate(method, start=1):
        ws.write_string(row, 0, f"{number}.", styles.text)
        ws.merge_range(row, 1, row, last, text, styles.text)
        _row_height(ws, row, [(text, sum(widths[1:]))])
        row += 1

    row += 1
    ws.merge_range(row, 0, row, last, "II. BÁO CÁO CỦA CÁC ĐƠN VỊ ĐƯỢC TỔNG HỢP", styles.heading)
    row += 1
    header_row = row
    for col, text in enumerate(("STT", "Đơn vị", "Phụ lục", "Tình trạng", "Lần gửi được tổng hợp", "Nhận lúc",
                                "Văn bản số, ngày", "Người ký", "Ý kiến của Sở", "Ghi chú")):
        ws.write_string(row, col, text, styles.header)
    ws.set_row(row, 30)
    row += 1
    for number, unit in enumerate(data.units, start=1):
        form_name = form_names.get(unit.form_code or "", unit.form_code or "") if unit.form_code else "Miễn báo cáo"
        note = ""
        if unit.form_code is not None and unit.used_version is None:
            note = "Chưa có lần gửi đầy đủ: không có trong số liệu tổng hợp"
        elif unit.latest_version is not None and unit.used_version is not None \
                and unit.latest_version != unit.used_version:
            note = f"Lần gửi mới nhất (lần {unit.latest_version}) chưa được tổng hợp: còn lỗi hoặc bị trả lại"
        document = ""
        if unit.report_number or unit.report_date:
            document = f"Số {unit.report_number or '…'} ngày {_iso_date_text(unit.report_date) or '…'}"
        cells = (str(number), unit.name, form_name, unit.status.label,
                 "" if unit.used_version is None else f"Lần {unit.used_version}",
                 fmt_datetime(unit.used_received_at), document, unit.signer, _review_text(unit), note)
        for col, text in enumerate(cells):
            ws.write_string(row, col, neutralize(text), styles.center if col in (0, 4) else styles.label)
        _row_height(ws, row, [(t, widths[c]) for c, t in enumerate(cells)])
        row += 1

    missing = [u for u in data.units if u.form_code is not None and u.status not in (Status.ON_TIME, Status.LATE)]
    row += 1
    ws.merge_range(row, 0, row, last, "III. ĐƠN VỊ CHƯA CÓ BÁO CÁO ĐẦY ĐỦ", styles.heading)
    row += 1
    if not missing:
        ws.merge_range(row, 0, row, last, "Không có: mọi đơn vị phải báo cáo đã gửi báo cáo đầy đủ.", styles.text)
        row += 1
    else:
        for col, text in enumerate(("STT", "Đơn vị", "Phụ lục", "Tình trạng", "Lần gửi gần nhất", "Nhận lúc",
                                    "Số lỗi", "Ý kiến của Sở")):
            ws.write_string(row, col, text, styles.header)
        ws.set_row(row, 30)
        row += 1
        for number, unit in enumerate(missing, start=1):
            late = f"{unit.status.label}" + (f" ({unit.days_late} ngày)" if unit.days_late else "")
            cells = (str(number), unit.name, form_names.get(unit.form_code or "", ""), late,
                     "" if unit.latest_version is None else f"Lần {unit.latest_version}",
                     fmt_datetime(unit.latest_received_at), "" if unit.latest_version is None else str(unit.errors),
                     _review_text(unit))
            for col, text in enumerate(cells):
                ws.write_string(row, col, neutralize(text), styles.center if col in (0, 4, 6) else styles.label)
            _row_height(ws, row, [(t, widths[c]) for c, t in enumerate(cells)])
            row += 1
    _page(ws, (header_row, header_row))


def _write_indicators_as_rows(book: xlsxwriter.Workbook, styles: _Styles, data: ExportInput, sheet: MergedSheet,
                              units: Sequence[ExportUnit], figures: Figures) -> None:
    ws = book.add_worksheet(sheet.name)
    first_value = 3
    total_col = first_value + len(units)
    ws.set_column(0, 0, 5)
    ws.set_column(1, 1, _LABEL_WIDTH)
    ws.set_column(2, 2, 8)
    ws.set_column(first_value, total_col - 1, _UNIT_WIDTH)
    ws.set_column(total_col, total_col, _TOTAL_WIDTH)
    row = _title_block(ws, styles, data, total_col, sheet.title)
    header = row
    ws.merge_range(header, 0, header + 1, 0, "STT", styles.header)
    ws.merge_range(header, 1, header + 1, 1, "Chỉ tiêu", styles.header)
    ws.merge_range(header, 2, header + 1, 2, "ĐVT", styles.header)
    if units:
        if len(units) > 1:
            ws.merge_range(header, first_value, header, total_col - 1, "Đơn vị báo cáo", styles.header)
        else:
            ws.write_string(header, first_value, "Đơn vị báo cáo", styles.header)
        for index, unit in enumerate(units):
            ws.write_string(header + 1, first_value + index, short_unit_name(unit.name), styles.header)
    ws.merge_range(header, total_col, header + 1, total_col, TOTAL_LABEL, styles.header)
    longest = max((short_unit_name(u.name) for u in units), key=len, default="")
    _row_height(ws, header + 1, [(longest, _UNIT_WIDTH)])
    row = header + 2

    periods: dict[str, list[Column]] = defaultdict(list)
    for column in sheet.columns:
        periods[column.period].append(column)
    for columns in periods.values():
        for column in columns:
            lines = [line for line in sheet.rows if line.is_group or line.has(column)]
            if not any(not line.is_group for line in lines):
                continue
            band = column.period_label if len(columns) == 1 else f"{column.period_label} - {column.breakdown_label}"
            ws.merge_range(row, 0, row, total_col, band, styles.band)
            row += 1
            for position, line in enumerate(lines):
                if line.is_group:
                    # A heading prints only above a line of its own group in this block.
                    following = lines[position + 1] if position + 1 < len(lines) else None
                    if following is None or following.is_group:
                        continue
                    ws.write_string(row, 0, line.stt, styles.group_center)
                    ws.write_string(row, 1, line.label, styles.group)
                    for col in range(2, total_col + 1):
                        ws.write_blank(row, col, None, styles.group)
                    _row_height(ws, row, [(line.label, _LABEL_WIDTH)])
                    row += 1
                    continue
                kind = _kind(line, column)
                ws.write_string(row, 0, line.stt, styles.center)
                ws.write_string(row, 1, line.label, styles.label)
                ws.write_string(row, 2, line.unit, styles.center)
                for index, unit in enumerate(units):
                    _put_number(ws, row, first_value + index, figures.unit_value(unit, line, column),
                                styles.numbers[kind], styles.na)
                _put_number(ws, row, total_col, figures.total(line, column), styles.totals[kind], styles.na)
                _row_height(ws, row, [(line.label, _LABEL_WIDTH)])
                row += 1
    ws.freeze_panes(header + 2, first_value)
    _page(ws, (header, header + 1))


def _write_units_as_rows(book: xlsxwriter.Workbook, styles: _Styles, data: ExportInput, sheet: MergedSheet,
                         units: Sequence[ExportUnit], figures: Figures) -> None:
    ws = book.add_worksheet(sheet.name)
    cells = sheet.value_columns()
    width = max(9.0, min(16.0, (_PAGE_WIDTH - 30) / max(len(cells), 1)))
    ws.set_column(0, 0, 5)
    ws.set_column(1, 1, 25)
    ws.set_column(2, 1 + len(cells), width)
    last = 1 + len(cells)
    row = _title_block(ws, styles, data, last, sheet.title)
    header = row
    ws.merge_range(header, 0, header + 1, 0, "STT", styles.header)
    ws.merge_range(header, 1, header + 1, 1, "Đơn vị", styles.header)
    col = 2
    spans: list[tuple[str, int, int]] = []
    for line, column in cells:
        label = line.label if column.breakdown_label in ("Tổng số",) or len(line.first.breakdowns) == 1 \
            else f"{line.label} - {column.breakdown_label}"
        text = f"{label} ({line.unit})" if line.unit else label
        ws.write_string(header + 1, col, text, styles.header)
        if spans and spans[-1][0] == column.period_label:
            spans[-1] = (spans[-1][0], spans[-1][1], col)
        else:
            spans.append((column.period_label, col, col))
        col += 1
    for label, start, end in spans:
        if end > start:
            ws.merge_range(header, start, header, end, label, styles.header)
        else:
            ws.write_string(header, start, label, styles.header)
    longest = max((ws_text for ws_text in (f"{l.label} ({l.unit})" for l, _ in cells)), key=len, default="")
    _row_height(ws, header + 1, [(longest, width)])
    row = header + 2
    formats = [styles.numbers[_kind(line, column)] for line, column in cells]
    for number, unit in enumerate(units, start=1):
        ws.write_string(row, 0, str(number), styles.center)
        ws.write_string(row, 1, unit.name, styles.label)
        for index, (line, column) in enumerate(cells):
            _put_number(ws, row, 2 + index, figures.unit_value(unit, line, column), formats[index], styles.na)
        row += 1
    ws.write_blank(row, 0, None, styles.total_label)
    ws.write_string(row, 1, TOTAL_LABEL, styles.total_label)
    for index, (line, column) in enumerate(cells):
        _put_number(ws, row, 2 + index, figures.total(line, column), styles.totals[_kind(line, column)], styles.na)
    ws.freeze_panes(header + 2, 2)
    _page(ws, (header, header + 1))


def _issue_labels(forms: Mapping[str, Form], form_code: str | None, issue: ExportIssue) -> tuple[str, str]:
    """Return (sheet label, indicator label) of an issue, never a code: "Biểu 01", "Tổng số trẻ em ..."."""
    form = forms.get(form_code or "")
    if form is None:
        return issue.sheet, ""
    sheet_label = issue.sheet
    for sheet in form.sheets:
        if issue.sheet in (sheet.code, sheet.name):
            sheet_label = sheet.name
    indicator = ""
    if issue.indicator:
        try:
            indicator = form.indicator(issue.indicator).label
        except KeyError:
            try:
                section = form.narrative.section(issue.indicator)
                indicator = f"Mục {section.code}. {section.heading}"
            except KeyError:
                indicator = ""
    return sheet_label, indicator


def _write_issues(book: xlsxwriter.Workbook, styles: _Styles, data: ExportInput, forms: Mapping[str, Form]) -> None:
    ws = book.add_worksheet(ISSUES_SHEET)
    widths = (5, 20, 7, 9, 10, 7, 30, 62)
    for index, width in enumerate(widths):
        ws.set_column(index, index, width)
    row = _title_block(ws, styles, data, len(widths) - 1, "LỖI VÀ CẢNH BÁO TRONG LẦN GỬI MỚI NHẤT CỦA CÁC ĐƠN VỊ")
    header = row
    for col, text in enumerate(("STT", "Đơn vị", "Lần gửi", "Mức độ", "Biểu", "Ô", "Chỉ tiêu", "Nội dung")):
        ws.write_string(row, col, text, styles.header)
    row += 1
    units = {u.code: u for u in data.units}
    if not data.issues:
        ws.merge_range(row, 0, row, len(widths) - 1, "Không có lỗi hay cảnh báo.", styles.label)
    for number, issue in enumerate(data.issues, start=1):
        unit = units.get(issue.unit_code)
        sheet_label, indicator = _issue_labels(forms, unit.form_code if unit else None, issue)
        cells = (str(number), unit.name if unit else "", f"Lần {issue.version}",
                 _SEVERITY_LABELS.get(issue.severity, issue.severity), sheet_label, issue.cell, indicator,
                 neutralize(issue.message))
        for col, text in enumerate(cells):
            fmt = styles.label
            if col == 3:
                fmt = styles.error if issue.severity == "error" else styles.warning
            elif col in (0, 2, 5):
                fmt = styles.center
            ws.write_string(row, col, text, fmt)
        _row_height(ws, row, [(t, widths[c]) for c, t in enumerate(cells)])
        row += 1
    ws.freeze_panes(header + 1, 0)
    _page(ws, (header, header))


def _write_extra(book: xlsxwriter.Workbook, styles: _Styles, data: ExportInput, sheet: ExtraSheet) -> None:
    ws = book.add_worksheet(sheet.name[:31])
    for index, width in enumerate(sheet.widths):
        ws.set_column(index, index, width)
    header = _title_block(ws, styles, data, len(sheet.widths) - 1, sheet.title)
    for col, text in enumerate(sheet.headers):
        ws.write_string(header, col, text, styles.header)
    if not sheet.rows:
        ws.merge_range(header + 1, 0, header + 1, len(sheet.widths) - 1, sheet.empty, styles.label)
    for row, cells in enumerate(sheet.rows, start=header + 1):
        for col, text in enumerate(cells):
            ws.write_string(row, col, neutralize(text), styles.label)
        _row_height(ws, row, [(t, sheet.widths[c]) for c, t in enumerate(cells)])
    ws.freeze_panes(header + 1, 0)
    _page(ws, (header, header))


def _iso_date_text(value: str) -> str:
    try:
        return fmt_date(date.fromisoformat(value)) if value else ""
    except ValueError:
        return ""


def _review_text(unit: ExportUnit) -> str:
    if unit.review is None:
        return ""
    if unit.review is ReviewState.RETURNED and unit.review_reason:
        return f"{unit.review.label}: {unit.review_reason}"
    return unit.review.label


def build_workbook(data: ExportInput, forms: Mapping[str, Form],
                   extra: Sequence[ExtraSheet] = ()) -> ConsolidatedWorkbook:
    """Return the consolidated workbook of ``data`` as .xlsx bytes; the ``extra`` sheets come last.

    Forms assigned in the plan but missing from ``forms`` get no Biểu lines (their units show blank);
    values whose sheet, indicator or column is not on the unit's form are left out.
    """
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True, "strings_to_formulas": False, "strings_to_urls": False,
                                        "strings_to_numbers": False})
    book.set_properties({"title": f"Bảng tổng hợp - {data.plan_title}", "author": data.issuer,
                         "company": data.issuer})
    styles = _Styles(book)
    _write_info(book, styles, data, forms)
    reporting = [u for u in data.units if u.form_code is not None]
    used_codes = {u.code for u in reporting if u.used_version is not None}
    values = [v for v in data.values if v.unit_code in used_codes]
    form_codes = list(dict.fromkeys(sorted(u.form_code for u in reporting if u.form_code in forms)))
    present = [forms[code] for code in sorted(form_codes, key=lambda c: forms[c].name, reverse=True)]
    figures = Figures(forms, reporting, values)
    for sheet in merge_sheets(present):
        sheet_units = [u for u in reporting if u.form_code in sheet.sheets]
        if choose_layout(sheet, len(sheet_units)) == "indicators_as_rows":
            _write_indicators_as_rows(book, styles, data, sheet, sheet_units, figures)
        else:
            _write_units_as_rows(book, styles, data, sheet, sheet_units, figures)
    _write_issues(book, styles, data, forms)
    for sheet in extra:
        _write_extra(book, styles, data, sheet)
    names = tuple(ws.get_name() for ws in book.worksheets())
    book.close()
    return ConsolidatedWorkbook(buffer.getvalue(), export_filename(data.plan_code, data.as_of), names)
