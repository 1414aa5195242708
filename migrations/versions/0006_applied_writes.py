"""Keys of writes that must happen once (the local spool's replays: assistant/storage/spool.py).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-08 09:00:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'applied_writes',
        sa.Column('key', sa.String(length=32), nullable=False),
        sa.Column('kind', sa.String(length=32), nullable=False),
        sa.Column('applied_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('key'),
    )
    op.create_index('ix_applied_writes_applied_at', 'applied_writes', ['applied_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_applied_writes_applied_at', table_name='applied_writes')
    op.drop_table('applied_writes')
