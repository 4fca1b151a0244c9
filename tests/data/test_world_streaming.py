"""Streaming into training (IterableDataset sharded by worker and rank) and export to webdataset shards."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from glmimage.data import World, WorldConfig
from glmimage.data.export import export_split
from glmimage.data.torch_dataset import WorldDataset, collate
from glmimage.errors import InputError

CFG = WorldConfig(split="validation", seed=1)


def test_ranks_cover_every_index_exactly_once():
    seen = []
    for rank in range(3):
        ds = WorldDataset(CFG, start=2, stop=11, rank=rank, world_size=3)
        seen += [ex["index"] for ex in ds]
    assert sorted(seen) == list(range(2, 11))


def test_rank_comes_from_the_launcher_environment(monkeypatch):
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert [ex["index"] for ex in WorldDataset(CFG, stop=6)] == [1, 3, 5]


def test_dataloader_batches_match_the_world():
    loader = DataLoader(WorldDataset(CFG, start=4, stop=8), batch_size=2, collate_fn=collate)
    batch = next(iter(loader))
    assert batch["pixel_values"].shape == (2, 3, 256, 256)
    assert batch["pixel_values"].min() >= -1 and batch["pixel_values"].max() <= 1
    sample = World(CFG).sample(4)
    assert batch["prompt"][0] == sample.prompt and batch["glyph_texts"][0] == [t.text for t in sample.texts]
    expected = torch.from_numpy(np.asarray(sample.image, dtype=np.float32) / 127.5 - 1).permute(2, 0, 1)
    assert torch.allclose(batch["pixel_values"][0], expected)


def test_edit_mode_yields_references_and_mask():
    ex = next(iter(WorldDataset(CFG, mode="edit", stop=1)))
    assert ex["instruction"] and ex["reference_pixel_values"][0].shape[0] == 3
    assert ex["mask"].dtype == torch.bool and ex["mask"].shape == ex["pixel_values"].shape[1:]


def test_dataset_rejects_bad_arguments():
    with pytest.raises(InputError):
        WorldDataset(CFG, mode="video")
    with pytest.raises(InputError):
        WorldDataset(CFG, start=5, stop=2)


def test_export_writes_readable_webdataset_shards(tmp_path):
    import webdataset as wds

    world = World(CFG)
    manifest = export_split(world, str(tmp_path), n=5, shard_size=2, progress=False)
    assert manifest["shards"] == ["validation-00000.tar", "validation-00001.tar", "validation-00002.tar"]
    assert json.loads((tmp_path / "validation-manifest.json").read_text())["count"] == 5
    urls = [str(tmp_path / s) for s in manifest["shards"]]
    records = list(wds.WebDataset(urls, shardshuffle=False))
    assert len(records) == 5
    for i, rec in enumerate(records):
        sample = world.sample(i)
        assert rec["__key__"] == sample.key
        assert np.array_equal(np.asarray(Image.open(io.BytesIO(rec["png"]))), np.asarray(sample.image))
        assert json.loads(rec["json"]) == json.loads(json.dumps(sample.ground_truth()))


def test_export_edits_stores_references_target_and_mask(tmp_path):
    import webdataset as wds

    world = World(CFG)
    manifest = export_split(world, str(tmp_path), n=2, start=6, edits=True, progress=False)
    rec = next(iter(wds.WebDataset([str(tmp_path / manifest["shards"][0])], shardshuffle=False)))
    es = world.edit_sample(6)
    assert rec["__key__"] == es.key
    mask = np.asarray(Image.open(io.BytesIO(rec["mask.png"]))) > 0
    assert np.array_equal(mask, es.mask)
    assert json.loads(rec["json"])["instruction"] == es.instruction
    assert sum(k.startswith("ref") for k in rec) == len(es.refs)
