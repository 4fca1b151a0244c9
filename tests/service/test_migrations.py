"""Alembic migrations against SQLite and a real PostgreSQL server: head equals the models, and down/up works."""

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from glmimage.service.db import Database, alembic_config
from glmimage.service.tables import Base

# `database_url` (tests/service/conftest.py): each test runs on SQLite and on PostgreSQL.


def test_head_matches_models_and_downgrade_roundtrips(database_url):
    db = Database(database_url)
    try:
        db.migrate()
        with db.engine.connect() as connection:
            assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
            tables = set(inspect(connection).get_table_names())
        assert {"generations", "outputs", "assets", "prompts", "templates", "brand_kits", "api_keys",
                "qa_results", "generation_inputs", "alembic_version"} <= tables
        with db.engine.begin() as connection:
            config = alembic_config(database_url)
            config.attributes["connection"] = connection
            command.downgrade(config, "base")
        with db.engine.connect() as connection:
            assert set(inspect(connection).get_table_names()) <= {"alembic_version"}
        db.migrate()  # and back up again
        with db.engine.connect() as connection:
            assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
    finally:
        db.dispose()


def test_edit_settings_migration_keeps_existing_generations(database_url):
    """A database at 0001 with a queued job upgrades to head: the job is still there, its edit settings None (the
    model's own), and the downgrade to 0001 drops only the two columns."""
    from datetime import datetime

    from sqlalchemy import text

    db = Database(database_url)
    try:
        db.migrate("0001")
        with db.engine.begin() as connection:
            connection.execute(text("INSERT INTO prompts (id, text, text_hash, created_at) VALUES (1, 'p', 'h', :t)"),
                               {"t": datetime(2026, 11, 30)})
            connection.execute(text(
                "INSERT INTO generations (id, kind, status, prompt_id, width, height, num_images, model_id, use_case, "
                "response_format, attempts, cancel_requested, created_at) VALUES ('job1', 'edit', 'queued', 1, 256, "
                "256, 1, 'nano', 'default', 'b64_json', 0, false, :t)"), {"t": datetime(2026, 11, 30)})
        db.migrate()
        with db.engine.connect() as connection:
            row = connection.execute(text("SELECT id, copy_bias, keep FROM generations")).one()
        assert tuple(row) == ("job1", None, None)
        with db.engine.begin() as connection:
            config = alembic_config(database_url)
            config.attributes["connection"] = connection
            command.downgrade(config, "0001")
        with db.engine.connect() as connection:
            columns = {c["name"] for c in inspect(connection).get_columns("generations")}
            assert "copy_bias" not in columns and "keep" not in columns
            assert connection.execute(text("SELECT id FROM generations")).scalar_one() == "job1"
    finally:
        db.dispose()
