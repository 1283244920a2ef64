"""Builders of good and hostile upload files, made in memory for the tests.

Every builder returns the file's bytes. Builders that patch a workbook take an optional ``base``
(the bytes of a good .xlsx); without it they start from ``good_xlsx()``. Nothing here is written
to disk, and the large payloads are compressed as they are produced so no builder holds a bomb
in memory.
"""

from __future__ import annotations

import functools
import io
import re
import struct
import zipfile
from collections.abc import Callable, Iterable

import openpyxl
import pandas as pd

SPREADSHEET_MAIN = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"
MACRO_MAIN = "application/vnd.ms-excel.sheet.macroEnabled.main+xml"
VBA_PROJECT = "application/vnd.ms-office.vbaProject"


# ---------------------------------------------------------------- good files


@functools.lru_cache(maxsize=1)
def good_xlsx() -> bytes:
    """A small, genuine return-like .xlsx written by openpyxl: two sheets, about 30 rows each."""
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "Biểu 01"
    ws.append(["STT", "Chỉ tiêu", "ĐVT", "Tổng", "Nam", "Nữ"])
    for i in range(1, 31):
        ws.append([i, f"Chỉ tiêu số {i}", "người", 2 * i, i, i])
    ws2 = wb.create_sheet("Biểu 02")
    ws2.append(["STT", "Nhóm", "Số trẻ em"])
    for i in range(1, 15):
        ws2.append([i, f"Nhóm {i}", i * 3])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def good_xls() -> bytes:
    """A genuine minimal BIFF8 .xls written by xlwt (an OLE2 file holding a ``Workbook`` stream)."""
    import xlwt  # test-only dependency

    book = xlwt.Workbook(encoding="utf-8")
    sheet = book.add_sheet("Biểu 01")
    sheet.write(0, 0, "Chỉ tiêu")
    sheet.write(0, 1, "Tổng")
    for i in range(1, 6):
        sheet.write(i, 0, f"Dòng {i}")
        sheet.write(i, 1, i * 10)
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()


def good_ods(libreoffice_tail: bool = False) -> bytes:
    """A minimal .ods written by pandas' odf engine.

    With ``libreoffice_tail`` the sheet ends the way LibreOffice Calc writes a sheet whose columns
    carry a style: every row padded with a styled empty cell repeated to the last column, then one
    empty row repeated down to row 1048576. Those repeats hold no content and must be accepted.
    """
    frame = pd.DataFrame({"Chỉ tiêu": ["Trẻ em", "Trẻ em nam"], "Tổng": [120, 61]})
    buf = io.BytesIO()
    with pd.ExcelWriter(buf, engine="odf") as writer:
        frame.to_excel(writer, sheet_name="Biểu 01", index=False)
    data = buf.getvalue()
    if not libreoffice_tail:
        return data
    content = _read_member(data, "content.xml").decode("utf-8")
    rows = content.count("</table:table-row>")
    content = content.replace(
        "</table:table-row>",
        '<table:table-cell table:style-name="ce1" table:number-columns-repeated="16382"/>'
        "</table:table-row>",
    )
    tail = (
        f'<table:table-row table:style-name="ro1" table:number-rows-repeated="{1048576 - rows}">'
        '<table:table-cell table:number-columns-repeated="16384"/></table:table-row>'
    )
    content = content.replace("</table:table>", tail + "</table:table>", 1)
    return _replace_members(data, {"content.xml": content.encode("utf-8")})


# ---------------------------------------------------------------- not spreadsheets


def zero_bytes() -> bytes:
    """An empty upload."""
    return b""


def pdf_bytes() -> bytes:
    """A tiny but well-formed PDF."""
    return (
        b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
        b"2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
    )


def html_bytes() -> bytes:
    """An HTML table, which is what some web portals save under a .xls name."""
    return (
        "<html><head><meta charset='utf-8'></head><body><table>"
        "<tr><td>Chỉ tiêu</td><td>Tổng</td></tr></table></body></html>"
    ).encode("utf-8")


def png_bytes() -> bytes:
    """The signature and IHDR chunk of a PNG image."""
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + bytes(17)


def docx_like() -> bytes:
    """An OOXML package whose main part is a Word document, not a workbook."""
    ct = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/word/document.xml" ContentType="application/'
        'vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>'
    )
    return _zip({"[Content_Types].xml": ct.encode(), "word/document.xml": b"<w:document/>"})


# ---------------------------------------------------------------- broken zips


