"""Standard-library checks of an upload's bytes before any spreadsheet parser sees them.

calamine (Rust) cannot be defended from inside the process: a 5 KB workbook with one cell at
XFD1048576, or a ``<sst uniqueCount="4000000000">``, makes it ask for tens of gigabytes and abort
the interpreter. openpyxl expands merged ranges cell by cell. So everything a parser would trust is
checked here first, streaming, with hard caps, and nothing is ever decompressed whole:

- what the bytes are (zip, OLE2 or neither), whatever the file is called;
- the zip directory: entry count, member names, declared sizes and ratios, encryption;
- the package kind (xlsx / ods), macros, and the content types;
- every XML part parsed with expat under a byte cap, refusing DOCTYPE/ENTITY declarations and
  counts the part cannot hold; worksheets additionally have their real row/column extent measured
  (explicit ``r`` references, implicit positions, ``<dimension>``, merged and hyperlink ranges);
  ODS tables have their repeated rows/columns expanded arithmetically.

The parse that follows still runs in a memory-limited child process (``tracker.isolation``).
"""

from __future__ import annotations

import functools
import hashlib
import io
import posixpath
import re
import struct
import unicodedata
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal
from xml.parsers import expat

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


# ---------------------------------------------------------------- public API


def inspect(data: bytes, filename: str, limits: Limits = Limits()) -> Inspected:
    """Return what ``data`` is if it is a spreadsheet we agree to parse.

    Raises ``Refusal`` with a specific code otherwise (see ``_STATUS``). A genuine ``.xls`` (OLE2
    with a ``Workbook``/``Book`` stream) is accepted with kind ``"xls"``; its BIFF records are not
    inspected, so it must still be parsed in the isolated worker.
    """
    size = len(data)
    if size == 0:
        raise Refusal("empty")
    if size > limits.max_bytes:
        raise Refusal("too_large", limit=_mb(limits.max_bytes), detail=f"{size} bytes")
    head = data[:8]
    formulas: list[tuple[str, str, bool]] = []
    if head.startswith(b"PK"):
        kind, sheets = _inspect_zip(data, limits, formulas)
    elif head == _OLE_MAGIC:
        kind, sheets = _inspect_ole(data), ()
    else:
        raise Refusal("not_spreadsheet", what=_sniff(data), detail="magic " + head.hex())
    return Inspected(
        kind=kind,
        size=size,
        sha256=hashlib.sha256(data).hexdigest(),
        sheet_names=sheets,
        filename=safe_filename(filename),
        formulas=tuple(formulas),
    )


_DROP_CHARS = {0x200E, 0x200F, 0x061C, *range(0x202A, 0x202F), *range(0x2066, 0x206A)}
_WINDOWS_RESERVED = re.compile(r"^(con|prn|aux|nul|com[0-9]|lpt[0-9])$", re.IGNORECASE)
_DEFAULT_STEM = "tep_tai_len"


def safe_filename(name: str, max_len: int = 200) -> str:
    """Return ``name`` made safe to store and show: never empty, at most ``max_len`` characters.

    Drops any directory part (``/`` or ``\\``), control and format characters (NUL, bidi marks
    U+200E/F, U+202A–E, U+2066–9, zero-width), replaces characters Windows forbids, normalises to
    NFC (Vietnamese typed on macOS arrives decomposed) and keeps the extension when shortening.
    """
    name = unicodedata.normalize("NFC", name)
    name = re.split(r"[/\\]", name)[-1]
    name = "".join(
        ch for ch in name
        if ord(ch) not in _DROP_CHARS and unicodedata.category(ch) not in ("Cc", "Cf", "Cs")
    )
    name = re.sub(r'[<>:"|?*]', "_", name)
    name = re.sub(r"\s+", " ", name).strip(" ")
    stem, dot, ext = name.rpartition(".")
    if not dot or not re.fullmatch(r"[0-9A-Za-z]{1,10}", ext):
        stem, ext = name, ""
    stem = stem.strip(" .")
    if not stem or _WINDOWS_RESERVED.match(stem):
        stem = (_DEFAULT_STEM + "_" + stem) if stem else _DEFAULT_STEM
    suffix = "." + ext if ext else ""
    stem = stem[: max(1, max_len - len(suffix))].rstrip(" .") or _DEFAULT_STEM
    return (stem + suffix)[:max_len]


# ---------------------------------------------------------------- helpers


def _mb(n: int) -> str:
    return f"{n / MIB:g}"


def _sniff(data: bytes) -> str:
    """Name what a non-spreadsheet upload looks like, for the officer's message."""
    head = data[:512].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    signatures: list[tuple[bytes, str]] = [
        (b"%pdf", "tệp PDF"),
        (b"\x89png", "ảnh PNG"),
        (b"\xff\xd8\xff", "ảnh JPEG"),
        (b"gif8", "ảnh GIF"),
        (b"rar!", "tệp nén RAR"),
        (b"7z\xbc\xaf", "tệp nén 7z"),
        (b"\x1f\x8b", "tệp nén gzip"),
        (b"{\\rtf", "văn bản RTF"),
    ]
    for magic, label in signatures:
        if head.startswith(magic):
            return label
    if head.startswith((b"<!doctype html", b"<html")) or b"<table" in head:
        return "trang HTML"
    if head.startswith(b"<?xml") or head.startswith(b"<"):
        return "tệp XML"
    try:
        data[:4096].decode("utf-8")
    except UnicodeDecodeError:
        return "định dạng không xác định"
    return "văn bản thuần"


