"""Issue 7: whatever the bytes, the server's read path ends in a result or a refusal.

The path is the one ``returns.receive_return`` takes: ``guard.inspect`` and then
``tracker.parsing:parse_return`` in the isolated worker. Mutations start from a valid return: flipped
bytes, truncation, zip members spliced in from another file or dropped, and values edited in the sheet
XML. ``scripts/fuzz_long.py`` runs the same property for as long as you like.
"""
from __future__ import annotations

import io
import math
import os
import re
import zipfile
from functools import lru_cache
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import badfiles
from forms_fixtures import consistent_values, shipped_forms
from returns_fixtures import filled_return, sample_texts
from tracker import returns
from tracker.guard import Limits, Refusal, inspect
from tracker.parsing import NARRATIVE_SHEET_CODE, ParseResult

FORMS = shipped_forms()
FORM = FORMS["PL03"]
SECRET = "fuzz-secret"
# The server's limits for the shipped forms (returns.guard_limits), fixed here to keep the test quick.
LIMITS = Limits(max_row=400, max_col=40)
PARSE_TIMEOUT = 20.0
SHEET_CODES = {sheet.code for sheet in FORM.sheets} | {NARRATIVE_SHEET_CODE}


@lru_cache(maxsize=1)
def valid_return() -> bytes:
    return filled_return(FORM, consistent_values(FORM), sample_texts(FORM), secret=SECRET)


@lru_cache(maxsize=1)
def members() -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(valid_return())) as archive:
        return {info.filename: archive.read(info) for info in archive.infolist()}


def rezip(parts: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in parts.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def server_read(data: bytes) -> ParseResult | Refusal:
    """Run the server's read path on ``data``; return its outcome. Anything else propagates (a WorkerError too:
    the upload would answer 500 if one escaped ``returns._parse``)."""
    settings = returns.UploadSettings(max_bytes=LIMITS.max_bytes, parse_timeout=PARSE_TIMEOUT,
                                      parse_memory_limit=1024 * 1024 * 1024, secret=SECRET)
    try:
        inspected = inspect(data, "bao-cao.xlsx", LIMITS)
        # returns._parse is the server's call into the worker: it maps worker failures and the readers'
        # ValueError/KeyError/... to refusals, so what escapes it would escape the upload too.
        return returns._parse(data, FORMS, FORM, settings, {}, inspected.formulas)
    except Refusal as outcome:
        return outcome


# ---------------------------------------------------------------- mutations


@st.composite
def flipped(draw: Any) -> bytes:
    data = bytearray(valid_return())
    for _ in range(draw(st.integers(1, 8))):
        at = draw(st.integers(0, len(data) - 1))
        data[at] = draw(st.integers(0, 255))
    return bytes(data)


@st.composite
def truncated(draw: Any) -> bytes:
    data = valid_return()
    return data[: draw(st.integers(0, len(data) - 1))]


@st.composite
def spliced(draw: Any) -> bytes:
    parts = dict(members())
    names = sorted(parts)
    action = draw(st.sampled_from(["drop", "swap", "foreign", "duplicate_content"]))
    name = draw(st.sampled_from(names))
    if action == "drop":
        del parts[name]
    elif action == "swap":
        other = draw(st.sampled_from(names))
        parts[name], parts[other] = parts[other], parts[name]
    elif action == "foreign":
        donor = draw(st.sampled_from([badfiles.good_xlsx(), badfiles.xlsm_bytes()]))
        with zipfile.ZipFile(io.BytesIO(donor)) as archive:
            donor_name = draw(st.sampled_from(sorted(archive.namelist())))
            parts[name] = archive.read(donor_name)
    else:
        parts[name] = parts[name] * draw(st.integers(2, 4))
    return rezip(parts)


SHEET_VALUES = st.one_of(
    st.integers(-10**20, 10**20).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["", "NaN", "1.234,5", "1e308", "-0", "<script>", "&amp;", "]]>", "\u202e", "A1", "#REF!"]),
    st.text(max_size=20).map(lambda t: re.sub(r"[<&\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]", "", t)),
)


@st.composite
def edited_values(draw: Any) -> bytes:
    parts = dict(members())
    sheets = sorted(n for n in parts if n.startswith("xl/worksheets/sheet"))
    name = draw(st.sampled_from(sheets))
    xml = parts[name].decode("utf-8")
    values = list(re.finditer(r"<v>([^<]*)</v>", xml))
    if values:
        for _ in range(draw(st.integers(1, 5))):
            match = values[draw(st.integers(0, len(values) - 1))]
            new = draw(SHEET_VALUES)
            xml = xml[: match.start(1)] + new + xml[match.end(1):]
            values = list(re.finditer(r"<v>([^<]*)</v>", xml))
    if draw(st.booleans()):
        # Change a cell's type: a number read as a shared-string index, an error or a boolean.
        xml = re.sub(r'<c r="([A-Z]+\d+)"', lambda m: f'<c r="{m.group(1)}" t="{draw(st.sampled_from("sebn"))}"',
                     xml, count=draw(st.integers(1, 3)))
    parts[name] = xml.encode("utf-8")
    return rezip(parts)


class Mutant(bytes):
    """Bytes with a short repr: Hypothesis prints every example it reports, and a return is 35 KB."""

    def __repr__(self) -> str:
        import hashlib

        return f"<mutant {len(self)} bytes sha256 {hashlib.sha256(self).hexdigest()[:16]}>"


MUTATED = st.one_of(flipped(), truncated(), spliced(), edited_values()).map(Mutant)


def check(data: bytes) -> None:
    outcome = server_read(data)
    # Shown by --hypothesis-show-statistics: how many mutants got past the guard into the parser.
    event(getattr(outcome, "code", type(outcome).__name__))
    if isinstance(outcome, Refusal):
        # Something the officer can act on: a Vietnamese message and a 4xx, never a 5xx.
        assert outcome.message and 400 <= outcome.status < 500, outcome
        return
    # A result: every issue with its severity and message, every value a finite number on the form's own cells.
    assert all(issue.severity in ("error", "warning") and issue.message for issue in outcome.issues), outcome.issues
    assert all(v.value is None or math.isfinite(v.value) for v in outcome.values)
    assert {v.sheet for v in outcome.values} <= SHEET_CODES


@settings(max_examples=int(os.environ.get("TRACKER_FUZZ_EXAMPLES", "200")), deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(MUTATED)
def test_any_mutated_return_ends_in_a_result_or_a_refusal(data: bytes) -> None:
    check(data)


def test_the_unmutated_return_parses_complete() -> None:
    outcome = server_read(valid_return())
    assert isinstance(outcome, ParseResult) and outcome.complete, outcome
