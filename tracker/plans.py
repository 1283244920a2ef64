"""Plan use cases: copying a plan for next year (CLI ``plan-copy`` and the admin wizard), its preview,
confirming a copy made onto a new map unit by unit, opening and closing plans.

A copy moves the calendar with the deadline (``plan_calendar``); exemptions stay behind unless asked
for; the document number and date are left for staff. With ``units_as_of`` the copy names its units on
the map of that date: each old unit's communes are followed through the "made from" links to the new
units they became, and the copy is a draft until staff confirm every proposed unit. Without it the copy keeps
the source's units and is pinned to the source's map date (``Plan.units_as_of``), never left to follow its new
deadline: by then a code may name another unit. A plan takes returns only while open (``refuse_unless_open``).
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from .extensions import db
from .guard import Refusal
from .models import Assignment, Plan, PlanState, Unit, UnitMerge, Visit, in_force_on
from .plan_calendar import Shift, rewrite_years, shift_between, shift_periods
from .wording import plan_phrase


class PlanCopyError(ValueError):
    """The copy cannot be made; the message says why, in Vietnamese."""


class PlanStateError(ValueError):
    """The plan cannot move to the asked state; the message says why, in Vietnamese."""


CODE_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789-_")
# Old communes followed through at most this many successive maps.
_MAX_HOPS = 5


@dataclass(frozen=True)
class Source:
    """One old unit a proposed unit was carried from."""

    code: str
    name: str
    share: str          # "full", "partial", or "same" when the unit itself is still in force
    plan_unit: str      # the source plan's unit it belonged to ("219 Huyện Lục Ngạn")
    form: str | None


@dataclass
class Proposal:
    """A unit of the copy with its form, and where it comes from."""

    unit: Unit
    form_code: str | None
    exempt_reason: str | None
    sources: list[Source] = field(default_factory=list)

    @property
    def merged(self) -> bool:
        """True when units of two or more of the source plan's units end up here."""
        return len({s.plan_unit for s in self.sources}) > 1

    @property
    def partial(self) -> bool:
        return any(s.share == "partial" for s in self.sources)


@dataclass
class VisitCopy:
    unit: Unit
    old_date: date
    new_date: date
    session_starts: list[str]
    note: str
    communes: list[Unit]


@dataclass
class CopyPreview:
    """Everything the copy will hold, shown to the admin before anything is written."""

    source: Plan
    code: str
    title: str
    deadline: datetime
    deadline_text: str
    shift: Shift
    periods: list[tuple[dict[str, Any], dict[str, Any]]]   # (old, new)
    proposals: list[Proposal]
    visits: list[VisitCopy]
    dropped_exemptions: list[tuple[str, str, str]]          # (unit code, unit name, reason)
    units_as_of: date | None
    unmatched: list[str]                                    # old communes with no unit on the new map
    split: dict[str, list[str]]                             # old commune -> the new units it went to

    @property
    def draft(self) -> bool:
        return self.units_as_of is not None


def _default_form(source: Plan) -> str | None:
    counts = Counter(a.form_code for a in source.assignments if a.form_code)
    return counts.most_common(1)[0][0] if counts else None


def _communes(unit: Unit) -> list[Unit]:
    """Return the commune-level units under ``unit`` (itself when it is one)."""
    if unit.level >= 3:
        return [unit]
    found: list[Unit] = []
    frontier = [unit.id]
    while frontier:
        children = db.session.scalars(select(Unit).where(Unit.parent_id.in_(frontier))).all()
        found.extend(c for c in children if c.level >= 3)
        frontier = [c.id for c in children if c.level < 3]
    return found


def _successors(old: Unit, on: date) -> list[tuple[Unit, str]]:
    """Return the units in force on ``on`` that ``old`` became, with "full"/"partial"/"same"."""
    if old.in_force(on):
        return [(old, "same")]
    result: list[tuple[Unit, str]] = []
    frontier: list[tuple[int, str]] = [(old.id, "full")]
    for _ in range(_MAX_HOPS):
        if not frontier:
            break
        rows = db.session.execute(select(UnitMerge.source_id, UnitMerge.share, Unit)
                                  .join(Unit, Unit.id == UnitMerge.unit_id)
                                  .where(UnitMerge.source_id.in_([i for i, _ in frontier]))).all()
        shares = dict(frontier)
        frontier = []
        for source_id, share, unit in rows:
            combined = "partial" if "partial" in (share, shares[source_id]) else "full"
            if unit.in_force(on):
                result.append((unit, combined))
            elif unit.valid_from <= on:
                frontier.append((unit.id, combined))
    return result