def _col_number(letters: str) -> int:
    n = 0
    for ch in letters.upper():
        n = n * 26 + (ord(ch) - 64)
    return n


def _col_letters(n: int) -> str:
    out = ""
    while n > 0:
        n, rem = divmod(n - 1, 26)
        out = chr(65 + rem) + out
    return out


_REF = re.compile(r"\$?([A-Za-z]{0,10})\$?([0-9]{0,10})")


def _split_ref(ref: str) -> tuple[int, int]:
    """Return (row, column) of an A1 reference; 0 for a part that is absent (``A:A``, ``3:3``)."""
    m = _REF.fullmatch(ref.strip())
    if m is None or not (m.group(1) or m.group(2)):
        raise Refusal("corrupt", detail=f"bad cell reference {ref[:40]!r}")
    return (int(m.group(2)) if m.group(2) else 0, _col_number(m.group(1)) if m.group(1) else 0)


def _where(row: int, col: int) -> str:
    """Name a position for the officer: a cell, or a whole row or column."""
    if row and col:
        return f"ô {_col_letters(min(col, 10**7))}{row}"
    if row:
        return f"dòng {row}"
    return f"cột {_col_letters(min(col, 10**7))}"


def _local(name: str) -> str:
    return name[name.rfind(":") + 1 :]


# ---------------------------------------------------------------- OLE2


_OLE_MAGIC = bytes.fromhex("D0CF11E0A1B11AE1")


def _ole_name_pattern(name: str) -> re.Pattern[bytes]:
    # Directory entry names are UTF-16LE and compared case-insensitively by the format.
    parts = [re.escape(ch.encode("utf-16-le")) for ch in name]
    return re.compile(b"".join(parts) + b"\x00\x00", re.IGNORECASE)


_OLE_NAMES = {
    n: _ole_name_pattern(n)
    for n in ("EncryptionInfo", "EncryptedPackage", "_VBA_PROJECT_CUR", "_VBA_PROJECT",
              "Workbook", "Book", "ObjectPool")
}


def _ole_has_prefix(data: bytes, prefix: str) -> bool:
    """True if a directory entry's name starts with ``prefix`` (embedded objects are "MBD0001A2B3")."""
    pattern = re.escape(prefix.encode("utf-16-le"))
    for m in re.finditer(pattern, data[512:]):
        at = m.start() + 512
        if at % 128 == 0:
            return True
    return False


def _ole_has(data: bytes, name: str) -> bool:
    """True if a directory entry called ``name`` exists (entries sit on 128-byte boundaries)."""
    want_len = (len(name) + 1) * 2
    for m in _OLE_NAMES[name].finditer(data, 512):
        at = m.start()
        if at % 128 == 0 and struct.unpack_from("<H", data, at + 64)[0] == want_len:
            return True
    return False


def _inspect_ole(data: bytes) -> Kind:
    if len(data) < 1024:
        raise Refusal("truncated", detail="OLE2 shorter than header + one sector")
    byte_order, sector_shift = struct.unpack_from("<HH", data, 0x1C)
    if byte_order != 0xFFFE or sector_shift not in (9, 12):
        raise Refusal("corrupt", detail="bad OLE2 header")
    if _ole_has(data, "EncryptionInfo") or _ole_has(data, "EncryptedPackage"):
        raise Refusal("encrypted", detail="OLE2 EncryptionInfo/EncryptedPackage")
    if _ole_has(data, "_VBA_PROJECT_CUR") or _ole_has(data, "_VBA_PROJECT"):
        raise Refusal("macro", detail="OLE2 VBA project")
    if _ole_has(data, "ObjectPool") or _ole_has_prefix(data, "MBD"):
        raise Refusal("active_content", what="đối tượng nhúng (OLE) trong tệp .xls",
                      detail="OLE2 ObjectPool/MBD storage")
    if _ole_has(data, "Workbook") or _ole_has(data, "Book"):
        return "xls"
    raise Refusal("not_spreadsheet", what="tệp Office cũ không phải bảng tính",
                  detail="OLE2 without Workbook stream")


# ---------------------------------------------------------------- zip packages


_SPREADSHEET_MAINS = (
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.template.main+xml",
)
_SHEET_TYPES = ("worksheet+xml", "chartsheet+xml", "dialogsheet+xml", "macrosheet+xml")
_SHEET_RELS = ("/worksheet", "/chartsheet", "/dialogsheet", "/xlMacrosheet", "/xlIntlMacrosheet")
_ODS_MIMETYPES = (
    b"application/vnd.oasis.opendocument.spreadsheet",
    b"application/vnd.oasis.opendocument.spreadsheet-template",
)
_WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:")


