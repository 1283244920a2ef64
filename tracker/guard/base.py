"""What every check of the upload guard shares: the caps of one upload, what an accepted upload is, and
``Refusal`` with the one table of refusal messages (also raised by the parser, identity, layout and the
upload use case, so an officer reads every refusal in the same words).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["xlsx", "xls", "ods"]

MIB = 1024 * 1024
_CHUNK = 64 * 1024

# Excel's own grid: anything past it is not a cell any writer produces.
EXCEL_MAX_ROW = 1_048_576
EXCEL_MAX_COL = 16_384


@dataclass(frozen=True)
class Limits:
    """Caps applied to one upload. ``max_row``/``max_col`` are the form's extent plus a margin."""

    max_bytes: int = 10 * MIB
    max_uncompressed: int = 100 * MIB
    max_ratio: float = 200.0
    max_entries: int = 500
    max_sheet_bytes: int = 64 * MIB
    max_row: int = 10_000
    max_col: int = 256


@dataclass(frozen=True)
class Inspected:
    """What the guard learned about an accepted upload."""

    kind: Kind
    size: int
    sha256: str
    sheet_names: tuple[str, ...]
    filename: str
    # Every formula cell found: (sheet name, A1 address, has a cached value). The parser reads an
    # input cell holding one with a warning (or an error without a cached value).
    formulas: tuple[tuple[str, str, bool], ...] = ()


_STATUS: dict[str, int] = {
    "empty": 400,
    "truncated": 400,
    "corrupt": 400,
    "too_large": 413,
    "not_spreadsheet": 415,
    "not_ooxml": 415,
    "unsupported": 415,
    "macro": 422,
    "encrypted": 422,
    "zip_bomb": 422,
    "unsafe_name": 422,
    "xml_entity": 422,
    "extent": 422,
    "inflated_count": 422,
    "active_content": 422,
    "no_file": 400,
    "exempt": 409,
    "plan_closed": 409,
    "no_identity": 422,
    "wrong_return": 422,
    "identity_edited": 422,
    "old_form": 422,
    "layout_changed": 422,
    "parse_timeout": 422,
    "parse_memory": 422,
    "parse_failed": 422,
    "storage_failed": 503,
}

_REDO = "Hãy mở tệp bằng Excel, lưu lại dưới dạng “Sổ làm việc Excel (*.xlsx)” rồi tải lên lần nữa."

