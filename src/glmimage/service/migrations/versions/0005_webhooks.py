"""Webhooks on job completion: generations.webhook_* and the webhook_deliveries log.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('generations') as batch:  # batch mode: SQLite cannot ALTER every column in place
        batch.add_column(sa.Column('webhook_url', sa.Text(), nullable=True))
        batch.add_column(sa.Column('webhook_status', sa.String(length=10), nullable=True))
        batch.add_column(sa.Column('webhook_attempts', sa.Integer(), nullable=False, server_default='0'))
        batch.add_column(sa.Column('webhook_next_at', sa.DateTime(), nullable=True))
        batch.create_index('ix_generations_webhook_status', ['webhook_status'])
    op.create_table(
        'webhook_deliveries',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('generation_id', sa.String(length=32), nullable=False),
        sa.Column('attempt', sa.Integer(), nullable=False),
        sa.Column('event', sa.String(length=30), nullable=False),
        sa.Column('status_code', sa.Integer(), nullable=True),
        sa.Column('error', sa.Text(), nullable=True),
        sa.Column('delivered', sa.Boolean(), nullable=False),
        sa.Column('duration_ms', sa.Float(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['generation_id'], ['generations.id'],
                                name='fk_webhook_deliveries_generation_id_generations'),
        sa.PrimaryKeyConstraint('id', name='pk_webhook_deliveries'),
    )
    op.create_index('ix_webhook_deliveries_generation_id', 'webhook_deliveries', ['generation_id'])


def downgrade() -> None:
    op.drop_index('ix_webhook_deliveries_generation_id', table_name='webhook_deliveries')
    op.drop_table('webhook_deliveries')
    with op.batch_alter_table('generations') as batch:
        batch.drop_index('ix_generations_webhook_status')
        batch.drop_column('webhook_next_at')
        batch.drop_column('webhook_attempts')
        batch.drop_column('webhook_status')
        batch.drop_column('webhook_url')
