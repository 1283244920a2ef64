"""The zip container of an upload: its directory, then each member of the OOXML or ODS package streamed
once under caps (structural XML through expat, bulky parts by byte scans), with the content, extent and
count checks applied as the bytes pass.
"""

from __future__ import annotations

import io
import posixpath
import re
import struct
import unicodedata
import zipfile
import zlib
from collections.abc import Callable, Iterator
from xml.parsers import expat

from .base import _CHUNK, MIB, Kind, Limits, Refusal
from .content import active_part, check_relationships, sheet_formulas
from .extent import FastSheetScan, OdsExtent, SheetExtent, local_name

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


def inspect_zip(data: bytes, limits: Limits,
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

    def _scan_part(self, info: zipfile.ZipInfo, sheet: FastSheetScan | None = None) -> None:
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

    def _check_piece(self, info: zipfile.ZipInfo, piece: bytes, sheet: FastSheetScan | None,
                     is_xml: bool) -> None:
        if b"<!" in piece:
            low = piece.lower()
            if b"<!doctype" in low or b"<!entity" in low:
                raise Refusal("xml_entity", detail=f"DOCTYPE/ENTITY in {info.filename}")
        if is_xml and b"ount" in piece:
            self._check_counts(info, piece)
        if info.filename.endswith(".rels") and b"Type" in piece:
            check_relationships(info, piece)
        if sheet is not None:
            sheet.feed(piece)
            if b"<oleObject" in piece or b"<control " in piece or b":oleObject" in piece:
                raise Refusal("active_content", what=f"đối tượng nhúng (OLE/ActiveX) trên trang «{sheet.checker.sheet}»",
                              detail=f"{info.filename} oleObject/control")
            if b"f>" in piece or b"<f " in piece or b":f " in piece:
                self.formulas.extend(sheet_formulas(piece, sheet.checker.sheet))

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
            local = local_name(name)
            if local == "Override":
                part = attrs.get("PartName", "").lstrip("/")
                content_types[part] = attrs.get("ContentType", "")
            elif local == "Default":
                defaults[attrs.get("Extension", "").lower()] = attrs.get("ContentType", "")

        def rels_handler(part: str) -> Handler:
            table = rels.setdefault(part, {})

            def on_rel(name: str, attrs: dict[str, str]) -> None:
                if local_name(name) == "Relationship" and attrs.get("TargetMode") != "External":
                    table[attrs.get("Id", "")] = (attrs.get("Type", ""), attrs.get("Target", ""))

            return on_rel

        def on_workbook(name: str, attrs: dict[str, str]) -> None:
            if local_name(name) == "sheet":
                sheet_names.append(attrs.get("name", ""))
                rid = next((v for k, v in attrs.items() if ":" in k and local_name(k) == "id"), "")
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
            what = active_part(name)
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
                fast = FastSheetScan(self.limits, sheet)
                before = self.total
                self._scan_part(info, fast)
                if not fast.exact:
                    # Something irregular (implicit positions, odd values): measure it exactly.
                    self.total = before
                    self._parse_xml(info, SheetExtent(self.limits, sheet).start)
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
        scan = OdsExtent(self.limits, self.formulas)

        def on_manifest(name: str, attrs: dict[str, str]) -> None:
            if local_name(name) == "encryption-data":
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


def _check_prolog(info: zipfile.ZipInfo, head: bytes) -> None:
    """Refuse XML that is not UTF-8: byte scans could not see a DOCTYPE in UTF-16 or UTF-7."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in head[:4]:
        raise Refusal("corrupt", detail=f"{info.filename} is not UTF-8")
    head = head.removeprefix(b"\xef\xbb\xbf").lstrip()
    if head.startswith(b"<?xml"):
        m = re.search(rb"""encoding\s*=\s*["']([^"']*)["']""", head[: head.find(b"?>") + 1])
        if m and m.group(1).lower() not in (b"utf-8", b"utf8", b"us-ascii", b"ascii"):
            raise Refusal("corrupt", detail=f"{info.filename} encoding {m.group(1)[:20]!r}")

