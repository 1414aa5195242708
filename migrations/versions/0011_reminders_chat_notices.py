"""Reminders (服务找人), notices waiting for a web chat, and scheduler leases.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05 06:00:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'reminders',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('kind', sa.String(length=32), nullable=False),
        sa.Column('number', sa.String(length=32), nullable=True),
        sa.Column('due_on', sa.Date(), nullable=False),
        sa.Column('channel', sa.String(length=16), nullable=False),
        sa.Column('recipient_sealed', sa.Text(), nullable=False),
        sa.Column('recipient_hash', sa.String(length=64), nullable=False),
        sa.Column('send_at', sa.DateTime(), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('sent_at', sa.DateTime(), nullable=True),
        sa.Column('cancelled_at', sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_reminders_recipient_hash', 'reminders', ['recipient_hash'], unique=False)
    op.create_index('ix_reminders_status_send_at', 'reminders', ['status', 'send_at'], unique=False)
    op.create_table(
        'chat_notices',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('conversation_hash', sa.String(length=64), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('text', sa.Text(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('delivered_at', sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_chat_notices_conversation', 'chat_notices', ['conversation_hash', 'delivered_at'],
                    unique=False)
    op.create_table(
        'scheduler_leases',
        sa.Column('name', sa.String(length=64), nullable=False),
        sa.Column('holder', sa.String(length=64), nullable=False),
        sa.Column('expires_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('name'),
    )


def downgrade() -> None:
    op.drop_table('scheduler_leases')
    op.drop_index('ix_chat_notices_conversation', table_name='chat_notices')
    op.drop_table('chat_notices')
    op.drop_index('ix_reminders_status_send_at', table_name='reminders')
    op.drop_index('ix_reminders_recipient_hash', table_name='reminders')
    op.drop_table('reminders')
