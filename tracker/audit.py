"""Append-only audit log: who did what, when and from where."""
from __future__ import annotations

from typing import Any

from flask import has_request_context, request
from flask_login import current_user

from .extensions import db
from .models import AuditEvent


def record(action: str, target: str = "", user: Any = None, actor: str = "", **detail: Any) -> AuditEvent:
    """Add an audit event to the session (the caller's commit stores it with the change it records)."""
    ip = ""
    if has_request_context():
        ip = request.remote_addr or ""
        if user is None and current_user and current_user.is_authenticated:
            user = current_user
    event = AuditEvent(action=action, target=target, ip=ip, detail=detail,
                       user_id=getattr(user, "id", None), actor=actor or getattr(user, "email", "") or "")
    db.session.add(event)
    return event
