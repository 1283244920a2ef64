"""The signed report: checks on a unit's signed, stamped report (PDF) before it is kept, and what its
digital signature says.

Plain bytes and settings in, plain results out; no Flask, no database, no clock, no network:

- ``inspect_pdf(data, limits)`` refuses what is not a PDF by its bytes, is encrypted, carries active
  content (JavaScript, launch/submit/import actions, embedded files, XFA forms, rich media) or exceeds
  the size and page limits, with a ``guard.Refusal`` naming the reason; it returns the page count;
- ``check_signature(data, trust_roots)`` validates the last PAdES signature with pyHanko against the
  configured trust roots, fetching nothing (no OCSP, CRL or AIA: revocation is not checked), and
  returns a ``SignatureCheck`` (None for a PDF without a signature, such as a scan);
- ``with_signed_report`` applies a plan's "signed report required" setting to a unit's standing.
"""
from __future__ import annotations

import io
import logging
import math
import warnings
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Iterable

from .compliance import Standing, Status
from .guard import Refusal

PDF_MAGIC = b"%PDF-"
# Keys and action types that make a PDF do something when opened or clicked, besides showing pages.
_ACTIVE_KEYS = {"/JS": "JavaScript", "/JavaScript": "JavaScript", "/EmbeddedFiles": "tệp đính kèm",
                "/EF": "tệp đính kèm", "/XFA": "biểu mẫu XFA", "/RichMedia": "nội dung đa phương tiện"}
_ACTIVE_ACTIONS = {"/JavaScript": "JavaScript", "/Launch": "lệnh mở chương trình",
                   "/SubmitForm": "lệnh gửi biểu mẫu", "/ImportData": "lệnh nhập dữ liệu",
                   "/GoToE": "lệnh mở tệp đính kèm", "/RichMediaExecute": "nội dung đa phương tiện"}
_MAX_OBJECTS = 200_000  # a walk past this many objects is a crafted file, not a scanned report


@dataclass(frozen=True)
class PdfLimits:
    max_bytes: int
    max_pages: int


@dataclass(frozen=True)
class PdfFacts:
    pages: int


@dataclass(frozen=True)
class SignatureCheck:
    """What the digital signature says: intact (the signed bytes unchanged, nothing but signing, form filling
    or validation data added after them), valid (intact and the cryptography checks out), trusted (the
    signer's certificate chains to a configured root)."""

    intact: bool
    valid: bool
    trusted: bool
    signer: str
    signed_at: datetime | None
    summary: str

    def as_dict(self) -> dict[str, Any]:
        """Return the stored form (``SignedReport.signature``), times in ISO 8601."""
        return {"intact": self.intact, "valid": self.valid, "trusted": self.trusted, "signer": self.signer,
                "signed_at": self.signed_at.isoformat() if self.signed_at else None, "summary": self.summary}


def _refuse(code: str, message: str, status: int = 422) -> Refusal:
    return Refusal(code, message, status)


def inspect_pdf(data: bytes, limits: PdfLimits) -> PdfFacts:
    """Return the page count of a PDF that may be kept; raise Refusal otherwise.

    Codes: ``empty`` (400), ``too_large`` (413), ``not_pdf``, ``encrypted``, ``active_content``,
    ``too_many_pages`` (422).
    """
    if not data:
        raise _refuse("empty", "Tệp rỗng: hãy chọn tệp PDF của báo cáo đã ký.", 400)
    if len(data) > limits.max_bytes:
        raise _refuse("too_large", f"Tệp PDF lớn hơn {limits.max_bytes // (1024 * 1024)} MB cho phép. Hãy quét lại "
                      "với độ phân giải thấp hơn (200 dpi là đủ đọc).", 413)
    if not data.startswith(PDF_MAGIC):
        raise _refuse("not_pdf", "Tệp này không phải tệp PDF. Hãy tải lên bản PDF của báo cáo đã ký, đóng dấu "
                      "(bản quét hoặc bản ký số).")
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        with _quiet():
            reader = PdfReader(io.BytesIO(data), strict=False)
            encrypted = reader.is_encrypted
            if encrypted:
                raise _refuse("encrypted", "Tệp PDF được đặt mật khẩu hoặc mã hoá nên hệ thống không kiểm tra "
                              "được. Hãy lưu lại bản PDF không đặt mật khẩu rồi tải lên.")
            reason = _active_content(reader)
            pages = len(reader.pages)
    except Refusal:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError, IndexError, RecursionError,
            OSError, AssertionError, NotImplementedError) as exc:
        raise _refuse("not_pdf", "Không đọc được tệp PDF (tệp hỏng hoặc không đúng định dạng). Hãy xuất lại "
                      "bản PDF rồi tải lên.") from exc
    if reason is not None:
        raise _refuse("active_content", f"Tệp PDF có {reason}, là nội dung có thể tự chạy khi mở nên không được "
                      "nhận. Hãy in ra PDF (Microsoft Print to PDF) hoặc quét lại bản giấy rồi tải lên.")
    if pages < 1:
        raise _refuse("not_pdf", "Tệp PDF không có trang nào.")
    if pages > limits.max_pages:
        raise _refuse("too_many_pages", f"Tệp PDF có {pages} trang, nhiều hơn {limits.max_pages} trang cho phép "
                      "của một báo cáo.")
    return PdfFacts(pages)


