"""Alembic migrations against SQLite and a real PostgreSQL server: head equals the models, and down/up works."""

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from glmimage.service.db import Database, alembic_config
from glmimage.service.tables import Base
from tests.service.service_helpers import fresh_postgres_database


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'm.db'}"
    else:
        yield from fresh_postgres_database()


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
