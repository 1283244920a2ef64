"""plan change counter

Revision ID: 0010
Revises: 0006
Create Date: 2026-12-01 11:50:00

A per-plan counter bumped in the transaction of every write that can change the plan's standings (an
upload, a review, a withdrawal, a signed report, an edit of the plan, its assignments or the units): the
in-process standings cache (tracker.standing_cache) compares it instead of re-reading the plan's data.
"""
from alembic import op
import sqlalchemy as sa


revision = "0010"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade():
    # A plain ADD COLUMN: both databases add a column with a constant default without copying the table.
    op.add_column("plans", sa.Column("changes", sa.BigInteger(), nullable=False, server_default="0"))


def downgrade():
    with op.batch_alter_table("plans", schema=None) as batch_op:
        batch_op.drop_column("changes")
