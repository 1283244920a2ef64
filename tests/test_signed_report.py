"""The signed report (PDF) beside the data return: what is refused, what is kept, what the signature says."""
from __future__ import annotations

import hashlib
import io
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select
from versions import add_version

import pdf_fixtures as pdfs
from tracker.extensions import db
from tracker.guard import Refusal
from tracker.models import AuditEvent, Plan, PlanState, SignedReport
from tracker.signed_report import PdfLimits, check_signature, inspect_pdf, load_trust_roots

VN = timezone(timedelta(hours=7))
DEADLINE = datetime(2024, 5, 10, 0, 0, tzinfo=VN)
PLAN = "bacgiang-2024"
URL = f"/api/v1/plans/{PLAN}/units/219/signed-report"
LIMITS = PdfLimits(max_bytes=2 * 1024 * 1024, max_pages=5)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return pdfs.make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def signed(pki):
    return pdfs.sign_pdf(pdfs.make_pdf(), pki)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def post(client, headers, data: bytes, name: str = "bao-cao-da-ky.pdf", url: str = URL):
    return client.post(url, headers=headers, data={"file": (io.BytesIO(data), name)},
                       content_type="multipart/form-data")


# ---------------------------------------------------------------------------------------------
# The checks, on bytes


def test_a_plain_pdf_passes_with_its_page_count():
    assert inspect_pdf(pdfs.make_pdf(pages=3), LIMITS).pages == 3


@pytest.mark.parametrize(("make", "code"), [
    (pdfs.with_javascript, "active_content"), (pdfs.with_embedded_file, "active_content"),
    (pdfs.with_launch_action, "active_content"), (pdfs.with_xfa, "active_content"),
    (pdfs.encrypted, "encrypted"), (lambda: b"PK\x03\x04 not a pdf at all", "not_pdf"),
    (lambda: b"%PDF-1.7\n garbage without any structure", "not_pdf"),
    (lambda: pdfs.make_pdf(pages=6), "too_many_pages"), (lambda: b"", "empty"),
    (lambda: b"%PDF-" + b"0" * (3 * 1024 * 1024), "too_large"),
])
def test_what_the_checks_refuse(make, code):
    with pytest.raises(Refusal) as caught:
        inspect_pdf(make(), LIMITS)
    assert caught.value.code == code
    assert caught.value.status == {"empty": 400, "too_large": 413}.get(code, 422)
    assert caught.value.message and not caught.value.message.isascii()  # Vietnamese, with diacritics


def test_a_signature_by_a_configured_ca_is_intact_valid_and_trusted(pki, signed):
    result = check_signature(signed, load_trust_roots([str(pki.ca_pem)]))
    assert result is not None and result.intact and result.valid and result.trusted
    assert result.signer == "Nguyễn Văn An"
    assert result.signed_at is not None and abs(result.signed_at - datetime.now(timezone.utc)) < timedelta(hours=1)


def test_without_the_ca_configured_the_signature_is_intact_but_untrusted(signed):
    result = check_signature(signed, [])
    assert result is not None and result.intact and result.valid and not result.trusted


def test_a_byte_changed_after_signing_reads_as_altered(pki, signed):
    at = signed.index(pdfs.TEXT.encode())
    altered = signed[:at] + b"X" + signed[at + 1:]  # "Bao cao so 125" -> "Xao cao so 125": still a PDF
    inspect_pdf(altered, LIMITS)
    result = check_signature(altered, load_trust_roots([str(pki.ca_pem)]))
    assert result is not None and not result.intact and not result.valid and not result.trusted
    assert "bị sửa" in result.summary


def test_a_page_replaced_in_an_update_after_signing_reads_as_altered(pki, signed):
    rewritten = pdfs.rewrite_after_signing(signed)
    assert rewritten.startswith(signed)  # the signed bytes themselves are untouched
    inspect_pdf(rewritten, LIMITS)
    result = check_signature(rewritten, load_trust_roots([str(pki.ca_pem)]))
    assert result is not None and not result.intact and not result.valid and not result.trusted
    assert "thay đổi sau khi ký" in result.summary


