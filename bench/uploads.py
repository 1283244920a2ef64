"""Valid returns for the upload benches: the 2024 plan seeded in a scratch database, distinct returns of
one unit (an identical re-upload is answered without parsing, so every upload must differ), and a
return padded to just under the 10 MiB upload limit with a photo-sized picture."""
from __future__ import annotations

import io
import random
import struct
import zlib
from pathlib import Path
from typing import Any

from openpyxl import load_workbook
from openpyxl.drawing.image import Image

UNIT = ("219", "Huyện Lục Ngạn")
PLAN = "bacgiang-2024"


def seed_2024(app: Any) -> str:
    """Seed the 2024 plan with its demo users into the app's database; return a unit officer's API token."""
    from sqlalchemy import select

    from tracker.accounts import hash_password, issue_token
    from tracker.extensions import db
    from tracker.models import User
    from tracker.seed import SeedReport, seed, seed_demo

    with app.app_context():
        report: SeedReport = seed(Path(app.config["REPORT_FORMS_DIR"]))
        seed_demo(report, hash_password)
        db.session.commit()
        user = db.session.scalar(select(User).where(User.email == f"donvi{UNIT[0]}@demo.bacgiang.vn"))
        token = issue_token(user)
        db.session.commit()
        db.session.remove()
    return token


def distinct_returns(app: Any, count: int) -> list[bytes]:
    """Return ``count`` complete PL03 returns of unit 219 that differ only in one narrative answer."""
    from forms_fixtures import consistent_values
    from returns_fixtures import fill_workbook, make_context, sample_texts

    from tracker.workbook import build_blank

    with app.app_context():
        from tracker import forms

        form = forms.get("PL03")
    blank = build_blank(form, make_context(*UNIT), app.config["SECRET_KEY"])
    values = consistent_values(form)
    texts = sample_texts(form)
    first = next(iter(texts))
    return [fill_workbook(blank, form, values, {**texts, first: f"{texts[first]} (lần gửi {n + 1})"})
            for n in range(count)]


class _RawPng(Image):
    """An openpyxl picture from PNG bytes, without Pillow (which openpyxl needs only to sniff sizes)."""

    def __init__(self, png: bytes, width: int, height: int) -> None:
        self.ref = io.BytesIO(png)
        self._png = png
        self.width, self.height = width, height
        self.format = "png"
        self.anchor = "E3"

    def _data(self) -> bytes:
        return self._png


def noise_png(width: int, height: int, seed: int = 9) -> bytes:
    """Return a valid RGB PNG of random pixels (it does not compress: a scanned photo's worst case)."""
    rng = random.Random(seed)
    row = width * 3
    raw = b"".join(b"\x00" + rng.randbytes(row) for _ in range(height))

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 1)) + chunk(b"IEND", b"")


def padded_return(base: bytes, sheet_name: str, target: int) -> bytes:
    """Return ``base`` with a picture on ``sheet_name`` sized so the file is just under ``target`` bytes."""
    width = 1600
    height = max(1, (target - len(base) - 64 * 1024) // (width * 3 + 1))
    wb = load_workbook(io.BytesIO(base))
    wb[sheet_name].add_image(_RawPng(noise_png(width, height), width // 4, height // 4))
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()
