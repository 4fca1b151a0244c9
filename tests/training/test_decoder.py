"""The decoder is trained on what the engine's sampler and attention compute: glyph embeddings, noise levels,
the velocity the scheduler integrates, and the reference keys/values."""

from __future__ import annotations

import copy

import pytest
import torch

from glmimage.engine.attention import install_masked_attention
from glmimage.engine.decoder import flow_timesteps, write_reference_cache
from glmimage.engine.glyphs import encode_glyph_text, pad_batch
from glmimage.engine.plan import Plan
from glmimage.engine.references import fit_reference
from glmimage.models.build import build_pipeline
from glmimage.models.presets import TINY
from glmimage.training.data import make_world, text_mask, world_item
from glmimage.training.decoder import (
    glyph_embeddings,
    reference_cache,
    shifted_sigmas,
    text_cells,
    text_weights,
    weighted_mean,
)
from glmimage.training.encode import encode_codes, encode_latents
from glmimage.training.vae import VaeTrainConfig


@pytest.fixture(scope="module")
def pipe():
    pipe = build_pipeline(TINY, seed=5)
    install_masked_attention(pipe.transformer)
    return pipe


def test_glyph_embeddings_equal_the_engines_per_prompt(pipe):
    texts = [["SALE"], [], ["A", "longer text line", "$9.99"], ["two", "texts"]]
    ours, mask = glyph_embeddings(pipe.tokenizer, pipe.text_encoder.eval(), texts, "cpu")
    engine = [encode_glyph_text(t, pipe.tokenizer, pipe.text_encoder) for t in texts]
    theirs, their_mask = pad_batch(engine)
    assert torch.equal(mask, their_mask)
    assert torch.allclose(ours, theirs, atol=1e-5)


@pytest.mark.parametrize("steps,seq_len", [(4, 64), (30, 256), (50, 1024)])
def test_noise_levels_and_timesteps_match_the_sampler(pipe, steps, seq_len):
    scheduler = copy.deepcopy(pipe.scheduler)
    timesteps = flow_timesteps(scheduler, steps, seq_len, "cpu")
    u = timesteps / scheduler.config.num_train_timesteps  # what training draws uniformly
    assert torch.allclose(shifted_sigmas(u, seq_len, scheduler.config), scheduler.sigmas[:-1], atol=1e-6)


def test_the_training_velocity_is_what_the_sampler_integrates(pipe):
    scheduler = copy.deepcopy(pipe.scheduler)
    timesteps = flow_timesteps(scheduler, 8, 64, "cpu")
    gen = torch.Generator().manual_seed(0)
    x0, noise = torch.randn(1, 16, 8, 8, generator=gen), torch.randn(1, 16, 8, 8, generator=gen)
    sigma = scheduler.sigmas[2]
    x_t = (1 - sigma) * x0 + sigma * noise  # training's interpolation
    scheduler._step_index = 2
    stepped = scheduler.step(noise - x0, timesteps[2], x_t, return_dict=False)[0]  # training's target velocity
    sigma_next = scheduler.sigmas[3]
    assert torch.allclose(stepped, (1 - sigma_next) * x0 + sigma_next * noise, atol=1e-5)


def test_batched_reference_pass_writes_what_the_engine_writes(pipe):
    world = make_world(VaeTrainConfig(image_size=128))
    items = [world_item(world, "edit", i, TINY.limits) for i in (1, 2)]  # one reference each, same size
    encoded = [{**encode_codes(pipe, it), "ref_latents": encode_latents(pipe, it.references)} for it in items]
    ours = reference_cache(pipe.transformer, encoded, grad=False)
    plans = [Plan(prompt=it.prompt, width=128, height=128, grid=(4, 4), target_tokens=e["codes"],
                  reference_grids=[tuple(g) for g in e["ref_grids"]], reference_tokens=e["ref_codes"],
                  reference_images=[fit_reference(r, TINY.limits) for r in it.references])
             for it, e in zip(items, encoded)]
    theirs = write_reference_cache(pipe.transformer, pipe.vae, pipe.image_processor, plans, torch.float32)
    for layer in range(pipe.transformer.config.num_layers):
        assert torch.allclose(torch.cat(ours[layer].k_caches), torch.cat(theirs[layer].k_caches), atol=1e-5)
        assert torch.allclose(torch.cat(ours[layer].v_caches), torch.cat(theirs[layer].v_caches), atol=1e-5)


