"""The DiT decoder: flow-matching denoising of VAE latents conditioned on plans and glyph embeddings.

The loop follows the reference pipeline's arithmetic (timesteps, resolution shift, guidance formula, VAE
normalisation) with two changes that keep results the same: the guided and unguided passes run as one batch, and
references are written to the key/value cache once and read through a mask, so batches of different prompts (and
their padded glyph tokens) give each image exactly what it would get alone.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from diffusers import FlowMatchEulerDiscreteScheduler
from diffusers.models.transformers.transformer_glm_image import GlmImageKVCache
from diffusers.pipelines.glm_image.pipeline_glm_image import calculate_shift
from diffusers.utils.torch_utils import randn_tensor
from tqdm.auto import tqdm

from glmimage.engine.glyphs import pad_batch
from glmimage.engine.plan import Plan, upsample_tokens


def resolution_shift(scheduler_config, image_seq_len: int) -> float:
    """The time shift mu for an image of `image_seq_len` patches, as the reference computes it (the sampler and the
    training noise levels both use it)."""
    return calculate_shift(image_seq_len, scheduler_config.get("base_image_seq_len", 256),
                           scheduler_config.get("base_shift", 0.25), scheduler_config.get("max_shift", 0.75))


def flow_timesteps(scheduler: FlowMatchEulerDiscreteScheduler, steps: int, image_seq_len: int, device) -> torch.Tensor:
    """Set the scheduler's schedule as the reference does: linear timesteps, sigma = t/1000, linear shift mu."""
    cfg = scheduler.config
    timesteps = np.linspace(cfg.num_train_timesteps, 1.0, steps + 1)[:-1].astype(np.int64).astype(np.float32)
    sigmas = timesteps / cfg.num_train_timesteps
    mu = resolution_shift(cfg, image_seq_len)
    scheduler.set_timesteps(timesteps=timesteps, sigmas=sigmas, device=device, mu=mu)
    return scheduler.timesteps


def vae_stats(vae, device, dtype) -> tuple[torch.Tensor, torch.Tensor]:
    c = vae.config.latent_channels
    mean = torch.tensor(vae.config.latents_mean).view(1, c, 1, 1).to(device, dtype)
    std = torch.tensor(vae.config.latents_std).view(1, c, 1, 1).to(device, dtype)
    return mean, std


@torch.no_grad()
def encode_reference(vae, image_processor, image, mean: torch.Tensor, std: torch.Tensor, device, dtype):
    """(pixels in [-1, 1], normalised latent) of one reference image at its own size, as the DiT reads references."""
    pixels = image_processor.preprocess(image, height=image.height, width=image.width).to(device, dtype)
    return pixels, (vae.encode(pixels).latent_dist.mode() - mean) / std


def reference_pass(transformer, latents: torch.Tensor, prior: torch.Tensor, target_size: torch.Tensor,
                   cache: GlmImageKVCache) -> None:
    """One forward of a batch of reference latents (row i: one reference of cache slot i) at timestep 0, with no
    glyphs and the reference's own plan tokens, so the cache (in write mode) keeps every layer's keys/values. The
    engine and the decoder's training both write reference caches with it."""
    batch = latents.shape[0]
    device = latents.device
    empty_text = torch.zeros(batch, 0, transformer.config.text_embed_dim, device=device, dtype=transformer.dtype)
    crop = torch.zeros((batch, 2), device=device, dtype=target_size.dtype if target_size.is_floating_point() else None)
    transformer(hidden_states=latents, encoder_hidden_states=empty_text, prior_token_id=prior,
                prior_token_drop=torch.zeros_like(prior, dtype=torch.bool), timestep=torch.zeros(batch, device=device),
                target_size=target_size, crop_coords=crop, kv_caches=cache)


@torch.no_grad()
def write_reference_cache(transformer, vae, image_processor, plans: list[Plan], dtype) -> GlmImageKVCache | None:
    """Run each plan's references once through the DiT at t=0 and keep every layer's keys/values (one slot per plan)."""
    if not any(p.is_edit for p in plans):
        return None
    if not all(p.is_edit for p in plans):
        raise ValueError("a decoder batch mixes edits and text-to-image plans")
    device = transformer.device
    mean, std = vae_stats(vae, device, dtype)
    cache = GlmImageKVCache(num_layers=transformer.config.num_layers)
    cache.set_mode("write")
    for plan in plans:
        for image, tokens, (gh, gw) in zip(plan.reference_images, plan.reference_tokens, plan.reference_grids):
            pixels, latent = encode_reference(vae, image_processor, image, mean, std, device, dtype)
            prior = upsample_tokens(tokens, gh, gw).to(device)
            reference_pass(transformer, latent, prior, torch.tensor([pixels.shape[-2:]], device=device), cache)
        cache.next_sample()
    lengths = {c.shape[1] for c in cache[0].k_caches}
    if len(lengths) > 1:
        raise ValueError("plans in one decoder batch must have references of the same total size")
    cache.set_mode("read")
    return cache


