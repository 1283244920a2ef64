"""Uploads held for a yes/no question before they are stored, as files under the instance folder.

A held upload belongs to one user and one assignment, lives ``MAX_AGE`` at most, and is removed when
confirmed or dropped. Time is a parameter; the token is random and names nothing else.
"""
from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

MAX_AGE = timedelta(minutes=30)
_TOKEN_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")


@dataclass(frozen=True)
class Held:
    data: bytes
    filename: str
    blank: int
    previous_version: int


def _paths(folder: Path, token: str) -> tuple[Path, Path] | None:
    if not token or len(token) > 64 or not set(token) <= _TOKEN_CHARS:
        return None
    return folder / f"{token}.bin", folder / f"{token}.json"


def hold(folder: Path, data: bytes, filename: str, assignment_id: int, user_id: int, blank: int,
         previous_version: int, now: datetime) -> str:
    """Keep ``data`` until confirmed; return its token."""
    folder.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(24)
    paths = _paths(folder, token)
    assert paths is not None
    paths[0].write_bytes(data)
    paths[1].write_text(json.dumps({"filename": filename, "assignment": assignment_id, "user": user_id,
                                    "blank": blank, "previous": previous_version, "at": now.isoformat()}))
    return token


def fetch(folder: Path, token: str, assignment_id: int, user_id: int, now: datetime) -> Held | None:
    """Return the held upload of ``token`` for this assignment and user, None when unknown or expired."""
    paths = _paths(folder, token)
    if paths is None or not paths[0].is_file() or not paths[1].is_file():
        return None
    meta = json.loads(paths[1].read_text())
    if meta["assignment"] != assignment_id or meta["user"] != user_id:
        return None
    if now - datetime.fromisoformat(meta["at"]) > MAX_AGE:
        drop(folder, token)
        return None
    return Held(paths[0].read_bytes(), meta["filename"], int(meta["blank"]), int(meta["previous"]))


def drop(folder: Path, token: str) -> None:
    """Remove the held upload of ``token`` (nothing happens when it is already gone)."""
    paths = _paths(folder, token)
    if paths is not None:
        for path in paths:
            path.unlink(missing_ok=True)
