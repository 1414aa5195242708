"""Call mode: tickets saved from hotline calls on the desk.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05 08:00:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'call_tickets',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('operator', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('call_seconds', sa.Integer(), nullable=False),
        sa.Column('item_id', sa.String(length=64), nullable=True),
        sa.Column('question_type', sa.String(length=32), nullable=True),
        sa.Column('category', sa.String(length=8), nullable=False),
        sa.Column('phone_masked', sa.String(length=32), nullable=True),
        sa.Column('name_masked', sa.String(length=32), nullable=True),
        sa.Column('fields_sealed', sa.Text(), nullable=True),
        sa.Column('transcript_sealed', sa.Text(), nullable=True),
        sa.Column('purged_at', sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_call_tickets_created_at', 'call_tickets', ['created_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_call_tickets_created_at', table_name='call_tickets')
    op.drop_table('call_tickets')