def _check_name(info: zipfile.ZipInfo) -> None:
    raw = info.orig_filename
    parts = raw.replace("\\", "/").split("/")
    if (
        "\0" in raw
        or raw.startswith(("/", "\\"))
        or _WINDOWS_DRIVE.match(raw)
        or ".." in parts
        or any(unicodedata.category(ch) == "Cc" for ch in raw)
    ):
        raise Refusal("unsafe_name", detail=f"member {raw[:80]!r}")


def _inspect_zip(data: bytes, limits: Limits,
                 formulas: list[tuple[str, str, bool]]) -> tuple[Kind, tuple[str, ...]]:
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = zf.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError, OSError,
            struct.error, NotImplementedError) as exc:
        raise Refusal("truncated", detail=f"zip directory: {exc}") from None
    with zf:
        if len(infos) > limits.max_entries:
            raise Refusal("zip_bomb", detail=f"{len(infos)} entries")
        seen: set[str] = set()
        declared = 0
        for info in infos:
            _check_name(info)
            key = info.filename.lower()
            if key in seen:
                raise Refusal("unsafe_name", detail=f"duplicate member {info.filename!r}")
            seen.add(key)
            if info.flag_bits & 0x1:
                raise Refusal("encrypted", detail=f"zip-encrypted member {info.filename!r}")
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                raise Refusal("unsupported", what=f"nén kiểu {info.compress_type}",
                              detail=f"compression {info.compress_type}")
            if info.file_size > limits.max_sheet_bytes:
                raise Refusal("zip_bomb", detail=f"{info.filename} declares {info.file_size}")
            if (info.file_size > MIB
                    and info.file_size > limits.max_ratio * max(info.compress_size, 1)):
                raise Refusal("zip_bomb", detail=f"{info.filename} ratio")
            declared += info.file_size
        if declared > limits.max_uncompressed or declared > limits.max_ratio * len(data):
            raise Refusal("zip_bomb", detail=f"declares {declared} bytes")
        names = {info.filename for info in infos}
        if any(posixpath.basename(n).lower() == "vbaproject.bin" for n in seen):
            raise Refusal("macro", detail="vbaProject.bin member")
        if "mimetype" in names:
            return _Package(zf, infos, limits, declared, formulas).inspect_ods()
        if "[Content_Types].xml" in names:
            return _Package(zf, infos, limits, declared, formulas).inspect_xlsx()
        raise Refusal("not_ooxml", detail="no [Content_Types].xml nor mimetype")


Handler = Callable[[str, dict[str, str]], None]


