"""A summary of a model for `glmimage info`: where it comes from, its parts, sizes and limits."""

from __future__ import annotations

from dataclasses import asdict

from glmimage.models.load import load_model
from glmimage.models.params import parameter_counts
from glmimage.models.presets import PRESETS


def model_info(name_or_path: str) -> dict:
    if name_or_path == "official":  # never materialised: report the configuration's counts
        counts = parameter_counts(PRESETS["official"])
        return {"model": "official", "source": "configuration only (meta device)",
                "parameters": counts, "limits": asdict(PRESETS["official"].limits)}
    loaded = load_model(name_or_path)
    pipe = loaded.pipe
    parts = {
        "planner": pipe.vision_language_encoder, "glyph_encoder": pipe.text_encoder,
        "decoder": pipe.transformer, "vae": pipe.vae,
    }
    counts = {name: sum(p.numel() for p in m.parameters()) for name, m in parts.items()}
    counts["total"] = sum(counts.values())
    return {
        "model": loaded.model_id,
        "classes": {name: type(m).__name__ for name, m in parts.items()},
        "parameters": counts,
        "dtype": str(pipe.transformer.dtype),
        "limits": asdict(loaded.limits),
        "default_steps": loaded.default_steps,
        "default_guidance": loaded.default_guidance,
        "codebook_size": pipe.vision_language_encoder.config.vq_config.num_embeddings,
    }
