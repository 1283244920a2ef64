"""One place for time: store UTC, compare aware instants, show Asia/Ho_Chi_Minh."""
from __future__ import annotations

import re
from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

LOCAL_TZ_NAME = "Asia/Ho_Chi_Minh"
LOCAL_TZ = ZoneInfo(LOCAL_TZ_NAME)


def zone_named(name: str) -> ZoneInfo:
    """Return the ZoneInfo called ``name``; raise ValueError when no such zone exists."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r}") from exc


def utc_now() -> datetime:
    """Return the current instant, aware, in UTC (the only function here that reads the clock)."""
    return datetime.now(timezone.utc)


# Instants the tracker can compute with: a deadline plus weeks of reminders, shown in Vietnam time,
# must stay inside datetime's range (year 1..9999), so anything far outside a plan's lifetime is refused.
EARLIEST_YEAR = 1900
LATEST_YEAR = 2200


def as_utc(value: datetime) -> datetime:
    """Return ``value`` in UTC; raise ValueError on a naive datetime, whose zone would be a guess,
    and on an instant outside years 1900-2200 (0001-01-01T00:00+14:00 does not even exist in UTC)."""
    if value.tzinfo is None:
        raise ValueError("naive datetime: a time zone is required")
    try:
        moved = value.astimezone(timezone.utc)
    except OverflowError:
        raise ValueError("instant out of range") from None
    if not EARLIEST_YEAR <= moved.year <= LATEST_YEAR:
        raise ValueError("instant out of range")
    return moved


def parse_instant(text: str) -> datetime:
    """Parse ISO 8601 with an offset (``Z`` allowed); raise ValueError when malformed or naive.

    An unencoded ``+07:00`` in a query string arrives as `` 07:00``; put the plus back.
    """
    text = re.sub(r" (\d{2}:?\d{2})$", r"+\1", text.strip()).replace("Z", "+00:00")
    return as_utc(datetime.fromisoformat(text))


_VN_INPUT = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})(?:[ ,T]+(\d{1,2})[:hg](\d{2}))?$")


def parse_vn_datetime(text: str) -> datetime:
    """Parse "dd/mm/yyyy HH:MM" (or "dd/mm/yyyy", meaning 00:00) on the Asia/Ho_Chi_Minh wall clock.

    Day first, whatever a browser's language would do; returns the instant in UTC. Raises ValueError
    when the text has another shape or names no real day or time.
    """
    match = _VN_INPUT.match(" ".join(text.split()))
    if match is None:
        raise ValueError(f"not a dd/mm/yyyy HH:MM time: {text!r}")
    day, month, year, hour, minute = match.groups()
    wall = datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0), tzinfo=LOCAL_TZ)
    return as_utc(wall)


def fmt_input(value: datetime) -> str:
    """Format ``value`` as the as-of field shows it: dd/mm/yyyy HH:MM in Vietnam time."""
    return local(value).strftime("%d/%m/%Y %H:%M")


def local(value: datetime) -> datetime:
    """Return ``value`` shown on the Asia/Ho_Chi_Minh wall clock."""
    return as_utc(value).astimezone(LOCAL_TZ)


def fmt_datetime(value: datetime | None) -> str:
    """Format as dd/mm/yyyy HH:MM in Vietnam time; '' for None."""
    return "" if value is None else local(value).strftime("%d/%m/%Y %H:%M")


def fmt_date(value: date | datetime | None) -> str:
    """Format as dd/mm/yyyy (a datetime is first moved to Vietnam time); '' for None."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        value = local(value)
    return value.strftime("%d/%m/%Y")


def local_date(value: datetime) -> date:
    """Return the Vietnam calendar date of the instant ``value``."""
    return local(value).date()
