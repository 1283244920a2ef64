"""The one check every ``next`` parameter goes through before the app redirects to it."""
from __future__ import annotations

from urllib.parse import unquote, urlsplit


def _suspicious(text: str) -> bool:
    # Browsers drop tabs and newlines inside URLs and read a backslash as a slash, so "/\t/evil" and
    # "/\\evil" both become "//evil": a link to another site. A space stays legal (a query's "Lục Nam").
    if any(ord(ch) < 32 or ord(ch) == 127 or ch == "\\" for ch in text) or text[:1].isspace():
        return True
    squeezed = "".join(ch for ch in text if not ch.isspace())
    parts = urlsplit(squeezed)
    return squeezed.startswith("//") or bool(parts.scheme or parts.netloc)


def safe_next(target: str | None) -> str | None:
    """Return ``target`` when it is a path of this site, else None.

    Refused: anything with a scheme or host, ``//``-prefixed paths, and any whitespace, control
    character or backslash, whether written plainly or percent-encoded (once or several times).
    """
    if not target or not target.startswith("/") or len(target) > 2000:
        return None
    decoded = target
    for _ in range(4):  # "%2509" is "%09" once decoded: look through every layer
        if _suspicious(decoded):
            return None
        once = unquote(decoded)
        if once == decoded:
            return target
        decoded = once
    return None
