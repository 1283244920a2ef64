"""Which return an attachment says it is: the hidden identity sheet only, read in the parse worker.

An emailed return names no unit in the request, unlike an upload on a unit's page: the intake reads
the identity first to find the assignment (and to decide whether the sender may speak for that
unit), then hands the bytes to the upload use case, which reads and checks everything again.
"""
from __future__ import annotations

from .parsing import Identity, read_identity, read_sheets
from .workbook import META_SHEET_NAME


def read_claim(data: bytes, secret: str = "") -> Identity:
    """Return the identity of the workbook ``data``; raise Refusal("no_identity") when it has none.

    Runs inside ``tracker.isolation``'s worker: calamine reads only the metadata sheet.
    """
    return read_identity(read_sheets(data, (META_SHEET_NAME,)), secret)
