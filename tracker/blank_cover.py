"""The front of a blank form: the cover (Bìa), opened first, and the guidance sheet (Hướng dẫn).

The cover carries the administrative header of a district report, the unit, the plan, the periods, the
deadline and the signature blocks, with the unit's input cells declared by the form's ``[cover]``; the
guidance sheet the Nghị định 09/2019/NĐ-CP elements of the report regime and how to fill in and submit.
``workbook.build_blank`` puts them before the narrative and the data sheets.
"""
from __future__ import annotations

from collections.abc import Mapping

from openpyxl.utils.cell import quote_sheetname
from openpyxl.worksheet.datavalidation import DataValidation
from openpyxl.worksheet.worksheet import Worksheet

from .catalog import (
    COVER_MAX_COL, COVER_MAX_ROW, COVER_SHEET_NAME, GUIDE_MAX_COL, GUIDE_MAX_ROW, Form, cell_position,
    column_letter,
)
from .workbook_base import (
    PROMPT_MAX, PROMPT_TITLE_MAX, Styles, WorkbookContext, form_footer, merge, place_name, protect_sheet, put,
    text_height,
)


_DECREE09_LABELS = (
    ("title", "Tên báo cáo"),
    ("content", "Nội dung yêu cầu báo cáo"),
    ("reporter", "Đối tượng thực hiện báo cáo"),
    ("recipient", "Cơ quan nhận báo cáo"),
    ("method", "Phương thức gửi, nhận báo cáo"),
    ("deadline", "Thời hạn gửi báo cáo"),
    ("frequency", "Tần suất thực hiện báo cáo"),
    ("cutoff", "Thời gian chốt số liệu báo cáo"),
    ("outline", "Đề cương báo cáo"),
    ("data_forms", "Mẫu biểu số liệu báo cáo"),
    ("instructions", "Hướng dẫn quy trình thực hiện báo cáo"),
)


def _strip_report_word(title: str) -> str:
    # The cover prints "BÁO CÁO" above the title: "Báo cáo kết quả ..." would say it twice.
    if title.casefold().startswith("báo cáo "):
        rest = title[len("báo cáo "):]
        return rest[:1].upper() + rest[1:]
    return title


def _plan_subject(plan_title: str) -> str:
    """Return what the plan is about: "Kế hoạch kiểm tra việc ..." -> "kiểm tra việc ..."."""
    if plan_title.casefold().startswith("kế hoạch "):
        return plan_title[len("kế hoạch "):]
    return plan_title


def cover_date_formula(field_cell: str, place: str) -> str:
    """Return the formula that prints "Lục Ngạn, ngày 8 tháng 5 năm 2024" from the cover's date cell.

    DAY/MONTH/YEAR rather than TEXT: TEXT's format codes change with the reader's language.
    """
    ref = f"{quote_sheetname(COVER_SHEET_NAME)}!${field_cell[0]}${field_cell[1:]}"
    place_text = place.replace('"', "'")
    return (f'=IF(ISNUMBER({ref}),"{place_text}, ngày "&DAY({ref})&" tháng "&MONTH({ref})&" năm "&YEAR({ref}),'
            f'"{place_text}, ngày … tháng … năm …")')


def cover_ref(field_cell: str, fallback: str) -> str:
    ref = f"{quote_sheetname(COVER_SHEET_NAME)}!${field_cell[0]}${field_cell[1:]}"
    return f'=IF({ref}="","{fallback}",{ref})'