def test_a_scan_has_no_signature():
    assert check_signature(pdfs.make_pdf(), []) is None


# ---------------------------------------------------------------------------------------------
# Upload through the API and the unit page


def test_upload_stores_a_version_and_the_status_api_shows_it(app, client, token_for, pki, signed):
    app.config["SIGNATURE_TRUST_ROOTS"] = [str(pki.ca_pem)]
    headers = bearer(token_for("unit", "219"))
    first = post(client, headers, signed)
    assert first.status_code == 201, first.get_data(as_text=True)
    body = first.get_json()
    assert body["created"] is True and body["version"] == 1 and body["pages"] == 1
    assert body["sha256"] == hashlib.sha256(signed).hexdigest()
    assert body["signature"]["valid"] is True and body["signature"]["trusted"] is True
    assert body["signature"]["signer"] == "Nguyễn Văn An"
    again = post(client, headers, signed)
    assert again.status_code == 200 and again.get_json()["created"] is False and again.get_json()["version"] == 1
    scan = pdfs.make_pdf(pages=2, text="Ban quet co dau do")
    second = post(client, headers, scan, "ban-quet.pdf")
    assert second.status_code == 201 and second.get_json()["version"] == 2 and second.get_json()["signature"] is None
    with app.app_context():
        rows = db.session.scalars(select(SignedReport).order_by(SignedReport.version)).all()
        assert [(r.version, r.pages, r.filename) for r in rows] == [(1, 1, "bao-cao-da-ky.pdf"), (2, 2, "ban-quet.pdf")]
        assert rows[0].content == signed and rows[0].received_at.tzinfo is not None
    status = client.get(f"/api/v1/plans/{PLAN}/status", headers=bearer(token_for("staff"))).get_json()
    units = {u["code"]: u for u in status["units"]}
    assert status["signed_report_required"] is False
    latest = units["219"]["signed_report"]
    assert set(latest) == {"received_at", "sha256", "pages", "signature"}
    assert latest["sha256"] == hashlib.sha256(scan).hexdigest() and latest["pages"] == 2 and latest["signature"] is None
    assert latest["received_at"].endswith("+07:00")
    assert units["213"]["signed_report"] is None
    # The PDF comes back as uploaded, to its unit and the department only.
    download = client.get(f"/plans/{PLAN}/units/219/signed-report/1.pdf", headers=bearer(token_for("staff")))
    assert download.status_code == 200 and download.data == signed and download.mimetype == "application/pdf"
    other = client.get(f"/plans/{PLAN}/units/219/signed-report/1.pdf", headers=bearer(token_for("unit", "213")))
    assert other.status_code == 403


def test_signature_fields_in_the_status_api(app, client, token_for, pki, signed):
    headers = bearer(token_for("unit", "219"))
    app.config["SIGNATURE_TRUST_ROOTS"] = []
    assert post(client, headers, signed).status_code == 201
    units = {u["code"]: u for u in client.get(f"/api/v1/plans/{PLAN}/status",
                                               headers=bearer(token_for("staff"))).get_json()["units"]}
    signature = units["219"]["signed_report"]["signature"]
    assert set(signature) == {"valid", "signer", "signed_at", "trusted"}
    assert signature["valid"] is True and signature["trusted"] is False and signature["signer"] == "Nguyễn Văn An"
    assert datetime.fromisoformat(signature["signed_at"]).tzinfo is not None


@pytest.mark.parametrize(("make", "code"), [
    (pdfs.with_javascript, "active_content"), (pdfs.with_embedded_file, "active_content"),
    (pdfs.encrypted, "encrypted"), (lambda: b"PK\x03\x04 a spreadsheet, not a pdf", "not_pdf"),
])
def test_refused_uploads_store_nothing_and_say_why(app, client, token_for, make, code):
    response = post(client, bearer(token_for("unit", "219")), make())
    assert response.status_code == 422
    assert response.get_json()["error"]["code"] == code
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(SignedReport)) == 0
        events = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "signed_report_refused")).all()
        assert [e.detail["code"] for e in events] == [code]