class _Package:
    """One pass over an OOXML or ODS package's members, each streamed once under caps."""

    def __init__(self, zf: zipfile.ZipFile, infos: list[zipfile.ZipInfo], limits: Limits,
                 declared: int, formulas: list[tuple[str, str, bool]] | None = None) -> None:
        self.formulas = formulas if formulas is not None else []
        self.zf = zf
        self.infos = infos
        self.limits = limits
        self.total = 0
        self.max_count = max(10_000, declared // 8)

    # ---------------------------------------------------------------- streaming

    def _parse_xml(self, info: zipfile.ZipInfo, start: Handler | None = None,
                   end: Callable[[str], None] | None = None) -> None:
        """Stream a structural XML part through expat; refuse DTDs, absurd counts, bad XML."""
        parser = expat.ParserCreate(encoding="UTF-8")

        def refuse_dtd(*_: object) -> None:
            raise Refusal("xml_entity", detail=f"DOCTYPE/ENTITY in {info.filename}")

        parser.StartDoctypeDeclHandler = refuse_dtd
        parser.EntityDeclHandler = refuse_dtd
        parser.UnparsedEntityDeclHandler = refuse_dtd
        parser.NotationDeclHandler = refuse_dtd
        parser.ExternalEntityRefHandler = refuse_dtd
        if start is not None:
            parser.StartElementHandler = start
        if end is not None:
            parser.EndElementHandler = end
        parser.buffer_text = True
        first = True
        try:
            for chunk in _chunks(self, info):
                if first:
                    _check_prolog(info, chunk)
                    first = False
                parser.Parse(chunk, False)
                if b"ount" in chunk:
                    self._check_counts(info, chunk)
            parser.Parse(b"", True)
        except expat.ExpatError as exc:
            raise Refusal("corrupt", detail=f"{info.filename}: {exc}") from None

    def _scan_part(self, info: zipfile.ZipInfo, sheet: _FastSheetScan | None = None) -> None:
        """Stream a member through its caps and CRC check, scanning its bytes (no parser).

        Python-level expat handlers would cost a call per element (20 ms for a 30 KB return), so
        worksheets and the other bulky parts are checked with byte searches over whole tags.
        """
        is_xml = info.filename.endswith((".xml", ".rels", ".vml"))
        carry = b""
        first = True
        for chunk in _chunks(self, info):
            if first and is_xml:
                _check_prolog(info, chunk)
            first = False
            # Cut after the last '>' so every tag lies whole in one piece; a worksheet after the last
            # "</c>" when there is one, so every cell (its formula and cached value) does too.
            buf = carry + chunk
            cut = (buf.rfind(b"</c>") + 4 if sheet is not None and b"</c>" in buf else 0) or buf.rfind(b">") + 1
            self._check_piece(info, buf[:cut], sheet, is_xml)
            carry = buf[cut:]
            # Text with no '>' for a megabyte is no worksheet anyone wrote; stop carrying it.
            if len(carry) > MIB:
                self._check_piece(info, carry, sheet, is_xml)
                carry = b""
        self._check_piece(info, carry, sheet, is_xml)

    def _check_piece(self, info: zipfile.ZipInfo, piece: bytes, sheet: _FastSheetScan | None,
                     is_xml: bool) -> None:
        if b"<!" in piece:
            low = piece.lower()
            if b"<!doctype" in low or b"<!entity" in low:
                raise Refusal("xml_entity", detail=f"DOCTYPE/ENTITY in {info.filename}")
        if is_xml and b"ount" in piece:
            self._check_counts(info, piece)
        if info.filename.endswith(".rels") and b"Type" in piece:
            _check_relationships(info, piece)
        if sheet is not None:
            sheet.feed(piece)
            if b"<oleObject" in piece or b"<control " in piece or b":oleObject" in piece:
                raise Refusal("active_content", what=f"đối tượng nhúng (OLE/ActiveX) trên trang «{sheet.checker.sheet}»",
                              detail=f"{info.filename} oleObject/control")
            if b"f>" in piece or b"<f " in piece or b":f " in piece:
                self.formulas.extend(_sheet_formulas(piece, sheet.checker.sheet))

    def _check_counts(self, info: zipfile.ZipInfo, piece: bytes) -> None:
        # A count attribute is a promise of that many items that a reader may allocate up front
        # (calamine reserves sst uniqueCount and aborts on 4e9); no package can hold more items
        # than it has bytes of XML.
        for value in _COUNT_VALUE.findall(piece):
            value = value.strip()
            if not value.isdigit() or int(value) > self.max_count:
                raise Refusal("inflated_count", detail=f"{info.filename} count={value[:20]!r}")

    def _ordered(self, first: list[str]) -> list[zipfile.ZipInfo]:
        rank = {name: i for i, name in enumerate(first)}

        def key(info: zipfile.ZipInfo) -> tuple[int, int]:
            if info.filename in rank:
                return (0, rank[info.filename])
            return (2 if not info.filename.endswith(".rels") else 1, 0)

        return sorted(self.infos, key=key)

    # ---------------------------------------------------------------- OOXML

    def inspect_xlsx(self) -> tuple[Kind, tuple[str, ...]]:
        content_types: dict[str, str] = {}
        defaults: dict[str, str] = {}
        workbook = ""
        rels: dict[str, dict[str, tuple[str, str]]] = {}  # rels part -> id -> (type, target)
        sheet_parts: set[str] = set()
        sheet_names: list[str] = []
        sheet_rids: list[tuple[str, str]] = []

        def on_types(name: str, attrs: dict[str, str]) -> None:
            local = _local(name)
            if local == "Override":
                part = attrs.get("PartName", "").lstrip("/")
                content_types[part] = attrs.get("ContentType", "")
            elif local == "Default":
                defaults[attrs.get("Extension", "").lower()] = attrs.get("ContentType", "")

        def rels_handler(part: str) -> Handler:
            table = rels.setdefault(part, {})

            def on_rel(name: str, attrs: dict[str, str]) -> None:
                if _local(name) == "Relationship" and attrs.get("TargetMode") != "External":
                    table[attrs.get("Id", "")] = (attrs.get("Type", ""), attrs.get("Target", ""))

            return on_rel

        def on_workbook(name: str, attrs: dict[str, str]) -> None:
            if _local(name) == "sheet":
                sheet_names.append(attrs.get("name", ""))
                rid = next((v for k, v in attrs.items() if ":" in k and _local(k) == "id"), "")
                sheet_rids.append((attrs.get("name", ""), rid))

        members = {info.filename: info for info in self.infos}
        self._parse_xml(members["[Content_Types].xml"], on_types)
        all_types = list(content_types.values()) + list(defaults.values())
        lowered = [t.lower() for t in all_types]
        if any(("macroenabled" in t or "vbaproject" in t or "macrosheet" in t) for t in lowered):
            raise Refusal("macro", detail="macro content type")
        mains = [p for p, t in content_types.items() if t in _SPREADSHEET_MAINS]
        if not mains:
            if any("spreadsheetml" in t or "ms-excel" in t for t in lowered):
                raise Refusal("unsupported", what="Excel nhị phân .xlsb hoặc Strict",
                              detail="no transitional workbook content type")
            if any("wordprocessingml" in t for t in lowered):
                raise Refusal("not_spreadsheet", what="văn bản Word", detail="docx")
            if any("presentationml" in t for t in lowered):
                raise Refusal("not_spreadsheet", what="trình chiếu PowerPoint", detail="pptx")
            raise Refusal("not_ooxml", detail="no workbook content type")
        if any(n.lower().startswith("xl/macrosheets/") for n in members):
            raise Refusal("macro", detail="Excel 4.0 macro sheet")
        for name in members:
            what = _active_part(name)
            if what:
                raise Refusal("active_content", what=what, detail=f"part {name}")
        for part, ctype in content_types.items():
            if "oleobject" in ctype.lower() or "activex" in ctype.lower():
                raise Refusal("active_content", what=f"đối tượng nhúng ({part})", detail=f"content type {ctype}")

        if "_rels/.rels" in members:
            self._parse_xml(members["_rels/.rels"], rels_handler("_rels/.rels"))
            for rel_type, target in rels["_rels/.rels"].values():
                if rel_type.endswith("/officeDocument"):
                    workbook = _resolve("", target)
        workbook = workbook if workbook in members else mains[0]
        if workbook not in members:
            raise Refusal("not_ooxml", detail=f"workbook part {workbook!r} missing")
        wb_dir, wb_file = posixpath.split(workbook)
        wb_rels = posixpath.join(wb_dir, "_rels", wb_file + ".rels")

        sheet_parts.update(p for p, t in content_types.items() if t.endswith(_SHEET_TYPES))
        sheet_parts.update(
            n for n in members if re.fullmatch(r"xl/(worksheets|chartsheets|dialogsheets)/[^/]+\.xml", n)
        )
        part_to_sheet: dict[str, str] = {}
        done = {"[Content_Types].xml", "_rels/.rels"}
        for info in self._ordered([wb_rels, workbook]):
            name = info.filename
            if name in done:
                continue
            if name == wb_rels:
                self._parse_xml(info, rels_handler(name))
                for rel_type, target in rels[name].values():
                    if rel_type.endswith(_SHEET_RELS):
                        sheet_parts.add(_resolve(wb_dir, target))
            elif name == workbook:
                self._parse_xml(info, on_workbook)
                targets = rels.get(wb_rels, {})
                for sheet, rid in sheet_rids:
                    if rid in targets:
                        part_to_sheet[_resolve(wb_dir, targets[rid][1])] = sheet
            elif name in sheet_parts:
                sheet = part_to_sheet.get(name, name)
                fast = _FastSheetScan(self.limits, sheet)
                before = self.total
                self._scan_part(info, fast)
                if not fast.exact:
                    # Something irregular (implicit positions, odd values): measure it exactly.
                    self.total = before
                    self._parse_xml(info, _SheetExtent(self.limits, sheet).start)
            else:
                self._scan_part(info)
        return "xlsx", tuple(sheet_names)

    # ---------------------------------------------------------------- ODS

    def inspect_ods(self) -> tuple[Kind, tuple[str, ...]]:
        members = {info.filename: info for info in self.infos}
        mimetype = b"".join(_chunks(self, members["mimetype"])).strip()
        if mimetype not in _ODS_MIMETYPES:
            if mimetype.startswith(b"application/vnd.oasis.opendocument."):
                raise Refusal("not_spreadsheet", what="tài liệu OpenDocument không phải bảng tính",
                              detail=mimetype.decode("ascii", "replace")[:80])
            raise Refusal("not_ooxml", detail="unknown mimetype")
        if any(n.startswith(("Basic/", "Scripts/")) for n in members):
            raise Refusal("macro", detail="ODF Basic/Scripts")
        embedded = next((n for n in members if n.startswith(("Object ", "ObjectReplacements/"))), None)
        if embedded is not None:
            raise Refusal("active_content", what=f"đối tượng nhúng ({embedded.split('/')[0]})",
                          detail=f"ODF embedded object {embedded}")
        if "content.xml" not in members:
            raise Refusal("not_ooxml", detail="ODS without content.xml")
        scan = _OdsExtent(self.limits, self.formulas)

        def on_manifest(name: str, attrs: dict[str, str]) -> None:
            if _local(name) == "encryption-data":
                raise Refusal("encrypted", detail="ODF encryption-data")

        for info in self._ordered(["META-INF/manifest.xml", "content.xml"]):
            name = info.filename
            if name == "mimetype":
                continue
            if name == "META-INF/manifest.xml":
                self._parse_xml(info, on_manifest)
            elif name == "content.xml":
                self._parse_xml(info, scan.start, scan.end)
            else:
                self._scan_part(info)
        return "ods", tuple(scan.sheet_names)


# ---------------------------------------------------------------- active content

# Parts of an OOXML package that run, embed or fetch something: never passed on, whatever they hold.
_ACTIVE_PARTS = (
    ("xl/externallinks/", "liên kết tới tệp bên ngoài (xl/externalLinks/)"),
    ("xl/embeddings/", "đối tượng nhúng (xl/embeddings/)"),
    ("xl/activex/", "điều khiển ActiveX (xl/activeX/)"),
    ("xl/querytables/", "bảng truy vấn dữ liệu bên ngoài (xl/queryTables/)"),
    ("xl/connections.xml", "kết nối dữ liệu bên ngoài (xl/connections.xml)"),
    ("customui/", "giao diện tuỳ biến có thể gọi macro (customUI)"),
)
_ACTIVE_RELS = re.compile(
    rb"""Type\s*=\s*["'][^"']*/(oleObject|externalLink|externalLinkPath|package|control|activeXControl\w*|"""
    rb"""queryTable|connections|attachedTemplate|frame)["']""", re.IGNORECASE)
_REL_LABELS = {
    b"oleobject": "đối tượng nhúng (OLE)", b"externallink": "liên kết tới tệp bên ngoài",
    b"externallinkpath": "liên kết tới tệp bên ngoài", b"package": "đối tượng nhúng (tệp Office lồng trong tệp)",
    b"control": "điều khiển ActiveX", b"querytable": "bảng truy vấn dữ liệu bên ngoài",
    b"connections": "kết nối dữ liệu bên ngoài", b"attachedtemplate": "liên kết tới mẫu bên ngoài",
    b"frame": "khung tải nội dung bên ngoài",
}


def _active_part(name: str) -> str | None:
    """Return what an OOXML member is when it is active content (for the message), else None."""
    low = name.lower()
    for prefix, what in _ACTIVE_PARTS:
        if low.startswith(prefix):
            return what
    return None


def _check_relationships(info: zipfile.ZipInfo, piece: bytes) -> None:
    m = _ACTIVE_RELS.search(piece)
    if m is not None:
        kind = m.group(1).lower()
        label = _REL_LABELS.get(kind, "đối tượng nhúng (ActiveX)" if kind.startswith(b"activex") else "nội dung nhúng")
        raise Refusal("active_content", what=label, detail=f"{info.filename} relationship {kind.decode()}")


# A formula that reaches outside the workbook: DDE ("cmd|' /C calc'!A0"), another workbook ("[1]Sheet1!A1",
# "'C:\\x\\[a.xlsx]S'!A1", a URL or network path) or a function that fetches, calls or links out.
_OUTSIDE_FUNCTIONS = re.compile(
    r"(?<![\w.])(?:_xlfn\.|_xlws\.|com\.microsoft\.|of:)?(WEBSERVICE|FILTERXML|RTD|CALL|REGISTER(?:\.ID)?|"
    r"HYPERLINK|IMAGE|DDE|EXEC)\s*\(", re.IGNORECASE)
_OTHER_WORKBOOK = re.compile(r"\[\s*\d+\s*\]|\[[^\]]*\.(?:xl\w*|od\w|csv)\s*\]|://|\\\\|'file:", re.IGNORECASE)


def external_reach(formula: str) -> str | None:
    """Return how ``formula`` reaches outside the workbook (for the message), or None when it does not."""
    if "|" in formula:
        return "liên kết DDE tới chương trình khác"
    m = _OUTSIDE_FUNCTIONS.search(formula)
    if m is not None:
        return f"hàm {m.group(1).upper()} lấy dữ liệu hoặc gọi ra ngoài"
    if _OTHER_WORKBOOK.search(formula):
        return "tham chiếu tới tệp khác"
    return None


_XML_ESCAPES = ((b"&quot;", b'"'), (b"&apos;", b"'"), (b"&lt;", b"<"), (b"&gt;", b">"), (b"&amp;", b"&"))
_CELL_REF = re.compile(rb"""\sr\s*=\s*["']([A-Za-z]{1,3}[0-9]{1,7})["']""")
_FORMULA = re.compile(rb"<(?:[\w.-]+:)?f(?:\s[^>]*)?(?:/>|>(.*?)</(?:[\w.-]+:)?f>)", re.S)
_CACHED = re.compile(rb"<(?:[\w.-]+:)?v(?:\s[^>]*)?>([^<]+)</(?:[\w.-]+:)?v>")
_CELL_OPEN = re.compile(rb"<(?:[\w.-]+:)?c[\s>]")


def _unescape(raw: bytes) -> str:
    for escaped, plain in _XML_ESCAPES:
        raw = raw.replace(escaped, plain)
    return raw.decode("utf-8", "replace")


def _sheet_formulas(piece: bytes, sheet: str) -> list[tuple[str, str, bool]]:
    """Return (sheet, address, has cached value) of every formula cell in ``piece`` (whole cells).

    Raises Refusal("active_content") for a formula that reaches outside the workbook.
    """
    found = []
    for m in _FORMULA.finditer(piece):
        text = _unescape(m.group(1) or b"")
        reach = external_reach(text)
        if reach is not None:
            raise Refusal("active_content", what=f"công thức có {reach} trên trang «{sheet}» (={text[:60]})",
                          detail=f"{sheet} formula {text[:120]!r}")
        start = max(piece.rfind(b"<c ", 0, m.start()), piece.rfind(b":c ", 0, m.start()))
        ref = _CELL_REF.search(piece, start, m.start()) if start >= 0 else None
        close = piece.find(b"c>", m.end())
        cached = _CACHED.search(piece, m.end(), close if close >= 0 else len(piece)) is not None
        if ref is not None:
            found.append((sheet, ref.group(1).decode("ascii").upper(), cached))
    return found


def _chunks(package: _Package, info: zipfile.ZipInfo) -> Iterator[bytes]:
    """Decompressed chunks of one member, refusing past the per-part and total caps."""
    limits = package.limits
    read = 0
    try:
        with package.zf.open(info) as member:
            while chunk := member.read(_CHUNK):
                read += len(chunk)
                package.total += len(chunk)
                if read > limits.max_sheet_bytes or package.total > limits.max_uncompressed:
                    raise Refusal("zip_bomb", detail=f"{info.filename} inflates past the cap")
                yield chunk
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, NotImplementedError,
            struct.error) as exc:
        # Bad CRC, a cut deflate stream, a local header that disagrees with the directory.
        raise Refusal("truncated", detail=f"{info.filename}: {exc}") from None


