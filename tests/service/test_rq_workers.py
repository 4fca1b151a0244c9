"""Several `glmimage serve worker` processes on loopback, against a real Redis (RQ) and a real PostgreSQL."""

import time
import uuid

import pytest
from fastapi.testclient import TestClient
from rq import Queue, Worker
from sqlalchemy import select

from glmimage.service.app import create_app
from glmimage.service.settings import Settings
from glmimage.service.tables import Generation
from tests.service.service_helpers import FAST, RqWorkers, fresh_postgres_database, redis_or_fail


@pytest.fixture
def postgres_url():
    yield from fresh_postgres_database()


@pytest.fixture
def rq_setup(postgres_url, engine, tmp_path):
    redis_url, redis = redis_or_fail()
    name = f"glmimage-test-{uuid.uuid4().hex[:10]}"
    settings = Settings(model="tiny", data_dir=tmp_path, database_url=postgres_url, queue="rq", redis_url=redis_url,
                        rq_queue=name, ocr=False, log_json=False)
    queue = Queue(name, connection=redis)
    try:
        with RqWorkers(tmp_path, postgres_url, redis_url, name) as workers, \
                TestClient(create_app(settings, engine=engine, text_checker=None)) as client:
            yield client, queue, workers.start
    finally:
        queue.delete(delete_jobs=True)  # after the workers stopped


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_workers_share_jobs_and_lost_messages_are_resent(rq_setup, tmp_path):
    client, queue, start_worker = rq_setup
    services = client.app.state.services
    headers = {"Authorization": f"Bearer {services.bootstrap_key}"}
    assert client.get("/readyz").json()["checks"] == {"database": "ok", "model": "ok", "queue": "ok", "sweeper": "ok"}

    # Jobs queued while no worker runs, then Redis loses their messages: the database still has them.
    early = [client.post("/v1/jobs", json={"prompt": f"early {i}", **FAST}, headers=headers).json()["id"]
             for i in range(2)]
    assert queue.count == 2
    queue.empty()
    services._redispatch_queued()  # what the sweeper does every sweep_interval_s
    assert queue.count == 2

    suffix = uuid.uuid4().hex[:6]
    names = [f"w1-{suffix}", f"w2-{suffix}"]
    for name in names:
        start_worker(name)
    wait_for(lambda: len(Worker.all(queue=queue)) == 2, 90, f"two workers registered ({tmp_path})")

    # Jobs with their own seeds do not batch together, so each is one RQ task any worker may take.
    late = [client.post("/v1/jobs", json={"prompt": f"late {i}", "seed": i, **FAST}, headers=headers).json()["id"]
            for i in range(8)]
    sync = client.post("/v1/images/generations", json={"prompt": "through redis", **FAST}, headers=headers)
    assert sync.status_code == 200 and len(sync.json()["data"]) == 1  # the API waits by polling the database

    def all_done():
        with services.db.sessions() as session:
            rows = session.scalars(select(Generation).where(Generation.id.in_(early + late))).all()
            return all(g.status == "succeeded" for g in rows) and len(rows) == 10

    wait_for(all_done, 120, "all jobs to succeed")
    with services.db.sessions() as session:
        rows = session.scalars(select(Generation).where(Generation.id.in_(early + late))).all()
    assert {g.worker_id for g in rows} == set(names)  # both workers took jobs
    assert all(g.attempts == 1 for g in rows)  # no job ran twice
    assert queue.count == 0