def write_cover(ws: Worksheet, styles: Styles, form: Form, ctx: WorkbookContext,
                 period_labels: Mapping[str, str]) -> None:
    """Write the cover as the unit's official report: header, number and date, title, the plan it
    answers, Kính gửi, Nơi nhận and the signature, with the form's cover fields as unlocked inputs."""
    widths = (14, 14, 18, 16, 16, 18)
    for index, width in enumerate(widths, start=1):
        ws.column_dimensions[column_letter(index)].width = width
    half = COVER_MAX_COL // 2
    left_width, full_width = sum(widths[:half]), sum(widths)
    place = place_name(ctx.unit_name)

    merge(ws, styles, 1, 1, half, f"UBND {ctx.unit_name.upper()}", "tk_bold_center")
    merge(ws, styles, 1, half + 1, COVER_MAX_COL, "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", "tk_bold_center")
    merge(ws, styles, 2, 1, half, "", "tk_text_center")
    merge(ws, styles, 2, half + 1, COVER_MAX_COL, "Độc lập - Tự do - Hạnh phúc", "tk_underline_center")
    ws.row_dimensions[1].height = text_height(f"UBND {ctx.unit_name.upper()}", left_width)

    merge(ws, styles, 5, 1, COVER_MAX_COL, "BÁO CÁO", "tk_title")
    title = _strip_report_word(form.decree09.title)
    merge(ws, styles, 6, 1, COVER_MAX_COL, title, "tk_subtitle")
    ws.row_dimensions[6].height = text_height(title, full_width * 0.85)
    if ctx.plan_document:
        attached = f"(Kèm theo {ctx.plan_document} của {ctx.issuer})"
        merge(ws, styles, 7, 1, COVER_MAX_COL, attached, "tk_note")
        ws.row_dimensions[7].height = text_height(attached, full_width * 0.9)
    recipient = f"Kính gửi: {ctx.recipient}."
    merge(ws, styles, 9, 1, COVER_MAX_COL, recipient, "tk_bold_center")
    ws.row_dimensions[9].height = text_height(recipient, full_width)

    periods = " và ".join(period_labels[p.key][:1].lower() + period_labels[p.key][1:] for p in form.periods)
    cited = ctx.plan_document or ctx.plan_title
    body = (f"Thực hiện {cited} của {ctx.issuer} về {_plan_subject(ctx.plan_title)}, Ủy ban nhân dân "
            f"{ctx.unit_name[:1].lower() + ctx.unit_name[1:]} báo cáo kết quả {periods} như sau: nội dung "
            f"báo cáo tại phần «{form.narrative.name}», số liệu tại các biểu kèm theo.")
    merge(ws, styles, 11, 1, COVER_MAX_COL, body, "tk_text")
    ws.row_dimensions[11].height = text_height(body, full_width * 0.95)

    # Nơi nhận (left) and the signature (right), from row 15.
    merge(ws, styles, 15, 1, half, "Nơi nhận:", "tk_recipients_head")
    for offset, line in enumerate(form.cover.recipients, start=1):
        merge(ws, styles, 15 + offset, 1, half, f"- {line}", "tk_recipients")
    merge(ws, styles, 16, half + 1, COVER_MAX_COL, "(Ký tên, đóng dấu)", "tk_italic_center")

    for field in form.cover.fields:
        if field.label_cell:
            row, col = cell_position(field.label_cell)
            label = field.label if field.key != "report_date" else f"{place}, {field.label}"
            style = "tk_cover_label_right" if row <= 3 else "tk_cell"
            last = col if row <= 3 else max(col, field.col - 1)
            merge(ws, styles, row, col, last, label, style)
        # In the header line a field keeps to its half; below it a field runs to the right edge.
        last_col = (half if field.col <= half else COVER_MAX_COL) if field.row <= 3 else COVER_MAX_COL
        style = {"date": "tk_cover_date", "choice": "tk_cover_signer"}.get(field.kind, "tk_cover_input")
        if field.key == "signer_name":
            style = "tk_cover_signer"
        merge(ws, styles, field.row, field.col, last_col, "", style)
    _cover_validations(ws, form)

    ws.page_setup.orientation = "portrait"
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 1
    ws.print_area = f"A1:{column_letter(COVER_MAX_COL)}{COVER_MAX_ROW}"
    ws.page_setup.blackAndWhite = True
    form_footer(ws, form, page_numbers=False)
    protect_sheet(ws)


def _cover_validations(ws: Worksheet, form: Form) -> None:
    for field in form.cover.fields:
        if field.kind == "choice":
            dv = DataValidation(type="list", formula1='"' + ",".join(form.cover.signer_titles) + '"',
                                allow_blank=True)
            dv.promptTitle = "Chọn chức vụ người ký"
            dv.prompt = "Chọn trong danh sách: " + "; ".join(form.cover.signer_titles)
            dv.errorTitle = "Chức vụ không có trong danh sách"
            dv.error = "Chọn một chức vụ trong danh sách: " + "; ".join(form.cover.signer_titles)
        elif field.kind == "date":
            dv = DataValidation(type="date", operator="greaterThan", formula1="36526", allow_blank=True)
            dv.promptTitle = "Nhập ngày văn bản"
            dv.prompt = "Nhập ngày dạng ngày/tháng/năm, ví dụ 08/05/2024."
            dv.errorTitle = "Ngày không hợp lệ"
            dv.error = "Nhập ngày dạng ngày/tháng/năm, ví dụ 08/05/2024."
        else:
            continue
        assert len(dv.promptTitle) <= PROMPT_TITLE_MAX and len(dv.prompt) <= PROMPT_MAX
        dv.showInputMessage = True
        dv.showErrorMessage = True
        dv.add(field.cell)
        ws.add_data_validation(dv)


