"""Legacy ``.xls`` (OLE2 compound file): accepted only as a workbook without encryption, macros or objects.

Its BIFF records are not read here; the isolated parse worker reads them.
"""

from __future__ import annotations

import re
import struct

from .base import Kind, Refusal

OLE_MAGIC = bytes.fromhex("D0CF11E0A1B11AE1")


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


def inspect_ole(data: bytes) -> Kind:
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
