"""One check of an email address: trimmed, lower-cased, and what SMTP servers accept without quoting."""
from __future__ import annotations

import re

_EMAIL_RE = re.compile(
    r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$")


class InvalidEmail(ValueError):
    """The text is not an address a mail server would take; the message says so in Vietnamese."""


def normalize_email(address: str) -> str:
    """Return ``address`` trimmed and lower-cased; raise InvalidEmail when it is not a valid address."""
    value = address.strip().lower()
    if len(value) > 254 or not _EMAIL_RE.match(value) or len(value.split("@")[0]) > 64:
        raise InvalidEmail(f"Địa chỉ email «{address.strip()}» không hợp lệ.")
    return value
