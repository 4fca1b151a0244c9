"""Initial registry and job tables.

Revision ID: 0001
Revises:
Create Date: 2026-11-24

generations.parent_output_id and outputs.generation_id point at each other: on back ends with ALTER (PostgreSQL)
SQLAlchemy leaves the use_alter key out of CREATE TABLE, so it is added once both tables exist; SQLite keeps it
inline (it does not check key targets at CREATE time).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('api_keys',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('prefix', sa.String(length=16), nullable=False),
    sa.Column('key_hash', sa.String(length=64), nullable=False),
    sa.Column('roles', sa.String(length=100), nullable=False),
    sa.Column('rate_limit_per_minute', sa.Integer(), nullable=False),
    sa.Column('quota_images', sa.Integer(), nullable=True),
    sa.Column('images_used', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('revoked_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_keys')),
    sa.UniqueConstraint('key_hash', name=op.f('uq_api_keys_key_hash'))
    )
    op.create_table('assets',
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.Column('mime', sa.String(length=50), nullable=False),
    sa.Column('width', sa.Integer(), nullable=False),
    sa.Column('height', sa.Integer(), nullable=False),
    sa.Column('size_bytes', sa.Integer(), nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('hash', name=op.f('pk_assets'))
    )
    op.create_table('brand_kits',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('palette', sa.JSON(), nullable=False),
    sa.Column('typography', sa.JSON(), nullable=False),
    sa.Column('voice', sa.JSON(), nullable=False),
    sa.Column('required_words', sa.JSON(), nullable=False),
    sa.Column('forbidden_words', sa.JSON(), nullable=False),
    sa.Column('max_palette_distance', sa.Float(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_brand_kits')),
    sa.UniqueConstraint('name', name=op.f('uq_brand_kits_name'))
    )
    op.create_table('prompts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('text_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_prompts')),
    sa.UniqueConstraint('text_hash', name=op.f('uq_prompts_text_hash'))
    )
    op.create_table('templates',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('source', sa.Text(), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('defaults', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_templates')),
    sa.UniqueConstraint('name', 'version', name=op.f('uq_templates_name_version'))
    )
    with op.batch_alter_table('templates', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_templates_name'), ['name'], unique=False)

    op.create_table('generations',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('prompt_id', sa.Integer(), nullable=False),
    sa.Column('width', sa.Integer(), nullable=False),
    sa.Column('height', sa.Integer(), nullable=False),
    sa.Column('steps', sa.Integer(), nullable=True),
    sa.Column('guidance', sa.Float(), nullable=True),
    sa.Column('seed', sa.BigInteger(), nullable=True),
    sa.Column('num_images', sa.Integer(), nullable=False),
    sa.Column('model_id', sa.String(length=200), nullable=False),
    sa.Column('use_case', sa.String(length=50), nullable=False),
    sa.Column('response_format', sa.String(length=10), nullable=False),
    sa.Column('template_id', sa.Integer(), nullable=True),
    sa.Column('brand_kit_id', sa.Integer(), nullable=True),
    sa.Column('variables', sa.JSON(), nullable=True),
    sa.Column('parent_output_id', sa.Integer(), nullable=True),
    sa.Column('policy_flag', sa.Text(), nullable=True),
    sa.Column('rerun_of_id', sa.String(length=32), nullable=True),
    sa.Column('api_key_id', sa.Integer(), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('cancel_requested', sa.Boolean(), nullable=False),
    sa.Column('error_code', sa.String(length=50), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('batch_id', sa.String(length=32), nullable=True),
    sa.Column('worker_id', sa.String(length=100), nullable=True),
    sa.Column('timings', sa.JSON(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('started_at', sa.DateTime(), nullable=True),
    sa.Column('heartbeat_at', sa.DateTime(), nullable=True),
    sa.Column('finished_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['api_key_id'], ['api_keys.id'], name=op.f('fk_generations_api_key_id_api_keys')),
    sa.ForeignKeyConstraint(['brand_kit_id'], ['brand_kits.id'], name=op.f('fk_generations_brand_kit_id_brand_kits')),
    sa.ForeignKeyConstraint(['parent_output_id'], ['outputs.id'], name=op.f('fk_generations_parent_output_id_outputs'), use_alter=True),
    sa.ForeignKeyConstraint(['prompt_id'], ['prompts.id'], name=op.f('fk_generations_prompt_id_prompts')),
    sa.ForeignKeyConstraint(['rerun_of_id'], ['generations.id'], name=op.f('fk_generations_rerun_of_id_generations')),
    sa.ForeignKeyConstraint(['template_id'], ['templates.id'], name=op.f('fk_generations_template_id_templates')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_generations'))
    )
    with op.batch_alter_table('generations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_generations_api_key_id'), ['api_key_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_generations_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_generations_prompt_id'), ['prompt_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_generations_status'), ['status'], unique=False)

    op.create_table('generation_inputs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('generation_id', sa.String(length=32), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('asset_hash', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['asset_hash'], ['assets.hash'], name=op.f('fk_generation_inputs_asset_hash_assets')),
    sa.ForeignKeyConstraint(['generation_id'], ['generations.id'], name=op.f('fk_generation_inputs_generation_id_generations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_generation_inputs')),
    sa.UniqueConstraint('generation_id', 'position', name=op.f('uq_generation_inputs_generation_id_position'))
    )
    op.create_table('outputs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('generation_id', sa.String(length=32), nullable=False),
    sa.Column('index', sa.Integer(), nullable=False),
    sa.Column('asset_hash', sa.String(length=64), nullable=False),
    sa.Column('seed', sa.BigInteger(), nullable=False),
    sa.Column('plan_hash', sa.String(length=64), nullable=True),
    sa.Column('meta', sa.JSON(), nullable=False),
    sa.Column('qa_passed', sa.Boolean(), nullable=False),
    sa.Column('text_score', sa.Float(), nullable=True),
    sa.Column('review_status', sa.String(length=16), nullable=False),
    sa.Column('review_reasons', sa.JSON(), nullable=False),
    sa.Column('reviewed_by', sa.Integer(), nullable=True),
    sa.Column('reviewed_at', sa.DateTime(), nullable=True),
    sa.Column('review_note', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['asset_hash'], ['assets.hash'], name=op.f('fk_outputs_asset_hash_assets')),
    sa.ForeignKeyConstraint(['generation_id'], ['generations.id'], name=op.f('fk_outputs_generation_id_generations')),
    sa.ForeignKeyConstraint(['reviewed_by'], ['api_keys.id'], name=op.f('fk_outputs_reviewed_by_api_keys')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outputs')),
    sa.UniqueConstraint('generation_id', 'index', name=op.f('uq_outputs_generation_id_index'))
    )
    with op.batch_alter_table('outputs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_outputs_generation_id'), ['generation_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_outputs_review_status'), ['review_status'], unique=False)

    op.create_table('qa_results',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('output_id', sa.Integer(), nullable=False),
    sa.Column('check', sa.String(length=30), nullable=False),
    sa.Column('passed', sa.Boolean(), nullable=False),
    sa.Column('score', sa.Float(), nullable=True),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['output_id'], ['outputs.id'], name=op.f('fk_qa_results_output_id_outputs')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_qa_results'))
    )
    with op.batch_alter_table('qa_results', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_qa_results_output_id'), ['output_id'], unique=False)

    if op.get_bind().dialect.supports_alter:
        op.create_foreign_key(op.f('fk_generations_parent_output_id_outputs'), 'generations', 'outputs',
                              ['parent_output_id'], ['id'])



def downgrade() -> None:
    if op.get_bind().dialect.supports_alter:
        op.drop_constraint(op.f('fk_generations_parent_output_id_outputs'), 'generations', type_='foreignkey')
    with op.batch_alter_table('qa_results', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_qa_results_output_id'))

    op.drop_table('qa_results')
    with op.batch_alter_table('outputs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outputs_review_status'))
        batch_op.drop_index(batch_op.f('ix_outputs_generation_id'))

    op.drop_table('outputs')
    op.drop_table('generation_inputs')
    with op.batch_alter_table('generations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_generations_status'))
        batch_op.drop_index(batch_op.f('ix_generations_prompt_id'))
        batch_op.drop_index(batch_op.f('ix_generations_created_at'))
        batch_op.drop_index(batch_op.f('ix_generations_api_key_id'))

    op.drop_table('generations')
    with op.batch_alter_table('templates', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_templates_name'))

    op.drop_table('templates')
    op.drop_table('prompts')
    op.drop_table('brand_kits')
    op.drop_table('assets')
    op.drop_table('api_keys')
