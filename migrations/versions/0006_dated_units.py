"""dated units, unit merges, plan state and map date, draft assignments

Revision ID: 0006
Revises: 0003
Create Date: 2026-12-01 08:50:00

Units become versions over a date range: a code is unique only with its start date, because the GSO
reuses codes after the reorganisation of 01/07/2025. Existing rows came from the list of 01/05/2024.
"""
from alembic import op
import sqlalchemy as sa


revision = "0006"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("units", schema=None) as batch_op:
        batch_op.add_column(sa.Column("valid_from", sa.Date(), nullable=False, server_default="2024-05-01"))
        batch_op.add_column(sa.Column("valid_to", sa.Date(), nullable=True))
        batch_op.drop_constraint("uq_units_code", type_="unique")
        batch_op.create_unique_constraint(batch_op.f("uq_units_code_valid_from"), ["code", "valid_from"])
        batch_op.create_index(batch_op.f("ix_units_code"), ["code"], unique=False)
    with op.batch_alter_table("units", schema=None) as batch_op:
        batch_op.alter_column("valid_from", server_default=None)

    op.create_table(
        "unit_merges",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("source_id", sa.Integer(), nullable=False),
        sa.Column("share", sa.String(length=8), nullable=False),
        sa.Column("hint", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["source_id"], ["units.id"], name=op.f("fk_unit_merges_source_id_units"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["unit_id"], ["units.id"], name=op.f("fk_unit_merges_unit_id_units"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_unit_merges")),
        sa.UniqueConstraint("unit_id", "source_id", name=op.f("uq_unit_merges_unit_id_source_id")),
    )
    with op.batch_alter_table("unit_merges", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_unit_merges_source_id"), ["source_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_unit_merges_unit_id"), ["unit_id"], unique=False)

    with op.batch_alter_table("plans", schema=None) as batch_op:
        batch_op.add_column(sa.Column("units_as_of", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("state", sa.String(length=16), nullable=False, server_default="open"))
    with op.batch_alter_table("plans", schema=None) as batch_op:
        batch_op.alter_column("state", server_default=None)

    with op.batch_alter_table("assignments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("confirmed", sa.Boolean(), nullable=False, server_default=sa.true()))
        batch_op.add_column(sa.Column("carried_from", sa.JSON(), nullable=False, server_default="[]"))
    with op.batch_alter_table("assignments", schema=None) as batch_op:
        batch_op.alter_column("confirmed", server_default=None)
        batch_op.alter_column("carried_from", server_default=None)


def downgrade():
    with op.batch_alter_table("assignments", schema=None) as batch_op:
        batch_op.drop_column("carried_from")
        batch_op.drop_column("confirmed")
    with op.batch_alter_table("plans", schema=None) as batch_op:
        batch_op.drop_column("state")
        batch_op.drop_column("units_as_of")
    with op.batch_alter_table("unit_merges", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_unit_merges_unit_id"))
        batch_op.drop_index(batch_op.f("ix_unit_merges_source_id"))
    op.drop_table("unit_merges")
    # Refused by the old unique code while two versions share a code: remove the later map's units first.
    with op.batch_alter_table("units", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_units_code"))
        batch_op.drop_constraint("uq_units_code_valid_from", type_="unique")
        batch_op.create_unique_constraint("uq_units_code", ["code"])
        batch_op.drop_column("valid_to")
        batch_op.drop_column("valid_from")
