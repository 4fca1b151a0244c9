"""The job store on real SQLite and PostgreSQL databases: batching rules, ownership, cancel, crash recovery, quota
refunds. SQLite ignores row locks (FOR UPDATE), so every test runs on both back ends."""

from datetime import timedelta

import pytest

from glmimage.service import jobs
from glmimage.service.auth import create_key, reserve_quota
from glmimage.service.db import Database
from glmimage.service.tables import ApiKey, Generation, utcnow


@pytest.fixture
def db(database_url):
    """On SQLite and on PostgreSQL (`database_url` is parametrized over both)."""
    database = Database(database_url)
    database.migrate()
    yield database
    database.dispose()


@pytest.fixture
def key_id(db):
    with db.session() as session:
        key, _ = create_key(session, "t", ["generate"], rate_limit_per_minute=10, quota_images=10)
        return key.id


def add(db, key_id, prompt="p", **kw):
    spec = jobs.JobSpec(kind="generate", prompt=prompt, width=kw.pop("width", 64), height=64,
                        num_images=kw.pop("n", 1), steps=1, **kw)
    with db.session() as session:
        assert reserve_quota(session, key_id, spec.num_images)
        return jobs.submit(session, spec, model_id="tiny", api_key_id=key_id).id


def status(db, gen_id):
    with db.sessions() as session:
        return session.get(Generation, gen_id)


def used(db, key_id):
    with db.sessions() as session:
        return session.get(ApiKey, key_id).images_used


def claim(db, worker="w1", max_images=8):
    with db.sessions() as session:
        return [g.id for g in jobs.claim_batch(session, worker, max_images)]


def test_batches_take_compatible_jobs_without_own_seed(db, key_id):
    a, b = add(db, key_id, "a"), add(db, key_id, "b")
    seeded = add(db, key_id, "c", seed=5)
    other_size = add(db, key_id, "d", width=128)
    e = add(db, key_id, "e")
    assert claim(db) == [a, b, e]
    batch = {status(db, i).batch_id for i in (a, b, e)}
    assert len(batch) == 1 and status(db, a).status == "running" and status(db, a).attempts == 1
    assert claim(db) == [seeded]  # a job with its own seed leads its batch; nothing left to join it
    assert claim(db) == [other_size]
    assert claim(db) == []


def test_batch_size_counts_images(db, key_id):
    first, second = add(db, key_id, n=2), add(db, key_id, n=2)
    assert claim(db, max_images=2) == [first]
    assert claim(db, max_images=4) == [second]


def test_only_the_owner_finishes_a_job(db, key_id):
    gen_id = add(db, key_id)
    assert claim(db, "w1") == [gen_id]
    with db.session() as session:
        gen = session.get(Generation, gen_id)
        assert not jobs.mark_succeeded(session, gen, "w2", seed=1, timings={})
        assert jobs.mark_succeeded(session, gen, "w1", seed=1, timings={"planner": 0.1})
    assert status(db, gen_id).status == "succeeded" and status(db, gen_id).seed == 1


def test_a_failed_job_is_closed_once_and_refunded(db, key_id):
    gen_id = add(db, key_id)
    assert claim(db, "w1") == [gen_id]
    with db.session() as session:
        assert not jobs.mark_failed(session, gen_id, "engine_error", "boom", worker_id="w2")  # not w2's job
        assert jobs.mark_failed(session, gen_id, "engine_error", "boom", worker_id="w1")
    failed = status(db, gen_id)
    assert (failed.status, failed.error_code, failed.error) == ("failed", "engine_error", "boom")
    assert failed.finished_at is not None and used(db, key_id) == 0
    with db.session() as session:  # closed once: closing again changes nothing and refunds nothing
        assert not jobs.mark_failed(session, gen_id, "engine_error", "again", worker_id="w1")
    assert status(db, gen_id).error == "boom" and used(db, key_id) == 0


def test_cancel_queued_and_running_refunds(db, key_id):
    queued, running = add(db, key_id, "q"), add(db, key_id, "r", seed=1)
    assert used(db, key_id) == 2
    assert claim(db, "w1") == [queued]  # the oldest leads; "r" has its own seed, so it waits
    assert claim(db, "w1") == [running]
    with db.session() as session:
        jobs.request_cancel(session, session.get(Generation, queued))
        jobs.request_cancel(session, session.get(Generation, running))
    assert status(db, queued).cancel_requested and status(db, queued).status == "running"
    with db.session() as session:
        assert not jobs.mark_succeeded(session, session.get(Generation, running), "w1", seed=1, timings={})
        assert jobs.settle_canceled(session, running, "w1")
    assert status(db, running).status == "canceled" and used(db, key_id) == 1
    late = add(db, key_id, "late")
    with db.session() as session:
        jobs.request_cancel(session, session.get(Generation, late))
    assert status(db, late).status == "canceled" and status(db, late).error == "canceled by the client"
    assert used(db, key_id) == 1


def test_recovery_retries_then_fails_with_reason(db, key_id):
    retry, give_up, fresh = add(db, key_id, "x"), add(db, key_id, "y", seed=3), add(db, key_id, "z", seed=4)
    for _ in range(3):
        claim(db, "dead-worker")
    with db.session() as session:  # "y" already had its last attempt
        session.get(Generation, give_up).attempts = 2
    with db.sessions() as session:
        recovery = jobs.recover_stale(session, utcnow() + timedelta(seconds=1), max_attempts=2)
    assert sorted(recovery.requeued) == sorted([retry, fresh]) and recovery.failed == [give_up]
    assert status(db, retry).status == "queued" and "dead-worker stopped" in status(db, retry).error
    failed = status(db, give_up)
    assert failed.status == "failed" and failed.error_code == "worker_lost" and "attempt 2 of 2" in failed.error
    assert used(db, key_id) == 2  # the failed job's image is refunded
    assert claim(db, "w2") == [retry]  # requeued jobs run again
    assert status(db, retry).attempts == 2


def test_stale_means_old_heartbeat(db, key_id):
    gen_id = add(db, key_id)
    claim(db, "alive")
    with db.sessions() as session:
        recovery = jobs.recover_stale(session, utcnow() - timedelta(seconds=60), max_attempts=2)
    assert recovery.requeued == [] and status(db, gen_id).status == "running"


def test_quota_is_never_overdrawn(db, key_id):
    with db.session() as session:
        assert reserve_quota(session, key_id, 10)
        assert not reserve_quota(session, key_id, 1)
    assert used(db, key_id) == 10