def _resolve(base_dir: str, target: str) -> str:
    if target.startswith("/"):
        return posixpath.normpath(target).lstrip("/")
    return posixpath.normpath(posixpath.join(base_dir, target)).lstrip("/")


_COUNT_VALUE = re.compile(rb"""[cC]ount\s*=\s*["']([^"'<]*)["']""")
_PREFIXED_CELL = re.compile(rb"<[\w.-]+:(?:c|row)[\s/>]")
# Cell and row tags written any other way than `<c r="..."`: no r, or odd whitespace.
_IRREGULAR = (b"<c>", b"<c/", b"<row>", b"<row/", b"<c\t", b"<c\n", b"<c\r", b"<row\t",
              b"<row\n", b"<row\r")
_REF_ATTR = re.compile(rb"""\sref\s*=\s*["']([^"'<>]*)["']""")
_WS_AFTER_NAME = frozenset(b" \t\r\n/>")


@functools.lru_cache(maxsize=32)
def _suspect_pattern(letters: int, digits: int) -> re.Pattern[bytes]:
    """Match only r values that might pass the extent, or that are not plain A1 references."""
    return re.compile(
        rb' r="[A-Za-z]*(?:[A-Za-z]{%d}|[0-9]{%d}|[^A-Za-z0-9"])[^"]*"' % (letters, digits)
    )