def _check_codes(source_code: str, new_code: str) -> Plan:
    source = db.session.scalar(select(Plan).where(Plan.code == source_code)
                               .options(selectinload(Plan.assignments).selectinload(Assignment.unit),
                                        selectinload(Plan.visits).selectinload(Visit.communes)))
    if source is None:
        raise PlanCopyError(f"Không tìm thấy kế hoạch mã «{source_code}».")
    if not new_code or not set(new_code) <= CODE_CHARS or len(new_code) > 64:
        raise PlanCopyError("Mã kế hoạch chỉ gồm chữ thường không dấu, số, dấu gạch ngang và gạch dưới.")
    if db.session.scalar(select(Plan).where(Plan.code == new_code)) is not None:
        raise PlanCopyError(f"Mã kế hoạch «{new_code}» đã tồn tại.")
    return source


def preview_copy(source_code: str, new_code: str, deadline: datetime, title: str | None = None, *,
                 keep_exemptions: bool = False, units_as_of: date | None = None) -> CopyPreview:
    """Return what ``copy_plan`` would create, writing nothing.

    Raises PlanCopyError when the source is unknown, the new code is taken or malformed, or the map of
    ``units_as_of`` holds no unit at all.
    """
    source = _check_codes(source_code, new_code)
    if units_as_of is not None and db.session.scalar(select(Unit.id).where(in_force_on(units_as_of)).limit(1)) is None:
        raise PlanCopyError(f"Chưa có danh mục đơn vị hành chính nào có hiệu lực vào ngày {units_as_of:%d/%m/%Y}: "
                            "hãy nhập danh mục (units-import) trước.")
    shift = shift_between(source.deadline, deadline)
    default_form = _default_form(source)
    dropped = [] if keep_exemptions else [(a.unit.code, a.unit.name, a.exempt_reason or "")
                                          for a in source.assignments if a.exempt]

    def terms(a: Assignment) -> tuple[str | None, str | None]:
        if a.exempt and keep_exemptions:
            return None, a.exempt_reason
        return a.form_code or default_form, None

    proposals: list[Proposal] = []
    unmatched: list[str] = []
    split: dict[str, list[str]] = {}
    visits: list[VisitCopy] = []
    ordered = sorted(source.assignments, key=lambda a: a.unit.code)
    if units_as_of is None:
        for a in ordered:
            form, reason = terms(a)
            proposals.append(Proposal(a.unit, form, reason))
        for v in source.visits:
            visits.append(VisitCopy(v.unit, v.visit_date, shift.move(v.visit_date), list(v.session_starts), v.note,
                                    list(v.communes)))
    else:
        by_unit: dict[int, Proposal] = {}
        for a in ordered:
            form, reason = terms(a)
            label = f"{a.unit.code} {a.unit.name}"
            for commune in _communes(a.unit):
                targets = _successors(commune, units_as_of)
                if not targets:
                    # No link on record (a commune merged by an earlier reorganisation the database lacks).
                    unmatched.append(f"{commune.code} {commune.name} ({label})")
                if len(targets) > 1:
                    split[f"{commune.code} {commune.name}"] = [f"{t.code} {t.name}" for t, _ in targets]
                for target, share in targets:
                    proposal = by_unit.setdefault(target.id, Proposal(target, form, reason))
                    proposal.sources.append(Source(commune.code, commune.name, share, label, form))
        for proposal in by_unit.values():
            # Units of several old plan units: the form most of its old communes reported on.
            forms = Counter(s.form for s in proposal.sources)
            proposal.form_code = forms.most_common(1)[0][0]
            if proposal.form_code is not None:
                proposal.exempt_reason = None
        proposals = sorted(by_unit.values(), key=lambda p: p.unit.code)
        visits = _carry_visits(source, shift, units_as_of)
    new_title = title or (rewrite_years(source.title, shift.years) if shift.years else source.title)
    return CopyPreview(source=source, code=new_code, title=new_title, deadline=deadline,
                       deadline_text=plan_phrase(deadline), shift=shift,
                       periods=list(zip(source.periods, shift_periods(source.periods, shift))),
                       proposals=proposals, visits=visits, dropped_exemptions=dropped, units_as_of=units_as_of,
                       unmatched=unmatched, split=split)


