"""Which model each gateway replica uses after a retraining: one row per (run, replica).

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-05 11:10:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'model_loads',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('run_id', sa.Integer(), nullable=False),
        sa.Column('replica', sa.String(length=200), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('model_path', sa.String(length=500), nullable=True),
        sa.Column('error', sa.String(length=300), nullable=True),
        sa.Column('at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('run_id', 'replica', name='uq_model_loads_run_replica'),
    )
    op.create_index('ix_model_loads_run_id', 'model_loads', ['run_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_model_loads_run_id', table_name='model_loads')
    op.drop_table('model_loads')
