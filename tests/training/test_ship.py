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
    for (name, a), b in zip(shipped.named_parameters(),
                            same_vq.vision_language_encoder.model.language_model.parameters()):
        assert torch.equal(a, b.to(torch.bfloat16).float()), name
    meta = json.loads((dest / "glmimage.json").read_text())
    assert [r["stage"] for r in meta["training"]] == ["decoder", "planner"]

    other_vq = write_model_dir(build_pipeline(TINY, seed=4), tmp_path / "other", TINY)
    with pytest.raises(InputError, match="another VQ tokenizer"):
        ship(trained_dir, "nano", dest_root=tmp_path / "w", planner_dir=other_vq)


def test_ship_takes_the_vae_of_an_encoder_frozen_run_only(trained_dir, tmp_path):
    sharper = build_pipeline(TINY, seed=3)
    torch.manual_seed(6)
    for p in sharper.vae.decoder.parameters():
        p.data.normal_()
    vae_dir = write_model_dir(sharper, tmp_path / "vae", TINY, extra_meta={"training": [{"stage": "vae"}]})
    dest = ship(trained_dir, "nano", dest_root=tmp_path / "w", vae_dir=vae_dir)
    shipped = load.load_component(dest, "vae", torch.float32)
    for (name, a), b in zip(shipped.decoder.named_parameters(), sharper.vae.decoder.parameters()):
        assert torch.equal(a, b.to(torch.bfloat16).float()), name
    meta = json.loads((dest / "glmimage.json").read_text())
    assert [r["stage"] for r in meta["training"]] == ["decoder", "vae"] and meta["shipped"]["vae_from"] == str(vae_dir)

    moved = build_pipeline(TINY, seed=3)
    with torch.no_grad():
        moved.vae.encoder.conv_in.weight.add_(0.1)
    moved_dir = write_model_dir(moved, tmp_path / "moved", TINY)
    with pytest.raises(InputError, match="another VAE encoder"):
        ship(trained_dir, "nano", dest_root=tmp_path / "w", vae_dir=moved_dir)


def test_ship_writes_planner_sampling_and_our_engine_applies_edit_sampling_to_edits_only(trained_dir, tmp_path):
    import numpy as np
    from PIL import Image

    from glmimage.engine import Engine

    with pytest.raises(InputError, match="top_p"):
        ship(trained_dir, "nano", dest_root=tmp_path, edit_top_p=0.0)
    dest = ship(trained_dir, "nano", dest_root=tmp_path, top_p=1.0, edit_top_p=0.5)
    assert GlmImagePipeline.from_pretrained(dest).vision_language_encoder.generation_config.top_p == 1.0
    per_mode = Engine(load.load_model_dir(dest))
    assert per_mode.model.edit_sampling == {"top_p": 0.5}

    one_setting = load.load_model_dir(dest)  # the same weights, edits sampled like text-to-image
    one_setting.edit_sampling = {}
    plain = Engine(one_setting)
    globally_half = load.load_model_dir(dest)  # top_p 0.5 for everything, as the generation config would set it
    globally_half.edit_sampling = {}
    globally_half.pipe.vision_language_encoder.generation_config.top_p = 0.5
    half = Engine(globally_half)

    ref = Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    edit = per_mode.plan("make it blue", images=[ref], seed=2)
    assert torch.equal(edit.target_tokens, half.plan("make it blue", images=[ref], seed=2).target_tokens)
    assert not torch.equal(edit.target_tokens, plain.plan("make it blue", images=[ref], seed=2).target_tokens)
    t2i = per_mode.plan('A poster titled "SALE"', seed=2)
    assert torch.equal(t2i.target_tokens, plain.plan('A poster titled "SALE"', seed=2).target_tokens)


def test_unknown_edit_sampling_keys_are_refused(trained_dir, tmp_path):
    import shutil

    from glmimage.errors import ModelLoadError

    copy = tmp_path / "model"
    shutil.copytree(trained_dir, copy)
    meta = json.loads((copy / "glmimage.json").read_text())
    meta["edit_sampling"] = {"top_q": 0.5}
    (copy / "glmimage.json").write_text(json.dumps(meta))
    with pytest.raises(ModelLoadError, match="top_q"):
        load.load_model_dir(copy)


def test_ship_writes_the_edit_copy_bias_and_keep_settings_our_engine_reads(trained_dir, tmp_path):
    import shutil

    from glmimage.engine import Engine
    from glmimage.engine.keep import KeepConfig
    from glmimage.errors import ModelLoadError

    with pytest.raises(InputError, match="edit_copy_bias"):
        ship(trained_dir, "nano", dest_root=tmp_path, edit_copy_bias=-1.0)
    dest = ship(trained_dir, "nano", dest_root=tmp_path, edit_top_p=0.5, edit_copy_bias=4.0, edit_keep=True)
    engine = Engine(load.load_model_dir(dest))
    assert engine.model.edit_sampling == {"top_p": 0.5, "copy_bias": 4.0} and engine.edit_keep == KeepConfig()
    again = ship(dest, "nano", dest_root=tmp_path / "again", edit_keep=False)  # the setting can be taken away
    assert Engine(load.load_model_dir(again)).edit_keep is None
    assert Engine(load.load_model_dir(trained_dir)).edit_keep is None  # not set: edits as the reference runs them

    broken = tmp_path / "broken"
    shutil.copytree(dest, broken)
    meta = json.loads((broken / "glmimage.json").read_text())
    meta["edit_keep"] = {"grow": -1}
    (broken / "glmimage.json").write_text(json.dumps(meta))
    with pytest.raises(ModelLoadError, match="edit_keep"):
        Engine(load.load_model_dir(broken))
