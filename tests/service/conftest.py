"""Service fixtures: the real tiny engine (random weights, built in memory), apps on fresh SQLite files, keys, and
`database_url`: every test that asks for it runs twice, on SQLite and on a fresh PostgreSQL database."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.service.service_helpers import auth, fresh_postgres_database


@pytest.fixture(scope="session")
def engine():
    from glmimage.engine import Engine

    return Engine.from_pretrained("tiny")


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    """A new, empty database on each back end (SQLite ignores row locks, so job-state code must meet both)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'backend.db'}"
    else:
        yield from fresh_postgres_database()


@pytest.fixture
def make_settings(tmp_path):
    from glmimage.service.settings import Settings

    def make(**overrides):
        values = {"model": "tiny", "data_dir": tmp_path / "service", "ocr": False, "batch_wait_s": 0.02,
                  "log_json": False}
        values.update(overrides)
        return Settings(**values)

    return make


@pytest.fixture
def make_client(engine, make_settings):
    """A started app (lifespan run) around the real tiny engine; OCR off unless a text_checker is given."""
    clients = []

    def make(text_checker=None, **overrides):
        from glmimage.service.app import create_app

        app = create_app(make_settings(**overrides), engine=engine, text_checker=text_checker)
        client = TestClient(app)
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client):
    return make_client()


@pytest.fixture
def admin(client):
    """Headers with the bootstrap key (every role)."""
    return auth(client.app.state.services.bootstrap_key)


