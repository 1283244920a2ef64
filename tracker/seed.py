"""Load units and plans from the data files in ``report_forms/`` into the database.

Loading is idempotent: units are matched by code, plans by code, and what already exists is left as
it is (an admin's later edit of a deadline is not undone by a second ``seed``).
"""
from __future__ import annotations

import csv
import json
import tomllib
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, Iterable

from sqlalchemy import select

from .extensions import db
from .models import Assignment, Contact, Plan, Role, Unit, User, Visit
from .timeutil import as_utc

# The raw GSO list writes some kinds with a capital second word ("Thị Xã").
_KIND_FIXES = {"Thị Xã": "Thị xã", "Thị Trấn": "Thị trấn", "Thành Phố": "Thành phố"}


def normalize_name(name: str) -> str:
    """Return a unit name in NFC with the kind prefix spelled as Vietnamese officials write it."""
    name = unicodedata.normalize("NFC", " ".join(name.split()))
    for wrong, right in _KIND_FIXES.items():
        if name.startswith(wrong + " "):
            name = right + name[len(wrong):]
    return name


@dataclass
class SeedReport:
    units_added: int = 0
    plans_added: list[str] = field(default_factory=list)
    users_added: list[tuple[str, str, str]] = field(default_factory=list)  # email, password, role
    contacts_added: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.units_added or self.plans_added or self.users_added or self.contacts_added)


def read_units_csv(path: Path) -> list[dict[str, Any]]:
    """Return GSO rows (level, code, name, kind, parent_code) from the CSV layout of the data folder."""
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return [{"level": int(r["level"]), "code": r["code"].strip(), "name": normalize_name(r["name"]),
                 "kind": normalize_name(r["type"]), "parent_code": (r["parent_code"] or "").strip() or None}
                for r in csv.DictReader(handle)]


def read_units_json(path: Path) -> list[dict[str, Any]]:
    """Return GSO rows from the nationwide dvhcvn JSON (provinces, districts, communes)."""
    rows: list[dict[str, Any]] = []
    for p in json.loads(path.read_text(encoding="utf-8"))["data"]:
        rows.append({"level": 1, "code": p["level1_id"], "name": normalize_name(p["name"]),
                     "kind": p["type"], "parent_code": None})
        for d in p["level2s"]:
            rows.append({"level": 2, "code": d["level2_id"], "name": normalize_name(d["name"]),
                         "kind": normalize_name(d["type"]), "parent_code": p["level1_id"]})
            for c in d["level3s"]:
                rows.append({"level": 3, "code": c["level3_id"], "name": normalize_name(c["name"]),
                             "kind": normalize_name(c["type"]), "parent_code": d["level2_id"]})
    return rows


def load_units(rows: Iterable[dict[str, Any]]) -> int:
    """Insert the units not yet known, a level at a time so parents exist first; return how many."""
    known = {code: uid for code, uid in db.session.execute(select(Unit.code, Unit.id))}
    added = 0
    by_level: dict[int, list[dict[str, Any]]] = {}
    for row in rows:
        if row["code"] not in known:
            by_level.setdefault(row["level"], []).append(row)
    for level in sorted(by_level):
        fresh = [Unit(code=r["code"], name=r["name"], kind=r["kind"], level=r["level"],
                      parent_id=known.get(r["parent_code"]) if r["parent_code"] else None)
                 for r in by_level[level]]
        db.session.add_all(fresh)
        db.session.flush()
        known.update((unit.code, unit.id) for unit in fresh)
        added += len(fresh)
    return added


def _as_date(value: Any) -> date | None:
    if isinstance(value, date):
        return value
    return date.fromisoformat(value) if value else None


def load_plan(data: dict[str, Any]) -> Plan | None:
    """Create the plan described by a plan file unless its code exists; return it, or None if it existed.

    Raises ValueError naming the unit code when the file names a unit that is not loaded.
    """
    if db.session.scalar(select(Plan).where(Plan.code == data["code"])) is not None:
        return None
    deadline = data["deadline"]
    if not isinstance(deadline, datetime):
        deadline = datetime.fromisoformat(str(deadline))
    units = {u.code: u for u in db.session.scalars(select(Unit))}

    def unit(code: str) -> Unit:
        if code not in units:
            raise ValueError(f"Không tìm thấy đơn vị mã {code} trong danh mục đơn vị")
        return units[code]

    plan = Plan(code=data["code"], title=data["title"], issuer=data["issuer"],
                doc_number=data.get("doc_number", ""), doc_date=_as_date(data.get("doc_date")),
                doc_date_text=data.get("doc_date_text", ""),
                signed_report_required=bool(data.get("signed_report_required", False)),
                deadline=as_utc(deadline), deadline_text=data.get("deadline_text", ""),
                periods=[{k: str(v) for k, v in p.items()} for p in data.get("periods", [])],
                period_basis=data.get("period_basis", ""),
                department_email=data.get("department_email", ""),
                reminder_settings=dict(data.get("reminders", {})))
    for a in data.get("assignments", []):
        plan.assignments.append(Assignment(unit=unit(a["unit"]), form_code=a.get("form") or None,
                                           exempt_reason=a.get("exempt_reason") or None))
    for v in data.get("visits", []):
        plan.visits.append(Visit(unit=unit(v["unit"]), visit_date=_as_date(v["date"]),
                                 session_starts=list(v.get("sessions", [])), note=v.get("note", ""),
                                 communes=[unit(c) for c in v.get("communes", [])]))
    db.session.add(plan)
    db.session.flush()
    return plan


def seed(forms_dir: Path) -> SeedReport:
    """Load every plan file under ``forms_dir/plans`` with the units it names; the caller commits."""
    report = SeedReport()
    for plan_file in sorted((forms_dir / "plans").glob("*.toml")):
        data = tomllib.loads(plan_file.read_text(encoding="utf-8"))
        if data.get("units_file"):
            report.units_added += load_units(read_units_csv(forms_dir / data["units_file"]))
        if load_plan(data) is not None:
            report.plans_added.append(data["code"])
    return report


DEMO_PASSWORD = "demo-2024"


def seed_demo(report: SeedReport, hash_password) -> None:
    """Add demo accounts (admin, staff, one officer per assigned unit) and demo contact addresses."""
    existing = set(db.session.scalars(select(User.email)))

    def add_user(email: str, role: Role, name: str, unit: Unit | None = None) -> None:
        if email in existing:
            return
        db.session.add(User(email=email, role=role, name=name, unit=unit,
                            password_hash=hash_password(DEMO_PASSWORD)))
        existing.add(email)
        report.users_added.append((email, DEMO_PASSWORD, role.value + (f" {unit.code}" if unit else "")))

    add_user("admin@demo.bacgiang.vn", Role.ADMIN, "Quản trị hệ thống")
    add_user("canbo@demo.bacgiang.vn", Role.STAFF, "Cán bộ Phòng Trẻ em và Bình đẳng giới")
    units = db.session.scalars(select(Unit).join(Assignment, Assignment.unit_id == Unit.id)
                               .distinct().order_by(Unit.code)).all()
    for unit in units:
        add_user(f"donvi{unit.code}@demo.bacgiang.vn", Role.UNIT, f"Phòng LĐTBXH {unit.name}", unit)
        if not unit.contacts:
            unit.contacts.append(Contact(email=f"ldtbxh{unit.code}@demo.bacgiang.vn"))
            report.contacts_added += 1
    db.session.flush()
