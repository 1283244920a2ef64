"""documents: the cover's fields on each return version, signed reports, plan document date and setting

Revision ID: 0004
Revises: 0007
Create Date: 2026-12-01 09:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0004"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('plans', schema=None) as batch_op:
        batch_op.add_column(sa.Column('doc_date_text', sa.String(length=50), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('signed_report_required', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
    with op.batch_alter_table('return_versions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('cover', sa.JSON(), nullable=False, server_default='{}'))
    op.create_table('signed_reports',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('assignment_id', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('filename', sa.String(length=255), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('pages', sa.Integer(), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('uploaded_by_id', sa.Integer(), nullable=True),
    sa.Column('signature', sa.JSON(), nullable=True),
    sa.Column('content', sa.LargeBinary(), nullable=False),
    sa.ForeignKeyConstraint(['assignment_id'], ['assignments.id'], name=op.f('fk_signed_reports_assignment_id_assignments')),
    sa.ForeignKeyConstraint(['uploaded_by_id'], ['users.id'], name=op.f('fk_signed_reports_uploaded_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_signed_reports')),
    sa.UniqueConstraint('assignment_id', 'sha256', name=op.f('uq_signed_reports_assignment_id_sha256')),
    sa.UniqueConstraint('assignment_id', 'version', name=op.f('uq_signed_reports_assignment_id_version'))
    )
    with op.batch_alter_table('signed_reports', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_signed_reports_assignment_id'), ['assignment_id'], unique=False)


def downgrade():
    with op.batch_alter_table('signed_reports', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_signed_reports_assignment_id'))
    op.drop_table('signed_reports')
    with op.batch_alter_table('return_versions', schema=None) as batch_op:
        batch_op.drop_column('cover')
    with op.batch_alter_table('plans', schema=None) as batch_op:
        batch_op.drop_column('signed_report_required')
        batch_op.drop_column('doc_date_text')
