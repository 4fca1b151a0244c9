"""Workers on other processes or machines, fed through RQ on Redis (`GLMIMAGE_QUEUE=rq`).

Why RQ: Redis is usually there already, RQ jobs are plain function calls, and `SimpleWorker` runs them in the
worker's own process, so the model is loaded once and stays loaded. Celery's prefork pool and broker settings,
arq's asyncio model (our work is one blocking engine call) and a Ray cluster all bring more than this needs.

The database stays the source of truth: a message only says "job X is queued". Whoever receives it claims X
(and compatible queued jobs) with a conditional UPDATE, so duplicates and lost messages are harmless; the API
process re-sends queued jobs whose message is not in Redis, and recovers jobs whose worker stopped heart-beating.
"""

from __future__ import annotations

import logging
import uuid

from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, SimpleWorker

from glmimage.service.db import Database
from glmimage.service.metrics import Metrics
from glmimage.service.settings import Settings
from glmimage.service.worker import JobRunner, WorkerContext, load_engine, worker_id

log = logging.getLogger("glmimage.service.rq")
_runner: JobRunner | None = None  # set by run_worker in the worker process


class RqDispatcher:
    def __init__(self, redis_url: str, queue_name: str) -> None:
        self.redis = Redis.from_url(redis_url)
        self.queue = Queue(queue_name, connection=self.redis)

    def dispatch(self, job_id: str) -> None:
        # No RQ timeout (-1): liveness is the heartbeat's business; results live in the database, not Redis.
        # The RQ job id starts with the generation's id, so `pending_ids` can tell which jobs have a message.
        self.queue.enqueue(run_job, job_id, job_id=f"{job_id}-{uuid.uuid4().hex[:8]}", job_timeout=-1,
                           result_ttl=0, failure_ttl=7 * 24 * 3600)

    def pending(self) -> int:
        return self.queue.count

    def pending_ids(self) -> set[str]:
        """The generations that have a message waiting in the queue."""
        return {rq_id.split("-", 1)[0] for rq_id in self.queue.get_job_ids()}

    def ping(self) -> bool:
        try:
            return bool(self.redis.ping())
        except RedisError:
            return False


def run_job(job_id: str) -> int:
    """The RQ task: run the batch `job_id` leads (nothing if another worker already took it)."""
    if _runner is None:
        raise RuntimeError("run_job runs inside `glmimage serve worker`, which loads the model first")
    return len(_runner.run_batch(job_id))


def run_worker(settings: Settings, *, burst: bool = False, name: str | None = None, engine=None,
               metrics_port: int | None = None, metrics_host: str = "127.0.0.1") -> None:
    """Load the model, then take jobs from the RQ queue until stopped (or, with `burst`, until it is empty).
    `metrics_port`: serve Prometheus metrics there, on `metrics_host` (loopback unless told otherwise)."""
    global _runner
    if engine is None:
        engine = load_engine(settings)
    metrics = Metrics()
    db = Database(settings.resolved_database_url)
    ctx = WorkerContext.from_settings(settings, db, metrics, lambda: engine)
    _runner = JobRunner(ctx, name or worker_id("rq"))
    if metrics_port:
        from prometheus_client import start_http_server

        start_http_server(metrics_port, addr=metrics_host, registry=metrics.registry)
        log.info("worker metrics on http://%s:%d/metrics", metrics_host, metrics_port)
    redis = Redis.from_url(settings.redis_url)
    worker = SimpleWorker([Queue(settings.rq_queue, connection=redis)], connection=redis, name=name)
    log.info("rq worker %s taking jobs from %s", _runner.worker_id, settings.rq_queue)
    try:
        worker.work(burst=burst, with_scheduler=False)
    finally:
        db.dispose()
