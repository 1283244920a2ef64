"""A valid, complete return for any loaded form: other tests fill workbooks with it.

``consistent_values(form)`` gives every input cell a small, distinct-looking number that passes
every error rule of PL02 and PL03 (and raises no warning): leaves come from the table below,
totals are Nam + Nữ, and every equality rule whose left side is one cell is then solved for it.
A row missing from the table gets zeros, which satisfy every rule of the shipped forms.
"""

from __future__ import annotations

from pathlib import Path

from tracker.catalog import Form
from tracker.catalog_folder import Catalog, load_forms
from tracker.expressions import Cell, CellKey
from tracker.rules import evaluate_expression

FORMS_DIR = Path(__file__).resolve().parent.parent / "report_forms"

# (sheet, row) -> (male, female) for a "sex" row, (total, female) for a "women" row, or a total.
LEAVES: dict[tuple[str, str], int | float | tuple[int, int]] = {
    ("B01", "communes"): 20,
    ("B01", "villages"): 200,
    ("B01", "children_0_6"): (600, 560),
    ("B01", "children_6_11"): (500, 480),
    ("B01", "children_11_16"): (450, 430),
    ("B01", "minority"): (100, 90),
    ("B01", "births"): (55, 50),
    **{("B02", f"g_{g}"): (2, 1) for g in "a b c d dd e g h i k l m n o".split()},
    ("B02", "special_total"): (20, 10),
    ("B02", "special_supported"): (18, 9),
    ("B02", "at_risk"): (40, 35),
    ("B02", "at_risk_supported"): (30, 30),
    ("B03", "cases"): 5,
    ("B03", "victims"): (4, 6),
    ("B03", "form_violence"): (2, 1),
    ("B03", "form_sexual"): (1, 4),
    ("B03", "form_exploitation"): (1, 0),
    ("B03", "form_neglect"): (0, 1),
    ("B03", "age_0_6"): (1, 1),
    ("B03", "age_6_11"): (1, 2),
    ("B03", "age_11_16"): (2, 3),
    ("B03", "place_family"): (2, 2),
    ("B03", "place_school"): (1, 1),
    ("B03", "place_community"): (1, 2),
    ("B03", "place_online"): (0, 1),
    ("B03", "perp_family"): (2, 2),
    ("B03", "perp_caregiver"): (0, 1),
    ("B03", "perp_acquaintance"): (1, 2),
    ("B03", "perp_stranger"): (1, 1),
    ("B03", "handled_criminal"): 2,
    ("B03", "handled_admin"): 1,
    ("B03", "handled_pending"): 2,
    ("B03", "supported"): (4, 6),
    ("B03", "hotline_111"): 12,
    ("B04", "staff_district"): (1, 2),
    ("B04", "staff_commune"): (10, 12),
    ("B04", "collaborators"): (100, 120),
    ("B04", "villages_with_collaborator"): 150,
    ("B04", "trained"): (50, 70),
    ("B04", "documents"): 8,
    ("B04", "comm_events"): 30,
    ("B04", "comm_participants"): 1500,
    ("B04", "forums"): 3,
    ("B04", "child_friendly_communes"): 15,
    ("B04", "play_spaces"): 40,
    ("B05", "injured"): (18, 9),
    ("B05", "injured_drowning"): (3, 1),
    ("B05", "injured_traffic"): (5, 3),
    ("B05", "injured_fall"): (4, 2),
    ("B05", "injured_burn"): (1, 1),
    ("B05", "injured_poison"): (1, 0),
    ("B05", "injured_electric"): (1, 0),
    ("B05", "injured_animal"): (2, 1),
    ("B05", "injured_other"): (1, 1),
    ("B05", "deaths_injury"): (2, 1),
    ("B05", "death_drowning"): (1, 1),
    ("B05", "death_traffic"): (1, 0),
    ("B05", "deaths_all"): (5, 3),
    ("B05", "drowning_incidents"): 3,
    ("B05", "swim_classes"): 10,
    ("B05", "swim_taught"): (200, 180),
    ("B05", "safe_swimmers"): (400, 380),
    ("B05", "safe_homes"): 500,
    ("B05", "safe_schools"): 30,
    ("B05", "safe_communities"): 10,
    ("B06", "party_committee"): (45, 8),
    ("B06", "party_standing"): (13, 2),
    ("B06", "council_district"): (40, 12),
    ("B06", "council_commune"): (500, 140),
    ("B06", "agencies_woman_leader"): (30, 6),
    ("B06", "jobs"): (2000, 900),
    ("B06", "vocational"): (1500, 700),
    ("B06", "dv_cases"): 6,
    ("B06", "dv_victims"): (7, 6),
    ("B06", "dv_victims_supported"): (7, 6),
    ("B06", "child_marriage"): 4,
    ("B07", "district_budget"): 500.5,
    ("B07", "commune_budget"): 300,
    ("B07", "national_programmes"): 150.25,
    ("B07", "social"): 80,
    ("B07", "fund"): 20,
}


def _leaf(form: Form, key: CellKey) -> int | float:
    sheet_code, row_code, column_key = key
    breakdown = form.sheet(sheet_code).column(column_key).breakdown
    spec = LEAVES.get((sheet_code, row_code), 0)
    if not isinstance(spec, tuple):
        return spec if breakdown == "total" else 0
    first, second = spec
    set_name = form.sheet(sheet_code).column_set.name
    if set_name == "women":
        return first if breakdown == "total" else second
    return {"male": first, "female": second, "total": first + second}.get(breakdown, 0)


def consistent_values(form: Form) -> dict[CellKey, int | float]:
    """Return a value for every input cell of ``form`` that passes all its error rules.

    Integers everywhere except money (Biểu 07); both periods hold the same numbers, so the stock
    movement warning stays quiet too.
    """
    values: dict[CellKey, int | float] = {key: _leaf(form, key) for key in form.input_keys()}
    inputs = set(values)
    for _ in range(3):
        for rule in form.rules:
            for instance in rule.instances:
                if rule.check.op == "=" and isinstance(instance.left, Cell) and instance.left.key in inputs:
                    solved = evaluate_expression(instance.right, values)
                    if solved is not None:
                        values[instance.left.key] = int(solved) if solved == int(solved) else solved
    return values


def shipped_forms() -> Catalog:
    """Return the forms shipped in report_forms/ (PL02 and PL03)."""
    return load_forms(FORMS_DIR)