class _quiet:
    """Silence pypdf's and pyHanko's chatter about malformed files (logged, or warned): we decide."""

    def __enter__(self) -> None:
        self._warnings = warnings.catch_warnings()
        self._warnings.__enter__()
        warnings.simplefilter("ignore")
        self._levels = {name: logging.getLogger(name).level for name in ("pypdf", "pyhanko", "pyhanko_certvalidator")}
        for name in self._levels:
            logging.getLogger(name).setLevel(logging.CRITICAL)

    def __exit__(self, *exc: object) -> None:
        for name, level in self._levels.items():
            logging.getLogger(name).setLevel(level)
        self._warnings.__exit__(*exc)


def _active_content(reader: Any) -> str | None:
    """Return what active content the document reaches from its trailer, or None."""
    from pypdf.generic import ArrayObject, DictionaryObject, IndirectObject

    stack: list[Any] = [reader.trailer]
    seen: set[tuple[int, int]] = set()
    visited = 0
    while stack:
        obj = stack.pop()
        if isinstance(obj, IndirectObject):
            key = (obj.idnum, obj.generation)
            if key in seen:
                continue
            seen.add(key)
            obj = obj.get_object()
        visited += 1
        if visited > _MAX_OBJECTS:
            return "cấu trúc bất thường (quá nhiều đối tượng)"
        if isinstance(obj, DictionaryObject):
            for name, value in obj.items():
                if name in _ACTIVE_KEYS:
                    return _ACTIVE_KEYS[name]
                if name == "/S" and str(value) in _ACTIVE_ACTIONS:
                    return _ACTIVE_ACTIONS[str(value)]
                if name == "/Type" and str(value) == "/EmbeddedFile":
                    return "tệp đính kèm"
                if name in ("/Parent", "/P"):
                    continue  # back-pointers: their targets are reached from the top anyway
                stack.append(value)
        elif isinstance(obj, ArrayObject):
            stack.extend(obj)
    return None


def load_trust_roots(pem_paths: Iterable[str]) -> list[Any]:
    """Return the certificates in the PEM (or DER) files named by the ``SIGNATURE_TRUST_ROOTS`` setting.

    Raises OSError or ValueError on an unreadable file: a broken setting must fail loudly at use.
    """
    from pyhanko.keys import load_certs_from_pemder

    paths = [p for p in pem_paths if p]
    return list(load_certs_from_pemder(paths)) if paths else []


def check_signature(data: bytes, trust_roots: list[Any]) -> SignatureCheck | None:
    """Return the check of the PDF's last digital signature, or None when it has none.

    Altered (not intact) when the signed bytes changed, or when an update appended after signing does more
    than pyHanko's modification policy allows (e.g. a page's text replaced in an incremental update).

    Offline: nothing is fetched; a certificate that chains to no configured root is "not trusted".
    A PDF that pyHanko cannot parse as signed reads as an invalid signature, never an exception.
    """
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko_certvalidator import ValidationContext

    try:
        with _quiet():
            reader = PdfFileReader(io.BytesIO(data), strict=False)
            signatures = reader.embedded_signatures
            if not signatures:
                return None
            signature = signatures[-1]
            context = ValidationContext(trust_roots=trust_roots, allow_fetching=False, revocation_mode="soft-fail")
            status = validate_pdf_signature(signature, context)
    except Exception as exc:  # noqa: BLE001 - a malformed signature is a finding, not a crash
        return SignatureCheck(False, False, False, "", None, f"Không kiểm tra được chữ ký số: {type(exc).__name__}.")
    cert = status.signing_cert
    subject = cert.subject.native if cert is not None else {}
    signer = str(subject.get("common_name") or subject.get("organization_name") or "")
    signed_at = status.signer_reported_dt
    # The signed bytes unchanged is not enough: a later incremental update can replace a page's content
    # without touching them. Only what pyHanko's difference analysis accepts (a further signature, form
    # filling, long-term validation data) may follow the signature; anything else reads as altered.
    later_update_ok = bool(status.docmdp_ok) or status.modification_level is None
    intact = bool(status.intact) and later_update_ok
    valid = bool(intact and status.valid)
    trusted = bool(valid and status.trusted)
    if status.intact and not later_update_ok:
        summary = ("Văn bản đã bị thay đổi sau khi ký (nội dung được thêm hoặc thay vào sau chữ ký): chữ ký số "
                   "không còn giá trị cho văn bản này.")
    elif not intact:
        summary = "Văn bản đã bị sửa sau khi ký: chữ ký số không còn giá trị."
    elif not valid:
        summary = "Chữ ký số không hợp lệ."
    elif not trusted:
        summary = "Chữ ký số còn nguyên vẹn nhưng chứng thư của người ký không thuộc tổ chức chứng thực được cấu hình."
    else:
        summary = "Chữ ký số hợp lệ, văn bản còn nguyên vẹn, chứng thư do tổ chức chứng thực được tin cậy cấp."
    return SignatureCheck(intact, valid, trusted, signer, signed_at, summary)


def with_signed_report(standing: Standing, first_signed_at: datetime | None, deadline: datetime,
                       as_of: datetime) -> Standing:
    """Return ``standing`` under a plan that requires the signed report: complete only once both the
    data return and the signed report have arrived by ``as_of``; late when the signed report came at or
    after the deadline."""
    if standing.status not in (Status.ON_TIME, Status.LATE):
        return standing
    if first_signed_at is None or first_signed_at > as_of:
        late = as_of >= deadline
        days_late = max(1, math.ceil((as_of - deadline).total_seconds() / 86400)) if late else None
        return replace(standing, status=Status.INCOMPLETE, complete=False, late=late or standing.late,
                       days_late=days_late if late else standing.days_late)
    if standing.status is Status.ON_TIME and first_signed_at >= deadline:
        days_late = max(1, math.ceil((first_signed_at - deadline).total_seconds() / 86400))
        return replace(standing, status=Status.LATE, late=True, days_late=days_late)
    return standing
