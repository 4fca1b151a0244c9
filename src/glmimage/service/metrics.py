"""Prometheus metrics, on a registry of their own per app (tests build many apps in one process).

Queue depth is read from the database at scrape time, so it is right however many workers there are.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

# Engine stages on a GPU take seconds to minutes; the tiny CPU model milliseconds.
STAGE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("glmimage_http_requests", "HTTP requests by route and status",
                                ["method", "route", "status"], registry=r)
        self.request_seconds = Histogram("glmimage_http_request_duration_seconds", "HTTP request latency",
                                         ["method", "route"], buckets=STAGE_BUCKETS, registry=r)
        self.stage_seconds = Histogram("glmimage_stage_duration_seconds",
                                       "Engine time per job and stage (planner, decoder, vae)", ["stage"],
                                       buckets=STAGE_BUCKETS, registry=r)
        self.job_seconds = Histogram("glmimage_job_duration_seconds",
                                     "Time a job spent waiting in the queue and running", ["phase"],
                                     buckets=STAGE_BUCKETS, registry=r)
        self.batch_jobs = Histogram("glmimage_batch_jobs", "Jobs run together in one engine call",
                                    buckets=(1, 2, 4, 8, 16, 32), registry=r)
        self.jobs_finished = Counter("glmimage_jobs_finished", "Jobs by final state", ["status"], registry=r)
        self.images = Counter("glmimage_images_generated", "Images generated", ["kind"], registry=r)
        self.qa_outputs = Counter("glmimage_qa_outputs", "Outputs by QA result", ["result"], registry=r)
        self.qa_checks = Counter("glmimage_qa_checks", "QA checks by check and result", ["check", "result"],
                                 registry=r)
        r.register(_QaPassRate(self.qa_outputs))

    def watch_queue(self, count_by_status: Callable[[], dict[str, int]]) -> None:
        """Report `glmimage_queue_depth{state}` from `count_by_status()` at every scrape."""
        self.registry.register(_QueueDepth(count_by_status))

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _QueueDepth:
    def __init__(self, count_by_status: Callable[[], dict[str, int]]) -> None:
        self._count = count_by_status

    def describe(self):
        return []  # computed at scrape time; nothing to describe up front (and no DB query at registration)

    def collect(self):
        gauge = GaugeMetricFamily("glmimage_queue_depth", "Jobs waiting or running, from the database",
                                  labels=["state"])
        counts = self._count()
        for state in ("queued", "running"):
            gauge.add_metric([state], counts.get(state, 0))
        yield gauge


class _QaPassRate:
    """Share of outputs that passed every QA check since this process started (NaN before the first)."""

    def __init__(self, qa_outputs: Counter) -> None:
        self._qa = qa_outputs

    def describe(self):
        return []

    def collect(self):
        passed = self._qa.labels("passed")._value.get()
        failed = self._qa.labels("failed")._value.get()
        total = passed + failed
        yield GaugeMetricFamily("glmimage_qa_pass_rate", "Share of outputs passing QA",
                                value=passed / total if total else float("nan"))
