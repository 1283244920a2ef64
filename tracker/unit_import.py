"""Import a list of administrative units of one date as dated unit versions (``units-import``).

A code already in force with the same name, kind, level and parent stays as it is; one that changed is
closed on the list's date and a new version begins; units of the provinces the list covers that it no
longer names are closed; "made from" links go from each new unit to the versions in force the day
before. Importing the same list twice changes nothing. Inserts and updates are bulk statements: the
3,321 communes of 2025 over the 10,595 of 2024 take seconds. The caller commits.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import insert, select, update

from .extensions import db
from .models import Unit, UnitMerge, in_force_on
from .unit_lists import UnitList

_CHUNK = 500


@dataclass
class ImportReport:
    added: int = 0
    closed: int = 0
    corrected: int = 0
    unchanged: int = 0
    merges_added: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.added or self.closed or self.corrected or self.merges_added)


@dataclass
class _Version:
    id: int
    name: str
    kind: str
    level: int
    parent_id: int | None
    valid_from: date
    valid_to: date | None


def _in_force(on: date) -> dict[str, _Version]:
    rows = db.session.execute(select(Unit.code, Unit.id, Unit.name, Unit.kind, Unit.level, Unit.parent_id,
                                     Unit.valid_from, Unit.valid_to).where(in_force_on(on)))
    return {code: _Version(*rest) for code, *rest in rows}


def import_units(units: UnitList, as_of: date) -> ImportReport:
    """Write ``units`` as the map in force from ``as_of``; return what changed."""
    report = ImportReport()
    current = _in_force(as_of)
    later: dict[str, date] = dict(db.session.execute(
        select(Unit.code, db.func.min(Unit.valid_from)).where(Unit.valid_from > as_of).group_by(Unit.code)).all())
    closes: list[dict[str, Any]] = []
    corrections: list[dict[str, Any]] = []
    by_level: dict[int, list[Any]] = {}
    for row in units.rows:
        by_level.setdefault(row.level, []).append(row)
    named: set[str] = set()
    for level in sorted(by_level):
        fresh: list[dict[str, Any]] = []
        for row in by_level[level]:
            if row.code in named:
                continue  # a code listed twice: the first one wins
            named.add(row.code)
            parent = current.get(row.parent_code) if row.parent_code else None
            parent_id = parent.id if parent else None
            old = current.get(row.code)
            # A unit made from others on this date (Tuyên Quang absorbing Hà Giang) is a new version even
            # when its name stays: it is another territory from then on.
            absorbs = old is not None and old.valid_from < as_of and any(c != row.code for c, _ in row.merged_from)
            if old is not None and not absorbs and (old.name, old.kind, old.level, old.parent_id) == (
                    row.name, row.kind, row.level, parent_id):
                report.unchanged += 1
                continue
            if old is not None and old.valid_from == as_of:
                # The same date imported again with other data: a correction of that version.
                corrections.append({"id": old.id, "name": row.name, "kind": row.kind, "level": row.level,
                                    "parent_id": parent_id})
                current[row.code] = _Version(old.id, row.name, row.kind, row.level, parent_id, as_of, old.valid_to)
                continue
            if old is not None:
                closes.append({"id": old.id, "valid_to": as_of})
            fresh.append({"code": row.code, "name": row.name, "kind": row.kind, "level": row.level,
                          "parent_id": parent_id, "valid_from": as_of,
                          "valid_to": old.valid_to if old is not None else later.get(row.code)})
        if fresh:
            # Closing first: the old version ends where the new one begins.
            if closes:
                db.session.execute(update(Unit), closes)
                report.closed += len(closes)
                closes = []
            db.session.execute(insert(Unit), fresh)
            # The children of the next level need the new rows' ids as their parents.
            by_code = {r["code"]: r for r in fresh}
            codes = list(by_code)
            for start in range(0, len(codes), _CHUNK):
                for code, uid in db.session.execute(select(Unit.code, Unit.id).where(
                        Unit.valid_from == as_of, Unit.code.in_(codes[start:start + _CHUNK]))):
                    r = by_code[code]
                    current[code] = _Version(uid, r["name"], r["kind"], r["level"], r["parent_id"], as_of,
                                             r["valid_to"])
            report.added += len(fresh)
    closes.extend({"id": uid, "valid_to": as_of} for uid in _absent(units, as_of, named))
    if corrections:
        db.session.execute(update(Unit), corrections)
        report.corrected = len(corrections)
    if closes:
        db.session.execute(update(Unit), closes)
        report.closed += len(closes)
    report.merges_added = _link_merges(units, as_of)
    db.session.flush()
    # The bulk statements bypass the identity map: objects loaded before must be read again.
    db.session.expire_all()
    return report


def _absent(units: UnitList, as_of: date, named: set[str]) -> list[int]:
    """Return the ids of units in force on ``as_of`` under the list's provinces that it does not name."""
    if not units.provinces:
        return []
    tree = {uid: (parent_id, code, level) for uid, parent_id, code, level in
            db.session.execute(select(Unit.id, Unit.parent_id, Unit.code, Unit.level))}

    def province(uid: int) -> str | None:
        seen = 0
        while uid in tree and seen < 10:
            parent_id, code, level = tree[uid]
            if level == 1 or parent_id is None:
                return code
            uid, seen = parent_id, seen + 1
        return None

    return [uid for code, uid in db.session.execute(select(Unit.code, Unit.id).where(in_force_on(as_of)))
            if code not in named and province(uid) in units.provinces]


def _link_merges(units: UnitList, as_of: date) -> int:
    """Record "made from" links of the list's units to the versions in force the day before ``as_of``."""
    wanted = [(row.code, old, share) for row in units.rows for old, share in row.merged_from]
    if not wanted:
        return 0
    now = {code: uid for code, uid in db.session.execute(select(Unit.code, Unit.id).where(in_force_on(as_of)))}
    before = {code: uid for code, uid in
              db.session.execute(select(Unit.code, Unit.id).where(in_force_on(as_of - timedelta(days=1))))}
    pairs: dict[tuple[int, int], str] = {}
    for code, old, share in wanted:
        unit_id, source_id = now.get(code), before.get(old)
        # An old unit the database never held (a province not loaded) or the same version is no link.
        if unit_id is None or source_id is None or unit_id == source_id:
            continue
        pairs.setdefault((unit_id, source_id), share)
    unit_ids = sorted({u for u, _ in pairs})
    existing: set[tuple[int, int]] = set()
    for start in range(0, len(unit_ids), _CHUNK):
        existing.update(db.session.execute(select(UnitMerge.unit_id, UnitMerge.source_id)
                                           .where(UnitMerge.unit_id.in_(unit_ids[start:start + _CHUNK]))).all())
    fresh = [{"unit_id": u, "source_id": s, "share": share, "hint": units.merges_are_hints}
             for (u, s), share in pairs.items() if (u, s) not in existing]
    if fresh:
        db.session.execute(insert(UnitMerge), fresh)
    return len(fresh)
