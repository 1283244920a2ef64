"""``flask --app tracker export PLAN --out FILE.xlsx [--as-of ISO]``: the consolidated workbook from the shell."""
from __future__ import annotations

from pathlib import Path

import click
from flask import Flask
from flask.cli import with_appcontext

from . import audit, review_tools
from .extensions import db
from .forms import all_forms
from .models import plan_by_code
from .timeutil import fmt_datetime, parse_instant, utc_now


def init_app(app: Flask) -> None:
    """Register the ``export`` command on ``app``."""
    app.cli.add_command(export_command)


@click.command("export")
@with_appcontext
@click.argument("plan_code")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Tệp .xlsx sẽ ghi ra.")
@click.option("--as-of", "as_of_text", default=None,
              help="Thời điểm tính, ISO 8601 có múi giờ (mặc định: bây giờ), ví dụ 2024-05-10T00:00:00+07:00.")
def export_command(plan_code: str, out: Path, as_of_text: str | None) -> None:
    """Write the consolidated workbook (bảng tổng hợp) of a plan to an .xlsx file."""
    plan = plan_by_code(plan_code)
    if plan is None:
        raise click.ClickException(f"Không tìm thấy kế hoạch mã «{plan_code}».")
    if as_of_text:
        try:
            as_of = parse_instant(as_of_text)
        except ValueError:
            raise click.ClickException(
                f"Thời điểm «{as_of_text}» không hợp lệ: cần ISO 8601 có múi giờ, ví dụ 2024-05-10T00:00:00+07:00.")
    else:
        as_of = utc_now()
    if out.suffix.lower() != ".xlsx":
        raise click.ClickException("Tệp ra phải có đuôi .xlsx.")
    workbook = review_tools.consolidated_workbook(plan, as_of, all_forms())
    try:
        out.write_bytes(workbook.content)
    except OSError as exc:
        raise click.ClickException(f"Không ghi được tệp {out}: {exc.strerror or exc}")
    audit.record("export", target=plan.code, actor="cli", plan=plan.code, as_of=as_of.isoformat(), via="cli",
                 filename=str(out))
    db.session.commit()
    click.echo(f"Đã ghi bảng tổng hợp ({len(workbook.sheet_names)} trang tính) tính đến "
               f"{fmt_datetime(as_of)} vào {out}")
