"""Edits keep the reference wherever their plan leaves it unchanged: the mask comes from the plan alone, kept cells
return the reference's own pixels, changed cells are painted, and plans that change most cells keep nothing."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image

from glmimage.engine import Plan
from glmimage.engine.keep import KeepConfig, KeepPlan, feathered, kept_cells
from glmimage.errors import InputError


def edit_plan(changed: list[tuple[int, int]], grid=(8, 8), size=256, ref_size=None) -> Plan:
    h, w = grid
    ref = torch.arange(h * w) % 50
    target = ref.clone().view(h, w)
    for r, c in changed:
        target[r, c] += 100
    return Plan(prompt="edit", width=size, height=size, grid=grid, target_tokens=target.view(-1),
                reference_grids=[grid], reference_tokens=[ref],
                reference_images=[Image.new("RGB", ref_size or (size, size))])


def test_kept_cells_grow_around_the_changes_and_give_up_on_new_images():
    grown = KeepConfig(grow=1)
    kept = kept_cells(edit_plan([(3, 3)]), grown)
    assert kept.shape == (8, 8) and int((~kept).sum()) == 9 and not kept[2:5, 2:5].any() and kept[5:, :].all()
    assert int((~kept_cells(edit_plan([(3, 3)]))).sum()) == 1  # the default redraws the changed cell only
    assert int((~kept_cells(edit_plan([(0, 0)]), grown)).sum()) == 4  # the grid's border clips the growth
    most = [(r, c) for r in range(8) for c in range(0, 8, 2)]  # every other column: all cells change once grown
    assert kept_cells(edit_plan(most), grown) is None and kept_cells(edit_plan(most)) is not None
    assert kept_cells(edit_plan(most[:4], grid=(8, 8)), KeepConfig(max_changed=0.05)) is None
    assert kept_cells(edit_plan([(3, 3)], ref_size=(256, 224))) is None  # another size: nothing lines up
    t2i = Plan(prompt="p", width=256, height=256, grid=(8, 8), target_tokens=torch.zeros(64, dtype=torch.long))
    assert kept_cells(t2i) is None


def test_feathered_mask_is_one_deep_inside_and_never_reaches_a_changed_pixel():
    mask = torch.ones(1, 1, 64, 64)
    mask[..., :32, :32] = 0
    soft = feathered(mask, 4)
    assert torch.equal(soft[mask == 0], torch.zeros(int((mask == 0).sum())))
    assert torch.equal(soft[..., 40:, 40:], torch.ones(1, 1, 24, 24))
    assert 0 < soft[0, 0, 33, 10] < 1 and torch.equal(feathered(mask, 0), mask)


def test_latent_blend_is_the_reference_at_the_end_and_noise_at_the_start():
    mask = torch.zeros(1, 1, 4, 4)
    mask[..., 2:, :] = 1
    ref, noise, current = torch.randn(1, 2, 4, 4), torch.randn(1, 2, 4, 4), torch.randn(1, 2, 4, 4)
    keep = KeepPlan(mask, mask, ref, ref, [0.5])
    end, start = keep.blend_latents(current, noise, 0.0), keep.blend_latents(current, noise, 1.0)
    assert torch.equal(end[..., 2:, :], ref[..., 2:, :]) and torch.equal(start[..., 2:, :], noise[..., 2:, :])
    assert torch.equal(end[..., :2, :], current[..., :2, :])


def test_config_is_checked():
    for bad in ({"grow": -1}, {"max_changed": 0}, {"feather": -0.1}):
        with pytest.raises(ValueError):
            KeepConfig(**bad)


@pytest.fixture(scope="module")
def edit_and_reference(tiny_engine):
    rng = np.random.default_rng(0)
    ref = Image.fromarray(rng.integers(0, 256, (128, 128, 3), dtype=np.uint8))
    plan = tiny_engine.plan("make the corner red", images=[ref], seed=0)
    h, w = plan.grid
    target = plan.reference_tokens[0].clone().view(h, w)
    target[0, 0] = (target[0, 0] + 1) % tiny_engine.pipe.vision_language_encoder.config.vq_config.num_embeddings
    return replace(plan, target_tokens=target.view(-1)), np.asarray(plan.reference_images[0]).astype(np.float32) / 255


def test_an_edit_keeps_the_references_pixels_where_its_plan_leaves_it_unchanged(tiny_engine, edit_and_reference):
    plan, source = edit_and_reference
    assert plan.grid == (4, 4)  # 128 px: cells of 32 px; the changed cell grows to the top-left 2x2 cells
    kept = tiny_engine.decode(plan, seed=0, steps=2, keep=KeepConfig(grow=1), output_type="np")
    plain = tiny_engine.decode(plan, seed=0, steps=2, output_type="np")
    assert kept.metadata[0]["kept_share"] == 0.75 and "kept_share" not in plain.metadata[0]
    assert tiny_engine.decode(plan, seed=0, steps=1, keep=True).metadata[0]["kept_share"] == 15 / 16  # grow 0
    far = (slice(80, None), slice(80, None))  # kept cells beyond the feathered border
    assert np.abs(kept.images[0][far] - source[far]).max() < 1 / 255
    assert np.abs(plain.images[0][far] - source[far]).mean() > 0.1  # the tiny random DiT alone keeps nothing
    changed = (slice(0, 64), slice(0, 64))
    assert np.abs(kept.images[0][changed] - source[changed]).mean() > 0.1  # the changed cells are painted


def test_a_plan_that_changes_most_cells_keeps_nothing(tiny_engine, edit_and_reference):
    plan, _ = edit_and_reference
    codes = tiny_engine.pipe.vision_language_encoder.config.vq_config.num_embeddings
    redrawn = replace(plan, target_tokens=(plan.reference_tokens[0] + 1) % codes)
    kept = tiny_engine.decode(redrawn, seed=0, steps=2, keep=KeepConfig(), output_type="np")
    plain = tiny_engine.decode(redrawn, seed=0, steps=2, output_type="np")
    assert kept.metadata[0]["kept_share"] == 0.0 and np.array_equal(kept.images[0], plain.images[0])
    with pytest.raises(InputError, match="keep must be"):
        tiny_engine.decode(redrawn, steps=1, keep="yes")


@pytest.mark.parametrize("sampler", ["fast", "library"])
def test_a_strong_copy_bias_makes_the_edit_plan_the_references_codes(tiny_dir, sampler):
    from glmimage.engine import Engine
    from glmimage.engine.options import EngineOptions

    engine = Engine.from_pretrained(str(tiny_dir), options=EngineOptions(planner=sampler))
    ref = Image.fromarray(np.random.default_rng(1).integers(0, 256, (128, 128, 3), dtype=np.uint8))
    free = engine.plan("make it blue", images=[ref], seed=2)
    copied = engine.plan("make it blue", images=[ref], seed=2, copy_bias=50.0)
    assert not torch.equal(free.target_tokens, free.reference_tokens[0])
    assert torch.equal(copied.target_tokens, copied.reference_tokens[0])  # cell by cell, in order
    some = engine.plan("make it blue", images=[ref], seed=2, copy_bias=2.0)
    agree = lambda p: int((p.target_tokens == p.reference_tokens[0]).sum())  # noqa: E731
    assert agree(free) <= agree(some) <= agree(copied)
    t2i = engine.plan('a poster "SALE"', width=64, height=64, seed=2)
    assert torch.equal(t2i.target_tokens, engine.plan('a poster "SALE"', width=64, height=64, seed=2,
                                                      copy_bias=50.0).target_tokens)
    with pytest.raises(InputError, match="copy_bias"):
        engine.plan("make it blue", images=[ref], copy_bias=-1.0)


def test_explicit_masks_are_read_and_checked():
    from glmimage.engine.keep import as_keep_mask, mask_from_alpha, masked

    rgba = Image.new("RGBA", (8, 4), (10, 20, 30, 255))
    rgba.putpixel((0, 0), (10, 20, 30, 0))
    keep = mask_from_alpha(rgba)
    assert keep.shape == (4, 8) and not keep[0, 0] and int(keep.sum()) == 31  # alpha 0 is where to edit
    with pytest.raises(InputError, match="no alpha channel"):
        mask_from_alpha(Image.new("RGB", (8, 4)))
    assert torch.equal(as_keep_mask(Image.new("L", (3, 2), 255)), torch.ones(2, 3, dtype=torch.bool))
    with pytest.raises(InputError, match="2-d"):
        as_keep_mask(np.ones((2, 2, 3)))
    with pytest.raises(InputError, match="one channel"):
        as_keep_mask(rgba)
    config = masked(KeepConfig(feather=0.5), np.eye(2))
    assert config.feather == 0.5 and config.mask.dtype == torch.bool and config == KeepConfig(feather=0.5)


def test_an_explicit_mask_keeps_the_reference_exactly_where_it_says(tiny_engine):
    rng = np.random.default_rng(3)
    ref = Image.fromarray(rng.integers(0, 256, (128, 128, 3), dtype=np.uint8))
    source = np.asarray(ref).astype(np.float32) / 255
    keep = np.ones((128, 128), dtype=bool)
    keep[:, :48] = False  # edit the left 48 columns: not a whole number of planner cells
    result = tiny_engine.edit("make the left side red", [ref], seed=0, steps=2, keep_mask=keep, output_type="np")
    out = result.images[0]
    assert np.abs(out[:, 64:] - source[:, 64:]).max() < 1 / 255  # kept, beyond the feathered border
    assert np.abs(out[:, :40] - source[:, :40]).mean() > 0.1  # painted
    assert result.metadata[0]["kept_share"] == 0.625
    plain = tiny_engine.edit("make the left side red", [ref], seed=0, steps=2, keep=False, output_type="np")
    assert np.abs(plain.images[0][:, 64:] - source[:, 64:]).mean() > 0.1  # without it nothing is kept
    with pytest.raises(InputError, match="contradict"):
        tiny_engine.edit("x", [ref], steps=1, keep=False, keep_mask=keep)
    with pytest.raises(InputError, match="reference's size"):
        tiny_engine.edit("x", [ref], width=96, height=128, steps=1, keep_mask=keep)


def test_the_cli_edit_takes_an_openai_mask(tiny_dir, tmp_path, capsys):
    from glmimage.cli.main import main

    rng = np.random.default_rng(4)
    ref = tmp_path / "ref.png"
    Image.fromarray(rng.integers(0, 256, (96, 128, 3), dtype=np.uint8)).save(ref)
    mask = Image.new("RGBA", (128, 96), (0, 0, 0, 255))
    mask.paste((0, 0, 0, 0), (0, 0, 48, 96))  # alpha 0: edit the left 48 columns
    mask.save(tmp_path / "mask.png")
    out = tmp_path / "out.png"
    args = ["edit", "paint it red", "--image", str(ref), "--model", str(tiny_dir), "--steps", "2", "--seed", "0",
            "--no-progress"]
    assert main([*args, "--mask", str(tmp_path / "mask.png"), "--out", str(out)]) == 0
    result, source = np.asarray(Image.open(out)).astype(int), np.asarray(Image.open(ref)).astype(int)
    assert np.abs(result[:, 64:] - source[:, 64:]).max() <= 1 and np.abs(result[:, :40] - source[:, :40]).mean() > 20
    Image.new("RGB", (128, 96)).save(tmp_path / "rgb.png")
    Image.new("RGBA", (64, 64)).save(tmp_path / "small.png")
    for extra, words in ((["--mask", str(tmp_path / "rgb.png")], "no alpha channel"),
                         (["--mask", str(tmp_path / "small.png")], "first image's size"),
                         (["--mask", str(tmp_path / "mask.png"), "--keep", "off"], "contradict"),
                         (["--mask", str(tmp_path / "mask.png"), "--size", "64x64"], "keeps the first image's size")):
        capsys.readouterr()
        assert main([*args, *extra, "--out", str(tmp_path / "bad.png")]) == 2
        assert words in capsys.readouterr().err
