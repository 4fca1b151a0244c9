"""Masked edits: generations.mask_hash (the OpenAI edit mask, an asset; None = no mask).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('generations') as batch:  # batch mode: SQLite cannot ALTER every column in place
        batch.add_column(sa.Column('mask_hash', sa.String(length=64), nullable=True))
        batch.create_foreign_key('fk_generations_mask_hash_assets', 'assets', ['mask_hash'], ['hash'])


def downgrade() -> None:
    with op.batch_alter_table('generations') as batch:
        batch.drop_constraint('fk_generations_mask_hash_assets', type_='foreignkey')
        batch.drop_column('mask_hash')
