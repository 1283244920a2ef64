"""Creating users, shared by the CLI and the admin pages."""
from __future__ import annotations

from datetime import date

from sqlalchemy import select

from .accounts import hash_password
from .email_address import InvalidEmail, normalize_email
from .extensions import db
from .models import Role, User, unit_by_code
from .timeutil import local_date, utc_now


class UserError(ValueError):
    """A user cannot be created as asked; the message says why, in Vietnamese."""


def create_user(email: str, role: Role, password: str, unit_code: str | None = None, name: str = "",
                on: date | None = None) -> User:
    """Add a user to the session and return it; raise UserError for a bad email, role/unit or password.

    The unit code is read on ``on`` (today by default), or the last unit that bore it before then.
    """
    try:
        email = normalize_email(email)
    except InvalidEmail:
        raise UserError(f"Email «{email.strip().lower()}» không hợp lệ.") from None
    if db.session.scalar(select(User).where(User.email == email)) is not None:
        raise UserError(f"Email {email} đã có tài khoản.")
    if len(password) < 8:
        raise UserError("Mật khẩu phải có ít nhất 8 ký tự.")
    unit = None
    if role == Role.UNIT:
        if not unit_code:
            raise UserError("Tài khoản đơn vị phải gắn với một mã đơn vị (--unit).")
        unit = unit_by_code(unit_code.strip(), on or local_date(utc_now()), or_before=True)
        if unit is None:
            raise UserError(f"Không tìm thấy đơn vị mã {unit_code}.")
    elif unit_code:
        raise UserError("Chỉ tài khoản đơn vị mới gắn với một đơn vị.")
    user = User(email=email, role=role, name=name.strip(), unit=unit, password_hash=hash_password(password))
    db.session.add(user)
    db.session.flush()
    return user
