"""Read a list of administrative units of one date: the GSO CSV, the 2024 national JSON, the 2025 JSON.

Plain values in, plain values out: a ``UnitList`` of rows (level, code, name, kind, parent code and the
old units each was made from), which ``unit_import`` writes as dated unit versions.
"""
from __future__ import annotations

import csv
import gzip
import io
import json
import unicodedata
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

# The raw GSO list writes some kinds with a capital second word ("Thị Xã").
_KIND_FIXES = {"Thị Xã": "Thị xã", "Thị Trấn": "Thị trấn", "Thành Phố": "Thành phố"}


class UnitListError(ValueError):
    """The file is not a unit list this module reads; the message says why, in Vietnamese."""


def normalize_name(name: str) -> str:
    """Return a unit name in NFC with the kind prefix spelled as Vietnamese officials write it."""
    name = unicodedata.normalize("NFC", " ".join(name.split()))
    for wrong, right in _KIND_FIXES.items():
        if name.startswith(wrong + " "):
            name = right + name[len(wrong):]
    return name


@dataclass(frozen=True)
class UnitRow:
    level: int
    code: str
    name: str
    kind: str
    parent_code: str | None
    # (old unit code, "full" | "partial"): the units of the day before the list's date it was made from.
    merged_from: tuple[tuple[str, str], ...] = ()


@dataclass
class UnitList:
    rows: list[UnitRow]
    # Province codes whose earlier units this list replaces: units of these provinces that the list no
    # longer names are closed on import, units of other provinces are left alone.
    provinces: set[str] = field(default_factory=set)
    as_of: date | None = None  # the date the file itself states, if any
    # True when the old -> new links are a hint for a person to confirm, not an official table.
    merges_are_hints: bool = True


def _text(path: Path) -> str:
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    return raw.decode("utf-8-sig")


def read_csv(text: str) -> UnitList:
    """Return the rows of the GSO CSV (level, code, name, type, parent_code)."""
    reader = csv.DictReader(io.StringIO(text))
    missing = {"level", "code", "name", "type", "parent_code"} - set(reader.fieldnames or [])
    if missing:
        raise UnitListError(f"Tệp CSV thiếu cột: {', '.join(sorted(missing))}.")
    rows = [UnitRow(level=int(r["level"]), code=r["code"].strip(), name=normalize_name(r["name"]),
                    kind=normalize_name(r["type"]), parent_code=(r["parent_code"] or "").strip() or None)
            for r in reader]
    return UnitList(rows=rows, provinces={r.code for r in rows if r.level == 1})


def read_json_2024(data: dict[str, Any]) -> UnitList:
    """Return the rows of the national dvhcvn JSON (``data[]`` of provinces, districts, communes)."""
    rows: list[UnitRow] = []
    for p in data["data"]:
        rows.append(UnitRow(1, p["level1_id"], normalize_name(p["name"]), p["type"], None))
        for d in p["level2s"]:
            rows.append(UnitRow(2, d["level2_id"], normalize_name(d["name"]), normalize_name(d["type"]),
                                p["level1_id"]))
            for c in d["level3s"]:
                rows.append(UnitRow(3, c["level3_id"], normalize_name(c["name"]), normalize_name(c["type"]),
                                    d["level2_id"]))
    return UnitList(rows=rows, provinces={r.code for r in rows if r.level == 1})


def _commune_kind(name: str) -> str:
    return "Đặc khu" if name.startswith("Đặc khu") else name.split()[0]


def read_json_2025(data: dict[str, Any]) -> UnitList:
    """Return the rows of the map of 01/07/2025: provinces and their communes, no district level.

    Communes stay level 3 (commune level) with the province as parent; a province name without its
    kind ("Bắc Ninh") becomes "Tỉnh Bắc Ninh", the centrally run cities keep "Thành phố".
    """
    rows: list[UnitRow] = []
    provinces: set[str] = set()
    for p in data["provinces"]:
        name = normalize_name(p["name"])
        city = name.startswith("Thành phố ")
        kind = "Thành phố Trung ương" if city else "Tỉnh"
        if not city and not name.startswith("Tỉnh "):
            name = "Tỉnh " + name
        merged = tuple((str(code), "full") for code in p.get("merged_from", []))
        rows.append(UnitRow(1, p["code"], name, kind, None, merged))
        provinces.add(p["code"])
        provinces.update(code for code, _ in merged)
        for c in p["communes"]:
            cname = normalize_name(c["name"])
            rows.append(UnitRow(3, c["code"], cname, _commune_kind(cname), p["code"],
                                tuple((str(code), str(share)) for code, share in c.get("merged_from", []))))
    as_of = date.fromisoformat(data["as_of"]) if data.get("as_of") else None
    return UnitList(rows=rows, provinces=provinces, as_of=as_of)


def read_unit_list(path: Path) -> UnitList:
    """Return the unit list in ``path`` (.csv, .json or either gzipped), its format told by its content.

    Raises UnitListError when the file cannot be read as one of the three formats.
    """
    try:
        text = _text(path)
    except (OSError, UnicodeDecodeError, gzip.BadGzipFile) as exc:
        raise UnitListError(f"Không đọc được tệp {path.name}: {exc}") from exc
    if not text.lstrip().startswith(("{", "[")):
        return read_csv(text)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UnitListError(f"Tệp {path.name} không phải JSON hợp lệ (dòng {exc.lineno}).") from exc
    if isinstance(data, dict) and "provinces" in data:
        return read_json_2025(data)
    if isinstance(data, dict) and "data" in data:
        return read_json_2024(data)
    raise UnitListError(f"Tệp {path.name} không theo định dạng danh mục đơn vị hành chính đã biết "
                        "(cần khóa «data» của danh mục 2024 hoặc «provinces» của danh mục 2025).")


def only_provinces(units: UnitList, codes: set[str]) -> UnitList:
    """Return the part of ``units`` under the provinces ``codes`` (the provinces a plan needs)."""
    keep: set[str] = set(codes)
    rows = []
    for row in sorted(units.rows, key=lambda r: r.level):
        if (row.level == 1 and row.code in codes) or (row.parent_code in keep):
            rows.append(row)
            keep.add(row.code)
    covered = {c for r in rows if r.level == 1 for c in (r.code, *(m for m, _ in r.merged_from))}
    return UnitList(rows=rows, provinces=covered, as_of=units.as_of, merges_are_hints=units.merges_are_hints)