class _FastSheetScan:
    """Measure a worksheet's extent with byte counts and one literal-led regex.

    Exact only for sheets written the way Excel, LibreOffice and openpyxl write them: every
    ``<c>``/``<row>`` unprefixed and carrying ``r="..."``, every dimension, merge and hyperlink
    tag carrying its ``ref``. Anything else clears ``exact`` and the caller re-measures the
    sheet with ``_SheetExtent`` through expat.
    """

    def __init__(self, limits: Limits, sheet: str) -> None:
        self.exact = True
        self.checker = _SheetExtent(limits, sheet)
        self.suspect = _suspect_pattern(
            len(_col_letters(self.checker.max_col)), len(str(self.checker.max_row))
        )

    def feed(self, piece: bytes) -> None:
        if not self.exact or not piece:
            return
        tags = piece.count(b"<c ") + piece.count(b"<row ")
        if (
            tags != piece.count(b' r="')
            or any(form in piece for form in _IRREGULAR)
            or ((b":c" in piece or b":row" in piece) and _PREFIXED_CELL.search(piece))
        ):
            self.exact = False
            return
        checker = self.checker
        for m in self.suspect.finditer(piece):
            row, col = _split_ref(m.group()[4:-1].decode("ascii", "replace"))
            if row > checker.max_row or col > checker.max_col:
                checker._refuse(row, col)
        for name in (b"dimension", b"mergeCell", b"hyperlink"):
            at = piece.find(name)
            while at >= 0:
                after = at + len(name)
                if (at > 0 and piece[at - 1] in b"<:" and after < len(piece)
                        and piece[after] in _WS_AFTER_NAME):
                    close = piece.find(b">", after)
                    m = _REF_ATTR.search(piece, after, close if close >= 0 else len(piece))
                    if m is None:
                        self.exact = False
                        return
                    for part in m.group(1).decode("ascii", "replace").split(":"):
                        if part:
                            row, col = _split_ref(part)
                            if row > checker.max_row or col > checker.max_col:
                                checker._refuse(row, col)
                at = piece.find(name, after)


