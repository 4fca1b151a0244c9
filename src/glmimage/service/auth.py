"""API keys: created once and shown once, stored as a sha256 hash, each with roles, a rate limit and a quota.

A key is 256 random bits, so a fast hash is enough: there is no dictionary to guess from, and checking a key must
stay cheap on every request. Roles: `generate` (submit and read own work), `review` (approve / reject, read all),
`admin` (manage keys, templates, brand kits).
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections.abc import Iterable

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from glmimage.service.db import rows_matched
from glmimage.service.tables import ApiKey, utcnow

ROLES = ("generate", "review", "admin")
KEY_PREFIX = "gik_"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def parse_roles(roles: str | Iterable[str]) -> list[str]:
    items = roles.split(",") if isinstance(roles, str) else list(roles)
    cleaned = sorted({r.strip() for r in items if r.strip()})
    unknown = [r for r in cleaned if r not in ROLES]
    if unknown or not cleaned:
        raise ValueError(f"roles {unknown or '(none)'} are not valid; choose from {list(ROLES)}")
    return cleaned


def create_key(session: Session, name: str, roles: str | Iterable[str], *, rate_limit_per_minute: int,
               quota_images: int | None = None) -> tuple[ApiKey, str]:
    """Store a new key and return it with its plaintext (the only time the plaintext exists)."""
    if not name.strip():
        raise ValueError("a key needs a name")
    if rate_limit_per_minute < 1:
        raise ValueError(f"rate_limit_per_minute must be at least 1, got {rate_limit_per_minute}")
    if quota_images is not None and quota_images < 0:
        raise ValueError(f"quota_images must be >= 0 or None (unlimited), got {quota_images}")
    plaintext = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(name=name.strip(), prefix=plaintext[:12], key_hash=hash_key(plaintext),
                 roles=",".join(parse_roles(roles)), rate_limit_per_minute=rate_limit_per_minute,
                 quota_images=quota_images, images_used=0)
    session.add(key)
    session.flush()
    return key, plaintext


def find_key(session: Session, plaintext: str) -> ApiKey | None:
    """The live (not revoked) key with this plaintext, or None."""
    key = session.scalar(select(ApiKey).where(ApiKey.key_hash == hash_key(plaintext)))
    return key if key is not None and key.revoked_at is None else None


class LastAdminKeyError(ValueError):
    """Revoking this key would leave no live admin key, and so no way to manage keys over the API."""


def revoke_key(session: Session, key_id: int) -> ApiKey | None:
    """Revoke the key (None if there is no such key; an already revoked key is returned unchanged). Raises
    LastAdminKeyError rather than revoke the last live admin key."""
    key = session.get(ApiKey, key_id)
    if key is None or key.revoked_at is not None:
        return key
    if "admin" in key.role_set:
        # Lock the live admin keys: on PostgreSQL two requests revoking the last two admins one each wait for one
        # another here, and the second then sees the first's revocation.
        admins = session.scalars(
            select(ApiKey).where(ApiKey.revoked_at.is_(None), ApiKey.roles.contains("admin")).with_for_update()
        ).all()
        if not any(other.id != key.id and "admin" in other.role_set for other in admins):
            raise LastAdminKeyError(f"key {key.id} ({key.name!r}) is the last admin key; create another admin key "
                                    "before revoking it")
    key.revoked_at = utcnow()
    session.flush()
    return key


def reserve_quota(session: Session, key_id: int, images: int) -> bool:
    """Count `images` against the key's quota; False (and nothing counted) if that would exceed it.
    One conditional UPDATE, so concurrent requests (or API processes) cannot overdraw."""
    matched = rows_matched(
        session,
        update(ApiKey)
        .where(ApiKey.id == key_id)
        .where((ApiKey.quota_images.is_(None)) | (ApiKey.images_used + images <= ApiKey.quota_images))
        .values(images_used=ApiKey.images_used + images),
    )
    return matched == 1


def refund_quota(session: Session, key_id: int | None, images: int) -> None:
    """Give back images that a failed or canceled job never delivered."""
    if key_id is None or images <= 0:
        return
    session.execute(update(ApiKey).where(ApiKey.id == key_id).values(images_used=ApiKey.images_used - images))


class RateLimiter:
    """A token bucket per key, refilled at the key's per-minute rate (burst = one minute's worth).
    Kept in memory: each API process limits what passes through it."""

    def __init__(self, clock=time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[int, tuple[float, float]] = {}  # key id -> (tokens, last refill time)
        self._lock = threading.Lock()

    def acquire(self, key_id: int, per_minute: int) -> float:
        """Take one token; return 0.0 on success, else the seconds until a token is available."""
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.get(key_id, (float(per_minute), now))
            tokens = min(float(per_minute), tokens + (now - last) * per_minute / 60.0)
            if tokens >= 1.0:
                self._buckets[key_id] = (tokens - 1.0, now)
                return 0.0
            self._buckets[key_id] = (tokens, now)
            return (1.0 - tokens) * 60.0 / per_minute

    def state(self, key_id: int, per_minute: int) -> tuple[int, float]:
        """(requests that would pass now, seconds until the bucket is full again), taking nothing."""
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.get(key_id, (float(per_minute), now))
        tokens = min(float(per_minute), tokens + (now - last) * per_minute / 60.0)
        return int(tokens), (per_minute - tokens) * 60.0 / per_minute
