"""A torch IterableDataset over the world: streams samples into training without storing anything, sharded by
data-loader worker and distributed rank (accelerate sets RANK / WORLD_SIZE), resumable from any index."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import IterableDataset, get_worker_info

from glmimage.data.config import WorldConfig
from glmimage.data.sample import EditSample, Sample
from glmimage.data.world import World
from glmimage.errors import InputError


def to_tensor(image: Image.Image) -> torch.Tensor:
    """(3, H, W) float in [-1, 1], the range the VAE expects."""
    arr = np.asarray(image.convert("RGB"), dtype=np.float32) / 127.5 - 1.0
    return torch.from_numpy(arr).permute(2, 0, 1).contiguous()


def t2i_example(sample: Sample) -> dict[str, Any]:
    return {
        "index": sample.index,
        "kind": sample.kind,
        "prompt": sample.prompt,
        "glyph_texts": [t.text for t in sample.texts],
        "pixel_values": to_tensor(sample.image),
    }


def edit_example(es: EditSample) -> dict[str, Any]:
    return {
        "index": es.index,
        "kind": es.kind,
        "instruction": es.instruction,
        "glyph_texts": [t.text for t in es.target.texts],
        "pixel_values": to_tensor(es.target.image),
        "reference_pixel_values": [to_tensor(r) for r in es.refs],
        "mask": torch.from_numpy(es.mask.copy()),
    }


def distributed_position() -> tuple[int, int]:
    """(rank, world size) from torch.distributed when initialised, else from the launcher's environment."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


class WorldDataset(IterableDataset):
    """Indices start, start + shards, ... of the world for this worker and rank; stops at `stop` (exclusive) or
    never. Every process sees a disjoint slice; together they cover each index exactly once."""

    def __init__(self, config: WorldConfig, mode: str = "t2i", start: int = 0, stop: int | None = None,
                 transform: Callable[[Any], Any] | None = None, rank: int | None = None, world_size: int | None = None):
        if mode not in ("t2i", "edit"):
            raise InputError(f"mode must be 't2i' or 'edit', got {mode!r}")
        if start < 0 or (stop is not None and stop < start):
            raise InputError(f"need 0 <= start <= stop, got start={start}, stop={stop}")
        self.config, self.mode, self.start, self.stop = config, mode, start, stop
        self.transform = transform or (t2i_example if mode == "t2i" else edit_example)
        self.rank, self.world_size = rank, world_size

    def shard(self) -> tuple[int, int]:
        """(this process's shard, number of shards)."""
        rank, world_size = distributed_position()
        rank = self.rank if self.rank is not None else rank
        world_size = self.world_size if self.world_size is not None else world_size
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        return rank * workers + worker, world_size * workers

    def __iter__(self) -> Iterator[Any]:
        world = World(self.config)
        make = world.sample if self.mode == "t2i" else world.edit_sample
        shard, shards = self.shard()
        i = self.start + shard
        while self.stop is None or i < self.stop:
            yield self.transform(make(i))
            i += shards

    def __len__(self) -> int:  # only for finite datasets, and for the whole dataset (all shards)
        if self.stop is None:
            raise TypeError("an endless WorldDataset has no length")
        return self.stop - self.start


def collate(batch: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack same-sized tensors; keep everything else as lists (the world can mix aspect ratios, so batch by
    size upstream when it does)."""
    out: dict[str, Any] = {}
    for key in batch[0]:
        values = [b[key] for b in batch]
        if isinstance(values[0], torch.Tensor) and all(v.shape == values[0].shape for v in values):
            out[key] = torch.stack(values)
        else:
            out[key] = values
    return out
