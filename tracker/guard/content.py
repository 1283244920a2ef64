"""Active content in an OOXML package: parts and relationships that run, embed or fetch something,
and formulas that reach outside the workbook. Each is refused with what was found, for the officer.
"""

from __future__ import annotations

import re
import zipfile

from .base import Refusal

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


def active_part(name: str) -> str | None:
    """Return what an OOXML member is when it is active content (for the message), else None."""
    low = name.lower()
    for prefix, what in _ACTIVE_PARTS:
        if low.startswith(prefix):
            return what
    return None


def check_relationships(info: zipfile.ZipInfo, piece: bytes) -> None:
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


def sheet_formulas(piece: bytes, sheet: str) -> list[tuple[str, str, bool]]:
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
