"""Command-line interface: thin click commands over the domain modules."""
from __future__ import annotations

import sys
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import with_appcontext
from sqlalchemy import select

from . import accounts, audit
from .extensions import db
from .models import Role, User
from .timeutil import parse_instant
from .wording import deadline_wording


def init_app(app: Flask) -> None:
    for command in (seed_command, plan_copy_command, create_user_command, create_token_command,
                    check_forms_command):
        app.cli.add_command(command)
    from . import cli_export, cli_intake, cli_notify, cli_ops, cli_units

    cli_units.init_app(app)
    cli_notify.init_app(app)
    cli_intake.init_app(app)
    cli_export.init_app(app)
    cli_ops.init_app(app)


def forms_dir() -> Path:
    return Path(current_app.config["REPORT_FORMS_DIR"])


@click.command("seed")
@with_appcontext
@click.option("--demo", is_flag=True, help="Also create demo accounts and contact addresses.")
def seed_command(demo: bool) -> None:
    """Load the units and plans kept in report_forms/ (idempotent)."""
    from .demo_story import tell_story
    from .seed import seed, seed_demo

    report = seed(forms_dir())
    if demo:
        seed_demo(report, accounts.hash_password)
    db.session.commit()
    story = tell_story() if demo else None
    click.echo(f"Đơn vị thêm mới: {report.units_added}; kế hoạch thêm mới: {', '.join(report.plans_added) or 'không có'}")
    if demo:
        click.echo(f"Địa chỉ liên hệ thêm mới: {report.contacts_added}")
        if report.users_added:
            click.echo("Tài khoản dùng thử (email / mật khẩu / vai trò):")
            for email, password, role in report.users_added:
                click.echo(f"  {email} / {password} / {role}")
        else:
            click.echo("Tài khoản dùng thử đã có từ trước (mật khẩu: demo-2024 nếu chưa đổi).")
        if story is not None and story.told:
            click.echo(f"Dữ liệu mẫu: {story.versions} phiên bản báo cáo, {story.reviews} ý kiến của Sở, "
                       f"{story.messages} thư (ghi vào hộp thư đi, không gửi tới ai).")
        elif story is not None:
            click.echo(f"Dữ liệu mẫu không được tạo thêm: {story.reason}.")


@click.command("plan-copy")
@with_appcontext
@click.argument("source")
@click.argument("new_code")
@click.option("--deadline", required=True, help="ISO 8601 instant with offset, e.g. 2025-05-10T00:00:00+07:00")
@click.option("--title", default=None)
@click.option("--keep-exemptions", is_flag=True, help="Also copy the source plan's exemptions.")
@click.option("--units-as-of", "units_as_of", default=None,
              help="Carry the units onto the map of this date (YYYY-MM-DD); the copy is then a draft.")
def plan_copy_command(source: str, new_code: str, deadline: str, title: str | None, keep_exemptions: bool,
                      units_as_of: str | None) -> None:
    """Copy a plan with its calendar moved by the deadline's offset (periods, visits, reminders)."""
    from datetime import date

    from .plans import PlanCopyError, create_copy, preview_copy

    try:
        instant = parse_instant(deadline)
    except ValueError as exc:
        raise click.ClickException(f"Hạn nộp không hợp lệ: {exc}") from exc
    try:
        on = date.fromisoformat(units_as_of) if units_as_of else None
    except ValueError:
        raise click.ClickException(f"Ngày --units-as-of «{units_as_of}» không hợp lệ: cần dạng 2025-07-01.") from None
    try:
        preview = preview_copy(source, new_code, instant, title, keep_exemptions=keep_exemptions, units_as_of=on)
        plan = create_copy(preview)
    except PlanCopyError as exc:
        raise click.ClickException(str(exc)) from exc
    audit.record("plan_copied", target=new_code, actor="cli", source=source, units_as_of=units_as_of,
                 keep_exemptions=keep_exemptions)
    db.session.commit()
    click.echo(f"Đã tạo kế hoạch {plan.code}, hạn nộp: {deadline_wording(plan.deadline)}; "
               f"kỳ số liệu: {'; '.join(p['label'] for p in plan.periods)}.")
    if on is not None:
        click.echo(f"Kế hoạch là bản nháp với {len(plan.assignments)} đơn vị trên bản đồ ngày {on:%d/%m/%Y}: "
                   "cán bộ Sở xác nhận từng đơn vị tại trang «Xác nhận đơn vị» rồi mở kế hoạch.")
        if preview.unmatched:
            click.echo(f"{len(preview.unmatched)} đơn vị cũ không có liên kết sang danh mục mới (hãy bổ sung tay): "
                       + "; ".join(preview.unmatched))


@click.command("create-user")
@with_appcontext
@click.argument("email")
@click.option("--role", type=click.Choice([r.value for r in Role]), required=True)
@click.option("--unit", "unit_code", default=None, help="Unit code, required for role 'unit'.")
@click.option("--name", default="")
@click.password_option(prompt="Mật khẩu", confirmation_prompt="Nhập lại mật khẩu")
def create_user_command(email: str, role: str, unit_code: str | None, name: str, password: str) -> None:
    """Create a user; the password comes from a prompt or stdin."""
    from .users import UserError, create_user

    try:
        user = create_user(email, Role(role), password, unit_code, name)
    except UserError as exc:
        raise click.ClickException(str(exc)) from exc
    audit.record("user_created", target=user.email, actor="cli", role=role)
    db.session.commit()
    click.echo(f"Đã tạo người dùng {user.email} ({user.role.label}).")


@click.command("create-token")
@with_appcontext
@click.argument("email")
def create_token_command(email: str) -> None:
    """Print a new API token for the user, alone on stdout."""
    user = db.session.scalar(select(User).where(User.email == email.strip().lower()))
    if user is None:
        raise click.ClickException(f"Không có người dùng {email}.")
    token = accounts.issue_token(user)
    audit.record("token_created", target=user.email, actor="cli")
    db.session.commit()
    sys.stdout.write(token + "\n")


@click.command("check-forms")
@click.option("--record", is_flag=True, help="Ghi dấu vân tay bố cục của các phiên bản biểu mẫu mới vào "
              "report_forms/layouts.lock (không bao giờ sửa dòng đã ghi).")
@with_appcontext
def check_forms_command(record: bool) -> None:
    """Load and check every form definition and its recorded layout; exit 1 listing each error."""
    from .catalog_folder import check_forms, load_forms, record_layouts

    if record:
        try:
            for line in record_layouts(load_forms(forms_dir()), forms_dir()):
                click.echo(f"Đã ghi {line}")
        except Exception as exc:  # noqa: BLE001 - reported below by check_forms with file and line
            click.echo(f"Không ghi được: {exc}", err=True)
    errors = check_forms(forms_dir())
    if errors:
        for error in errors:
            click.echo(error, err=True)
        raise SystemExit(1)
    for form in load_forms(forms_dir()).values():
        cells = sum(1 for sheet in form.sheets for _ in sheet.input_cells())
        click.echo(f"{form.code} phiên bản {form.version}: {len(form.sheets)} biểu, {cells} ô nhập, "
                   f"{len(form.rules)} quy tắc, bố cục {form.layout_fingerprint} — hợp lệ.")