def truncated_xlsx(base: bytes | None = None) -> bytes:
    """A good workbook cut in half, as an interrupted upload leaves it."""
    data = base or good_xlsx()
    return data[: len(data) // 2]


def bad_crc_xlsx(base: bytes | None = None) -> bytes:
    """A workbook whose sheet bytes were altered after their CRC was written."""
    out = bytearray(_zip(_members(base or good_xlsx()), stored=True))
    # Stored members appear verbatim, so one changed letter is a silent corruption.
    at = out.index(b"<sheetData>")
    out[at + 1] = ord("S")
    return bytes(out)


def zip_without_content_types() -> bytes:
    """A zip archive of XML files with no ``[Content_Types].xml``: not an Office package."""
    return _zip({"xl/workbook.xml": b"<workbook/>", "readme.txt": b"hello"})


def unsafe_name_xlsx(name: str = "../../etc/cron.d/evil", base: bytes | None = None) -> bytes:
    """A good workbook with one extra member whose name escapes the archive (or holds a NUL)."""
    members = _members(base or good_xlsx())
    if "\0" not in name:
        return _zip(members | {name: b"x"})
    # zipfile cuts names at NUL when writing, so write a same-length stand-in and patch the bytes.
    stand_in = name.replace("\0", "\x01")
    out = _zip(members | {stand_in: b"x"})
    return out.replace(stand_in.encode(), name.encode())


# ---------------------------------------------------------------- bombs and hostile XML


def zip_bomb(inflated_size: int = 120 * 1024 * 1024, declared: bool = True) -> bytes:
    """A workbook whose first sheet inflates to ``inflated_size`` bytes of whitespace.

    The archive stays around a thousandth of that. With ``declared=False`` the central directory
    still tells the truth (zipfile writes it), so the bomb is caught from the directory; the
    streaming cap is exercised by calling ``inspect`` with a low ``max_sheet_bytes`` instead.
    """
    head = (
        b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        b"<sheetData>"
    )
    tail = b"</sheetData></worksheet>"
    blank = b" " * (1024 * 1024)

    def stream() -> Iterable[bytes]:
        yield head
        left = inflated_size
        while left > 0:
            yield blank[: min(left, len(blank))]
            left -= len(blank)
        yield tail

    del declared  # kept for call-site readability; zipfile always writes true sizes
    return _replace_members(good_xlsx(), {"xl/worksheets/sheet1.xml": stream})


def padded_sheet_xlsx(padding: int, base: bytes | None = None) -> bytes:
    """A good workbook whose first sheet carries ``padding`` bytes of legal whitespace."""
    data = base or good_xlsx()
    sheet = _read_member(data, "xl/worksheets/sheet1.xml")
    sheet = sheet.replace(b"<sheetData>", b"<sheetData>" + b" " * padding, 1)
    return _replace_members(data, {"xl/worksheets/sheet1.xml": sheet})


def many_entries_xlsx(count: int = 2000, base: bytes | None = None) -> bytes:
    """A good workbook padded with ``count`` tiny extra members."""
    members = _members(base or good_xlsx())
    for i in range(count):
        members[f"customXml/item{i}.xml"] = b"<a/>"
    return _zip(members)


def xxe_shared_strings(kind: str = "billion_laughs", base: bytes | None = None) -> bytes:
    """A workbook whose ``xl/sharedStrings.xml`` declares entities.

    ``kind`` is ``"billion_laughs"`` (nested internal entities that expand to gigabytes) or
    ``"external"`` (an entity that names a local file).
    """
    if kind == "billion_laughs":
        ents = ['<!ENTITY lol0 "lol">'] + [
            f'<!ENTITY lol{i} "{("&lol%d;" % (i - 1)) * 10}">' for i in range(1, 10)
        ]
        doctype = "<!DOCTYPE sst [" + "".join(ents) + "]>"
        ref = "&lol9;"
    elif kind == "external":
        doctype = '<!DOCTYPE sst [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
        ref = "&xxe;"
    else:
        raise ValueError(kind)
    sst = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>' + doctype +
        '<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="1" '
        f'uniqueCount="1"><si><t>{ref}</t></si></sst>'
    ).encode()
    data = base or good_xlsx()
    members = _members(data)
    members["xl/sharedStrings.xml"] = sst
    ct = members["[Content_Types].xml"].decode()
    if "/xl/sharedStrings.xml" not in ct:
        ct = ct.replace(
            "</Types>",
            '<Override PartName="/xl/sharedStrings.xml" ContentType="application/'
            'vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/></Types>',
        )
        members["[Content_Types].xml"] = ct.encode()
    return _zip(members)