def _check_prolog(info: zipfile.ZipInfo, head: bytes) -> None:
    """Refuse XML that is not UTF-8: byte scans could not see a DOCTYPE in UTF-16 or UTF-7."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in head[:4]:
        raise Refusal("corrupt", detail=f"{info.filename} is not UTF-8")
    head = head.removeprefix(b"\xef\xbb\xbf").lstrip()
    if head.startswith(b"<?xml"):
        m = re.search(rb"""encoding\s*=\s*["']([^"']*)["']""", head[: head.find(b"?>") + 1])
        if m and m.group(1).lower() not in (b"utf-8", b"utf8", b"us-ascii", b"ascii"):
            raise Refusal("corrupt", detail=f"{info.filename} encoding {m.group(1)[:20]!r}")


class _SheetExtent:
    """Track the real extent of a worksheet as expat streams it (explicit and implicit cells)."""

    def __init__(self, limits: Limits, sheet: str) -> None:
        self.max_row = min(limits.max_row, EXCEL_MAX_ROW)
        self.max_col = min(limits.max_col, EXCEL_MAX_COL)
        self.sheet = sheet
        self.row = 0
        self.col = 0

    def _refuse(self, row: int, col: int) -> None:
        cell = _where(row, col)
        raise Refusal(
            "extent", sheet=self.sheet, cell=cell[:32], max_row=self.max_row,
            max_col=_col_letters(self.max_col), detail=f"{self.sheet} reaches row {row} col {col}",
        )

    def start(self, name: str, attrs: dict[str, str]) -> None:
        local = name if ":" not in name else _local(name)
        if local == "c":
            ref = attrs.get("r")
            if ref is None:
                self.col += 1
            else:
                row, col = _split_ref(ref)
                self.col = col
                if row and row > self.max_row:
                    self._refuse(row, col)
            if self.col > self.max_col:
                self._refuse(self.row, self.col)
        elif local == "row":
            ref = attrs.get("r")
            if ref is None:
                self.row += 1
            elif ref.isdigit():
                self.row = int(ref)
            else:
                raise Refusal("corrupt", detail=f"row r={ref[:20]!r}")
            self.col = 0
            if self.row > self.max_row:
                self._refuse(self.row, 1)
        elif local in ("dimension", "mergeCell", "hyperlink"):
            for part in attrs.get("ref", "").split(":"):
                if part:
                    row, col = _split_ref(part)
                    if row > self.max_row or col > self.max_col:
                        self._refuse(row, col)


class _OdsExtent:
    """Expand ODS repeats arithmetically; only repeats that hold content count toward extent."""

    # Elements of content.xml that embed, run or fetch something.
    _ACTIVE = {
        "object": "đối tượng nhúng", "object-ole": "đối tượng nhúng (OLE)", "plugin": "đối tượng nhúng (plugin)",
        "applet": "đối tượng nhúng (applet)", "script": "mã lệnh (script)", "event-listener": "mã lệnh gắn sự kiện",
        "dde-source": "liên kết DDE", "dde-connection-decl": "liên kết DDE", "dde-link": "liên kết DDE",
        "cell-range-source": "liên kết tới dữ liệu bên ngoài", "database-source-sql": "kết nối cơ sở dữ liệu",
        "database-source-query": "kết nối cơ sở dữ liệu", "database-source-table": "kết nối cơ sở dữ liệu",
    }

    def __init__(self, limits: Limits, formulas: list[tuple[str, str, bool]] | None = None) -> None:
        self.max_row = min(limits.max_row, EXCEL_MAX_ROW)
        self.max_col = min(limits.max_col, EXCEL_MAX_COL)
        self.formulas = formulas if formulas is not None else []
        self.sheet_names: list[str] = []
        self.depth = 0  # nesting of table:table; sub-tables inside cells are not grid rows
        self.row = 0
        self.col = 0
        self.row_repeat = 1
        self.cell_repeat = 1
        self.in_cell = False
        self.cell_content = False

    @staticmethod
    def _repeat(attrs: dict[str, str], local_name: str) -> int:
        for key, value in attrs.items():
            if _local(key) == local_name:
                if not value.isdigit() or int(value) < 1:
                    raise Refusal("corrupt", detail=f"{local_name}={value[:20]!r}")
                return int(value)
        return 1

    def start(self, name: str, attrs: dict[str, str]) -> None:
        local = _local(name)
        if local in self._ACTIVE:
            raise Refusal("active_content", what=self._ACTIVE[local], detail=f"ODF element {name}")
        if local == "table":
            self.depth += 1
            if self.depth == 1:
                self.sheet_names.append(next(
                    (v for k, v in attrs.items() if _local(k) == "name"), ""))
                self.row = 0
            return
        if self.depth != 1:
            return
        if self.in_cell:
            self.cell_content = True  # any child element (text:p, annotation) is content
        elif local == "table-row":
            self.row_repeat = self._repeat(attrs, "number-rows-repeated")
            self.col = 0
        elif local in ("table-cell", "covered-table-cell"):
            self.cell_repeat = self._repeat(attrs, "number-columns-repeated")
            self.in_cell = True
            self.cell_content = any(_local(k) == "value-type" for k in attrs)
            formula = next((v for k, v in attrs.items() if _local(k) == "formula"), None)
            if formula is not None:
                self._formula(formula, attrs)

    def _formula(self, formula: str, attrs: dict[str, str]) -> None:
        sheet = self.sheet_names[-1] if self.sheet_names else "?"
        reach = external_reach(formula)
        if reach is not None:
            raise Refusal("active_content", what=f"công thức có {reach} trên trang «{sheet}» ({formula[:60]})",
                          detail=f"ods formula {formula[:120]!r}")
        cached = any(_local(k) in ("value", "string-value", "boolean-value", "date-value", "time-value")
                     for k in attrs)
        for offset in range(min(self.cell_repeat, 64)):
            self.formulas.append((sheet, f"{_col_letters(self.col + 1 + offset)}{self.row + 1}", cached))

    def end(self, name: str) -> None:
        local = _local(name)
        if local == "table":
            self.depth -= 1
            return
        if self.depth != 1:
            return
        if local in ("table-cell", "covered-table-cell") and self.in_cell:
            self.in_cell = False
            self.col += self.cell_repeat
            if self.cell_content:
                last_row = self.row + self.row_repeat
                if last_row > self.max_row or self.col > self.max_col:
                    refusal = Refusal(
                        "extent", sheet=self.sheet_names[-1] if self.sheet_names else "?",
                        cell=_where(last_row, self.col)[:32],
                        max_row=self.max_row, max_col=_col_letters(self.max_col),
                        detail=f"ods content reaches row {last_row} col {self.col}",
                    )
                    raise refusal
        elif local == "table-row":
            self.row += self.row_repeat
            self.row_repeat = 1
