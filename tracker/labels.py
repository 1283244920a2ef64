"""Statuses and kinds that are stored as strings and shown with one Vietnamese label each.

A ``LabelledEnum`` member is its stored string (``StrEnum``: it compares equal to it, prints and
serialises as it, so the database rows and the JSON values stay the plain strings), and carries the
one wording the UI uses for it in ``.label``. Members are written ``NAME = "value", "Nhãn"``.
``column_type`` is the column that stores such an enum as that string, with no database enum type
and no CHECK constraint, so adding a member never needs a migration.
"""
from __future__ import annotations

import enum
from typing import Any

from sqlalchemy import Enum as SAEnum


class LabelledEnum(enum.StrEnum):
    """A str enum whose members carry their Vietnamese ``label``."""

    _label: str

    def __new__(cls, value: str, label: str) -> LabelledEnum:
        member = str.__new__(cls, value)
        member._value_ = value
        member._label = label
        return member

    @property
    def label(self) -> str:
        """Return the one Vietnamese wording of this member on every page, mail and export."""
        return self._label


def column_type(enum_class: type[enum.Enum], length: int) -> Any:
    """Return the column type storing ``enum_class``'s values as VARCHAR(``length``).

    Rows hold the value (``"pending"``), not the member name, as before enums were put on the
    columns; reading a value the enum does not know raises LookupError.
    """
    return SAEnum(enum_class, native_enum=False, create_constraint=False, length=length,
                  values_callable=lambda members: [m.value for m in members], validate_strings=True)
