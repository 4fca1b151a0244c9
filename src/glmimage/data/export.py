"""Export a split to disk as webdataset tar shards: per sample a PNG (or the edit's images) and a JSON of its
ground truth, plus manifest.json describing the export."""

from __future__ import annotations

import io
import json
import os
from dataclasses import asdict
from typing import Any

import numpy as np
from PIL import Image
from tqdm import tqdm

from glmimage.data.world import World
from glmimage.errors import InputError


def png_bytes(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def t2i_record(sample) -> dict[str, Any]:
    return {"__key__": sample.key, "png": png_bytes(sample.image), "json": json.dumps(sample.ground_truth()).encode()}


def edit_record(es) -> dict[str, Any]:
    rec = {"__key__": es.key, "json": json.dumps(es.ground_truth()).encode(), "target.png": png_bytes(es.target.image),
           "mask.png": png_bytes(Image.fromarray(es.mask.astype(np.uint8) * 255))}
    for k, ref in enumerate(es.refs):
        rec[f"ref{k}.png"] = png_bytes(ref)
    return rec


def export_split(world: World, out_dir: str, n: int, start: int = 0, shard_size: int = 1000, edits: bool = False,
                 progress: bool = True) -> dict[str, Any]:
    """Write samples start..start+n-1 of the world's split; returns the manifest."""
    import webdataset as wds

    if n < 1:
        raise InputError(f"n must be >= 1, got {n}")
    if shard_size < 1:
        raise InputError(f"shard_size must be >= 1, got {shard_size}")
    os.makedirs(out_dir, exist_ok=True)
    split = world.config.split
    prefix = f"{split}-edit" if edits else split
    pattern = os.path.join(out_dir, f"{prefix}-%05d.tar")
    make = world.edit_sample if edits else world.sample
    encode = edit_record if edits else t2i_record
    with wds.ShardWriter(pattern, maxcount=shard_size, verbose=0) as sink:
        for i in tqdm(range(start, start + n), desc=f"export {prefix}", disable=not progress, unit="sample"):
            sink.write(encode(make(i)))
    shards = sorted(f for f in os.listdir(out_dir) if f.startswith(prefix + "-") and f.endswith(".tar"))
    manifest = {"format": "webdataset", "split": split, "edits": edits, "start": start, "count": n,
                "shard_size": shard_size, "shards": shards, "config": asdict(world.config)}
    with open(os.path.join(out_dir, f"{prefix}-manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    return manifest
