"""Progress subscriptions: who wants to hear when an application's status changes.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05 03:20:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'progress_subscriptions',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('number', sa.String(length=32), nullable=False),
        sa.Column('channel', sa.String(length=16), nullable=False),
        sa.Column('recipient_sealed', sa.Text(), nullable=False),
        sa.Column('recipient_hash', sa.String(length=64), nullable=False),
        sa.Column('last_status', sa.String(length=16), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('cancelled_at', sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_progress_subscriptions_number', 'progress_subscriptions', ['number'], unique=False)
    op.create_index('ix_progress_subscriptions_recipient_hash', 'progress_subscriptions', ['recipient_hash'],
                    unique=False)


def downgrade() -> None:
    op.drop_index('ix_progress_subscriptions_recipient_hash', table_name='progress_subscriptions')
    op.drop_index('ix_progress_subscriptions_number', table_name='progress_subscriptions')
    op.drop_table('progress_subscriptions')
