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

The checks live in this package's modules, bottom up: ``base`` (limits, ``Refusal`` and its messages),
``ole`` (legacy .xls), ``content`` (active content and outside-reaching formulas), ``extent`` (a sheet's
real size), ``package`` (the zip container and each member); this module is the entry point.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

from .base import MIB, Inspected, Kind, Limits, Refusal
from .ole import OLE_MAGIC, inspect_ole
from .package import inspect_zip

__all__ = ["Inspected", "Kind", "Limits", "Refusal", "inspect", "safe_filename"]


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
        kind, sheets = inspect_zip(data, limits, formulas)
    elif head == OLE_MAGIC:
        kind, sheets = inspect_ole(data), ()
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
