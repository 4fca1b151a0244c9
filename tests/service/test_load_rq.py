"""The load test in the deployment's shape: a live server on a fresh PostgreSQL database with its queue on Redis
(RQ), two `glmimage serve worker` processes, 50 concurrent clients with one request each, and one worker SIGKILLed
while it runs a batch. Nothing is lost: every request answers with its image, every job succeeds, none is left
queued or running, and the jobs the dead worker held are recovered by the API process's sweep (stale heartbeat ->
queued again) and run a second time by the surviving worker."""

import asyncio
import signal
import threading
import time
import uuid

import pytest
from benchmarks.load_test import LoadReport, run_load
from rq import Queue, Worker
from sqlalchemy import select

from glmimage.service.app import create_app
from glmimage.service.settings import Settings
from glmimage.service.tables import RUNNING, Generation
from tests.service.service_helpers import FAST, LiveServer, RqWorkers, fresh_postgres_database, redis_or_fail

CLIENTS = 50
HEARTBEAT_S = 0.5  # workers touch their running jobs this often (shipped: 15 s)
LEASE_S = 5.0  # the sweep recovers a running job not touched for this long (shipped: 600 s); 10 beats of slack
SWEEP_S = 0.5  # how often the API process sweeps (shipped: 30 s)


@pytest.fixture
def postgres_url():
    yield from fresh_postgres_database()


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def kill_mid_batch(db, workers: RqWorkers, timeout: float) -> tuple[str, set[str]]:
    """SIGKILL the first worker seen running a job; return its name and the jobs it held. The worker is stopped
    (SIGSTOP) before what it holds is read, so that cannot change between the read and the kill; if it held
    nothing by then (the batch ended meanwhile), it goes on (SIGCONT) and the next running job is tried."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with db.sessions() as session:
            holder = session.scalar(select(Generation.worker_id).where(Generation.status == RUNNING).limit(1))
        if holder is None:
            time.sleep(0.02)
            continue
        proc = workers.procs[holder]
        proc.send_signal(signal.SIGSTOP)
        time.sleep(0.3)  # a statement it had already sent completes on the server
        with db.sessions() as session:
            held = set(session.scalars(select(Generation.id).where(Generation.status == RUNNING,
                                                                   Generation.worker_id == holder)))
        if held:
            proc.kill()  # SIGKILL: no shutdown code runs, as when a machine is lost
            proc.wait()
            return holder, held
        proc.send_signal(signal.SIGCONT)
    raise AssertionError(f"no worker was seen running a job within {timeout} s")


def test_fifty_clients_two_rq_workers_one_killed_mid_batch(engine, postgres_url, tmp_path):
    redis_url, redis = redis_or_fail()
    queue_name = f"glmimage-test-{uuid.uuid4().hex[:10]}"
    settings = Settings(model="tiny", data_dir=tmp_path, database_url=postgres_url, queue="rq", redis_url=redis_url,
                        rq_queue=queue_name, ocr=False, log_json=False, heartbeat_s=HEARTBEAT_S,
                        job_lease_s=LEASE_S, sweep_interval_s=SWEEP_S)
    queue = Queue(queue_name, connection=redis)
    suffix = uuid.uuid4().hex[:6]
    names = [f"w1-{suffix}", f"w2-{suffix}"]
    app = create_app(settings, engine=engine, text_checker=None)
    try:
        with RqWorkers(tmp_path, postgres_url, redis_url, queue_name, GLMIMAGE_HEARTBEAT_S=str(HEARTBEAT_S),
                       GLMIMAGE_JOB_LEASE_S=str(LEASE_S)) as workers, LiveServer(app) as server:
            for name in names:
                workers.start(name)
            wait_for(lambda: len(Worker.all(queue=queue)) == 2, 90, f"two workers registered ({tmp_path})")
            services = app.state.services

            reports: list[LoadReport] = []
            payload = {"prompt": 'A flyer titled "LOAD TEST"', "n": 1, **FAST}
            load = threading.Thread(target=lambda: reports.append(asyncio.run(run_load(
                server.url, services.bootstrap_key, clients=CLIENTS, requests_per_client=1, payload=payload,
                time_limit_s=240))))
            load.start()
            try:
                killed, held = kill_mid_batch(services.db, workers, timeout=120)
            finally:
                load.join()
            survivor = next(name for name in names if name != killed)
            assert workers.procs[survivor].poll() is None
            (report,) = reports

            assert report.errors == 0, report.error_samples
            assert report.lost_jobs == 0 and report.succeeded == CLIENTS
            assert report.jobs_by_status == {"queued": 0, "running": 0, "succeeded": CLIENTS, "failed": 0,
                                             "canceled": 0}
            with services.db.sessions() as session:
                jobs = {g.id: g for g in session.scalars(select(Generation))}
            assert len(jobs) == CLIENTS and all(g.status == "succeeded" for g in jobs.values())
            # The jobs the dead worker held ran again, on the survivor; every other job ran once (no live worker
            # lost a job to the sweep).
            retried = {i for i, g in jobs.items() if g.attempts > 1}
            assert retried == held, (retried, held)
            assert all(jobs[i].attempts == 2 and jobs[i].worker_id == survivor for i in held)
            assert {g.worker_id for g in jobs.values()} <= set(names)
            wait_for(lambda: queue.count == 0, 30, "the queue to drain")  # duplicate messages are no-ops
            assert services.sweep_error is None
    finally:
        queue.delete(delete_jobs=True)  # after the workers stopped