def _carry_visits(source: Plan, shift: Shift, on: date) -> list[VisitCopy]:
    """Return the source's visits on the new map: one visit per new unit its communes became."""
    carried: list[VisitCopy] = []
    for v in source.visits:
        groups: dict[int, tuple[Unit, list[str]]] = {}
        for index, commune in enumerate(v.communes):
            for target, _ in _successors(commune, on)[:1]:
                unit, sessions = groups.setdefault(target.id, (target, []))
                if index < len(v.session_starts):
                    sessions.append(v.session_starts[index])
        for unit, sessions in groups.values():
            carried.append(VisitCopy(unit, v.visit_date, shift.move(v.visit_date),
                                     sessions or list(v.session_starts), v.note, [unit]))
    return carried


def copy_plan(source_code: str, new_code: str, deadline: datetime, title: str | None = None, *,
              keep_exemptions: bool = False, units_as_of: date | None = None) -> Plan:
    """Add the copy ``preview_copy`` describes and return it (a draft when ``units_as_of`` is given).

    Raises PlanCopyError as ``preview_copy`` does.
    """
    preview = preview_copy(source_code, new_code, deadline, title, keep_exemptions=keep_exemptions,
                           units_as_of=units_as_of)
    return create_copy(preview)


def create_copy(preview: CopyPreview) -> Plan:
    """Write the plan ``preview`` describes; the caller commits."""
    source = preview.source
    copy = Plan(code=preview.code, title=preview.title, issuer=source.issuer, doc_number="", doc_date=None,
                deadline=preview.deadline, deadline_text=preview.deadline_text,
                periods=[new for _, new in preview.periods], period_basis=source.period_basis,
                department_email=source.department_email, reminder_settings=dict(source.reminder_settings),
                copied_from_id=source.id, units_as_of=preview.units_as_of or source.units_on,
                state=PlanState.DRAFT if preview.draft else PlanState.OPEN)
    for p in preview.proposals:
        copy.assignments.append(Assignment(
            unit_id=p.unit.id, form_code=p.form_code, exempt_reason=p.exempt_reason, confirmed=not preview.draft,
            carried_from=[{"code": s.code, "name": s.name, "share": s.share, "plan_unit": s.plan_unit,
                           "form": s.form} for s in p.sources]))
    for v in preview.visits:
        copy.visits.append(Visit(unit_id=v.unit.id, visit_date=v.new_date, session_starts=v.session_starts,
                                 note=v.note, communes=v.communes))
    db.session.add(copy)
    db.session.flush()
    return copy


def confirm_unit(plan: Plan, assignment: Assignment, keep: bool) -> None:
    """Confirm (``keep``) or drop a proposed unit of a draft plan. Raises PlanStateError if not a draft."""
    if plan.state != PlanState.DRAFT:
        raise PlanStateError("Kế hoạch không còn là bản nháp: không cần xác nhận đơn vị.")
    if keep:
        assignment.confirmed = True
    else:
        db.session.delete(assignment)
    db.session.flush()


def refuse_unless_open(plan: Plan, template: str = "plan_closed") -> None:
    """Return None when ``plan`` is open; raise Refusal("plan_closed", 409) when it is closed or still a draft.

    One rule for every way a return arrives or changes (the upload page, the API, the mailbox, a staff
    confirmation of a held return, a withdrawal): a closed plan is read-only. ``template`` picks the message.
    """
    if plan.state != PlanState.OPEN:
        raise Refusal("plan_closed", template=template, plan=plan.code, detail=f"plan {plan.code} is {plan.state}")


def set_state(plan: Plan, state: PlanState) -> None:
    """Open a confirmed draft, close an open plan, or reopen a closed one.

    Raises PlanStateError when a draft still has unconfirmed units or the move is not one of those.
    """
    current = PlanState(plan.state)
    if state == PlanState.OPEN and current == PlanState.DRAFT:
        waiting = [a.unit.name for a in plan.assignments if not a.confirmed]
        if waiting:
            raise PlanStateError(f"Còn {len(waiting)} đơn vị chưa được xác nhận (ví dụ {waiting[0]}): "
                                 "hãy xác nhận hoặc bỏ từng đơn vị trước khi mở kế hoạch.")
        if not plan.assignments:
            raise PlanStateError("Kế hoạch chưa có đơn vị nào: không thể mở.")
    elif (current, state) not in {(PlanState.OPEN, PlanState.CLOSED), (PlanState.CLOSED, PlanState.OPEN)}:
        raise PlanStateError(f"Không thể chuyển kế hoạch từ «{current.label}» sang «{state.label}».")
    plan.state = state
    db.session.flush()
