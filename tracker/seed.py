"""Load units and plans from the data files in ``report_forms/`` into the database.

Loading is idempotent: units are matched by code, plans by code, and what already exists is left as
it is (an admin's later edit of a deadline is not undone by a second ``seed``).
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, Iterable

from sqlalchemy import select

from . import unit_lists
from .extensions import db
from .models import Assignment, Contact, Plan, PlanState, Role, Unit, User, Visit, in_force_on
from .timeutil import as_utc, local_date
from .unit_import import import_units

# Re-exported: the benches and older callers import it from here.
normalize_name = unit_lists.normalize_name
# The GSO lists the repository's 2024 data comes from are dated 01/05/2024.
DEFAULT_LIST_DATE = date(2024, 5, 1)


@dataclass
class SeedReport:
    units_added: int = 0
    plans_added: list[str] = field(default_factory=list)
    users_added: list[tuple[str, str, str]] = field(default_factory=list)  # email, password, role
    contacts_added: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.units_added or self.plans_added or self.users_added or self.contacts_added)


def _as_dicts(units: unit_lists.UnitList) -> list[dict[str, Any]]:
    return [{"level": r.level, "code": r.code, "name": r.name, "kind": r.kind, "parent_code": r.parent_code}
            for r in units.rows]


def read_units_csv(path: Path) -> list[dict[str, Any]]:
    """Return GSO rows (level, code, name, kind, parent_code) from the CSV layout of the data folder."""
    return _as_dicts(unit_lists.read_unit_list(path))


def read_units_json(path: Path) -> list[dict[str, Any]]:
    """Return GSO rows from the nationwide dvhcvn JSON (provinces, districts, communes)."""
    return _as_dicts(unit_lists.read_unit_list(path))


def load_units(rows: Iterable[dict[str, Any]], as_of: date = DEFAULT_LIST_DATE) -> int:
    """Add the units of ``rows`` as in force from ``as_of`` (closing nothing); return how many were added."""
    listed = unit_lists.UnitList(rows=[unit_lists.UnitRow(r["level"], r["code"], r["name"], r["kind"],
                                                          r["parent_code"]) for r in rows])
    return import_units(listed, as_of).added


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
    units_as_of = _as_date(data.get("units_as_of"))
    # Pinned on the plan, so that a later deadline edit never moves the map its units are named on.
    units_on = units_as_of or local_date(as_utc(deadline))
    units = {u.code: u for u in db.session.scalars(select(Unit).where(in_force_on(units_on)))}

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
                reminder_settings=dict(data.get("reminders", {})), units_as_of=units_on,
                state=data.get("state", PlanState.OPEN))
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
    plans = [tomllib.loads(f.read_text(encoding="utf-8")) for f in sorted((forms_dir / "plans").glob("*.toml"))]
    # Unit lists first, oldest map first, so that each later list closes and links the one before.
    lists = sorted({(_as_date(d.get("units_list_date")) or DEFAULT_LIST_DATE, d["units_file"],
                     tuple(d.get("provinces") or ([d["province"]] if d.get("province") else [])))
                    for d in plans if d.get("units_file")})
    for list_date, units_file, provinces in lists:
        listed = unit_lists.read_unit_list(forms_dir / units_file)
        if provinces:
            listed = unit_lists.only_provinces(listed, set(provinces))
        report.units_added += import_units(listed, list_date).added
    for data in plans:
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
