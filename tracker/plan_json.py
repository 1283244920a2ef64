"""A plan as the API shows it: its calendar and the map date it names its units on."""
from __future__ import annotations

from typing import Any

from .models import Plan
from .timeutil import local


def plan_json(plan: Plan) -> dict[str, Any]:
    """Return ``code``, ``title``, ``deadline``, ``periods``, ``visits``, ``units_as_of`` (and ``state``)."""
    return {
        "code": plan.code, "title": plan.title, "deadline": local(plan.deadline).isoformat(),
        "state": plan.state, "units_as_of": plan.units_on.isoformat(),
        "periods": [{"label": p.get("label", ""), "start": p.get("start"), "end": p.get("end")}
                    for p in plan.periods],
        "visits": [{"unit": v.unit.code, "date": v.visit_date.isoformat(), "communes": [c.code for c in v.communes]}
                   for v in plan.visits],
    }
