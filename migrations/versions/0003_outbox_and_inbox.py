"""Kiosk outbox and central inbox.

``outbox_messages`` (kiosk side) holds what must reach the central server until it
is delivered; ``inbox_messages`` (central side) records every applied kiosk message
by the sender's UUID, so that a message delivered twice has one effect.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 05:04:59.719573
"""

from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'outbox_messages',
        sa.Column('id', sa.String(length=36), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('payload', sa.Text(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('next_attempt_at', sa.DateTime(), nullable=False),
        sa.Column('delivered_at', sa.DateTime(), nullable=True),
        sa.Column('failed_at', sa.DateTime(), nullable=True),
        sa.Column('last_error', sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index(
        'ix_outbox_messages_pending',
        'outbox_messages',
        ['delivered_at', 'failed_at', 'next_attempt_at'],
        unique=False,
    )
    op.create_table(
        'inbox_messages',
        sa.Column('id', sa.String(length=36), nullable=False),
        sa.Column('kiosk_id', sa.String(length=64), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('payload', sa.Text(), nullable=False),
        sa.Column('sent_at', sa.DateTime(), nullable=True),
        sa.Column('received_at', sa.DateTime(), nullable=False),
        sa.Column('result_ref', sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index(
        'ix_inbox_messages_kiosk_received', 'inbox_messages', ['kiosk_id', 'received_at'], unique=False
    )


def downgrade() -> None:
    op.drop_index('ix_inbox_messages_kiosk_received', table_name='inbox_messages')
    op.drop_table('inbox_messages')
    op.drop_index('ix_outbox_messages_pending', table_name='outbox_messages')
    op.drop_table('outbox_messages')
