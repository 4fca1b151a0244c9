"""Helpers shared by the service tests (imported by name: pytest puts this folder on sys.path)."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def new_key(client, roles, **limits) -> dict[str, str]:
    from glmimage.service.auth import create_key

    services = client.app.state.services
    with services.db.session() as session:
        _, secret = create_key(session, f"test-{'-'.join(roles)}", roles,
                               rate_limit_per_minute=limits.get("rate_limit_per_minute", 1000),
                               quota_images=limits.get("quota_images"))
    return auth(secret)


def png_bytes(size=(64, 64), seed=0, fmt="PNG") -> bytes:
    rng = np.random.default_rng(seed)
    image = Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


FAST = {"size": "64x64", "steps": 1}
