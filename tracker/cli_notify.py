"""Commands for the reminder emails: ``send-reminders`` (hourly from cron or a timer) and ``set-contacts``."""
from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import click
from flask import Flask
from flask.cli import with_appcontext

from . import contacts, outbox, reminders
from .extensions import db
from .models import unit_by_code
from .timeutil import fmt_datetime, local_date, parse_instant, utc_now


def init_app(app: Flask) -> None:
    """Register the reminder commands on ``app``."""
    for command in (send_reminders_command, set_contacts_command):
        app.cli.add_command(command)


def _describe(draft: outbox.Draft) -> str:
    kind = draft.kind.label
    to = ", ".join(draft.recipients) or "(không có người nhận)"
    cc = f"; đồng gửi {', '.join(draft.cc)}" if draft.cc else ""
    unit = draft.unit_key or "Sở"
    problem = f" — KHÔNG GỬI ĐƯỢC: {draft.error}" if draft.error else ""
    return f"  [{draft.plan_code}] {unit} · {kind} ({draft.step}) → {to}{cc}{problem}"


@contextmanager
def stop_on_signals() -> Iterator[threading.Event]:
    """Yield an Event set by the first SIGTERM or SIGINT; a second one interrupts at once.

    The sender checks the event before each message: the message in flight is finished, the rest of
    what was claimed goes back to pending (tracker.outbox). Handlers are restored afterwards.
    """
    stop = threading.Event()
    previous: dict[int, object] = {}

    def _handler(number: int, _frame: object) -> None:
        if stop.is_set():
            raise KeyboardInterrupt  # asked twice: stop now (claimed messages are still released)
        stop.set()
        click.echo(f"Nhận tín hiệu {signal.Signals(number).name}: dừng nhận thư mới, hoàn tất thư đang gửi.",
                   err=True)

    if threading.current_thread() is threading.main_thread():
        for number in (signal.SIGTERM, signal.SIGINT):
            previous[number] = signal.signal(number, _handler)
    try:
        yield stop
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)  # type: ignore[arg-type]


@click.command("send-reminders")
@with_appcontext
@click.option("--as-of", "as_of_text", default=None,
              help="Thời điểm xét, ISO 8601 có múi giờ (mặc định: bây giờ), ví dụ 2024-05-07T08:00+07:00.")
@click.option("--dry-run", is_flag=True, help="Chỉ in ra các thư sẽ gửi; không lưu, không gửi.")
@click.option("--plan", "plan_code", default=None, help="Chỉ xét kế hoạch có mã này.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Gửi tối đa bấy nhiêu thư trong lần chạy.")
def send_reminders_command(as_of_text: str | None, dry_run: bool, plan_code: str | None,
                           limit: int | None) -> None:
    """Decide which reminders are due, store each once and send them over one connection."""
    try:
        as_of = parse_instant(as_of_text) if as_of_text else utc_now()
    except ValueError as exc:
        raise click.BadParameter(f"cần thời điểm ISO 8601 có múi giờ ({exc})", param_hint="--as-of") from exc
    with stop_on_signals() as stop:
        try:
            report = reminders.run(as_of, plan_code=plan_code, dry_run=dry_run, limit=limit,
                                   should_stop=stop.is_set)
        except reminders.ReminderError as exc:
            raise click.ClickException(str(exc)) from exc
    click.echo(f"Thời điểm xét: {fmt_datetime(report.as_of)} (giờ Việt Nam); "
               f"kế hoạch: {', '.join(report.plans) or 'không có'}.")
    for problem in report.problems:
        click.echo(problem, err=True)
    if report.dry_run:
        click.echo(f"Chạy thử: {len(report.queued)} thư mới sẽ được tạo; không lưu, không gửi gì.")
        for draft in report.queued:
            click.echo(_describe(draft))
        click.echo(f"Thư đã quyết định từ trước: {report.already_decided}; "
                   f"thư đang chờ gửi đã đến lượt: {report.pending_due}.")
        return
    click.echo(f"Thư mới: {len(report.queued)}; đã quyết định từ trước (không tạo lại): {report.already_decided}.")
    for draft in report.queued:
        click.echo(_describe(draft))
    flush = report.flush or outbox.FlushReport()
    click.echo(f"Đã gửi: {flush.sent}; sẽ thử lại sau: {flush.retrying}; không gửi được: {flush.failed}.")
    for line in flush.errors:
        click.echo(f"  Lỗi: {line}", err=True)
    if stop.is_set():
        click.echo(f"Đã dừng theo yêu cầu: {flush.released} thư chưa gửi được trả lại hàng đợi; lần chạy sau "
                   "sẽ gửi tiếp.", err=True)
        raise SystemExit(1)


@click.command("set-contacts")
@with_appcontext
@click.argument("unit_code")
@click.argument("emails", nargs=-1, required=True)
@click.option("--add", is_flag=True, help="Thêm vào danh sách hiện có thay vì thay thế.")
def set_contacts_command(unit_code: str, emails: tuple[str, ...], add: bool) -> None:
    """Replace (or with --add extend) a unit's contact email addresses."""
    unit = unit_by_code(unit_code, local_date(utc_now()), or_before=True)
    if unit is None:
        raise click.ClickException(f"Không tìm thấy đơn vị mã «{unit_code}».")
    addresses = [a for text in emails for a in contacts.parse_addresses(text)]
    try:
        change = contacts.set_contacts(unit, addresses, add=add, actor="cli")
    except contacts.ContactError as exc:
        db.session.rollback()
        raise click.ClickException(str(exc)) from exc
    db.session.commit()
    if change.changed:
        click.echo(f"Đã cập nhật địa chỉ liên hệ của {unit.name}: {', '.join(change.after) or '(trống)'}.")
    else:
        click.echo(f"Địa chỉ liên hệ của {unit.name} không thay đổi: {', '.join(change.after)}.")
