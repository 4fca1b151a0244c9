"""Encodings computed once and kept on disk: VAE latents and VQ codes of the first N world samples of a kind.

Encoding a 256x256 image with the nano VAE costs ~0.5 s on one CPU thread, several times a decoder training step, so
stages that need latents (tokenizer, decoder) train on a finite cached set. A cache is a folder of shards named by a
fingerprint of everything its content depends on (the encoder weights, the world, the image size), so a retrained
VAE or tokenizer gets a new folder and shards are shared between stages and runs. Processes build disjoint shards
in parallel; a killed build continues at the shard where it stopped.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import torch
from tqdm.auto import tqdm


def fingerprint(*parts, modules: tuple[torch.nn.Module, ...] = ()) -> str:
    """Hash of the parts' text and the modules' weights."""
    digest = hashlib.blake2b(digest_size=8)
    digest.update(repr(parts).encode())
    for module in modules:
        for name, tensor in sorted(module.state_dict().items()):
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


class EncodedSet:
    """Items 0..size-1 of one kind, each a dict of tensors/strings produced by `encode(indices) -> list[dict]`.

    size 0 means no cache: items are encoded when asked for (an endless stream, e.g. on GPUs)."""

    def __init__(self, run, name: str, key: str, size: int, shard_size: int, cache_dir: str | Path,
                 encode: Callable[[list[int]], list[dict]]):
        self.run, self.size, self.shard_size, self.encode = run, size, shard_size, encode
        self.root = Path(cache_dir) / f"{name}-{key}"
        self.items: list[dict] = []

    def _shard_path(self, k: int) -> Path:
        return self.root / f"shard-{k:06d}-{self.shard_size}.pt"

    def build(self) -> EncodedSet:
        if self.size == 0:
            return self
        run = self.run
        shards = range(-(-self.size // self.shard_size))
        todo = [k for k in shards if k % run.world_size == run.rank and not self._shard_path(k).exists()]
        if todo:
            self.root.mkdir(parents=True, exist_ok=True)
        for k in tqdm(todo, desc=f"cache {self.root.name}", disable=not run.main, leave=False):
            indices = list(range(k * self.shard_size, (k + 1) * self.shard_size))
            tmp = self._shard_path(k).with_suffix(f".tmp{os.getpid()}")
            torch.save(self.encode(indices), tmp)
            tmp.rename(self._shard_path(k))  # atomic: a shard exists only when complete
        run.accelerator.wait_for_everyone()
        for k in shards:
            self.items.extend(torch.load(self._shard_path(k), weights_only=True))
        self.items = self.items[: self.size]
        return self

    def __getitem__(self, index: int) -> dict:
        if self.size == 0:
            return self.encode([index])[0]
        return self.items[index]
