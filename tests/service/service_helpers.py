"""Helpers shared by the service tests."""

from __future__ import annotations

import base64
import contextlib
import io
from collections.abc import Iterator
from typing import Self

import numpy as np
from PIL import Image


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def new_key(client, roles, **limits) -> dict[str, str]:
    from glmimage.service.auth import create_key

    services = client.app.state.services
    with services.db.session() as session:
        _, secret = create_key(session, f"test-{'-'.join(roles)}", roles,
                               rate_limit_per_minute=limits.get("rate_limit_per_minute", 1000),
                               quota_images=limits.get("quota_images"))
    return auth(secret)


def png_bytes(size=(64, 64), seed=0, fmt="PNG") -> bytes:
    rng = np.random.default_rng(seed)
    image = Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


FAST = {"size": "64x64", "steps": 1}


class LiveServer:
    """uvicorn serving `app` on a free loopback port, in a thread of this process."""

    def __init__(self, app) -> None:
        import socket
        import threading

        import uvicorn

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.app = app
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_config=None,
                                                   access_log=False))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Self:
        import time

        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(30)


POSTGRES_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"  # env GLMIMAGE_TEST_POSTGRES overrides
REDIS_URL = "redis://127.0.0.1:6379/0"  # env GLMIMAGE_TEST_REDIS overrides


@contextlib.contextmanager
def tiny_live_server(engine, data_dir) -> Iterator[LiveServer]:
    """A real uvicorn server on loopback over the tiny engine (no OCR): what the `openai` client tests talk to."""
    from glmimage.service.app import create_app
    from glmimage.service.settings import Settings

    settings = Settings(model="tiny", data_dir=data_dir, ocr=False, log_json=False)
    with LiveServer(create_app(settings, engine=engine, text_checker=None)) as live:
        yield live


def openai_client(server: LiveServer):
    """The official `openai` client with the server's bootstrap admin key, no retries."""
    import openai

    key = server.app.state.services.bootstrap_key
    return openai.OpenAI(api_key=key, base_url=server.url + "/v1", max_retries=0, timeout=60)


def decode_b64(item) -> Image.Image:
    """The image of an `openai` response item with b64_json."""
    return Image.open(io.BytesIO(base64.b64decode(item.b64_json)))


def fresh_postgres_database():
    """A generator: yields the SQLAlchemy URL of a new, empty database; drops it afterwards. Fails (never skips)
    when the server is unreachable (the test session starts one unless told otherwise)."""
    import os
    import uuid

    import psycopg
    import pytest
    from sqlalchemy.engine import make_url

    admin_url = os.environ.get("GLMIMAGE_TEST_POSTGRES", POSTGRES_ADMIN_URL)
    try:
        admin = psycopg.connect(admin_url, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL is not reachable at {admin_url} ({exc}); these tests need a real server "
                    "(set GLMIMAGE_TEST_POSTGRES to another admin URL)")
    name = f"glmimage_test_{uuid.uuid4().hex[:12]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    # make_url keeps a Unix-socket host (`?host=/path`, as the throwaway server has) where string surgery would not
    url = make_url(admin_url).set(drivername="postgresql+psycopg", database=name)
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


class RqWorkers:
    """`glmimage serve worker` processes (the tiny model, one thread each) on `database_url` and the Redis queue
    `queue_name`, each logging to `log_dir/<name>.log`. On exit they get SIGTERM (RQ's warm shutdown: finish the
    current job, then exit), and SIGKILL where they have not stopped within 30 s."""

    def __init__(self, log_dir, database_url: str, redis_url: str, queue_name: str, **env: str) -> None:
        import os

        self.log_dir = log_dir
        self.env = {**os.environ, "GLMIMAGE_MODEL": "tiny", "DATABASE_URL": database_url, "REDIS_URL": redis_url,
                    "GLMIMAGE_QUEUE": "rq", "GLMIMAGE_RQ_QUEUE": queue_name, "GLMIMAGE_OCR": "false",
                    "GLMIMAGE_LOG_JSON": "false",
                    "OMP_NUM_THREADS": "1",  # workers and tests share two cores: spinning OpenMP threads thrash
                    **env}
        self.procs: dict = {}  # name -> subprocess.Popen
        self._logs = contextlib.ExitStack()

    def start(self, name: str):
        import subprocess
        import sys

        log = self._logs.enter_context(open(self.log_dir / f"{name}.log", "w"))  # noqa: SIM115 - closed on exit
        self.procs[name] = subprocess.Popen([sys.executable, "-m", "glmimage.cli.main", "serve", "worker", "--name",
                                             name], env=self.env, stdout=log, stderr=subprocess.STDOUT)
        return self.procs[name]

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        import subprocess

        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._logs.close()


def redis_or_fail():
    import os

    import pytest
    import redis

    url = os.environ.get("GLMIMAGE_TEST_REDIS", REDIS_URL)
    client = redis.Redis.from_url(url, socket_connect_timeout=5)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.fail(f"Redis is not reachable at {url} ({exc}); these tests need a real server "
                    "(set GLMIMAGE_TEST_REDIS to another URL)")
    return url, client
