"""Missing materials handed in by photo: verification grants and material uploads.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05 12:00:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'verification_grants',
        sa.Column('sender_hash', sa.String(length=64), nullable=False),
        sa.Column('number', sa.String(length=32), nullable=False),
        sa.Column('granted_at', sa.DateTime(), nullable=False),
        sa.Column('expires_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('sender_hash'),
    )
    op.create_index('ix_verification_grants_expires_at', 'verification_grants', ['expires_at'], unique=False)
    op.create_table(
        'material_uploads',
        sa.Column('id', sa.String(length=36), nullable=False),
        sa.Column('number', sa.String(length=32), nullable=False),
        sa.Column('material', sa.String(length=100), nullable=False),
        sa.Column('mime', sa.String(length=64), nullable=False),
        sa.Column('size', sa.Integer(), nullable=False),
        sa.Column('pages', sa.Integer(), nullable=False),
        sa.Column('width', sa.Integer(), nullable=True),
        sa.Column('height', sa.Integer(), nullable=True),
        sa.Column('doc_type', sa.String(length=32), nullable=True),
        sa.Column('verdict', sa.String(length=16), nullable=False),
        sa.Column('reasons', sa.Text(), nullable=False),
        sa.Column('readable', sa.Boolean(), nullable=True),
        sa.Column('expired', sa.Boolean(), nullable=True),
        sa.Column('expiry', sa.Date(), nullable=True),
        sa.Column('name_matches', sa.Boolean(), nullable=True),
        sa.Column('text_sealed', sa.Text(), nullable=True),
        sa.Column('channel', sa.String(length=16), nullable=False),
        sa.Column('sender_hash', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('forwarded_at', sa.DateTime(), nullable=True),
        sa.Column('forward_ref', sa.String(length=64), nullable=True),
        sa.Column('forward_attempts', sa.Integer(), nullable=False),
        sa.Column('next_forward_at', sa.DateTime(), nullable=True),
        sa.Column('deleted_at', sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_material_uploads_number_created', 'material_uploads', ['number', 'created_at'], unique=False)
    op.create_index('ix_material_uploads_next_forward', 'material_uploads', ['next_forward_at'], unique=False)
    op.create_index('ix_material_uploads_created', 'material_uploads', ['created_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_material_uploads_created', table_name='material_uploads')
    op.drop_index('ix_material_uploads_next_forward', table_name='material_uploads')
    op.drop_index('ix_material_uploads_number_created', table_name='material_uploads')
    op.drop_table('material_uploads')
    op.drop_index('ix_verification_grants_expires_at', table_name='verification_grants')
    op.drop_table('verification_grants')
