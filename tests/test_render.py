"""Printed as a department official would print them: the bảng tổng hợp, both blank forms and an annotated
copy, rendered to PDF by LibreOffice, then read back with poppler's pdftotext.

Skipped with the reason where LibreOffice or poppler is missing; under TRACKER_REQUIRE_SERVICES=1 (CI,
whose .ci/run installs them) a missing tool is a failure.
"""
from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import openpyxl
import pytest
from forms_fixtures import consistent_values, shipped_forms
from returns_fixtures import fill_workbook, make_context

from tracker.annotation import annotate
from tracker.catalog import COVER_SHEET_NAME
from tracker.compliance import Status
from tracker.export import ExportInput, ExportIssue, ExportUnit, ExportValue
from tracker.export_writer import build_workbook
from tracker.parsing import parse_return
from tracker.workbook import build_blank

VN = timezone(timedelta(hours=7))
UNITS = (("213", "Thành phố Bắc Giang", "PL03"), ("215", "Huyện Yên Thế", "PL03"), ("216", "Huyện Tân Yên", "PL03"),
         ("217", "Huyện Lạng Giang", "PL03"), ("218", "Huyện Lục Nam", "PL02"), ("219", "Huyện Lục Ngạn", "PL03"),
         ("220", "Huyện Sơn Động", "PL03"), ("221", "Huyện Yên Dũng", "PL03"), ("222", "Thị xã Việt Yên", "PL03"),
         ("223", "Huyện Hiệp Hòa", None))
PLAN_DOCUMENT = "Kế hoạch số …/KH-SLĐTBXH ngày …/4/2024"
# A 1,600-character narrative section, as the issue found cut to 6 printed lines.
LONG_SECTION = (("Năm 2023, huyện đã ban hành 12 văn bản chỉ đạo, tổ chức 48 cuộc truyền thông tại 21 xã, thị trấn "
                 "với 6.500 lượt người tham dự; kiện toàn Ban điều hành và nhóm công tác liên ngành. ") * 10)[:1600]
LONG_SECTION += " Hết mục I."


