"""``units-import``: a list of administrative units of one date into the dated units table."""
from __future__ import annotations

from datetime import date
from pathlib import Path

import click
from flask import Flask
from flask.cli import with_appcontext

from . import audit
from .extensions import db
from .unit_import import import_units
from .unit_lists import UnitListError, read_unit_list


def init_app(app: Flask) -> None:
    app.cli.add_command(units_import_command)


@click.command("units-import")
@with_appcontext
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--as-of", "as_of", default=None,
              help="Date the list is in force from (YYYY-MM-DD); defaults to the date the file states.")
def units_import_command(file: Path, as_of: str | None) -> None:
    """Import a GSO unit list (CSV, the 2024 JSON or the 2025 JSON) as the map in force from --as-of."""
    try:
        listed = read_unit_list(file)
    except UnitListError as exc:
        raise click.ClickException(str(exc)) from exc
    try:
        on = date.fromisoformat(as_of) if as_of else listed.as_of
    except ValueError:
        raise click.ClickException(f"Ngày --as-of «{as_of}» không hợp lệ: cần dạng 2025-07-01.") from None
    if on is None:
        raise click.ClickException("Tệp không ghi ngày hiệu lực: hãy cho biết --as-of, dạng 2025-07-01.")
    report = import_units(listed, on)
    audit.record("units_imported", target=file.name, actor="cli", as_of=on.isoformat(), added=report.added,
                 closed=report.closed, corrected=report.corrected, merges=report.merges_added)
    db.session.commit()
    if not report.changed:
        click.echo(f"Danh mục ngày {on:%d/%m/%Y} đã có đủ: không thay đổi gì ({report.unchanged} đơn vị giữ nguyên).")
        return
    click.echo(f"Danh mục ngày {on:%d/%m/%Y}: thêm {report.added} đơn vị, kết thúc {report.closed}, "
               f"sửa {report.corrected}, giữ nguyên {report.unchanged}; {report.merges_added} liên kết "
               "sáp nhập (gợi ý, cần người xác nhận).")