def initial_latents(plans: list[Plan], seeds: list[int], channels: int, vae_scale: int, device, dtype) -> torch.Tensor:
    """One generator per image, so image i with seed s equals the single image of seed s."""
    height, width = plans[0].height, plans[0].width
    generators = [torch.Generator(device="cpu").manual_seed(s) for s in seeds]
    shape = (len(seeds), channels, height // vae_scale, width // vae_scale)
    if len(generators) == 1:
        return randn_tensor(shape, generator=generators[0], device=torch.device(device), dtype=dtype)
    return randn_tensor(shape, generator=generators, device=torch.device(device), dtype=dtype)


@torch.no_grad()
def forward_arguments(prior_ids: torch.Tensor, embeds: list[torch.Tensor], drop_plan: bool,
                      target_size: torch.Tensor, glyph_multiple: int = 1) -> dict[str, Any]:
    """The DiT's arguments for rows with these glyph embeddings (all but latents, timestep and references): the
    plan repeated per group of B rows; `drop_plan` drops it on the last B rows (the unguided ones, as in the
    reference). `target_size`: (1, 2) (height, width) in pixels."""
    batch = prior_ids.shape[0]
    text, text_mask = pad_batch(embeds, glyph_multiple)
    rows = len(embeds)
    prior = prior_ids.repeat(rows // batch, 1)
    drop = torch.zeros_like(prior, dtype=torch.bool)
    if drop_plan:
        drop[-batch:] = True
    return {"encoder_hidden_states": text, "prior_token_id": prior, "prior_token_drop": drop,
            "target_size": target_size.expand(rows, 2),
            "crop_coords": torch.zeros((rows, 2), dtype=target_size.dtype, device=target_size.device),
            "attention_mask": None if bool(text_mask.all()) else text_mask}


def guided_velocity(forward, passes: list[dict], latents: torch.Tensor, t: torch.Tensor, guidance: float,
                    model_dtype) -> torch.Tensor:
    """The velocity the sampler integrates at (latents, t): the forwards of `passes` (guided rows first, then the
    unguided ones when guidance > 1), combined by classifier-free guidance."""
    batch = latents.shape[0]
    preds = []
    for kwargs in passes:
        rows = kwargs["prior_token_id"].shape[0]
        model_input = latents if rows == batch else latents.repeat(rows // batch, 1, 1, 1)  # no copy per step
        preds.append(forward(hidden_states=model_input.to(model_dtype), timestep=t.expand(rows) - 1,
                             return_dict=False, **kwargs)[0].float())
    pred = torch.cat(preds)
    if guidance > 1.0:
        cond, uncond = pred.chunk(2)
        pred = uncond + guidance * (cond - uncond)
    return pred


def denoise(
    transformer,
    scheduler: FlowMatchEulerDiscreteScheduler,
    latents: torch.Tensor,
    prior_ids: torch.Tensor,  # (B, N) upsampled plan codes
    glyph_embeds: list[torch.Tensor],  # B tensors (1, L_i, D)
    empty_embed: torch.Tensor,  # (1, L0, D): the glyph embedding of "" for the unguided pass
    guidance: float,
    steps: int,
    image_size: tuple[int, int],
    kv_cache: GlmImageKVCache | None = None,
    reference_rows: torch.Tensor | None = None,
    progress: bool = False,
    step_callback=None,
    split_cfg: bool = False,
    forward=None,
    glyph_multiple: int = 1,
    keep=None,
) -> torch.Tensor:
    """`forward`: what runs the DiT (e.g. its compiled form); the transformer itself by default.
    `glyph_multiple`: pad the glyph tokens of each forward to a multiple of this (masked: same images).
    `keep`: a `keep.KeepPlan`; after every step its kept cells are set to the reference at the next noise level."""
    forward = transformer if forward is None else forward
    batch, _, lat_h, lat_w = latents.shape
    device, dtype = latents.device, latents.dtype
    model_dtype = transformer.dtype  # read once: diffusers walks every module for it on each read
    patch = transformer.config.patch_size
    timesteps = flow_timesteps(scheduler, steps, (lat_h // patch) * (lat_w // patch), device)
    guided = guidance > 1.0
    target_size = torch.tensor([list(image_size)], dtype=dtype, device=device)  # (height, width) in pixels
    ref_rows = reference_rows if reference_rows is not None else torch.arange(batch)

    def branch(embeds: list[torch.Tensor], drop_plan: bool, see_references: bool) -> dict:
        """The forward arguments of a group of rows (everything but latents and timestep)."""
        kwargs = forward_arguments(prior_ids, embeds, drop_plan, target_size, glyph_multiple)
        rows = len(embeds)
        if kv_cache is not None and see_references:
            kwargs["kv_caches"] = kv_cache
            kwargs["attention_kwargs"] = {"reference_rows": ref_rows.repeat(rows // batch)}
            if rows > batch:  # the reference runs its unguided pass with the cache in "skip" mode
                visible = torch.ones(rows, dtype=torch.bool)
                visible[batch:] = False
                kwargs["attention_kwargs"]["reference_visible"] = visible
        return kwargs

    # 1. The rows of each forward. Batched (default): [guided 0..B-1, unguided 0..B-1] in one forward (the unguided
    # rows' empty glyph text padded to the longest, references masked). Split: two forwards, as the reference runs
    # them; the unguided one has no padding and no references to mask.
    if not guided:
        passes = [branch(list(glyph_embeds), drop_plan=False, see_references=True)]
    elif split_cfg:
        passes = [branch(list(glyph_embeds), drop_plan=False, see_references=True),
                  branch([empty_embed] * batch, drop_plan=True, see_references=False)]
    else:
        passes = [branch(list(glyph_embeds) + [empty_embed] * batch, drop_plan=True, see_references=True)]

    # 2. Denoising loop
    noise = latents.clone() if keep is not None else None
    for i, t in enumerate(tqdm(timesteps, desc="decoder", disable=not progress, leave=False)):
        pred = guided_velocity(forward, passes, latents, t, guidance, model_dtype)
        latents = scheduler.step(pred, t, latents, return_dict=False)[0]
        if keep is not None:  # the scheduler's index now points at the next noise level (0 after the last step)
            latents = keep.blend_latents(latents, noise, float(scheduler.sigmas[scheduler.step_index]))
        if step_callback is not None:
            step_callback(i, len(timesteps))
    return latents
