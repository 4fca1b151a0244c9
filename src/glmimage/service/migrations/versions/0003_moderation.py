"""OpenAI's `moderation` per request: generations.moderation (the safety policy's level; None = "auto").

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('generations') as batch:  # batch mode: SQLite cannot ALTER every column in place
        batch.add_column(sa.Column('moderation', sa.String(length=20), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('generations') as batch:
        batch.drop_column('moderation')
