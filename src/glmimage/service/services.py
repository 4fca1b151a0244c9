"""The objects one API process shares (database, engine, policies, metrics, worker or queue), and their start-up
and shutdown. Routes reach them through `deps.py`."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select

from glmimage.policy import load_policy
from glmimage.service import jobs as job_store
from glmimage.service.auth import ROLES, RateLimiter, create_key
from glmimage.service.db import Database
from glmimage.service.metrics import Metrics
from glmimage.service.previews import PreviewBus
from glmimage.service.settings import Settings
from glmimage.service.tables import TERMINAL_STATES, ApiKey, Generation, utcnow
from glmimage.service.webhooks import WebhookSender
from glmimage.service.worker import (
    DEFAULT_TEXT_CHECKER,
    JobRunner,
    LocalWorker,
    TextCheckerArg,
    WorkerContext,
    load_engine,
    worker_id,
)

if TYPE_CHECKING:
    # Imported where used: the engine brings torch, rq_queue needs redis (rq mode only).
    from glmimage.engine import Engine
    from glmimage.service.rq_queue import RqDispatcher

log = logging.getLogger("glmimage.service")

class EngineSlot:
    """The engine, given ready-made (tests) or loaded in the background at start-up, so `/healthz` answers
    while a large model loads and `/readyz` says when it is there."""

    def __init__(self, model: str, engine: Engine | None = None, load: Callable[[], Engine] | None = None) -> None:
        self.model = model
        self._engine = engine
        self._load = load
        self.error: str | None = None
        self._ready = threading.Event()
        if engine is not None:
            self._ready.set()

    def load_in_background(self) -> None:
        if self._ready.is_set():
            return

        def load() -> None:
            try:
                if self._load is None:
                    raise RuntimeError("no engine was given and there is none to load")
                self._engine = engine = self._load()
                log.info("model %s loaded on %s", self.model, engine.device)
            except Exception as exc:
                self.error = f"{type(exc).__name__}: {exc}"
                log.exception("model %s failed to load", self.model)
            finally:
                self._ready.set()

        threading.Thread(target=load, name="glmimage-model-load", daemon=True).start()

    @property
    def ready(self) -> bool:
        return self._ready.is_set() and self._engine is not None

    def get(self, timeout: float | None = None) -> Engine:
        """The engine, waiting up to `timeout` for it to load; raises RuntimeError if it cannot be had."""
        if not self._ready.wait(timeout):
            raise RuntimeError(f"model {self.model} is still loading")
        if self._engine is None:
            raise RuntimeError(f"model {self.model} failed to load: {self.error}")
        return self._engine


class JobEvents:
    """Lets a request await its job: the local worker signals here; others (RQ) are polled in the database."""

    def __init__(self) -> None:
        self._waiters: dict[str, list[tuple[asyncio.AbstractEventLoop, asyncio.Event]]] = {}
        self._lock = threading.Lock()

    def register(self, job_id: str) -> asyncio.Event:
        event = asyncio.Event()
        with self._lock:
            self._waiters.setdefault(job_id, []).append((asyncio.get_running_loop(), event))
        return event

    def unregister(self, job_id: str, event: asyncio.Event) -> None:
        with self._lock:
            waiters = [w for w in self._waiters.get(job_id, []) if w[1] is not event]
            if waiters:
                self._waiters[job_id] = waiters
            else:
                self._waiters.pop(job_id, None)

    def finished(self, job_id: str) -> None:
        with self._lock:
            waiters = self._waiters.pop(job_id, [])
        for loop, event in waiters:
            loop.call_soon_threadsafe(event.set)

    def wake_all(self) -> None:
        """Wake every waiting request (shutdown): each then sees why and answers."""
        with self._lock:
            waiters = [w for ws in self._waiters.values() for w in ws]
        for loop, event in waiters:
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:  # that request's loop is already closed
                pass


class ShuttingDown(Exception):
    """A request stopped waiting for `job_id` because the server is shutting down."""

    def __init__(self, job_id: str) -> None:
        super().__init__(job_id)
        self.job_id = job_id


class Services:
    def __init__(self, settings: Settings, engine: Engine | None = None,
                 text_checker: TextCheckerArg = DEFAULT_TEXT_CHECKER) -> None:
        self.settings = settings
        self.db = Database(settings.resolved_database_url)
        self.metrics = Metrics()
        self.metrics.watch_queue(self._queue_counts)
        self.events = JobEvents()
        self.previews = PreviewBus()  # partial images from the local worker to streaming requests
        self.webhooks: WebhookSender | None = None
        if settings.webhook_host_list:
            self.webhooks = WebhookSender(self.db, settings, render=self._webhook_data)
        self.engine = EngineSlot(settings.resolved_model if engine is None else engine.model_id, engine,
                                 load=lambda: load_engine(settings))
        self.worker_context = WorkerContext.from_settings(
            settings, self.db, self.metrics, lambda: self.engine.get(timeout=None), text_checker,
            on_finished=self._finished, previews=self.previews)
        self.safety = self.worker_context.safety
        self.governance = self.worker_context.governance
        self.parameters = load_policy(settings.parameter_policy or None)
        max_n = self.parameters.rules["num_images"].maximum
        if max_n is None or max_n > settings.batch_max_images:
            raise ValueError(f"the parameter policy allows num_images up to {max_n}; batch_max_images "
                             f"({settings.batch_max_images}) must hold at least one whole request")
        self.max_images_per_request = int(max_n)
        self.limiter = RateLimiter()
        self.local_worker: LocalWorker | None = None
        self.queue: RqDispatcher | None = None  # set in rq mode
        self._sweeper_stop = threading.Event()
        self._sweeper: threading.Thread | None = None
        self.stopping = threading.Event()  # set at shutdown: waiting requests stop waiting
        self.sweep_error: str | None = None  # what the last sweep could not do (rq mode); None = it all worked
        self.bootstrap_key: str | None = None
        self.started_at = int(time.time())  # `created` of the model in GET /v1/models

    def _finished(self, job_id: str) -> None:
        self.events.finished(job_id)
        if self.webhooks is not None:
            self.webhooks.notify(job_id)

    def _webhook_data(self, gen: Generation) -> dict:
        from glmimage.service.views import generation_out

        return generation_out(gen, self.settings.public_url or "").model_dump(mode="json")

    # -- life cycle -------------------------------------------------------------------------------------------
    def start(self) -> None:
        s = self.settings
        if s.auto_migrate:
            self.db.migrate()
        self._bootstrap_admin_key()
        self.engine.load_in_background()
        if self.webhooks is not None:
            self.webhooks.start()
        if s.queue == "local":
            # Nothing else runs jobs against this database: whatever is "running" was cut off by a restart.
            self._recover(stale_before=utcnow() + timedelta(seconds=1))
            self.local_worker = LocalWorker(JobRunner(self.worker_context, worker_id("local")), s.batch_wait_s)
            self.local_worker.start()
        else:
            from glmimage.service.rq_queue import RqDispatcher

            self.queue = RqDispatcher(s.redis_url, s.rq_queue)
            self._recover(stale_before=utcnow() - timedelta(seconds=s.job_lease_s))
            self._redispatch_queued()
            self._sweeper = threading.Thread(target=self._sweep, name="glmimage-sweeper", daemon=True)
            self._sweeper.start()

    def begin_shutdown(self) -> None:
        """The server was told to stop (SIGTERM): requests waiting for a job answer 503 now instead of holding
        the shutdown until their job ends."""
        if not self.stopping.is_set():
            self.stopping.set()
            self.events.wake_all()

    def stop(self) -> None:
        self.begin_shutdown()
        timeout = self.settings.shutdown_timeout_s
        if self.local_worker is not None and not self.local_worker.stop(timeout=timeout):
            log.warning("worker still busy %g s into shutdown; its jobs are retried at the next start", timeout)
        if self.webhooks is not None:
            self.webhooks.stop()
        self._sweeper_stop.set()
        if self._sweeper is not None:
            self._sweeper.join(timeout=5)
        self.db.dispose()

    # -- jobs -------------------------------------------------------------------------------------------------
    def dispatch(self, job_id: str) -> None:
        """Tell whoever runs jobs that `job_id` is queued (after its row is committed)."""
        if self.local_worker is not None:
            self.local_worker.notify()
        elif self.queue is not None:
            self.queue.dispatch(job_id)

    async def wait_for_job(self, job_id: str, timeout: float) -> Generation | None:
        """The finished generation, or None if it is still not finished after `timeout` seconds."""
        from starlette.concurrency import run_in_threadpool

        # The local worker signals each finish, so the database read is only a safety net there; workers in
        # other processes cannot signal, so their jobs are polled.
        poll_s = 5.0 if self.local_worker is not None else 0.5
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            event = self.events.register(job_id)  # before reading, so a finish in between is not missed
            try:
                gen = await run_in_threadpool(self._load_if_finished, job_id)
                if gen is not None:
                    return gen
                if self.stopping.is_set():
                    raise ShuttingDown(job_id)
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return None
                try:
                    await asyncio.wait_for(event.wait(), min(poll_s, remaining))
                except TimeoutError:
                    pass
            finally:
                self.events.unregister(job_id, event)

    def _load_if_finished(self, job_id: str) -> Generation | None:
        from glmimage.service.views import load_generation

        with self.db.sessions() as session:
            gen = session.get(Generation, job_id)
            if gen is None or gen.status not in TERMINAL_STATES:
                return None
            return load_generation(session, job_id)

    def _recover(self, stale_before) -> job_store.Recovery:
        with self.db.sessions() as session:
            recovery = job_store.recover_stale(session, stale_before, self.settings.max_attempts)
        if recovery.requeued or recovery.failed:
            log.warning("recovered interrupted jobs", extra={"requeued": recovery.requeued,
                                                              "failed": recovery.failed})
        if recovery.errors:
            log.error("could not recover %d interrupted jobs; next try at the next sweep", len(recovery.errors),
                      extra={"errors": recovery.errors})
        if self.queue is not None:
            for job_id in recovery.requeued:
                self.queue.dispatch(job_id)
        return recovery

    def _redispatch_queued(self) -> None:
        """Queued jobs whose messages Redis lost (restart, flush, eviction): send them again. A duplicate
        message (one a worker took but has not claimed yet) is harmless: only one worker can claim a queued row."""
        with self.db.sessions() as session:
            ids = job_store.queued_ids(session)
        if not ids:
            return
        queue = self.queue
        if queue is None:
            raise RuntimeError("queued jobs are re-sent in rq mode only (GLMIMAGE_QUEUE=rq); this process has no queue")
        pending = queue.pending_ids()
        missing = [job_id for job_id in ids if job_id not in pending]
        if missing:
            log.info("re-dispatching %d queued jobs", len(missing))
            for job_id in missing:
                queue.dispatch(job_id)

    def _sweep(self) -> None:
        while not self._sweeper_stop.wait(self.settings.sweep_interval_s):
            self.sweep_once()

    def sweep_once(self) -> None:
        """rq mode, every sweep_interval_s: recover jobs whose worker stopped, re-send queued jobs whose messages
        Redis may have lost. Each step runs even if the other fails; a failure shows in `/readyz` (`sweeper`)
        until a sweep succeeds again."""
        problems = []
        try:
            recovery = self._recover(stale_before=utcnow() - timedelta(seconds=self.settings.job_lease_s))
            if recovery.errors:
                job_id, reason = next(iter(recovery.errors.items()))
                problems.append(f"{len(recovery.errors)} job(s) could not be recovered (job {job_id}: {reason})")
        except Exception as exc:
            log.exception("sweep: recovering stale jobs failed")
            problems.append(f"recovering stale jobs failed: {type(exc).__name__}: {exc}")
        try:
            self._redispatch_queued()
        except Exception as exc:
            log.exception("sweep: re-sending queued jobs failed")
            problems.append(f"re-sending queued jobs failed: {type(exc).__name__}: {exc}")
        self.sweep_error = "; ".join(problems) or None

    def _queue_counts(self) -> dict[str, int]:
        with self.db.sessions() as session:
            return job_store.count_by_status(session)

    def _bootstrap_admin_key(self) -> None:
        """A fresh install has no keys and so no way in: make one with every role and log it once."""
        if not self.settings.bootstrap_admin_key:
            return
        with self.db.session() as session:
            if session.scalar(select(ApiKey.id).limit(1)) is not None:
                return
            _, self.bootstrap_key = create_key(
                session, "bootstrap-admin", ROLES,
                rate_limit_per_minute=self.settings.default_rate_limit_per_minute, quota_images=None)
        # Logged once, like a notebook server's token; GLMIMAGE_BOOTSTRAP_ADMIN_KEY=false turns this off (then
        # make keys with `glmimage serve create-key`).
        log.warning("created the first API key (shown once; store it now): %s", self.bootstrap_key)
