"""Upload limits per unit and plan: how many uploads in a window, how many bytes stored.

Plain values in, plain results out: the upload use case (tracker.returns) counts what the database
holds and asks ``check`` whether one more upload of ``size`` bytes may go through at ``now``. The
counts come from the database, so every app server sees the same limits.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Mapping

from .guard import Refusal
from .timeutil import fmt_datetime, local

_UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
_RATE = re.compile(r"^\s*(\d+)\s*(?:per|/)\s*(\d+)?\s*(second|minute|hour|day)s?\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Limits:
    """At most ``count`` uploads per ``window``, and at most ``quota_bytes`` stored."""

    count: int
    window: timedelta
    quota_bytes: int


@dataclass(frozen=True)
class Usage:
    """What a unit has used in a plan at some instant."""

    uploads_in_window: int
    oldest_in_window: datetime | None
    stored_bytes: int
    limits: Limits

    @property
    def share_of_quota(self) -> float:
        """Return stored bytes as a fraction of the quota (0 when there is no quota)."""
        return self.stored_bytes / self.limits.quota_bytes if self.limits.quota_bytes else 0.0


class LimitRefusal(Refusal):
    """An upload over a limit; ``retry_after`` is the number of seconds to wait (None: waiting won't help)."""

    def __init__(self, code: str, message: str, status: int, retry_after: int | None = None) -> None:
        super().__init__(code, message, status)
        self.retry_after = retry_after

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.code, self.message, self.status, self.retry_after))


def parse_rate(text: str) -> tuple[int, timedelta]:
    """Return (count, window) of ``"20 per hour"``, ``"100/day"``, ``"5 per 10 minutes"``; raise ValueError."""
    match = _RATE.match(text or "")
    if not match:
        raise ValueError(f"invalid upload rate {text!r}: expected e.g. '20 per hour'")
    count, multiple, unit = int(match.group(1)), int(match.group(2) or 1), match.group(3).lower()
    return count, timedelta(seconds=multiple * _UNITS[unit])


def limits_for(unit_code: str, rate: str, quota_bytes: int, overrides: Mapping[str, Any] | None) -> Limits:
    """Return the unit's limits: the settings, raised or lowered by UPLOAD_LIMIT_OVERRIDES[unit_code]."""
    special = (overrides or {}).get(unit_code) or {}
    count, window = parse_rate(str(special.get("rate", rate)))
    return Limits(count, window, int(special.get("quota_bytes", quota_bytes)))


def _mib(size: int) -> str:
    return f"{size / (1024 * 1024):.1f}".replace(".", ",") + " MB"


def _window_text(window: timedelta) -> str:
    seconds = int(window.total_seconds())
    for name, size in (("ngày", 86400), ("giờ", 3600), ("phút", 60)):
        if seconds % size == 0:
            amount = seconds // size
            return f"{name}" if amount == 1 else f"{amount} {name}"
    return f"{seconds} giây"


def check(usage: Usage, size: int, now: datetime) -> LimitRefusal | None:
    """Return the refusal of one more upload of ``size`` bytes at ``now``, or None when it may go through.

    Over the rate: 429 ``too_many_uploads`` with the seconds until the oldest upload of the window
    leaves it. Over the quota: 413 ``quota_exceeded`` (waiting does not help).
    """
    limits = usage.limits
    if usage.uploads_in_window >= limits.count:
        oldest = usage.oldest_in_window or now
        free_at = oldest + limits.window
        wait = max(1, math.ceil((free_at - now).total_seconds()))
        minutes = max(1, math.ceil(wait / 60))
        return LimitRefusal(
            "too_many_uploads",
            f"Đơn vị đã tải lên {usage.uploads_in_window} lần trong {_window_text(limits.window)} qua, quá giới hạn "
            f"{limits.count} lần. Vui lòng thử lại sau {local(free_at).strftime('%H:%M')} ngày "
            f"{local(free_at).strftime('%d/%m/%Y')} (khoảng {minutes} phút nữa). Nếu cần nộp gấp, hãy liên hệ "
            "Sở LĐTBXH.", 429, retry_after=wait)
    if usage.stored_bytes + size > limits.quota_bytes:
        return LimitRefusal(
            "quota_exceeded",
            f"Đơn vị đã lưu {_mib(usage.stored_bytes)} trên hệ thống cho kế hoạch này; thêm tệp {_mib(size)} sẽ vượt "
            f"giới hạn {_mib(limits.quota_bytes)}. Báo cáo chưa được lưu. Hãy liên hệ Sở LĐTBXH để được hỗ trợ.",
            413)
    return None


def describe(usage: Usage, now: datetime) -> dict[str, str]:
    """Return the usage as staff read it on the unit page (Vietnamese, numbers formatted)."""
    return {"uploads": f"{usage.uploads_in_window}/{usage.limits.count} lần trong "
                       f"{_window_text(usage.limits.window)} qua (tính đến {fmt_datetime(now)})",
            "stored": f"{_mib(usage.stored_bytes)} / {_mib(usage.limits.quota_bytes)} "
                      f"({usage.share_of_quota * 100:.0f}%)".replace(".", ",")}
