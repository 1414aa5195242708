"""Reviews: the improvement loop's queue and its read cursors.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05 08:00:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'review_items',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('reason', sa.String(length=16), nullable=False),
        sa.Column('status', sa.String(length=12), nullable=False),
        sa.Column('channel', sa.String(length=16), nullable=True),
        sa.Column('text', sa.Text(), nullable=False),
        sa.Column('text_key', sa.String(length=32), nullable=False),
        sa.Column('source', sa.String(length=40), nullable=True),
        sa.Column('seen', sa.Integer(), nullable=False),
        sa.Column('intent', sa.String(length=64), nullable=True),
        sa.Column('confidence', sa.Float(), nullable=True),
        sa.Column('item_id', sa.String(length=64), nullable=True),
        sa.Column('answer', sa.String(length=32), nullable=True),
        sa.Column('detail', sa.String(length=300), nullable=True),
        sa.Column('assigned_item', sa.String(length=64), nullable=True),
        sa.Column('assigned_intent', sa.String(length=64), nullable=True),
        sa.Column('not_covered', sa.Boolean(), nullable=False),
        sa.Column('note', sa.String(length=200), nullable=True),
        sa.Column('assigned_by', sa.String(length=64), nullable=True),
        sa.Column('assigned_at', sa.DateTime(), nullable=True),
        sa.Column('outcome', sa.String(length=12), nullable=True),
        sa.Column('done_by', sa.String(length=64), nullable=True),
        sa.Column('done_at', sa.DateTime(), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('last_seen_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('source'),
    )
    op.create_index('ix_review_items_status_created', 'review_items', ['status', 'created_at'], unique=False)
    op.create_index('ix_review_items_key_status', 'review_items', ['text_key', 'status'], unique=False)
    op.create_table(
        'review_cursors',
        sa.Column('name', sa.String(length=32), nullable=False),
        sa.Column('last_id', sa.Integer(), nullable=False),
        sa.Column('updated_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('name'),
    )


def downgrade() -> None:
    op.drop_table('review_cursors')
    op.drop_index('ix_review_items_key_status', table_name='review_items')
    op.drop_index('ix_review_items_status_created', table_name='review_items')
    op.drop_table('review_items')
