"""`glmimage train ship`: a trained directory becomes bf16 shipped weights, within the budget, loadable by both."""

from __future__ import annotations

import json

import pytest
import torch
from diffusers import GlmImagePipeline
from safetensors import safe_open

from glmimage.errors import InputError
from glmimage.models import load
from glmimage.models.build import build_pipeline, write_model_dir
from glmimage.models.presets import TINY
from glmimage.training.ship import ship, weight_bytes


@pytest.fixture(scope="module")
def trained_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("trained") / "model"
    write_model_dir(build_pipeline(TINY, seed=3), path, TINY, extra_meta={"training": [{"stage": "decoder"}]})
    return path


def test_ship_writes_bf16_weights_that_both_loaders_read(trained_dir, tmp_path, monkeypatch):
    dest = ship(trained_dir, "nano", dest_root=tmp_path)
    assert dest == tmp_path / "nano"
    tensors = list(dest.rglob("*.safetensors"))
    assert {t.parent.name for t in tensors} == set(load.HEAVY_COMPONENTS)
    for file in tensors:
        with safe_open(file, "pt") as f:
            assert {f.get_tensor(k).dtype for k in f.keys()} <= {torch.bfloat16, torch.int64, torch.bool}
    fp32 = sum(f.stat().st_size for f in trained_dir.rglob("*.safetensors"))
    assert weight_bytes(dest) < 0.55 * fp32
    meta = json.loads((dest / "glmimage.json").read_text())
    assert meta["training"] == [{"stage": "decoder"}] and meta["shipped"]["dtype"] == "bf16"

    GlmImagePipeline.from_pretrained(dest)  # the contract: the library loads what we ship
    monkeypatch.setattr(load, "WEIGHTS_DIR", tmp_path)
    loaded = load.load_model("nano")
    original = load.load_model_dir(trained_dir)
    a = dict(loaded.pipe.transformer.named_parameters())
    for name, p in original.pipe.transformer.named_parameters():
        assert torch.allclose(a[name].float(), p.to(torch.bfloat16).float()), name  # the bf16 rounding, no more


def test_ship_refuses_over_budget_and_keeps_the_previous_weights(trained_dir, tmp_path):
    first = ship(trained_dir, "nano", dest_root=tmp_path)
    before = sorted(p.name for p in first.rglob("*"))
    with pytest.raises(InputError, match="over the 0 MB budget"):
        ship(trained_dir, "nano", dest_root=tmp_path, max_bytes=1000)
    assert sorted(p.name for p in first.rglob("*")) == before
    assert not (tmp_path / "nano.tmp").exists()


def test_ship_names_errors(trained_dir, tmp_path):
    with pytest.raises(InputError, match="got 'tiny'"):
        ship(trained_dir, "tiny", dest_root=tmp_path)
    with pytest.raises(InputError, match="dtype"):
        ship(trained_dir, "nano", dtype="int8", dest_root=tmp_path)


def test_ship_takes_the_planner_of_a_side_by_side_run_only_with_the_same_tokenizer(trained_dir, tmp_path):
    same_vq = build_pipeline(TINY, seed=3)
    torch.manual_seed(5)
    for p in same_vq.vision_language_encoder.model.language_model.parameters():
        p.data.normal_()
    planner_dir = write_model_dir(same_vq, tmp_path / "planner", TINY, extra_meta={"training": [{"stage": "planner"}]})
    dest = ship(trained_dir, "nano", dest_root=tmp_path / "w", planner_dir=planner_dir)
    shipped = load.load_component(dest, "vision_language_encoder", torch.float32).model.language_model
    for (name, a), b in zip(shipped.named_parameters(), same_vq.vision_language_encoder.model.language_model.parameters()):
        assert torch.equal(a, b.to(torch.bfloat16).float()), name
    meta = json.loads((dest / "glmimage.json").read_text())
    assert [r["stage"] for r in meta["training"]] == ["decoder", "planner"]

    other_vq = write_model_dir(build_pipeline(TINY, seed=4), tmp_path / "other", TINY)
    with pytest.raises(InputError, match="another VQ tokenizer"):
        ship(trained_dir, "nano", dest_root=tmp_path / "w", planner_dir=other_vq)
