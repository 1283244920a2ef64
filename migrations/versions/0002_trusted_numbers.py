"""withdrawn return versions

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 08:50:00

A unit may withdraw a version of its return: the version stays in the history (never deleted) and
stops counting. Two nullable columns, so existing rows need no backfill.
"""
from alembic import op
import sqlalchemy as sa


revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("return_versions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("withdrawn_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("withdrawn_by_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f("fk_return_versions_withdrawn_by_id_users"), "users",
                                    ["withdrawn_by_id"], ["id"])


def downgrade():
    with op.batch_alter_table("return_versions", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_return_versions_withdrawn_by_id_users"), type_="foreignkey")
        batch_op.drop_column("withdrawn_by_id")
        batch_op.drop_column("withdrawn_at")
