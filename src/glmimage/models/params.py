"""Parameter counts of a preset's components, built on the meta device (no memory, no weights)."""

from __future__ import annotations

import torch
from diffusers import AutoencoderKL, GlmImageTransformer2DModel
from transformers import GlmImageForConditionalGeneration, T5EncoderModel

from glmimage.models.build import decoder_kwargs, glyph_encoder_config, planner_config, vae_kwargs
from glmimage.models.presets import ModelPreset


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def parameter_counts(preset: ModelPreset) -> dict[str, int]:
    """Counts per component; small presets derive their vocabulary size as `build_pipeline` does."""
    p = preset.planner
    vocab = p.vocab_size or -(-(p.codebook_size + 2 + p.text_vocab_size + 4) // 64) * 64
    image_token_id = p.image_token_id if p.image_token_id is not None else vocab - 4
    with torch.device("meta"):
        planner = GlmImageForConditionalGeneration(planner_config(preset, vocab, image_token_id))
        counts = {
            "planner": _count(planner),
            "planner_text": _count(planner.model.language_model) + _count(planner.lm_head),
            "planner_vision": _count(planner.model.visual),
            "planner_vq": _count(planner.model.vqmodel),
            "glyph_encoder": _count(T5EncoderModel(glyph_encoder_config(preset))),
            "decoder": _count(GlmImageTransformer2DModel(**decoder_kwargs(preset))),
            "vae": _count(AutoencoderKL(**vae_kwargs(preset))),
        }
    counts["total"] = counts["planner"] + counts["glyph_encoder"] + counts["decoder"] + counts["vae"]
    return counts
