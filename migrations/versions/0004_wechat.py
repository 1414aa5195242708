"""WeChat channel: inbound deduplication, the customer-service send queue, users.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 08:00:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'wechat_inbound',
        sa.Column('key', sa.String(length=200), nullable=False),
        sa.Column('sender_id', sa.String(length=80), nullable=False),
        sa.Column('status', sa.String(length=12), nullable=False),
        sa.Column('delivery', sa.String(length=12), nullable=False),
        sa.Column('reply', sa.Text(), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('expires_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('key'),
    )
    op.create_index('ix_wechat_inbound_expires', 'wechat_inbound', ['expires_at'], unique=False)
    op.create_table(
        'wechat_outgoing',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('sender_id', sa.String(length=80), nullable=False),
        sa.Column('content', sa.Text(), nullable=False),
        sa.Column('source', sa.String(length=16), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('next_attempt_at', sa.DateTime(), nullable=False),
        sa.Column('sent_at', sa.DateTime(), nullable=True),
        sa.Column('failed_at', sa.DateTime(), nullable=True),
        sa.Column('last_error', sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index(
        'ix_wechat_outgoing_due', 'wechat_outgoing', ['sent_at', 'failed_at', 'next_attempt_at'], unique=False
    )
    op.create_table(
        'wechat_users',
        sa.Column('sender_id', sa.String(length=80), nullable=False),
        sa.Column('last_inbound_at', sa.DateTime(), nullable=False),
        sa.Column('sends_since_inbound', sa.Integer(), nullable=False),
        sa.Column('options', sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint('sender_id'),
    )


def downgrade() -> None:
    op.drop_table('wechat_users')
    op.drop_index('ix_wechat_outgoing_due', table_name='wechat_outgoing')
    op.drop_table('wechat_outgoing')
    op.drop_index('ix_wechat_inbound_expires', table_name='wechat_inbound')
    op.drop_table('wechat_inbound')
