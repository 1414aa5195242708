"""Kiosk pre-applications (预填) and the photos of their materials.

``preapplications`` (by receipt number) and ``preapplication_materials`` serve both
sides: the kiosk keeps them until the outbox delivered them, the central server
stores what it received. Personal data is sealed (fields) or in sealed files (photos).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05 09:00:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'preapplications',
        sa.Column('receipt', sa.String(length=32), nullable=False),
        sa.Column('kiosk_id', sa.String(length=64), nullable=False),
        sa.Column('day', sa.String(length=8), nullable=False),
        sa.Column('seq', sa.Integer(), nullable=False),
        sa.Column('item_id', sa.String(length=64), nullable=False),
        sa.Column('fields_sealed', sa.Text(), nullable=True),
        sa.Column('applicant_masked', sa.String(length=64), nullable=True),
        sa.Column('materials', sa.Integer(), nullable=False),
        sa.Column('message_id', sa.String(length=36), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('received_at', sa.DateTime(), nullable=True),
        sa.Column('purged_at', sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint('receipt'),
    )
    op.create_index('ix_preapplications_kiosk_day', 'preapplications', ['kiosk_id', 'day'], unique=False)
    op.create_index('ix_preapplications_received', 'preapplications', ['received_at'], unique=False)
    op.create_table(
        'preapplication_materials',
        sa.Column('id', sa.String(length=36), nullable=False),
        sa.Column('receipt', sa.String(length=32), nullable=False),
        sa.Column('material', sa.String(length=64), nullable=False),
        sa.Column('content_type', sa.String(length=32), nullable=False),
        sa.Column('size', sa.Integer(), nullable=False),
        sa.Column('width', sa.Integer(), nullable=True),
        sa.Column('height', sa.Integer(), nullable=True),
        sa.Column('sha256', sa.String(length=64), nullable=False),
        sa.Column('path', sa.String(length=200), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('received_at', sa.DateTime(), nullable=True),
        sa.Column('purged_at', sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_preapplication_materials_receipt', 'preapplication_materials', ['receipt'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_preapplication_materials_receipt', table_name='preapplication_materials')
    op.drop_table('preapplication_materials')
    op.drop_index('ix_preapplications_received', table_name='preapplications')
    op.drop_index('ix_preapplications_kiosk_day', table_name='preapplications')
    op.drop_table('preapplications')