def write_guide(ws: Worksheet, styles: Styles, form: Form, ctx: WorkbookContext,
                 period_labels: Mapping[str, str]) -> None:
    widths = (6, 30, 50, 40)
    for index, width in enumerate(widths[:GUIDE_MAX_COL], start=1):
        ws.column_dimensions[column_letter(index)].width = width
    text_width = sum(widths[1:])
    detail_width = sum(widths[2:])
    last = column_letter(GUIDE_MAX_COL)

    merge(ws, styles, 1, 1, GUIDE_MAX_COL, "HƯỚNG DẪN LẬP VÀ GỬI BÁO CÁO", "tk_title")
    merge(ws, styles, 2, 1, GUIDE_MAX_COL, form.title, "tk_subtitle")
    ws.row_dimensions[2].height = text_height(form.title, sum(widths) * 0.9)
    unit_line = f"Đơn vị: {ctx.unit_name}, {ctx.parent_name}. Kế hoạch: {ctx.plan_title}."
    merge(ws, styles, 3, 1, GUIDE_MAX_COL, unit_line, "tk_note")
    ws.row_dimensions[3].height = text_height(unit_line, sum(widths) * 0.9)

    row = 5
    merge(ws, styles, row, 1, GUIDE_MAX_COL, "I. CÁC YẾU TỐ CỦA CHẾ ĐỘ BÁO CÁO (Nghị định số 09/2019/NĐ-CP)",
           "tk_bold")
    row += 1
    put(ws, styles, row, 1, "STT", "tk_header")
    put(ws, styles, row, 2, "Yếu tố", "tk_header")
    merge(ws, styles, row, 3, GUIDE_MAX_COL, "Nội dung", "tk_header")
    row += 1
    for number, (key, label) in enumerate(_DECREE09_LABELS, start=1):
        value = getattr(form.decree09, key)
        if key == "deadline":
            value = f"{ctx.deadline_wording}, giờ Việt Nam."  # the plan's deadline, in the one wording
        elif key == "recipient" and ctx.recipient and ctx.recipient.casefold() not in value.casefold():
            value = f"{ctx.recipient}."  # a plan issued by another department receives its own reports
        put(ws, styles, row, 1, number, "tk_cell_center")
        put(ws, styles, row, 2, label, "tk_group")
        merge(ws, styles, row, 3, GUIDE_MAX_COL, value, "tk_cell")
        ws.row_dimensions[row].height = text_height(value, detail_width)
        row += 1

    periods = "; ".join(period_labels[p.key] for p in form.periods)
    sections: tuple[tuple[str, tuple[str, ...]], ...] = (
        ("II. THỜI HẠN VÀ KỲ SỐ LIỆU", (
            f"Thời hạn gửi báo cáo: {ctx.deadline_wording}, giờ Việt Nam. "
            "Báo cáo gửi sau thời điểm này được ghi nhận là nộp muộn.",
            f"Kỳ số liệu: {periods}. {ctx.period_basis}.",
            "Chỉ tiêu thời điểm ghi số tại ngày cuối kỳ; chỉ tiêu phát sinh ghi số phát sinh trong kỳ "
            "(số quý không cộng dồn với số năm).",
        )),
        ("III. CÁCH ĐIỀN BIỂU", (
            "Chỉ nhập vào các ô có nền màu vàng nhạt; các ô khác đã được khóa.",
            "Số người, số vụ, số cuộc... là số nguyên không âm (0, 1, 2...); kinh phí tính bằng triệu đồng "
            "và được có phần thập phân.",
            "Ô để trống không phải là số 0: chỉ tiêu không phát sinh phải ghi 0.",
            "Các ô tỷ lệ (%) và tỷ số có nền màu xanh nhạt tự tính bằng công thức, không cần nhập.",
            "Không đổi tên, không di chuyển, không xóa trang tính; không thêm, xóa dòng hoặc cột; "
            "không sao chép dữ liệu từ tệp khác bằng cách dán đè định dạng.",
            "Trang «Đề cương» ghi nội dung báo cáo bằng lời: mỗi mục một ô, xuống dòng trong ô bằng Alt+Enter.",
            "Trang «Bìa» là trang đầu của văn bản báo cáo: ghi số và ngày văn bản, chọn chức vụ và ghi họ "
            "tên người ký, họ tên và điện thoại của người lập biểu; ngày và người ký được in lại dưới mỗi biểu.",
            "Được nới rộng cột, dòng để dễ đọc; không cần gỡ bảo vệ trang tính.",
        )),
        ("IV. CÁCH GỬI BÁO CÁO", (
            "Tải tệp Excel này (đã điền, giữ nguyên tên các trang tính) lên hệ thống theo dõi báo cáo bằng "
            "tài khoản của đơn vị; hệ thống kiểm tra ngay và trả lại danh sách lỗi, cảnh báo nếu có.",
            f"Đồng thời gửi bản mềm qua thư điện tử {ctx.department_email} và gửi văn bản có chữ ký, "
            f"đóng dấu về {ctx.recipient}.",
            "Mỗi đơn vị chỉ dùng biểu mẫu phát hành cho đơn vị mình; không dùng tệp của đơn vị khác.",
            "Có thể tải lên lại nhiều lần; hệ thống lưu mọi lần gửi và dùng lần gửi sau cùng.",
        )),
    )
    for heading, items in sections:
        row += 1
        merge(ws, styles, row, 1, GUIDE_MAX_COL, heading, "tk_bold")
        row += 1
        for number, item in enumerate(items, start=1):
            put(ws, styles, row, 1, f"{number}.", "tk_text_center")
            merge(ws, styles, row, 2, GUIDE_MAX_COL, item, "tk_text")
            ws.row_dimensions[row].height = text_height(item, text_width)
            row += 1
    if row - 1 > GUIDE_MAX_ROW:  # pragma: no cover - a guard for whoever lengthens the text above
        raise AssertionError(f"guidance sheet grew to row {row - 1}, beyond GUIDE_MAX_ROW")

    ws.page_setup.orientation = "portrait"
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    ws.print_area = f"A1:{last}{row - 1}"
    form_footer(ws, form)
    protect_sheet(ws)
