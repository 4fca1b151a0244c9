"""What the planner and decoder stages train on, computed with the frozen earlier stages: VAE latents and
semantic-VQ codes of world samples (and of their references), plus the prompt.

Latents are normalised with the VAE's `latents_mean`/`latents_std` exactly as the engine normalises reference
latents (posterior mode). Codes use the planner's own vision encoder + VQ: the target at its 1/32 grid, the preview
at the ~256-token preview grid (text-to-image), and references through the processor, as the engine tokenizes them.
"""

from __future__ import annotations

import torch

from glmimage.engine.decoder import vae_stats
from glmimage.engine.planner import reference_tokens, target_grids
from glmimage.models.presets import get_preset
from glmimage.training.cache import EncodedSet, fingerprint
from glmimage.training.data import (
    TrainItem,
    dataset_index,
    make_world,
    stream_slot,
    vae_pixels,
    vq_codes,
    world_item,
)


@torch.no_grad()
def encode_latents(pipe, images) -> list[torch.Tensor]:
    """Normalised latents (C, H/8, W/8) of PIL images, one at a time (images may differ in size)."""
    vae = pipe.vae
    mean, std = vae_stats(vae, vae.device, vae.dtype)
    out = []
    for img in images:
        latent = vae.encode(vae_pixels(pipe, [img]).to(vae.device, vae.dtype)).latent_dist.mode()
        out.append(((latent - mean) / std)[0].float().cpu())
    return out


@torch.no_grad()
def encode_codes(pipe, item: TrainItem) -> dict:
    """Target codes, preview codes (text-to-image), reference codes and grids, prompt, texts and their boxes of one
    item."""
    planner, image_processor = pipe.vision_language_encoder, pipe.processor.image_processor
    grid, preview_grid = target_grids(item.image.height, item.image.width)
    out = {"prompt": item.prompt, "texts": list(item.texts), "text_boxes": [list(b) for b in item.text_boxes],
           "char_boxes": [[list(b) for b in boxes] for boxes in item.char_boxes],
           "size": list(item.image.size),
           "codes": vq_codes(planner, image_processor, [item.image], grid)[0]}
    if item.references:
        inputs = image_processor(images=item.references, return_tensors="pt")
        grids = inputs["image_grid_thw"]
        codes = reference_tokens(planner, inputs["pixel_values"].to(planner.device), grids.to(planner.device))
        out["ref_codes"] = [c.cpu() for c in codes]
        out["ref_grids"] = [[int(g[1]), int(g[2])] for g in grids]
        out["ref_sizes"] = [list(r.size) for r in item.references]
    else:
        out["preview"] = vq_codes(planner, image_processor, [item.image], preview_grid)[0]
    return out


def world_kinds_key(cfg) -> tuple:
    """Fingerprint parts of the world's kind mix: none for the default mix, so caches of earlier runs stay valid."""
    return (("kinds", *cfg.world_kinds),) if cfg.world_kinds else ()


def latent_set(run, pipe, kind: str, size: int, limits) -> EncodedSet:
    """Cached latents of the first `size` world samples of a kind (targets and references)."""
    cfg, world = run.cfg, make_world(run.cfg)

    def encode(indices: list[int]) -> list[dict]:
        items = [world_item(world, kind, i, limits) for i in indices]
        return [{"latent": encode_latents(pipe, [it.image])[0], "ref_latents": encode_latents(pipe, it.references)}
                for it in items]

    key = fingerprint("latents", kind, cfg.image_size, cfg.world_seed, *world_kinds_key(cfg), limits,
                      modules=(pipe.vae,))
    return EncodedSet(run, f"latents-{kind}", key, size, cfg.cache_shard_size, cfg.cache_dir, encode).build()


def code_set(run, pipe, kind: str, size: int, limits) -> EncodedSet:
    """Cached codes (and prompts) of the first `size` world samples of a kind."""
    cfg, world = run.cfg, make_world(run.cfg)
    model = pipe.vision_language_encoder.model

    def encode(indices: list[int]) -> list[dict]:
        return [encode_codes(pipe, world_item(world, kind, i, limits)) for i in indices]

    # "text_boxes", "char_boxes": caches written before items carried their boxes are not reused
    key = fingerprint("codes", "text_boxes", "char_boxes", kind, cfg.image_size, cfg.world_seed,
                      *world_kinds_key(cfg), limits,
                      modules=(model.visual, model.vqmodel))
    return EncodedSet(run, f"codes-{kind}", key, size, cfg.cache_shard_size, cfg.cache_dir, encode).build()


class StreamData:
    """Encoded items at stream positions: text-to-image and image-to-image sets interleaved by `edit_fraction`,
    each item the union of its codes (and, with `latents`, its latents)."""

    def __init__(self, run, pipe, latents: bool = False):
        cfg = self.cfg = run.cfg
        limits = get_preset(cfg.preset).limits
        self.sizes = {"t2i": cfg.num_samples, "edit": cfg.num_edit_samples}
        kinds = ["t2i"] + (["edit"] if cfg.edit_fraction > 0 else [])
        self.sets = {k: [code_set(run, pipe, k, self.sizes[k], limits)]
                     + ([latent_set(run, pipe, k, self.sizes[k], limits)] if latents else []) for k in kinds}

    def item(self, position: int) -> dict:
        kind, ordinal = stream_slot(position, self.cfg.edit_fraction)
        index = dataset_index(ordinal, self.sizes[kind], self.cfg.seed)
        out = {"kind": kind, "index": index}
        for encoded in self.sets[kind]:
            out.update(encoded[index])
        return out