def test_a_closed_plan_takes_no_signed_report(app, client, token_for):
    with app.app_context():
        db.session.scalar(select(Plan).where(Plan.code == PLAN)).state = PlanState.CLOSED
        db.session.commit()
    response = post(client, bearer(token_for("unit", "219")), pdfs.make_pdf())
    assert response.status_code == 409
    error = response.get_json()["error"]
    assert error["code"] == "plan_closed" and "đã đóng" in error["message"]
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(SignedReport)) == 0


def test_every_file_input_of_the_unit_page_is_our_own_picker(client, login_as):
    """Both uploads (the return and the signed PDF) sit in a Vietnamese drop zone with a visible label and
    the chosen file's name, never the browser's own «Choose File / No file chosen» in its language."""
    import re

    login_as("unit", "219")
    page = client.get(f"/plans/{PLAN}/units/219").get_data(as_text=True)
    pickers = re.findall(r'<div class="dropzone file-picker"[^>]*>(.*?)</div>', page, re.S)
    inputs = re.findall(r'<input [^>]*type="file"[^>]*>', page)
    assert len(inputs) == 2 and len(pickers) == 2
    for picker, name in zip(pickers, ("file", "signed-file")):
        assert f'id="{name}"' in picker and f'aria-describedby="{name}-name"' in picker
        assert f'<label for="{name}" class="pick-button">Kéo thả tệp vào đây hoặc chọn tệp' in picker
        assert f'<span id="{name}-name" class="file-name">Chưa chọn tệp nào (' in picker
    assert "tệp PDF đã ký" in pickers[1] and "tối đa 10 MB, 100 trang" in pickers[1]


def test_staff_upload_on_the_unit_page(client, login_as):
    login_as("staff")
    page = client.get(f"/plans/{PLAN}/units/219").get_data(as_text=True)
    assert 'id="signed-report-form"' in page and "không bắt buộc báo cáo đã ký" in page
    response = client.post(f"/plans/{PLAN}/units/219/signed-report",
                           data={"file": (io.BytesIO(pdfs.make_pdf(pages=2)), "quet.pdf")},
                           content_type="multipart/form-data")
    assert response.status_code == 303
    page = client.get(f"/plans/{PLAN}/units/219").get_data(as_text=True)
    assert "Đã nhận báo cáo đã ký (lần 1, 2 trang)" in page and "quet.pdf" in page
    assert "Không có chữ ký số (bản quét)" in page
    refused = client.post(f"/plans/{PLAN}/units/219/signed-report",
                          data={"file": (io.BytesIO(pdfs.with_javascript()), "js.pdf")},
                          content_type="multipart/form-data")
    assert refused.status_code == 303
    assert "JavaScript" in client.get(f"/plans/{PLAN}/units/219").get_data(as_text=True)


def test_an_officer_cannot_upload_for_another_unit(client, token_for):
    response = post(client, bearer(token_for("unit", "213")), pdfs.make_pdf())
    assert response.status_code == 403


def test_a_plan_can_require_the_signed_report(app, client, token_for):
    add_version(app, "219", 1, DEADLINE - timedelta(days=1), True)
    with app.app_context():
        plan = db.session.scalar(select(Plan).where(Plan.code == PLAN))
        assert plan.signed_report_required is False  # off for the 2024 plan
        plan.signed_report_required = True
        db.session.commit()
    url = f"/api/v1/plans/{PLAN}/status?as_of=2024-05-20T00:00:00%2B07:00"
    staff = bearer(token_for("staff"))
    unit = {u["code"]: u for u in client.get(url, headers=staff).get_json()["units"]}["219"]
    assert unit["status"] == "incomplete" and unit["complete"] is False and unit["late"] is True
    assert post(client, bearer(token_for("unit", "219")), pdfs.make_pdf()).status_code == 201
    now = f"/api/v1/plans/{PLAN}/status"
    unit = {u["code"]: u for u in client.get(now, headers=staff).get_json()["units"]}["219"]
    # The data came on time, the signed report only now: complete, and late.
    assert unit["status"] == "late" and unit["complete"] is True and unit["signed_report"]["pages"] == 1
