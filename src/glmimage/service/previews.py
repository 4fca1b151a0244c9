"""Partial images from the worker to the requests streaming them (streaming.py), in-process.

Apart from streaming.py, which answers through the routes, so that the services (which own one bus) and the worker
import it without importing the routes back.
"""

from __future__ import annotations

import asyncio
import threading


class PreviewBus:
    """Partial images from the worker thread to the requests streaming them. `subscribe` before the job can be
    claimed (the worker asks `wanted` when it has something to show)."""

    def __init__(self) -> None:
        self._subscribers: dict[str, list[tuple[asyncio.AbstractEventLoop, asyncio.Queue]]] = {}
        self._lock = threading.Lock()

    def subscribe(self, job_id: str, loop: asyncio.AbstractEventLoop) -> asyncio.Queue:
        queue: asyncio.Queue = asyncio.Queue()
        with self._lock:
            self._subscribers.setdefault(job_id, []).append((loop, queue))
        return queue

    def unsubscribe(self, job_id: str, queue: asyncio.Queue) -> None:
        with self._lock:
            left = [s for s in self._subscribers.get(job_id, []) if s[1] is not queue]
            if left:
                self._subscribers[job_id] = left
            else:
                self._subscribers.pop(job_id, None)

    def wanted(self, job_id: str) -> bool:
        with self._lock:
            return job_id in self._subscribers

    def publish(self, job_id: str, png: bytes) -> None:
        with self._lock:
            subscribers = list(self._subscribers.get(job_id, []))
        for loop, queue in subscribers:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, png)
            except RuntimeError:  # that request's loop is closed: it went away
                pass
