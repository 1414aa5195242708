"""Retraining from the admin catalog page: one row per run (training_runs).

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-05 09:40:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'training_runs',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('active', sa.Integer(), nullable=True),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('started_by', sa.String(length=128), nullable=False),
        sa.Column('started_at', sa.DateTime(), nullable=False),
        sa.Column('finished_at', sa.DateTime(), nullable=True),
        sa.Column('heartbeat_at', sa.DateTime(), nullable=False),
        sa.Column('host', sa.String(length=128), nullable=False),
        sa.Column('pid', sa.Integer(), nullable=True),
        sa.Column('phase', sa.String(length=64), nullable=True),
        sa.Column('progress', sa.Integer(), nullable=True),
        sa.Column('last_line', sa.String(length=300), nullable=True),
        sa.Column('exit_code', sa.Integer(), nullable=True),
        sa.Column('model_path', sa.String(length=500), nullable=True),
        sa.Column('error', sa.String(length=300), nullable=True),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('active'),
    )


def downgrade() -> None:
    op.drop_table('training_runs')