def far_cell_xlsx(base: bytes | None = None, ref: str = "XFD1048576") -> bytes:
    """A ~5 KB workbook with one extra cell at ``ref``; its dimension stretches to reach it.

    This is the file that makes calamine abort the process.
    """
    data = base or good_xlsx()
    sheet = _read_member(data, "xl/worksheets/sheet1.xml").decode()
    row = re.sub(r"\D", "", ref)
    sheet = re.sub(r'<dimension ref="[^"]*"', f'<dimension ref="A1:{ref}"', sheet, count=1)
    sheet = sheet.replace(
        "</sheetData>", f'<row r="{row}"><c r="{ref}"><v>1</v></c></row></sheetData>', 1
    )
    return _replace_members(data, {"xl/worksheets/sheet1.xml": sheet.encode()})


def far_dimension_xlsx(base: bytes | None = None) -> bytes:
    """A good workbook whose ``<dimension>`` alone claims ``A1:XFD1048576`` (no far cell)."""
    data = base or good_xlsx()
    sheet = _read_member(data, "xl/worksheets/sheet1.xml").decode()
    sheet = re.sub(r'<dimension ref="[^"]*"', '<dimension ref="A1:XFD1048576"', sheet, count=1)
    return _replace_members(data, {"xl/worksheets/sheet1.xml": sheet.encode()})


def million_rows_xlsx(rows: int = 1_000_000, explicit_refs: bool = True) -> bytes:
    """A return whose first sheet holds ``rows`` one-cell rows, compressed while generated.

    With ``explicit_refs`` every row and cell carries its ``r`` reference (as Excel writes);
    without, positions are implicit and the sheet compresses about a thousandfold.
    """
    head = (
        b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        b"<sheetData>"
    )

    def stream() -> Iterable[bytes]:
        yield head
        step = 10_000
        for start in range(1, rows + 1, step):
            stop = min(start + step, rows + 1)
            if explicit_refs:
                yield "".join(
                    f'<row r="{i}"><c r="A{i}"><v>{i % 97}</v></c></row>' for i in range(start, stop)
                ).encode()
            else:
                yield b"<row><c><v>1</v></c></row>" * (stop - start)
        yield b"</sheetData></worksheet>"

    return _replace_members(good_xlsx(), {"xl/worksheets/sheet1.xml": stream})


def ods_repeated_content(rows: int = 1_000_000, cols: int = 1) -> bytes:
    """An .ods whose one content-holding row (or cell) is repeated ``rows`` (``cols``) times."""
    data = good_ods()
    content = _read_member(data, "content.xml").decode()
    bomb = (
        f'<table:table-row table:number-rows-repeated="{rows}">'
        f'<table:table-cell table:number-columns-repeated="{cols}" office:value-type="float" '
        'office:value="1"><text:p>1</text:p></table:table-cell></table:table-row>'
    )
    content = content.replace("</table:table>", bomb + "</table:table>", 1)
    return _replace_members(data, {"content.xml": content.encode()})


# ---------------------------------------------------------------- macros and encryption


def xlsm_bytes(base: bytes | None = None, how: str = "both") -> bytes:
    """A macro-enabled workbook built from ``base``.

    ``how``: ``"both"`` (what Excel writes: macro content type and ``xl/vbaProject.bin``),
    ``"member"`` (only the ``vbaProject.bin`` member, content types left plain) or
    ``"content_type"`` (only the macro-enabled main content type). The same bytes saved under an
    ``.xlsx`` name are the "renamed" case: the guard must judge the bytes, not the name.
    """
    members = _members(base or good_xlsx())
    ct = members["[Content_Types].xml"].decode()
    if how in ("both", "content_type"):
        ct = ct.replace(SPREADSHEET_MAIN, MACRO_MAIN)
    if how in ("both", "member"):
        if how == "both":
            ct = ct.replace(
                "</Types>", f'<Default Extension="bin" ContentType="{VBA_PROJECT}"/></Types>'
            )
        members["xl/vbaProject.bin"] = cfb_bytes({"PROJECT": b"ID=\"{0}\"\r\n" * 500})
    members["[Content_Types].xml"] = ct.encode()
    return _zip(members)


