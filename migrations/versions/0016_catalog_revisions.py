"""Catalog administration: published edits of items and bundles (catalog_revisions).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-05 08:00:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'catalog_revisions',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('record_id', sa.String(length=64), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('action', sa.String(length=16), nullable=False),
        sa.Column('author', sa.String(length=128), nullable=False),
        sa.Column('reason', sa.String(length=500), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('document', sa.Text(), nullable=True),
        sa.Column('previous', sa.Text(), nullable=True),
        sa.Column('reverted_to', sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_catalog_revisions_record_id', 'catalog_revisions', ['record_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_catalog_revisions_record_id', table_name='catalog_revisions')
    op.drop_table('catalog_revisions')
