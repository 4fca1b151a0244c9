"""Database access: one SQLAlchemy engine and session factory per process, and Alembic migrations run from code.

SQLite (the default) gets WAL and a busy timeout so the API threads and the worker thread can write side by side;
PostgreSQL (`DATABASE_URL=postgresql+psycopg://...`) is what several machines share.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

from sqlalchemy import create_engine, event, make_url, text
from sqlalchemy.engine import CursorResult
from sqlalchemy.engine import Engine as SqlEngine
from sqlalchemy.exc import ArgumentError, NoSuchModuleError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql.dml import UpdateBase

from glmimage.errors import InputError

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


class Database:
    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        try:
            if self.is_sqlite:
                path = url.split("///", 1)[-1]
                if path and path != ":memory:":
                    Path(path).parent.mkdir(parents=True, exist_ok=True)
                self.engine: SqlEngine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
                event.listen(self.engine, "connect", _sqlite_pragmas)
            else:
                self.engine = create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)
        except (ArgumentError, NoSuchModuleError) as exc:
            raise InputError(f"database URL {safe_url(url)!r} is not usable: {exc}; e.g. "
                             "sqlite:///path/glmimage.db or postgresql+psycopg://user@host/db") from None
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session that commits on success and rolls back on error."""
        with self.sessions() as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def migrate(self, revision: str = "head") -> None:
        """Bring the schema to `revision` (Alembic `upgrade`)."""
        from alembic import command

        with self.engine.begin() as connection:
            config = alembic_config(self.url)
            config.attributes["connection"] = connection
            command.upgrade(config, revision)

    def ping(self) -> None:
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    def dispose(self) -> None:
        self.engine.dispose()


def rows_matched(session: Session, statement: UpdateBase) -> int:
    """Execute an UPDATE (or DELETE) in `session` and return how many rows it matched. `Session.execute` is typed
    to return a plain `Result` for every statement; for these it is a `CursorResult`, the one with `rowcount`."""
    return cast("CursorResult[Any]", session.execute(statement)).rowcount


def alembic_config(url: str):
    """An Alembic config pointing at the package's migrations; no alembic.ini needed."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def safe_url(url: str) -> str:
    """The URL with its password hidden, for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url.split("@")[-1]


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
