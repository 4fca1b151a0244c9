"""Measuring tools: per-module wall time via forward hooks, peak resident memory, FLOPs, peak matmul speed, and the
time a stage's linear products take alone (recorded from a real forward, replayed on fresh weights)."""

from __future__ import annotations

import contextlib
import threading
import time

import psutil
import torch
from torch.utils.flop_counter import FlopCounterMode


class StageTimer:
    """Sums the wall time spent inside given modules' forward (the same hooks on ours and on the reference)."""

    def __init__(self, modules: dict[str, torch.nn.Module]):
        self.modules = modules
        self.seconds = {name: 0.0 for name in modules}
        self.calls = {name: 0 for name in modules}
        self._handles = []
        self._starts: dict[str, list[float]] = {name: [] for name in modules}

    def __enter__(self):
        for name, module in self.modules.items():
            self._handles.append(module.register_forward_pre_hook(
                lambda m, a, n=name: self._starts[n].append(time.perf_counter())))
            self._handles.append(module.register_forward_hook(lambda m, a, o, n=name: self._stop(n)))
        return self

    def _stop(self, name: str) -> None:
        self.seconds[name] += time.perf_counter() - self._starts[name].pop()
        self.calls[name] += 1

    def __exit__(self, *exc):
        for h in self._handles:
            h.remove()
        self._handles.clear()


class PeakMemory:
    """Peak resident set size above the starting point, sampled every few milliseconds."""

    def __init__(self, interval: float = 0.005):
        self.interval = interval
        self.peak_bytes = 0
        self._stop = threading.Event()

    def __enter__(self):
        process = psutil.Process()
        self._base = process.memory_info().rss

        def sample():
            while not self._stop.is_set():
                self.peak_bytes = max(self.peak_bytes, process.memory_info().rss - self._base)
                time.sleep(self.interval)

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def count_flops(fn) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


def peak_matmul_flops(dtype: torch.dtype = torch.float32, size: int = 1024, repeats: int = 10) -> float:
    """Measured FLOP/s of a square matmul with the current thread setting: the machine's practical ceiling."""
    a = torch.randn(size, size, dtype=dtype)
    b = torch.randn(size, size, dtype=dtype)
    for _ in range(2):
        a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    elapsed = (time.perf_counter() - start) / repeats
    return 2 * size**3 / elapsed


def linear_calls(module: torch.nn.Module, run) -> list[tuple[int, int, int]]:
    """(out, in, rows) of every nn.Linear call inside `module` while `run()` runs, in order (rows: the input's
    leading elements, e.g. batch x tokens)."""
    calls = []

    def record(layer, args, _output):
        calls.append((layer.out_features, layer.in_features, args[0].numel() // layer.in_features))

    handles = [m.register_forward_hook(record) for m in module.modules() if isinstance(m, torch.nn.Linear)]
    try:
        run()
    finally:
        for handle in handles:
            handle.remove()
    return calls


def linear_chain_seconds(calls: list[tuple[int, int, int]], transposed: bool = False, repeats: int = 10,
                         flush_mb: int = 0) -> float:
    """Fastest of `repeats` passes of these products alone, in order, over fresh float32 weights (out, in) and inputs
    (rows, in): the floor the library's matmul kernel sets on a stage made of them, everything else (attention, norms,
    sampling) for free. One-row products only read their weights: the floor of a memory-bound stage, which FLOPs can't
    give. `transposed`: weights stored (in, out)-contiguous, as the compiled planner stores them on CPUs. `flush_mb`:
    stream that many MB through the caches before each pass, so the weights come from memory (a real step's other
    work, or a neighbour sharing the cache, evicts them; without it a small model's weights may stay in cache)."""
    weights = [torch.randn(n_in, n_out).t() if transposed else torch.randn(n_out, n_in) for n_out, n_in, _ in calls]
    inputs = [torch.randn(rows, n_in) for _, n_in, rows in calls]
    flush = torch.zeros(flush_mb * 2**20 // 4)
    best = float("inf")
    with torch.no_grad():
        for _ in range(repeats + 2):  # the first passes warm allocators and caches, as a stage's first calls do
            flush.add_(1.0)
            start = time.perf_counter()
            for w, x in zip(weights, inputs):
                torch.nn.functional.linear(x, w)
            best = min(best, time.perf_counter() - start)
    return best


@contextlib.contextmanager
def timed():
    box = {}
    start = time.perf_counter()
    yield box
    box["seconds"] = time.perf_counter() - start
