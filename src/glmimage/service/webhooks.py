"""Webhooks on job completion, so business events and agents can drive generation without polling.

A request may name a `webhook_url` (its host on `GLMIMAGE_WEBHOOK_HOSTS`). When the job ends (succeeded, failed or
canceled), the API process POSTs `{"id", "type": "job.<status>", "created_at", "data": <the job>}` there, signed as
Standard Webhooks does it: headers `webhook-id` (the same on every retry, for de-duplication), `webhook-timestamp`
(Unix seconds) and `webhook-signature` (`v1,` + base64 HMAC-SHA256 over `{id}.{timestamp}.{body}` with
`GLMIMAGE_WEBHOOK_SECRET`'s UTF-8 bytes; `verify` checks one). A 2xx answer delivers it; anything else is retried
after `webhook_backoff_s`, doubling, until `webhook_max_attempts`. Every attempt is logged
(`GET /v1/jobs/{id}/webhooks`).

The sender is a thread of the API process that reads the database (so RQ workers' jobs are delivered too, and a
restart loses nothing); a conditional UPDATE leases each attempt, so two API processes never send the same one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import threading
import time
from datetime import timedelta
from urllib.parse import urlsplit

from sqlalchemy import or_, select, update

from glmimage.service.db import Database, rows_matched
from glmimage.service.errors import ApiError
from glmimage.service.settings import Settings
from glmimage.service.tables import TERMINAL_STATES, Generation, WebhookDelivery, utcnow

log = logging.getLogger("glmimage.service.webhooks")
PENDING, DELIVERED, GAVE_UP = "pending", "delivered", "failed"
TOLERANCE_S = 300  # `verify` refuses signatures older (or newer) than this


def check_url(url: str, settings: Settings) -> str:
    """A request's webhook_url: http(s), its host allowed by GLMIMAGE_WEBHOOK_HOSTS (off when empty)."""
    hosts = settings.webhook_host_list
    if not hosts:
        raise ApiError(400, "webhooks are off on this server (GLMIMAGE_WEBHOOK_HOSTS is empty)", "invalid_value",
                       "webhook_url")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ApiError(400, f"webhook_url {url!r} is not an http(s) URL", "invalid_value", "webhook_url")
    if "*" not in hosts and parts.hostname.lower() not in hosts:
        raise ApiError(400, f"webhook_url host {parts.hostname!r} is not allowed; allowed: {', '.join(hosts)}",
                       "invalid_value", "webhook_url")
    return url


def sign(secret: str, event_id: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{event_id}.{timestamp}.".encode() + body, hashlib.sha256)
    return "v1," + base64.b64encode(mac.digest()).decode()


def verify(secret: str, headers, body: bytes, now: float | None = None) -> bool:
    """A receiver's check: the signature matches and the timestamp is recent."""
    try:
        event_id, timestamp = headers["webhook-id"], int(headers["webhook-timestamp"])
        signatures = headers["webhook-signature"].split()
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - timestamp) > TOLERANCE_S:
        return False
    expected = sign(secret, event_id, timestamp, body)
    return any(hmac.compare_digest(expected, s) for s in signatures)


class WebhookSender:
    """Delivers due webhooks: woken when a job finishes here, and every `poll_s` for jobs finished elsewhere and
    for retries."""

    def __init__(self, db: Database, settings: Settings, render, poll_s: float = 1.0) -> None:
        self.db, self.settings, self.render, self.poll_s = db, settings, render, poll_s
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="glmimage-webhooks", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def notify(self, _job_id: str | None = None) -> None:
        self._wake.set()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _loop(self) -> None:
        import httpx

        with httpx.Client(timeout=self.settings.webhook_timeout_s, follow_redirects=False) as client:
            while not self._stop.is_set():
                try:
                    while not self._stop.is_set() and self.deliver_due(client):
                        pass
                except Exception:
                    log.exception("webhook sweep failed")
                self._wake.wait(self.poll_s)
                self._wake.clear()

    def deliver_due(self, client) -> int:
        """Attempt every due webhook once; returns how many were attempted."""
        now = utcnow()
        with self.db.sessions() as session:
            due = session.scalars(
                select(Generation.id).where(
                    Generation.webhook_status == PENDING, Generation.status.in_(TERMINAL_STATES),
                    or_(Generation.webhook_next_at.is_(None), Generation.webhook_next_at <= now))
                .order_by(Generation.finished_at).limit(20)).all()
        return sum(self._attempt(client, gen_id) for gen_id in due)

    def _attempt(self, client, gen_id: str) -> bool:
        s = self.settings
        now = utcnow()
        lease = now + timedelta(seconds=s.webhook_timeout_s + 30)  # an attempt cut off by a crash is retried then
        with self.db.session() as session:
            claimed = rows_matched(session, update(Generation).where(
                Generation.id == gen_id, Generation.webhook_status == PENDING,
                or_(Generation.webhook_next_at.is_(None), Generation.webhook_next_at <= now))
                .values(webhook_next_at=lease))
        if claimed != 1:
            return False  # another API process took it
        with self.db.sessions() as session:
            from glmimage.service.views import load_existing_generation

            gen = load_existing_generation(session, gen_id)
            url, attempt, event = gen.webhook_url or "", gen.webhook_attempts + 1, f"job.{gen.status}"
            event_id = f"{gen.id}.{gen.status}"
            payload = {"id": event_id, "type": event, "created_at": int(time.time()),
                       "data": self.render(gen)}
        body = json.dumps(payload, separators=(",", ":")).encode()
        timestamp = int(time.time())
        headers = {"content-type": "application/json", "user-agent": "glmimage-webhooks",
                   "webhook-id": event_id, "webhook-timestamp": str(timestamp),
                   "webhook-signature": sign(s.webhook_secret, event_id, timestamp, body)}
        start = time.perf_counter()
        status_code, error = None, None
        try:
            response = client.post(url, content=body, headers=headers)
            status_code = response.status_code
            if not 200 <= status_code < 300:
                error = f"HTTP {status_code}: {response.text[:200]}"
        except Exception as exc:  # noqa: BLE001 - any failure to deliver is logged and retried
            error = f"{type(exc).__name__}: {exc}"
        delivered = error is None
        state = DELIVERED if delivered else (GAVE_UP if attempt >= s.webhook_max_attempts else PENDING)
        retry_at = None if state != PENDING else utcnow() + timedelta(seconds=s.webhook_backoff_s * 2 ** (attempt - 1))
        with self.db.session() as session:
            session.add(WebhookDelivery(generation_id=gen_id, attempt=attempt, event=event, status_code=status_code,
                                        error=error, delivered=delivered,
                                        duration_ms=round((time.perf_counter() - start) * 1000, 1)))
            session.execute(update(Generation).where(Generation.id == gen_id).values(
                webhook_status=state, webhook_attempts=attempt, webhook_next_at=retry_at))
        log.log(logging.INFO if delivered else logging.WARNING, "webhook %s for job %s: %s", event, gen_id,
                "delivered" if delivered else f"attempt {attempt} failed ({error}); {state}",
                extra={"job_id": gen_id, "attempt": attempt})
        return True
