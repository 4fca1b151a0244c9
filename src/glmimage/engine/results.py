"""What a generation returns: the images, a metadata record per image, the plans, and stage timings."""

from __future__ import annotations

from dataclasses import dataclass, field

from PIL import Image

from glmimage.engine.plan import Plan


@dataclass
class GenerationResult:
    images: list[Image.Image]
    metadata: list[dict]  # one per image: prompt, seed, plan_seed, size, steps, guidance, model_id, plan_hash, timings
    plans: list[Plan] = field(default_factory=list)
    timings: dict = field(default_factory=dict)  # seconds: planner, decoder, vae, total

    def __len__(self) -> int:
        return len(self.images)
