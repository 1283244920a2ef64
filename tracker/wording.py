"""One wording for the facts every page, workbook, email and export states: the deadline and numbers.

Plain values in, text out; no clock, no Flask. The Jinja filters ``num`` and ``deadline`` call these.
"""
from __future__ import annotations

import math
from datetime import date, datetime, timedelta

from .timeutil import fmt_date, local


def format_number(value: float | int | None, decimals: int = 2, blank: str = "") -> str:
    """Return ``value`` written the Vietnamese way: "." between thousands, "," before decimals.

    2895.75 -> "2.895,75"; 26900 -> "26.900"; 92.3077 -> "92,31"; at most ``decimals`` decimals,
    trailing zeros dropped. ``blank`` for None; NaN and infinities come back as their English names.
    """
    if value is None:
        return blank
    value = float(value)
    if math.isnan(value) or math.isinf(value):
        return str(value)
    rounded = round(value, decimals)
    if abs(rounded - round(rounded)) < 10 ** -(decimals + 3):
        text = f"{int(round(rounded)):,}"
    else:
        text = f"{rounded:,.{decimals}f}".rstrip("0").rstrip(".")
    return text.replace(",", "\0").replace(".", ",").replace("\0", ".")


def _short_date(value: datetime) -> str:
    # The department's own style in its documents: "10/5/2024" (no leading zeros).
    return f"{value.day}/{value.month}/{value.year}"


def deadline_phrase(deadline: datetime) -> str:
    """Return the last on-time moment in words: "hết ngày 09/05/2024" for a midnight deadline.

    A deadline at another time of day reads "trước 17:00 ngày 09/05/2024".
    """
    shown = local(deadline)
    if (shown.hour, shown.minute, shown.second, shown.microsecond) == (0, 0, 0, 0):
        return f"hết ngày {fmt_date(deadline - timedelta(microseconds=1))}"
    return f"trước {shown:%H:%M} ngày {fmt_date(deadline)}"


def plan_phrase(deadline: datetime) -> str:
    """Return the deadline as a plan states it: "trước ngày 10/5/2025" for midnight (Vietnam time), else
    "trước 17:00 ngày 9/5/2025" (what a copied plan gets as its ``deadline_text``)."""
    shown = local(deadline)
    if (shown.hour, shown.minute, shown.second, shown.microsecond) == (0, 0, 0, 0):
        return f"trước ngày {_short_date(shown)}"
    return f"trước {shown:%H:%M} ngày {_short_date(shown)}"


def deadline_wording(deadline: datetime) -> str:
    """Return the one wording of a deadline used everywhere.

    Midnight 10/5/2024 (Vietnam time): "hết ngày 09/05/2024 (hạn: trước ngày 10/5/2024)", the last
    day the officer can still send, then the plan's own phrase. Another time of day:
    "trước 17:00 ngày 09/05/2024".
    """
    shown = local(deadline)
    if (shown.hour, shown.minute, shown.second, shown.microsecond) == (0, 0, 0, 0):
        return f"{deadline_phrase(deadline)} (hạn: trước ngày {_short_date(shown)})"
    return deadline_phrase(deadline)


def plan_document(doc_number: str, doc_date: date | None, doc_date_text: str = "") -> str:
    """Return how a report cites its plan: "Kế hoạch số …/KH-SLĐTBXH ngày …/4/2024".

    ``doc_number`` as issued ("…/KH-SLĐTBXH" while it is left blank); the date is ``doc_date`` as
    dd/mm/yyyy, else ``doc_date_text`` (the part the plan printed, "…/4/2024"), else "…".
    """
    number = doc_number.strip() or "…"
    when = fmt_date(doc_date) if doc_date is not None else (doc_date_text.strip() or "…")
    return f"Kế hoạch số {number} ngày {when}"
