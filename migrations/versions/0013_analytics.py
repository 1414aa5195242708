"""Analytics: conversation turns reduced from the tracker store, per day.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05 05:00:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'analytics_turns',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('at', sa.DateTime(), nullable=False),
        sa.Column('conversation', sa.String(length=32), nullable=False),
        sa.Column('channel', sa.String(length=16), nullable=False),
        sa.Column('intent', sa.String(length=64), nullable=True),
        sa.Column('item_id', sa.String(length=64), nullable=True),
        sa.Column('answer', sa.String(length=32), nullable=True),
        sa.Column('understood', sa.Boolean(), nullable=False),
        sa.Column('response_ms', sa.Integer(), nullable=True),
        sa.Column('topic', sa.String(length=100), nullable=True),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_analytics_turns_day_channel', 'analytics_turns', ['day', 'channel'], unique=False)
    op.create_index('ix_analytics_turns_day_item', 'analytics_turns', ['day', 'item_id'], unique=False)
    op.create_table(
        'analytics_days',
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('computed_at', sa.DateTime(), nullable=False),
        sa.Column('complete', sa.Boolean(), nullable=False),
        sa.Column('turns', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('day'),
    )


def downgrade() -> None:
    op.drop_table('analytics_days')
    op.drop_index('ix_analytics_turns_day_item', table_name='analytics_turns')
    op.drop_index('ix_analytics_turns_day_channel', table_name='analytics_turns')
    op.drop_table('analytics_turns')