def _unavailable(reason: str) -> None:
    if os.environ.get("TRACKER_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{reason} (TRACKER_REQUIRE_SERVICES=1: the print checks must run here)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def render(tmp_path_factory):
    """Return a function: xlsx bytes -> (page count, text of the PDF in content order, PDF path)."""
    soffice = shutil.which("soffice") or shutil.which("libreoffice")
    if soffice is None:
        _unavailable("LibreOffice (soffice) is not installed (Debian: apt-get install libreoffice-calc-nogui)")
    if shutil.which("pdftotext") is None or shutil.which("pdfinfo") is None:
        _unavailable("poppler-utils (pdftotext, pdfinfo) is not installed")
    work = tmp_path_factory.mktemp("render")
    profile = work / "profile"  # our own profile: another soffice on the machine must not collide with this one

    def run(data: bytes, name: str) -> tuple[int, str, Path]:
        source = work / f"{name}.xlsx"
        source.write_bytes(data)
        subprocess.run([soffice, f"-env:UserInstallation=file://{profile}", "--headless", "--convert-to", "pdf",
                        "--outdir", str(work), str(source)], check=True, capture_output=True, timeout=240)
        pdf = work / f"{name}.pdf"
        info = subprocess.run(["pdfinfo", str(pdf)], check=True, capture_output=True, text=True).stdout
        pages = int(re.search(r"^Pages:\s+(\d+)", info, re.M).group(1))
        text = subprocess.run(["pdftotext", "-raw", str(pdf), "-"], check=True, capture_output=True, text=True).stdout
        return pages, text, pdf

    return run


def flat(text: str) -> str:
    return " ".join(text.split())


def page_text(pdf: Path, page: int) -> str:
    return flat(subprocess.run(["pdftotext", "-raw", "-f", str(page), "-l", str(page), str(pdf), "-"],
                               capture_output=True, text=True, check=True).stdout)


def publish_page(pdf: Path, page: int, name: str) -> None:
    """With TRACKER_SCREENSHOTS_DIR set (``make screenshots``), write page ``page`` of ``pdf`` there as
    ``name`` (PNG at 60 dpi, as the README shows the printed pages)."""
    directory = os.environ.get("TRACKER_SCREENSHOTS_DIR")
    if not directory:
        return
    target = Path(directory) / name
    subprocess.run(["pdftoppm", "-png", "-r", "60", "-f", str(page), "-l", str(page), "-singlefile", str(pdf),
                    str(target.with_suffix(""))], check=True, capture_output=True)


def plan_export() -> bytes:
    """The 2024 plan's bảng tổng hợp with every required unit reporting, figures differing per unit."""
    forms = shipped_forms()
    at = datetime(2024, 5, 8, 9, 0, tzinfo=VN)
    units, values = [], []
    for code, name, form_code in UNITS:
        if form_code is None:
            units.append(ExportUnit(code, name, None, Status.EXEMPT, False, None, 0, 0, None, None, None, None))
            continue
        units.append(ExportUnit(code, name, form_code, Status.ON_TIME, False, None, 0, 0, None, None, 1, at, 1, at,
                                report_number=f"{code}/BC-UBND", report_date="2024-05-08",
                                signer="KT. CHỦ TỊCH / PHÓ CHỦ TỊCH Nguyễn Văn An"))
        form = forms[form_code]
        scale = 150 * (1 + int(code) % 7)  # thousands, so the separators show
        for (sheet_code, row_code, column_key), value in consistent_values(form).items():
            column = form.sheet(sheet_code).column(column_key)
            values.append(ExportValue(code, sheet_code, f"{sheet_code}.{row_code}", column.period, column.breakdown,
                                      value * scale))
    issues = (ExportIssue("219", 1, "warning", "Biểu 01", "H8", "B01.children",
                          "«Tổng số trẻ em (dưới 16 tuổi)» thay đổi 60% giữa Năm 2023 và Quý I/2024."),)
    data = ExportInput("bacgiang-2024", "Kế hoạch kiểm tra việc thực hiện công tác trẻ em và bình đẳng giới tại địa "
                       "phương năm 2024", datetime(2024, 5, 10, tzinfo=VN), datetime(2024, 5, 20, tzinfo=VN),
                       tuple(units), tuple(values), issues, "Sở Lao động - Thương binh và Xã hội tỉnh Bắc Giang",
                       PLAN_DOCUMENT)
    return build_workbook(data, forms).content


def test_the_bảng_tổng_hợp_prints_in_at_most_40_readable_pages(render):
    pages, text, pdf = render(plan_export(), "bang-tong-hop")
    assert 15 <= pages <= 40, pages
    assert "BẢNG TỔNG HỢP SỐ LIỆU BÁO CÁO" in page_text(pdf, 1) and "Biểu 01." in page_text(pdf, 2)
    publish_page(pdf, 1, "bang-tong-hop-thong-tin.png")
    publish_page(pdf, 2, "bang-tong-hop-bieu-01.png")
    words = flat(text)
    assert f"Trang {pages}/{pages}" in words and "Trang 1/" in words
    assert "BẢNG TỔNG HỢP SỐ LIỆU BÁO CÁO" in words and "Toàn tỉnh" in words
    for biểu in range(1, 8):
        assert f"Biểu 0{biểu}." in words, biểu
    # Vietnamese number style as printed: dots between thousands, a comma before decimals.
    assert re.search(r"\b\d{1,3}\.\d{3}\b", words) and re.search(r"\b\d{1,3}(\.\d{3})*,\d{2}\b", words)
    assert not re.search(r"\b\d{1,3},\d{3}\.\d{2}\b", words)
    # No internal code printed, and every page carries text (no blank spill-over pages).
    assert not re.search(r"\bB0\d\.\w+|\bPL0\d\b|bacgiang-2024", words)


def test_both_blank_forms_print_whole(render):
    forms = shipped_forms()
    expected_pages = {"PL02": (9, 13), "PL03": (10, 14)}
    for code, unit in (("PL02", ("218", "Huyện Lục Nam")), ("PL03", ("219", "Huyện Lục Ngạn"))):
        form = forms[code]
        blank = build_blank(form, make_context(*unit, plan_document=PLAN_DOCUMENT))
        pages, text, pdf = render(blank, f"blank-{code}")
        low, high = expected_pages[code]
        assert low <= pages <= high, (code, pages)
        words = flat(text)
        first_page = flat(subprocess.run(["pdftotext", "-raw", "-f", "1", "-l", "1", str(pdf), "-"],
                                         capture_output=True, text=True, check=True).stdout)
        assert "BÁO CÁO" in first_page and "Nơi nhận:" in first_page and "Kính gửi:" in first_page
        assert f"(Kèm theo {PLAN_DOCUMENT} của Sở Lao động - Thương binh và Xã hội tỉnh Bắc Giang)" in first_page
        # No system word on a printed page: the form and its version only in the small footer.
        for system_word in ("bacgiang-2024", code, "(mã ", "phiên bản 1", "THỦ TRƯỞNG ĐƠN VỊ", "hạn chót"):
            assert system_word not in words, (code, system_word)
        assert f"{form.name}, phiên bản mẫu {form.version}" in words
        # Narrative headings and hints, guidance texts: printed in full, none cut by a row too short.
        for section in form.narrative.sections:
            assert flat(section.heading) in words, (code, section.code)
            if section.hint:
                assert flat(section.hint) in words, (code, section.code)
        for value in (form.decree09.content, form.decree09.instructions, form.decree09.cutoff):
            assert flat(value) in words, code
        # Every Biểu's signature block shares its page with the end of the table.
        for page in range(2, pages + 1):
            page_text = subprocess.run(["pdftotext", "-raw", "-f", str(page), "-l", str(page), str(pdf), "-"],
                                       capture_output=True, text=True, check=True).stdout
            if "NGƯỜI LẬP BIỂU" in page_text:
                assert "STT" in page_text and "Chỉ tiêu" in page_text, (code, page)
        assert words.count("NGƯỜI LẬP BIỂU") == len(form.sheets)


def test_a_filled_cover_prints_its_number_date_and_signer(render):
    form = shipped_forms()["PL03"]
    blank = build_blank(form, make_context(plan_document=PLAN_DOCUMENT))
    wb = openpyxl.load_workbook(io.BytesIO(blank))
    cover = {"report_number": "125/BC-UBND", "report_date": datetime(2024, 5, 8),
             "signer_title": "KT. CHỦ TỊCH / PHÓ CHỦ TỊCH", "signer_name": "Nguyễn Văn An",
             "preparer": "Trần Thị Bình", "preparer_contact": "0912 345 678 - ldtbxh@lucngan.bacgiang.gov.vn"}
    for key, value in cover.items():
        wb[COVER_SHEET_NAME][form.cover.field(key).cell] = value
    out = io.BytesIO()
    wb.save(out)
    pages, text, pdf = render(out.getvalue(), "bia-da-dien")
    first = page_text(pdf, 1)
    for printed in ("Số: 125/BC-UBND", "Lục Ngạn, ngày 08/05/2024", "KT. CHỦ TỊCH / PHÓ CHỦ TỊCH", "Nguyễn Văn An",
                    "Nơi nhận:", f"(Kèm theo {PLAN_DOCUMENT} của"):
        assert printed in first, printed
    # Every Biểu signs with the cover's signer (by formula): the title and name on each signature block.
    assert flat(text).count("KT. CHỦ TỊCH") == len(form.sheets) + 1
    publish_page(pdf, 1, "bia-bao-cao.png")


def test_an_annotated_copy_prints_a_long_narrative_and_its_error_list_whole(render):
    form = shipped_forms()["PL03"]
    blank = build_blank(form, make_context(plan_document=PLAN_DOCUMENT))
    texts = {s.code: f"Nội dung mục {s.code}." for s in form.narrative.sections if s.answer}
    texts["I"] = LONG_SECTION
    values = consistent_values(form)
    values[("B01", "children", "base_male")] = 210.5
    data = fill_workbook(blank, form, values, texts)
    wb = openpyxl.load_workbook(io.BytesIO(data))
    wb[COVER_SHEET_NAME][form.cover.field("report_number").cell] = "125/BC-UBND"
    out = io.BytesIO()
    wb.save(out)
    parsed = parse_return(out.getvalue(), form)
    annotated = annotate(out.getvalue(), [(i.sheet, i.cell, i.severity, i.message) for i in parsed.issues])
    pages, text, _ = render(annotated, "annotated")
    words = flat(text)
    assert flat(LONG_SECTION) in words  # the whole 1,600 characters, up to "Hết mục I."
    for issue in parsed.issues:
        assert flat(issue.message) in words, issue.message
    assert pages <= 16


def test_the_readme_shows_the_printed_bảng_tổng_hợp_and_cover():
    root = Path(__file__).resolve().parent.parent
    readme = (root / "README.md").read_text(encoding="utf-8")
    for name in ("bang-tong-hop-thong-tin.png", "bang-tong-hop-bieu-01.png", "bia-bao-cao.png"):
        assert f"(docs/screenshots/{name})" in readme, name
        image = (root / "docs" / "screenshots" / name).read_bytes()
        assert image.startswith(b"\x89PNG\r\n\x1a\n") and 10_000 < len(image) < 200_000, name
