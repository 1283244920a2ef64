"""Paging and streaming of a plan's status list for other systems (plain values in, text out).

The status API answers one JSON document by default; ``?page``/``?per_page`` cut it into pages and
``?format=jsonl|csv`` (or ``Accept: application/x-ndjson`` / ``text/csv``) give the whole list one unit
per line, written as it is sent.
"""
from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

MAX_PER_PAGE = 1000
DEFAULT_PER_PAGE = 100
JSONL = "application/x-ndjson"
CSV = "text/csv"
FORMATS = {"json": "application/json", "jsonl": JSONL, "csv": CSV}
CSV_COLUMNS = ("code", "name", "form", "status", "late", "complete", "first_received_at", "latest_received_at",
               "errors", "warnings", "review_state", "review_reason", "counted_version")
# Rows serialised per chunk sent: a few hundred keep the response streaming without a write per row.
CHUNK_ROWS = 500


class FeedError(ValueError):
    """A bad paging or format parameter: ``code`` for the API's error body, ``message`` in Vietnamese."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Paging:
    page: int
    per_page: int

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.per_page


def parse_paging(page: str | None, per_page: str | None) -> Paging | None:
    """Return the page asked for (None when neither parameter is given); raise FeedError when either is not a
    whole number, ``page`` < 1, or ``per_page`` outside 1…MAX_PER_PAGE."""
    if not (page or "").strip() and not (per_page or "").strip():
        return None
    try:
        number = int((page or "1").strip())
        size = int((per_page or str(DEFAULT_PER_PAGE)).strip())
    except ValueError:
        raise FeedError("invalid_page", "Tham số page và per_page phải là số nguyên dương, ví dụ "
                        f"?page=2&per_page={DEFAULT_PER_PAGE}.") from None
    if number < 1 or number > 10**7:
        raise FeedError("invalid_page", "Tham số page phải là số nguyên từ 1 trở lên.")
    if not 1 <= size <= MAX_PER_PAGE:
        raise FeedError("invalid_page", f"Tham số per_page phải từ 1 đến {MAX_PER_PAGE}.")
    return Paging(number, size)


def choose_format(name: str | None, accept: Iterable[tuple[str, float]]) -> str:
    """Return "json", "jsonl" or "csv": ``?format=`` when given, else the first of our types in ``accept``
    (``(mimetype, quality)`` pairs, best first), else "json". Raises FeedError on an unknown ``?format=``."""
    if name is not None and name.strip():
        chosen = name.strip().lower()
        if chosen not in FORMATS:
            raise FeedError("invalid_format", "Tham số format chỉ nhận json, jsonl hoặc csv.")
        return chosen
    for mimetype, quality in accept:
        if quality <= 0:
            continue
        for key, value in FORMATS.items():
            if mimetype == value:
                return key
        if mimetype in ("*/*", "application/*", "text/*"):
            break
    return "json"


# Compact, UTF-8 and in the order written: sorting the keys of 10,595 records and escaping every Vietnamese
# letter cost a national list as much as building it.
_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def json_document(head: Mapping[str, Any], records: Iterable[Mapping[str, Any]]) -> str:
    """Return one JSON document: the ``head`` fields and the records as its ``units`` list."""
    return _encode({**head, "units": list(records)})


def jsonl_chunks(records: Iterable[Mapping[str, Any]]) -> Iterator[str]:
    """Yield the records as JSON lines (UTF-8 text, one object and a newline each), a chunk at a time."""
    dumps = _encode
    lines: list[str] = []
    for record in records:
        lines.append(dumps(record))
        if len(lines) >= CHUNK_ROWS:
            yield "\n".join(lines) + "\n"
            lines = []
    if lines:
        yield "\n".join(lines) + "\n"


def _csv_row(record: Mapping[str, Any]) -> list[Any]:
    review = record.get("review") or {}
    flat = {**record, "review_state": review.get("state"), "review_reason": review.get("reason")}
    return ["" if flat.get(c) is None else ("true" if flat.get(c) is True else "false" if flat.get(c) is False
                                            else flat.get(c)) for c in CSV_COLUMNS]


def csv_chunks(records: Iterable[Mapping[str, Any]]) -> Iterator[str]:
    """Yield the records as CSV (header line first, RFC 4180 quoting, CRLF line ends), a chunk at a time.

    Cells that a spreadsheet would take for a formula (starting with = + - @) are prefixed with an
    apostrophe: unit names and review reasons are typed by people.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    count = 0
    for record in records:
        writer.writerow([_neutral(value) for value in _csv_row(record)])
        count += 1
        if count % CHUNK_ROWS == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def _neutral(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@"):
        return "'" + value
    return value