_MESSAGES: dict[str, str] = {
    "empty": "Tệp tải lên không có dữ liệu (0 byte). Hãy chọn lại tệp báo cáo rồi tải lên lần nữa.",
    "truncated": "Tệp bị hỏng hoặc chưa tải lên hết. " + _REDO,
    "corrupt": "Tệp bị hỏng: không đọc được nội dung bên trong. " + _REDO,
    "too_large": "Tệp lớn hơn {limit} MB cho phép. Hãy xoá hình ảnh, trang tính không cần thiết "
    "hoặc dùng lại biểu mẫu tải về từ hệ thống, rồi tải lên lần nữa.",
    "not_spreadsheet": "Tệp không phải bảng tính ({what}). Hãy tải lên biểu mẫu báo cáo dạng .xlsx "
    "đã điền số liệu.",
    "not_ooxml": "Tệp không phải bảng tính Excel (.xlsx) hay LibreOffice (.ods). Hãy dùng biểu mẫu "
    "tải về từ hệ thống.",
    "unsupported": "Định dạng bảng tính này ({what}) chưa được hỗ trợ. " + _REDO,
    "macro": "Tệp có chứa macro (VBA), hệ thống không nhận tệp có macro. " + _REDO,
    "encrypted": "Tệp đang được đặt mật khẩu nên không đọc được. Hãy mở tệp, gỡ bỏ mật khẩu mở tệp, "
    "lưu lại rồi tải lên lần nữa.",
    "zip_bomb": "Dữ liệu trong tệp sau khi giải nén lớn bất thường. Hãy dùng biểu mẫu tải về từ hệ "
    "thống và chỉ nhập số liệu vào các ô quy định.",
    "unsafe_name": "Tệp có thành phần bên trong mang tên không hợp lệ. " + _REDO,
    "xml_entity": "Tệp có khai báo XML không được phép (DOCTYPE/ENTITY). " + _REDO,
    "extent": "Trang tính “{sheet}” có dữ liệu tại {cell}, nằm ngoài phạm vi biểu mẫu (tối đa {max_row} dòng, "
    "đến cột {max_col}). Hãy xoá các ô thừa ngoài biểu mẫu rồi tải lên lần nữa.",
    "inflated_count": "Tệp khai báo số lượng phần tử lớn bất thường so với nội dung. " + _REDO,
    # Active content: what was found, then how to send a clean file.
    "active_content": "Tệp có {what}, hệ thống không nhận nội dung có thể tự chạy hoặc lấy dữ liệu từ nơi "
    "khác. Hãy tải biểu mẫu trống mới từ hệ thống, chỉ nhập số liệu (không dán liên kết, đối tượng hay công "
    "thức lấy dữ liệu bên ngoài) rồi tải lên lại.",
    # Not a file the upload can use.
    "no_file": "Chưa chọn tệp báo cáo để tải lên.",
    "exempt": "{unit} được miễn báo cáo theo kế hoạch này ({reason}); không cần tải lên.",
    # A plan that is not open (tracker.plans.refuse_unless_open): the web, the API and the mailbox alike.
    "plan_closed": "Kế hoạch {plan} đã đóng (chỉ để xem): không nhận báo cáo mới. Nếu cần nộp bổ sung, hãy liên hệ "
    "Sở để mở lại kế hoạch.",
    "plan_closed_withdraw": "Kế hoạch {plan} đã đóng (chỉ để xem): không rút được phiên bản báo cáo. Nếu cần thay "
    "đổi, hãy liên hệ Sở để mở lại kế hoạch.",
    # Identity (tracker.identity): which return this file is.
    "no_identity": "Tệp này không phải biểu mẫu do hệ thống phát hành (không tìm thấy thông tin nhận dạng). "
    "Hãy tải biểu mẫu trống của đơn vị mình từ hệ thống, điền số liệu vào đó rồi tải lên.",
    "wrong_return": "Tệp này là {found}, không phải {expected}. Hãy tải lên đúng biểu mẫu của đơn vị mình "
    "(tải biểu mẫu trống ở trang của đơn vị).",
    "identity_edited": "Thông tin nhận dạng ẩn trong tệp đã bị sửa nên không xác định được tệp thuộc đơn vị "
    "nào. Hãy tải biểu mẫu trống mới từ hệ thống, chép số liệu sang rồi tải lên lại.",
    "old_form": "Tệp được lập từ mẫu {form} phiên bản {found}, nay mẫu đã được cập nhật (phiên bản "
    "{version}). Hãy tải biểu mẫu mới nhất từ hệ thống, chép số liệu sang rồi tải lên lại.",
    # Layout (tracker.layout): the sheets no longer look like the form, so no value can be trusted.
    "layout_changed": "{where}: biểu mẫu ghi «{expected}», tệp ghi «{found}». Vui lòng tải biểu mẫu mới và "
    "nhập lại.",
    "layout_sheet_missing": "Tệp không có trang «{sheet}» của biểu mẫu (trang có thể đã bị đổi tên hoặc xoá; "
    "các trang của tệp: {present}). Vui lòng tải biểu mẫu mới và nhập lại.",
    # Reading and storing (tracker.returns).
    "parse_timeout": "Tệp cần quá nhiều thời gian để đọc nên hệ thống đã dừng. Hãy dùng biểu mẫu tải về từ "
    "hệ thống, chỉ nhập số liệu vào các ô quy định rồi tải lên lại.",
    "parse_memory": "Tệp cần quá nhiều bộ nhớ để đọc nên hệ thống đã dừng. Hãy dùng biểu mẫu tải về từ hệ "
    "thống, chỉ nhập số liệu vào các ô quy định rồi tải lên lại.",
    "parse_failed": "Không đọc được tệp: tệp có cấu trúc bất thường khiến trình đọc bảng tính dừng lại. "
    "Hãy mở tệp bằng Excel, lưu lại dưới dạng .xlsx rồi tải lên lần nữa.",
    "parse_failed_content": "Không đọc được nội dung tệp. Hãy mở tệp bằng Excel, lưu lại dưới dạng .xlsx "
    "rồi tải lên lần nữa.",
    "storage_failed": "Hệ thống tạm thời không ghi được dữ liệu nên báo cáo chưa được lưu. Vui lòng tải lên "
    "lại sau ít phút; nếu vẫn không được, hãy báo cho Sở LĐTBXH.",
}


class Refusal(Exception):
    """An upload the tracker will not take, from the guard, the parser or the upload use case.

    ``code`` is stable for programs, ``message`` is Vietnamese for the district officer (what is
    wrong and what to do), ``status`` is the HTTP status to answer with, ``detail`` is English for
    the log. Every message comes from ``_MESSAGES`` (the one table of refusal messages), keyed by
    ``template`` or else by ``code`` and filled with ``fmt``; its status from ``_STATUS``.
    """

    def __init__(self, code: str, message: str | None = None, status: int | None = None,
                 detail: str = "", *, template: str | None = None, **fmt: object) -> None:
        self.code = code
        self.message = message if message is not None else _MESSAGES[template or code].format(**fmt)
        self.status = status if status is not None else _STATUS.get(code, 422)
        self.detail = detail
        super().__init__(self.message)

    def __reduce__(self) -> tuple[type[Refusal], tuple[str, str, int, str]]:
        # Keeps the exception picklable across the parse worker's pipe.
        return (type(self), (self.code, self.message, self.status, self.detail))

    def __str__(self) -> str:
        return f"[{self.code}] {self.message}"
