"""Ids of status events pushed by the case-management system (applied once each).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05 03:10:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('application_events') as batch:
        batch.add_column(sa.Column('event_id', sa.String(length=64), nullable=True))
        batch.create_unique_constraint('uq_application_events_event_id', ['event_id'])


def downgrade() -> None:
    with op.batch_alter_table('application_events') as batch:
        batch.drop_constraint('uq_application_events_event_id', type_='unique')
        batch.drop_column('event_id')
