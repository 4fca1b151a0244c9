"""Per-request edit settings: generations.copy_bias and generations.keep (None = the model's own).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('generations') as batch:  # batch mode: SQLite cannot ALTER every column in place
        batch.add_column(sa.Column('copy_bias', sa.Float(), nullable=True))
        batch.add_column(sa.Column('keep', sa.Boolean(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('generations') as batch:
        batch.drop_column('keep')
        batch.drop_column('copy_bias')
