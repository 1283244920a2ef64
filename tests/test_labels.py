"""The shared base of stored statuses and kinds: value in the row, one Vietnamese label on screen."""
from __future__ import annotations

import json

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, create_engine, insert, select, text
from sqlalchemy.exc import StatementError

from tracker.labels import LabelledEnum, column_type


class Colour(LabelledEnum):
    RED = "red", "Đỏ"
    DARK_BLUE = "dark_blue", "Xanh đậm"


def test_member_is_its_stored_string_and_carries_its_label() -> None:
    assert Colour("dark_blue") is Colour.DARK_BLUE
    assert Colour.DARK_BLUE == "dark_blue" and f"{Colour.DARK_BLUE}" == "dark_blue"
    assert json.dumps({"c": Colour.RED}) == '{"c": "red"}'
    assert [c.label for c in Colour] == ["Đỏ", "Xanh đậm"]


def test_column_stores_the_value_not_the_member_name() -> None:
    engine = create_engine("sqlite://")
    table = Table("t", MetaData(), Column("id", Integer, primary_key=True), Column("c", column_type(Colour, 16)))
    table.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(insert(table).values(c=Colour.DARK_BLUE))
        conn.execute(insert(table).values(c="red"))
        assert conn.execute(text("SELECT c FROM t ORDER BY id")).scalars().all() == ["dark_blue", "red"]
        assert conn.execute(select(table.c.c).order_by(table.c.id)).scalars().all() == [Colour.DARK_BLUE, Colour.RED]
        with pytest.raises(StatementError, match="purple"):
            conn.execute(insert(table).values(c="purple"))
