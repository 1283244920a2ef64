"""stays up: session generation per user

Revision ID: 0003
Revises: 0004
Create Date: 2026-12-01 09:30:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0003"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade():
    # Part of the session key: bumped by logout, deactivation, reactivation and password changes.
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("session_generation", sa.Integer(), server_default="0", nullable=False))


def downgrade():
    with op.batch_alter_table("users") as batch:
        batch.drop_column("session_generation")
