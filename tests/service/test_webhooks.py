"""Webhooks on job completion: signed (Standard Webhooks' headers, HMAC-SHA256), retried with backoff, every attempt
logged per job; hosts allowed by setting (off by default)."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.service.service_helpers import auth

SECRET = "test-webhook-secret-0123456789"


class Receiver:
    """An HTTP server on loopback that records POSTs and fails the first `fail` of them (HTTP 500)."""

    def __init__(self, fail: int = 0) -> None:
        self.fail, self.received = fail, []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["content-length"]))
                receiver.received.append((dict(self.headers.items()), body))
                failing = len(receiver.received) <= receiver.fail
                self.send_response(500 if failing else 204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture
def receiver():
    made = []

    def make(fail: int = 0) -> Receiver:
        made.append(Receiver(fail))
        return made[-1]

    yield make
    for r in made:
        r.close()


@pytest.fixture
def hooked(make_client):
    api = make_client(webhook_hosts="127.0.0.1", webhook_secret=SECRET, webhook_backoff_s=0.05,
                      webhook_max_attempts=3)
    return api, auth(api.app.state.services.bootstrap_key)


def wait_for(api, key, job_id, status, timeout=30.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        log = api.get(f"/v1/jobs/{job_id}/webhooks", headers=key).json()
        if log["webhook_status"] == status:
            return log
        time.sleep(0.05)
    raise AssertionError(f"webhook of {job_id} not {status}: {log}")


def test_delivered_and_signed(hooked, receiver):
    from glmimage.service.webhooks import verify

    api, key = hooked
    r = receiver()
    response = api.post("/v1/images/generations", headers=key,
                        json={"prompt": "a red dot", "size": "64x64", "steps": 1, "webhook_url": r.url})
    job = response.json()["glmimage"]
    assert response.status_code == 200 and job["webhook_url"] == r.url
    log = wait_for(api, key, job["id"], "delivered")
    assert [(d["attempt"], d["delivered"], d["status_code"], d["event"]) for d in log["data"]] == [
        (1, True, 204, "job.succeeded")]
    headers, body = r.received[0]
    assert verify(SECRET, headers, body) and not verify("another-secret-0123456789", headers, body)
    assert not verify(SECRET, headers, body + b" ")
    assert not verify(SECRET, headers, body, now=time.time() + 3600)  # replayed an hour later
    event = json.loads(body)
    assert event["type"] == "job.succeeded" and event["id"] == headers["webhook-id"] == f"{job['id']}.succeeded"
    assert event["data"]["id"] == job["id"] and event["data"]["outputs"][0]["asset_hash"]
    assert api.get(f"/v1/jobs/{job['id']}", headers=key).json()["webhook_status"] == "delivered"


def test_retried_with_backoff_then_delivered(hooked, receiver):
    api, key = hooked
    r = receiver(fail=2)
    job = api.post("/v1/jobs", headers=key, json={"prompt": "x", "size": "64x64", "steps": 1,
                                                    "webhook_url": r.url}).json()
    log = wait_for(api, key, job["id"], "delivered")
    assert [(d["attempt"], d["delivered"], d["status_code"]) for d in log["data"]] == [
        (1, False, 500), (2, False, 500), (3, True, 204)]
    assert "HTTP 500" in log["data"][0]["error"]
    ids = {headers["webhook-id"] for headers, _ in r.received}
    assert len(r.received) == 3 and len(ids) == 1  # one event: receivers de-duplicate by webhook-id
    gaps = [(log["data"][i + 1]["created_at"], log["data"][i]["created_at"]) for i in range(2)]
    assert all(later >= earlier for later, earlier in gaps)


def test_gives_up_after_max_attempts_and_reports_cancels(hooked, receiver):
    api, key = hooked
    r = receiver(fail=100)
    services = api.app.state.services
    services.local_worker.pause()
    try:
        job = api.post("/v1/jobs", headers=key, json={"prompt": "x", "size": "64x64", "webhook_url": r.url}).json()
        assert api.post(f"/v1/jobs/{job['id']}/cancel", headers=key).json()["status"] == "canceled"
    finally:
        services.local_worker.resume()
    log = wait_for(api, key, job["id"], "failed")
    assert [d["attempt"] for d in log["data"]] == [1, 2, 3] and not any(d["delivered"] for d in log["data"])
    assert {d["event"] for d in log["data"]} == {"job.canceled"} and log["next_attempt_at"] is None
    time.sleep(0.3)
    assert len(r.received) == 3  # no more attempts


def test_unreachable_receiver_is_logged(hooked):
    api, key = hooked
    job = api.post("/v1/jobs", headers=key, json={"prompt": "x", "size": "64x64", "steps": 1,
                                                    "webhook_url": "http://127.0.0.1:9/nothing"}).json()
    log = wait_for(api, key, job["id"], "failed")
    assert log["data"][0]["status_code"] is None and "Error" in log["data"][0]["error"]


def test_webhook_urls_are_checked(client, admin, make_client, tmp_path):
    off = client.post("/v1/jobs", headers=admin, json={"prompt": "x", "webhook_url": "http://127.0.0.1/h"})
    assert off.status_code == 400 and "webhooks are off" in off.json()["error"]["message"]
    api = make_client(webhook_hosts="hooks.example.com", webhook_secret=SECRET, data_dir=tmp_path / "other")
    key = auth(api.app.state.services.bootstrap_key)
    for url, words in (("http://127.0.0.1/h", "not allowed"), ("ftp://hooks.example.com/h", "not an http"),
                       ("hooks.example.com/h", "not an http")):
        response = api.post("/v1/jobs", headers=key, json={"prompt": "x", "webhook_url": url})
        assert response.status_code == 400 and words in response.json()["error"]["message"], url
    assert api.get("/v1/generations", headers=key).json()["total"] == 0  # nothing stored


def test_webhook_settings_are_checked(make_settings):
    with pytest.raises(ValueError, match="webhook_secret"):
        make_settings(webhook_hosts="*")
    assert make_settings(webhook_hosts="A.example.com, b.example.com", webhook_secret=SECRET).webhook_host_list == [
        "a.example.com", "b.example.com"]
