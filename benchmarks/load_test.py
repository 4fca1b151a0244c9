"""Load test of `glmimage serve` on loopback: many concurrent OpenAI-style clients, bounded in count and time.

    python benchmarks/load_test.py --clients 50 --requests 4 --size 64x64 --steps 1

Starts a fresh server (its own data directory, the tiny model unless --model), creates a key, runs `clients`
concurrent clients that each send `requests` POST /v1/images/generations one after the other, then asks the
registry what became of every job. Reports errors, lost jobs (requests without a succeeded job, or jobs left
queued/running), throughput and latency percentiles. With --url and --key it targets a running server instead.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx
import numpy as np


@dataclass
class LoadReport:
    clients: int
    requests: int
    succeeded: int
    errors: int
    lost_jobs: int
    wall_s: float
    throughput_rps: float
    images_per_s: float
    latency_p50_s: float
    latency_p95_s: float
    latency_p99_s: float
    latency_max_s: float
    jobs_by_status: dict = field(default_factory=dict)
    error_samples: list = field(default_factory=list)

    def summary(self) -> str:
        return (f"{self.clients} clients x {self.requests // max(self.clients, 1)} requests: "
                f"{self.succeeded}/{self.requests} ok, {self.errors} errors, {self.lost_jobs} lost jobs, "
                f"{self.wall_s:.1f} s, {self.throughput_rps:.2f} req/s, {self.images_per_s:.2f} img/s, "
                f"latency p50 {self.latency_p50_s:.2f} s, p95 {self.latency_p95_s:.2f} s, "
                f"p99 {self.latency_p99_s:.2f} s, max {self.latency_max_s:.2f} s")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _glmimage() -> list[str]:
    return [sys.executable, "-m", "glmimage.cli.main"]


class ServerProcess:
    """`glmimage serve` as a child process on a free loopback port, with its own settings and data directory."""

    def __init__(self, data_dir: str | Path, model: str = "tiny", env: dict | None = None) -> None:
        self.data_dir = Path(data_dir)
        # A fresh server: none of the caller's service settings (database, queue) leak in unless passed.
        inherited = {k: v for k, v in os.environ.items() if k != "DATABASE_URL" and not k.startswith("GLMIMAGE_")}
        self.env = {**inherited, "GLMIMAGE_DATA_DIR": str(self.data_dir), "GLMIMAGE_MODEL": model,
                    "GLMIMAGE_BOOTSTRAP_ADMIN_KEY": "false", **(env or {})}
        self.proc: subprocess.Popen | None = None
        self.url = ""

    def create_key(self, roles: str = "generate,review,admin") -> str:
        """What `glmimage serve create-key` does, in this process (the CLI would import the whole engine)."""
        from glmimage.service.auth import create_key
        from glmimage.service.db import Database
        from glmimage.service.settings import Settings

        db = Database(Settings.from_env(self.env).resolved_database_url)
        try:
            db.migrate()
            with db.session() as session:
                return create_key(session, "load-test", roles, rate_limit_per_minute=100_000)[1]
        finally:
            db.dispose()

    def start(self, timeout: float = 120.0) -> str:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.data_dir / "server.log"
        with open(log_path, "a") as log:  # the child keeps its own handle
            self.proc = subprocess.Popen([*_glmimage(), "serve", "--port", str(port)], env=self.env, stdout=log,
                                         stderr=subprocess.STDOUT)
        _wait_ready(self.url, self.proc, timeout, log_path)
        return self.url

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as in a crash or a lost machine."""
        self.proc.kill()
        self.proc.wait()

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@contextmanager
def local_server(model: str = "tiny", env: dict | None = None):
    """A fresh `glmimage serve` in a temporary directory with an all-roles key; yields (base_url, key)."""
    with tempfile.TemporaryDirectory(prefix="glmimage-load-") as tmp:
        server = ServerProcess(tmp, model, env)
        key = server.create_key()
        url = server.start()
        try:
            yield url, key
        finally:
            server.stop()


