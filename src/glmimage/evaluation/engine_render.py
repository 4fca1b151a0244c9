"""Renderers backed by the engine: generate each test prompt, or run each edit, with fixed sampling settings."""

from __future__ import annotations

from dataclasses import dataclass

from PIL import Image

from glmimage.data.sample import EditSample, Sample

PLAN_SOURCES = ("sampled", "ground-truth")


@dataclass(frozen=True)
class SamplingConfig:
    steps: int | None = None  # None: the model's own default (tiny 4, nano 30, official 50)
    guidance: float = 1.5
    seed: int = 0  # sample i uses seed + i, so one image can be reproduced alone
    # "sampled": the planner writes each plan; "ground-truth": text-to-image plans are the VQ codes of the world's own
    # render, so the decoder (DiT, glyph encoder, VAE) is measured alone, without the planner's errors
    plans: str = "sampled"

    def __post_init__(self) -> None:
        if self.plans not in PLAN_SOURCES:
            raise ValueError(f"plans must be one of {PLAN_SOURCES}, got {self.plans!r}")
        if self.steps is not None and self.steps < 1:
            raise ValueError(f"steps must be >= 1, got {self.steps}")
        if self.guidance < 0:
            raise ValueError(f"guidance must be >= 0, got {self.guidance}")


class EngineRenderer:
    """`render(sample)` and `render_edit(edit_sample)` over a loaded Engine."""

    def __init__(self, engine, sampling: SamplingConfig = SamplingConfig()):
        self.engine = engine
        self.sampling = sampling

    @classmethod
    def load(cls, model: str, sampling: SamplingConfig = SamplingConfig()) -> EngineRenderer:
        from glmimage.engine import Engine  # the engine is heavy; only model evaluation needs it

        return cls(Engine.from_pretrained(model), sampling)

    @property
    def model_id(self) -> str:
        return str(self.engine.model_id)

    def __call__(self, sample: Sample) -> Image.Image:
        s = self.sampling
        if s.plans == "ground-truth":
            return self.engine.decode(self.true_plan(sample), seed=s.seed + sample.index, steps=s.steps,
                                      guidance=s.guidance).images[0]
        res = self.engine.generate(sample.prompt, width=sample.width, height=sample.height, steps=s.steps,
                                   guidance=s.guidance, seed=s.seed + sample.index, num_images=1)
        return res.images[0]

    def true_plan(self, sample: Sample):
        """The plan a perfect planner would write: the target codes of the world's render at the planner's grid."""
        from glmimage.engine import Plan
        from glmimage.engine.planner import target_grids
        from glmimage.training.data import vq_codes

        pipe = self.engine.pipe
        grid = target_grids(sample.height, sample.width)[0]
        codes = vq_codes(pipe.vision_language_encoder, pipe.processor.image_processor, [sample.image], grid)[0]
        return Plan(prompt=sample.prompt, width=sample.width, height=sample.height, grid=grid, target_tokens=codes)

    def edit(self, es: EditSample) -> Image.Image:
        s = self.sampling
        res = self.engine.edit(es.instruction, images=es.refs, width=es.target.width, height=es.target.height,
                               steps=s.steps, guidance=s.guidance, seed=s.seed + es.index, num_images=1)
        return res.images[0]
