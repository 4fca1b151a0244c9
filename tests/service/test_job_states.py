"""Job states through the API in RQ mode, on SQLite and on PostgreSQL (`database_url` runs each test on both):
a job that fails, is canceled or is given up gets closed and refunded; the sweep keeps going when one step fails,
and `/readyz` says so. The RQ worker runs in this process (`run_worker(burst=True)`), so its engine can fail on
purpose."""

import uuid
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from rq import Queue

from glmimage.service import jobs as job_store
from glmimage.service.app import create_app
from glmimage.service.rq_queue import run_worker
from glmimage.service.settings import Settings
from glmimage.service.tables import ApiKey, Generation, utcnow
from tests.service.service_helpers import FAST, new_key, redis_or_fail


class FailingEngine:
    """The tiny engine, except that prompts containing "boom" make it raise (as a crashed kernel would)."""

    def __init__(self, engine) -> None:
        self._engine = engine

    def __getattr__(self, name):
        return getattr(self._engine, name)

    def generate(self, prompts, **kwargs):
        if any("boom" in p for p in prompts):
            raise RuntimeError("the engine blew up")
        return self._engine.generate(prompts, **kwargs)


@pytest.fixture
def rq_app(database_url, engine, tmp_path):
    """(client, settings, queue): an API in RQ mode on `database_url`, its own queue, no background sweeps."""
    redis_url, redis = redis_or_fail()
    settings = Settings(model="tiny", data_dir=tmp_path, database_url=database_url, queue="rq", redis_url=redis_url,
                        rq_queue=f"glmimage-test-{uuid.uuid4().hex[:10]}", ocr=False, log_json=False,
                        sweep_interval_s=3600, job_lease_s=60, heartbeat_s=1, max_attempts=2)
    queue = Queue(settings.rq_queue, connection=redis)
    with TestClient(create_app(settings, engine=engine, text_checker=None)) as client:
        try:
            yield client, settings, queue
        finally:
            queue.delete(delete_jobs=True)


def job(client, headers, job_id):
    return client.get(f"/v1/jobs/{job_id}", headers=headers).json()


def images_used(client, headers):
    return client.get("/v1/me", headers=headers).json()["images_used"]


def test_failed_and_canceled_jobs_close_through_rq(rq_app, engine):
    client, settings, queue = rq_app
    headers = new_key(client, ["generate"], quota_images=10)
    submit = lambda prompt, seed: client.post("/v1/jobs", json={"prompt": prompt, "seed": seed, **FAST},  # noqa: E731
                                              headers=headers).json()["id"]
    boom, fine, dropped = submit("boom", 1), submit("a quiet lake", 2), submit("never runs", 3)
    assert images_used(client, headers) == 3

    canceled = client.post(f"/v1/jobs/{dropped}/cancel", headers=headers)
    assert canceled.status_code == 200, canceled.text
    assert (canceled.json()["status"], canceled.json()["error_code"]) == ("canceled", "canceled")
    assert images_used(client, headers) == 2

    run_worker(settings, burst=True, name=f"burst-{uuid.uuid4().hex[:6]}", engine=FailingEngine(engine))
    failed = job(client, headers, boom)
    assert (failed["status"], failed["error_code"]) == ("failed", "engine_error"), failed
    assert "the engine blew up" in failed["error"] and failed["finished_at"]
    assert job(client, headers, fine)["status"] == "succeeded"
    assert job(client, headers, dropped)["status"] == "canceled"  # its message came and found nothing to do
    assert images_used(client, headers) == 1  # only the image delivered counts
    assert queue.count == 0


def stale_running_job(services, key_id, prompt, attempts):
    """A job a worker took and then stopped heart-beating for (a crash)."""
    spec = job_store.JobSpec(kind="generate", prompt=prompt, width=64, height=64, num_images=1, steps=1, seed=7)
    with services.db.session() as session:
        gen = job_store.submit(session, spec, model_id="tiny", api_key_id=key_id)
        gen.status, gen.worker_id, gen.attempts = "running", "dead-worker", attempts
        gen.started_at = gen.heartbeat_at = utcnow() - timedelta(hours=1)
        session.get(ApiKey, key_id).images_used += 1
        return gen.id


def test_sweep_gives_up_requeues_and_resends_and_readyz_tells(rq_app, monkeypatch):
    client, settings, queue = rq_app
    services = client.app.state.services
    headers = new_key(client, ["generate"], quota_images=10)
    key_id = client.get("/v1/me", headers=headers).json()["id"]
    give_up = stale_running_job(services, key_id, "out of attempts", attempts=2)
    retry = stale_running_job(services, key_id, "one attempt left", attempts=1)
    queued = client.post("/v1/jobs", json={"prompt": "waiting", **FAST}, headers=headers).json()["id"]
    queue.empty()  # Redis lost the messages
    assert images_used(client, headers) == 3

    services.sweep_once()  # what the sweeper thread does every sweep_interval_s
    given_up = job(client, headers, give_up)
    assert (given_up["status"], given_up["error_code"]) == ("failed", "worker_lost"), given_up
    assert "gave up" in given_up["error"] and images_used(client, headers) == 2
    assert job(client, headers, retry)["status"] == "queued"
    assert sorted(j.args[0] for j in queue.get_jobs()) == sorted([retry, queued])  # both (re)sent
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"]["sweeper"] == "ok"

    # A sweep whose recovery fails still re-sends the queued jobs, and readiness reports the failure.
    def broken(*args, **kwargs):
        raise RuntimeError("database hiccup")

    monkeypatch.setattr(job_store, "recover_stale", broken)
    queue.empty()
    services.sweep_once()
    assert sorted(j.args[0] for j in queue.get_jobs()) == sorted([retry, queued])
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["checks"]["sweeper"].startswith("error") and "RuntimeError" in ready.json()["checks"]["sweeper"]
    monkeypatch.undo()
    services.sweep_once()
    assert client.get("/readyz").status_code == 200


def test_one_job_that_cannot_be_closed_does_not_stop_the_others(rq_app, monkeypatch):
    client, settings, queue = rq_app
    services = client.app.state.services
    headers = new_key(client, ["generate"], quota_images=10)
    key_id = client.get("/v1/me", headers=headers).json()["id"]
    stuck = stale_running_job(services, key_id, "stuck", attempts=2)
    other = stale_running_job(services, key_id, "other", attempts=2)
    finish = job_store._finish_unsuccessfully

    def flaky(session, conditions, *args):
        if any(getattr(c.right, "value", None) == stuck for c in conditions if hasattr(c, "right")):
            raise RuntimeError("cannot close this one")
        return finish(session, conditions, *args)

    monkeypatch.setattr(job_store, "_finish_unsuccessfully", flaky)
    services.sweep_once()
    assert job(client, headers, other)["status"] == "failed"
    assert job(client, headers, stuck)["status"] == "running"
    assert "1 job" in client.get("/readyz").json()["checks"]["sweeper"]
    with services.db.sessions() as session:
        assert session.get(Generation, other).error_code == "worker_lost"