def _wait_ready(base_url: str, proc: subprocess.Popen, timeout: float, log_path: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
        try:
            if httpx.get(base_url + "/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"server not ready after {timeout} s:\n{log_path.read_text()[-3000:]}")


async def _client(http: httpx.AsyncClient, payload: dict, count: int, latencies: list, errors: list,
                  job_ids: list) -> None:
    for _ in range(count):
        start = time.perf_counter()
        try:
            response = await http.post("/v1/images/generations", json=payload)
            if response.status_code == 200 and len(response.json()["data"]) == payload["n"]:
                latencies.append(time.perf_counter() - start)
                job_ids.append(response.json()["glmimage"]["id"])
            else:
                errors.append(f"{response.status_code}: {response.text[:200]}")
        except httpx.HTTPError as exc:
            errors.append(f"{type(exc).__name__}: {exc}")


async def run_load(base_url: str, key: str, *, clients: int, requests_per_client: int, payload: dict,
                   time_limit_s: float) -> LoadReport:
    """Run the clients; whatever has not finished after `time_limit_s` counts as an error."""
    latencies: list[float] = []
    errors: list[str] = []
    job_ids: list[str] = []
    headers = {"Authorization": f"Bearer {key}"}
    limits = httpx.Limits(max_connections=clients + 4)
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=time_limit_s, limits=limits) as http:
        before = await _count_jobs(http)
        start = time.perf_counter()
        tasks = [asyncio.create_task(_client(http, payload, requests_per_client, latencies, errors, job_ids))
                 for _ in range(clients)]
        _, pending = await asyncio.wait(tasks, timeout=time_limit_s)
        for task in pending:
            task.cancel()
        wall = time.perf_counter() - start
        total = clients * requests_per_client
        unanswered = total - len(latencies) - len(errors)
        after = await _count_jobs(http)
    jobs_by_status = {k: after[k] - before[k] for k in after}
    # Every request the server accepted became a job. Lost: a job that did not succeed, or a success the
    # registry does not know about.
    created, succeeded = sum(jobs_by_status.values()), jobs_by_status["succeeded"]
    lost = (created - succeeded) + max(0, len(latencies) - succeeded)
    if unanswered:
        errors.append(f"{unanswered} requests unanswered after {time_limit_s} s")
    lat = np.array(latencies) if latencies else np.array([float("nan")])
    return LoadReport(
        clients=clients, requests=total, succeeded=len(latencies), errors=total - len(latencies),
        lost_jobs=lost, wall_s=round(wall, 2), throughput_rps=round(len(latencies) / wall, 3),
        images_per_s=round(len(latencies) * payload["n"] / wall, 3),
        latency_p50_s=round(float(np.percentile(lat, 50)), 3), latency_p95_s=round(float(np.percentile(lat, 95)), 3),
        latency_p99_s=round(float(np.percentile(lat, 99)), 3), latency_max_s=round(float(lat.max()), 3),
        jobs_by_status=jobs_by_status, error_samples=errors[:5],
    )


async def _count_jobs(http: httpx.AsyncClient) -> dict[str, int]:
    counts = {}
    for status in ("queued", "running", "succeeded", "failed", "canceled"):
        response = await http.get("/v1/generations", params={"status": status, "limit": 1})
        response.raise_for_status()
        counts[status] = response.json()["total"]
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--requests", type=int, default=4, help="requests per client")
    parser.add_argument("--size", default="64x64")
    parser.add_argument("--steps", type=int, default=1)
    parser.add_argument("-n", type=int, default=1, help="images per request")
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--time-limit", type=float, default=600.0, help="seconds for all requests together")
    parser.add_argument("--url", help="a running server (else one is started)")
    parser.add_argument("--key", help="an API key with generate and review roles (with --url)")
    parser.add_argument("--threads", type=int, default=1,
                        help="OMP_NUM_THREADS of the started server (the load generator shares the machine)")
    parser.add_argument("--no-ocr", action="store_true", help="start the server without the OCR text check")
    parser.add_argument("--json", help="also write the report here")
    args = parser.parse_args(argv)
    payload = {"prompt": 'A flyer titled "LOAD TEST" with a price tag', "size": args.size, "n": args.n,
               "steps": args.steps, "response_format": "b64_json"}

    def go(url: str, key: str) -> LoadReport:
        return asyncio.run(run_load(url, key, clients=args.clients, requests_per_client=args.requests,
                                    payload=payload, time_limit_s=args.time_limit))

    if args.url:
        report = go(args.url, args.key)
    else:
        env = {"OMP_NUM_THREADS": str(args.threads), "GLMIMAGE_OCR": "false" if args.no_ocr else "true"}
        with local_server(args.model, env) as (url, key):
            report = go(url, key)
    print(report.summary())
    if args.json:
        Path(args.json).write_text(json.dumps(asdict(report), indent=2))
    return 0 if report.errors == 0 and report.lost_jobs == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
