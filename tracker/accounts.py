"""Passwords, API tokens and password-reset tokens."""
from __future__ import annotations

import hashlib
import secrets

from flask import current_app, has_app_context
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import select
from werkzeug.security import check_password_hash, generate_password_hash

from .extensions import db
from .models import ApiToken, User
from .timeutil import utc_now

# A hash to check against when the email is unknown, so a login takes as long either way.
_DUMMY_HASH = generate_password_hash("not-a-real-password")


def hash_password(password: str) -> str:
    """Return a salted hash of ``password`` (scrypt unless PASSWORD_HASH_METHOD says otherwise)."""
    method = current_app.config["PASSWORD_HASH_METHOD"] if has_app_context() else "scrypt"
    return generate_password_hash(password, method=method)


def authenticate(email: str, password: str) -> User | None:
    """Return the active user with these credentials, or None, in the same time for unknown emails."""
    user = db.session.scalar(select(User).where(User.email == email.strip().lower()))
    if user is None:
        check_password_hash(_DUMMY_HASH, password)
        return None
    if not check_password_hash(user.password_hash, password) or not user.active:
        return None
    return user


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(user: User) -> str:
    """Create an API token for ``user`` and return it; only its digest is stored."""
    token = secrets.token_urlsafe(32)
    db.session.add(ApiToken(user=user, token_hash=token_digest(token)))
    return token


def user_for_token(token: str) -> User | None:
    """Return the active user owning a non-revoked token, or None."""
    row = db.session.scalar(select(ApiToken).where(ApiToken.token_hash == token_digest(token),
                                                   ApiToken.revoked_at.is_(None)))
    return row.user if row is not None and row.user.active else None


def user_id_for_token(token: str) -> int | None:
    """Return the id of the active user owning a non-revoked ``token``, or None.

    Reads on its own read-only connection: on SQLite it never takes (or waits for) the write lock,
    so a request holding a bogus or valid token locks nothing before its view runs.
    """
    from .db_setup import READ_ONLY

    query = (select(ApiToken.user_id).join(User, User.id == ApiToken.user_id)
             .where(ApiToken.token_hash == token_digest(token), ApiToken.revoked_at.is_(None),
                    User.active.is_(True)))
    with db.engine.connect().execution_options(**READ_ONLY) as connection:
        user_id = connection.execute(query).scalar()
        connection.rollback()
    return user_id


def revoke_tokens(user: User) -> int:
    """Revoke every live token of ``user``; return how many."""
    count = 0
    for token in user.tokens:
        if token.revoked_at is None:
            token.revoked_at = utc_now()
            count += 1
    return count


def _reset_serializer(secret_key: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret_key, salt="password-reset")


def reset_token(user: User, secret_key: str) -> str:
    """Return a signed reset token; it dies when the password changes, which makes it single-use."""
    return _reset_serializer(secret_key).dumps({"u": user.id, "h": user.password_hash[-16:]})


def user_for_reset_token(token: str, secret_key: str, max_age: int) -> User | None:
    """Return the user a reset token was made for, or None if it is forged, expired or already used."""
    try:
        data = _reset_serializer(secret_key).loads(token, max_age=max_age)
    except (BadSignature, SignatureExpired):
        return None
    user = db.session.get(User, data.get("u"))
    if user is None or not user.active or user.password_hash[-16:] != data.get("h"):
        return None
    return user
