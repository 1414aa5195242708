"""Public API limits: the client of each conversation and rate-limit hits (per client IP).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05 09:00:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'conversation_clients',
        sa.Column('conversation', sa.String(length=32), nullable=False),
        sa.Column('client', sa.String(length=32), nullable=False),
        sa.Column('seen_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('conversation'),
    )
    op.create_index('ix_conversation_clients_seen_at', 'conversation_clients', ['seen_at'], unique=False)
    op.create_table(
        'rate_limit_hits',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('key', sa.String(length=96), nullable=False),
        sa.Column('at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_rate_limit_hits_key_at', 'rate_limit_hits', ['key', 'at'], unique=False)
    op.create_index('ix_rate_limit_hits_at', 'rate_limit_hits', ['at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_rate_limit_hits_at', table_name='rate_limit_hits')
    op.drop_index('ix_rate_limit_hits_key_at', table_name='rate_limit_hits')
    op.drop_table('rate_limit_hits')
    op.drop_index('ix_conversation_clients_seen_at', table_name='conversation_clients')
    op.drop_table('conversation_clients')
