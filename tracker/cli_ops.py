"""Operations commands: ``flask --app tracker backup DEST``."""
from __future__ import annotations

from datetime import datetime, timezone

import click
from flask import Flask
from flask.cli import with_appcontext

from .backup import BackupError, backup
from .extensions import db


def init_app(app: Flask) -> None:
    """Register the operations commands on ``app``'s CLI."""
    app.cli.add_command(backup_command)


@click.command("backup")
@with_appcontext
@click.argument("dest", type=click.Path(dir_okay=True, file_okay=True, writable=True))
def backup_command(dest: str) -> None:
    """Copy the SQLite database to DEST (a file, or a folder for a dated file) while the app runs."""
    from pathlib import Path

    target = Path(dest)
    if target.is_dir():
        # A folder collects dated copies; UTC so copies from different hosts sort together.
        target = target / f"tracker-{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}.db"
    try:
        path = backup(db.engine, target)
    except BackupError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"Đã sao lưu cơ sở dữ liệu vào {path} ({path.stat().st_size:,} byte).".replace(",", "."))
