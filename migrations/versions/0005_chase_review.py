"""chase and review: contact names and phones, comment threads on versions

Revision ID: 0005
Revises: 0008
"""
from alembic import op
import sqlalchemy as sa


revision = "0005"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("name", sa.String(length=200), server_default="", nullable=False))
        batch_op.add_column(sa.Column("phone", sa.String(length=32), server_default="", nullable=False))
    op.create_table(
        "version_comments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["author_id"], ["users.id"], name=op.f("fk_version_comments_author_id_users")),
        sa.ForeignKeyConstraint(["version_id"], ["return_versions.id"],
                                name=op.f("fk_version_comments_version_id_return_versions"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_version_comments")),
    )
    with op.batch_alter_table("version_comments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_version_comments_version_id"), ["version_id"], unique=False)


def downgrade():
    with op.batch_alter_table("version_comments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_version_comments_version_id"))
    op.drop_table("version_comments")
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.drop_column("phone")
        batch_op.drop_column("name")
