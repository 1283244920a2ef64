"""Which return an attachment says it is: the hidden identity sheet only, read in the parse worker.

An emailed return names no unit in the request, unlike an upload on a unit's page: the intake reads
the identity first to find the assignment (and to decide whether the sender may speak for that
unit), then hands the bytes to the upload use case, which reads and checks everything again.
"""
from __future__ import annotations

from .identity import META_SHEET_NAME, Identity, read_identity
from .parsing import read_sheets


def read_claim(data: bytes, secret: str = "") -> Identity:
    """Return the identity of the workbook ``data``; raise Refusal("no_identity") when it has none.

    Runs inside ``tracker.isolation``'s worker: calamine reads only the metadata sheet.
    """
    frame = read_sheets(data, (META_SHEET_NAME,)).get(META_SHEET_NAME)
    return read_identity(None if frame is None else frame.to_numpy(dtype=object), secret)
