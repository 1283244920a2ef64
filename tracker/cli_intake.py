"""``ingest-mail``: read the intake mailbox (or saved .eml files) and feed the returns to the upload path."""
from __future__ import annotations

import sys

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

from . import intake
from .forms import all_forms
from .intake_imap import MailboxError, settings_from
from .timeutil import fmt_datetime, utc_now


def init_app(app: Flask) -> None:
    """Register ``ingest-mail`` on ``app``."""
    app.cli.add_command(ingest_mail_command)


WOULD = {"accepted": "sẽ nhận", "held": "sẽ chờ Sở xác nhận", "refused": "sẽ không nhận", "ignored": "sẽ bỏ qua"}


def _describe(report: intake.MessageReport, dry_run: bool) -> list[str]:
    head = (f"{report.label} · {report.message_id} · từ {report.sender or '(không rõ)'} · nhận lúc "
            f"{fmt_datetime(report.received_at)}")
    if report.already:
        return [head + " — đã xử lý từ trước, không làm gì thêm."]
    lines = [head]
    for o in report.outcomes:
        if not o.new:
            continue
        state = WOULD[o.state] if dry_run else intake.State.LABELS[o.state]
        version = f", phiên bản {o.version}" if o.version else ""
        unit = f" [{o.unit_code}]" if o.unit_code else ""
        lines.append(f"  {o.filename or '(thư)'}: {state}{unit}{version}{(' — ' + o.reason) if o.reason else ''}")
    if report.replied:
        lines.append("  Đã xếp thư trả lời người gửi.")
    return lines


@click.command("ingest-mail")
@with_appcontext
@click.option("--dry-run", is_flag=True, help="Chỉ đọc và in ra việc sẽ làm; không lưu, không đánh dấu, không gửi.")
@click.option("--eml", "from_files", is_flag=True, help="Đọc các tệp .eml đã lưu thay cho hộp thư IMAP.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Xử lý tối đa bấy nhiêu thư trong lần chạy.")
@click.argument("files", nargs=-1, type=click.Path(exists=True, dir_okay=False))
def ingest_mail_command(dry_run: bool, from_files: bool, limit: int | None, files: tuple[str, ...]) -> None:
    """Read returns sent by email (the intake mailbox, or --eml FILE…) through the upload path, once each."""
    config = current_app.config
    settings = intake.settings_from(config)
    forms = all_forms()
    now = utc_now()
    if files and not from_files:
        raise click.UsageError("Tên tệp chỉ dùng với --eml: ingest-mail --eml FILE…")
    if from_files:
        if not files:
            raise click.UsageError("Cần ít nhất một tệp .eml: ingest-mail --eml FILE…")
        loaded = []
        for name in files:
            with open(name, "rb") as handle:
                loaded.append((name, handle.read()))
        report = intake.ingest_files(loaded, now, forms, settings, dry_run=dry_run)
    else:
        try:
            imap = settings_from(config)
        except MailboxError as exc:
            raise click.ClickException(str(exc)) from exc
        report = intake.ingest_mailbox(imap, now, forms, settings, dry_run=dry_run, limit=limit)
    if dry_run:
        click.echo("Chạy thử: không lưu, không đánh dấu thư, không gửi thư trả lời.")
    for message in report.messages:
        for line in _describe(message, dry_run):
            click.echo(line)
    new = sum(1 for m in report.messages if not m.already)
    click.echo(f"Thư đã đọc: {len(report.messages)}; thư mới: {new}; đã xử lý từ trước: {len(report.messages) - new}.")
    if report.flush is not None and (report.flush.sent or report.flush.retrying or report.flush.failed):
        click.echo(f"Thư gửi đi: {report.flush.sent} đã gửi, {report.flush.retrying} sẽ thử lại, "
                   f"{report.flush.failed} không gửi được.")
    if report.error:
        click.echo(f"Lỗi: {report.error}", err=True)
        sys.exit(1)
