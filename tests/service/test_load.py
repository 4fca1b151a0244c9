"""A small load test on loopback (50 concurrent clients, one request each, bounded in time): zero errors and
zero lost jobs. The full run and its figures are in docs/service.md (benchmarks/load_test.py)."""

import asyncio

from benchmarks.load_test import run_load

from glmimage.service.app import create_app
from glmimage.service.settings import Settings
from tests.service.service_helpers import LiveServer


def test_fifty_concurrent_clients_no_errors_no_lost_jobs(engine, tmp_path):
    app = create_app(Settings(model="tiny", data_dir=tmp_path, ocr=False, log_json=False), engine=engine,
                     text_checker=None)
    with LiveServer(app) as server:
        key = app.state.services.bootstrap_key
        payload = {"prompt": 'A flyer titled "LOAD TEST"', "size": "64x64", "n": 1, "steps": 1}
        report = asyncio.run(run_load(server.url, key, clients=50, requests_per_client=1, payload=payload,
                                      time_limit_s=240))
    assert report.errors == 0, report.error_samples
    assert report.lost_jobs == 0 and report.succeeded == 50
    assert report.jobs_by_status["succeeded"] == 50 and report.jobs_by_status["queued"] == 0
    assert 0 < report.latency_p50_s <= report.latency_p95_s <= report.latency_p99_s <= report.latency_max_s