def test_text_masks_cover_the_rendered_text_and_little_else():
    """The world's text boxes, on the VAE's 8x latent grid: every text box lies inside the mask, and the mask is a
    small share of the design (what makes a plain MSE spend most of its gradient on backgrounds)."""
    world = make_world(VaeTrainConfig(preset="tiny", image_size=256, out="unused"))
    shares = []
    for index in range(8):
        item = world_item(world, "t2i", index)
        mask = text_mask(item.text_boxes, *item.image.size, 8)
        assert mask.shape == (item.image.height // 8, item.image.width // 8)
        pixels = mask.repeat_interleave(8, 0).repeat_interleave(8, 1)
        for x0, y0, x1, y1 in item.text_boxes:
            assert pixels[y0:y1, x0:x1].all()
        shares.append(mask.float().mean().item())
    assert all(0 < s < 0.6 for s in shares), shares
    edit = world_item(world, "edit", 0)
    assert text_mask(edit.text_boxes, *edit.image.size, 8).any() == bool(edit.texts)


def test_text_weighted_loss_is_the_mse_at_weight_one_and_leans_on_text_above_it():
    gen = torch.Generator().manual_seed(0)
    error = torch.rand(2, 16, 4, 4, generator=gen)
    mask = torch.zeros(4, 4, dtype=torch.bool)
    mask[1:3, 0:2] = True
    items = [{"text_boxes": [[0, 8, 16, 24]], "size": [32, 32]}, {"text_boxes": [], "size": [32, 32]}]  # 8-px cells
    assert text_weights(text_cells(items, 8, "cpu"), 1.0) is None
    assert torch.equal(weighted_mean(error, None), error.mean())
    weights = text_weights(text_cells(items, 8, "cpu"), 4.0)
    assert torch.equal(weights[0, 0] > 1, mask)
    assert weights.shape == (2, 1, 4, 4) and weights.sum() == 32 + 3 * 4
    error.requires_grad_(True)
    weighted_mean(error, weights).backward()
    grad = error.grad[0, 0]
    assert torch.allclose(grad[mask], 4 * grad[~mask][0].expand(int(mask.sum())))  # text cells count 4x
    flat = torch.ones_like(error)
    assert torch.allclose(weighted_mean(flat, weights), torch.tensor(1.0))  # keeps the MSE's scale



def test_text_velocity_mse_is_the_error_under_the_texts(pipe):
    """The logged letters' error is the flow loss with all weight on the text cells (same draws)."""
    from glmimage.training.decoder import DecoderTrainConfig, decoder_step_loss

    world = make_world(VaeTrainConfig(image_size=128))
    items = []
    for i in range(3):
        item = world_item(world, "t2i", i)
        items.append({**encode_codes(pipe, item), "latent": encode_latents(pipe, [item.image])[0]})
    assert all(it["text_boxes"] for it in items)

    def run(weight: float):
        cfg = DecoderTrainConfig(preset="tiny", prior_drop=0.0, glyph_drop=0.0, text_loss_weight=weight)
        with torch.no_grad():
            return decoder_step_loss(pipe.transformer, pipe.text_encoder, pipe.tokenizer, items, cfg,
                                     torch.Generator().manual_seed(3), pipe.scheduler.config)

    plain_loss, parts = run(1.0)
    text_only_loss, _ = run(1e9)  # normalised weights: the mean over the text cells
    assert {it["latent"].shape for it in items} == {items[0]["latent"].shape}  # one group: one set of draws
    assert parts["text_velocity_mse"] == pytest.approx(text_only_loss.item(), rel=1e-4)
    assert plain_loss.item() == pytest.approx(parts["velocity_mse"], rel=1e-6)