def encrypted_xlsx() -> bytes:
    """What Excel saves for a password-protected .xlsx: an OLE2 file with encryption streams."""
    return cfb_bytes(
        {
            "EncryptionInfo": b"\x04\x00\x04\x00\x40\x00\x00\x00" + bytes(4088),
            "EncryptedPackage": struct.pack("<Q", 5000) + bytes(5000),
        }
    )


def word_ole() -> bytes:
    """An OLE2 file that is not a workbook (a legacy Word document's main stream)."""
    return cfb_bytes({"WordDocument": bytes(4096)})


def cfb_bytes(streams: dict[str, bytes]) -> bytes:
    """A minimal valid Compound File Binary (OLE2, version 3) holding ``streams`` at the root.

    Streams are padded to at least 4096 bytes so they live in regular sectors and no mini stream
    is needed; one FAT sector and one directory sector, so at most 3 streams and 127 data sectors.
    """
    if not 0 < len(streams) <= 3:
        raise ValueError("1 to 3 streams")
    sector = 512
    endofchain, fatsect, nostream = 0xFFFFFFFE, 0xFFFFFFFD, 0xFFFFFFFF
    # Sibling order in the red-black tree compares length first, then upper-cased names.
    names = sorted(streams, key=lambda n: (len(n), n.upper()))
    fat: list[int] = [fatsect, endofchain]
    payload = b""
    starts: dict[str, int] = {}
    for name in names:
        body = streams[name].ljust(4096, b"\0")
        body += b"\0" * (-len(body) % sector)
        count = len(body) // sector
        first = len(fat)
        starts[name] = first
        fat.extend(range(first + 1, first + count))
        fat.append(endofchain)
        payload += body
    if len(fat) > sector // 4:
        raise ValueError("streams too large for one FAT sector")
    fat_sector = struct.pack(f"<{len(fat)}I", *fat) + b"\xff" * (sector - 4 * len(fat))

    def entry(name: str, kind: int, child: int, right: int, start: int, size: int) -> bytes:
        raw = name.encode("utf-16-le") + b"\0\0"
        return (
            raw.ljust(64, b"\0")
            + struct.pack("<HBB", len(raw), kind, 1)
            + struct.pack("<III", nostream, right, child)
            + bytes(16 + 4 + 16)
            + struct.pack("<IQ", start, size)
        )

    entries = [entry("Root Entry", 5, 1, nostream, endofchain, 0)]
    for i, name in enumerate(names, start=1):
        right = i + 1 if i < len(names) else nostream
        entries.append(entry(name, 2, nostream, right, starts[name], len(streams[name])))
    directory = b"".join(entries).ljust(sector, b"\0")
    # Unused directory slots must say NOSTREAM in their sibling/child fields.
    directory = bytearray(directory)
    for slot in range(len(entries), sector // 128):
        directory[slot * 128 + 68 : slot * 128 + 80] = b"\xff" * 12
    header = (
        bytes.fromhex("D0CF11E0A1B11AE1")
        + bytes(16)
        + struct.pack("<HHHHH", 0x3E, 3, 0xFFFE, 9, 6)
        + bytes(6)
        + struct.pack("<IIIIIIIII", 0, 1, 1, 0, 4096, endofchain, 0, endofchain, 0)
        + struct.pack("<I", 0)
        + b"\xff" * (4 * 108)
    )
    assert len(header) == sector
    return header + fat_sector + bytes(directory) + payload


# ---------------------------------------------------------------- zip helpers


def _members(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return {info.filename: zf.read(info) for info in zf.infolist()}


def _read_member(data: bytes, name: str) -> bytes:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return zf.read(name)


Payload = bytes | Callable[[], Iterable[bytes]]


def _zip(members: dict[str, Payload], stored: bool = False) -> bytes:
    """Zip ``members`` in order; a callable member is streamed through the compressor."""
    buf = io.BytesIO()
    method = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
    with zipfile.ZipFile(buf, "w", compression=method) as zf:
        for name, body in members.items():
            info = zipfile.ZipInfo(name, date_time=(2024, 5, 1, 0, 0, 0))
            info.compress_type = method
            if callable(body):
                with zf.open(info, "w", force_zip64=True) as out:
                    for chunk in body():
                        out.write(chunk)
            else:
                zf.writestr(info, body)
    return buf.getvalue()


def _replace_members(data: bytes, replacements: dict[str, Payload]) -> bytes:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        members: dict[str, Payload] = {info.filename: zf.read(info) for info in zf.infolist()}
    members.update(replacements)
    return _zip(members)
