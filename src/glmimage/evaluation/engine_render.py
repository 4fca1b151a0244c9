"""Renderers backed by the engine: generate each test prompt, or run each edit, with fixed sampling settings."""

from __future__ import annotations

from dataclasses import dataclass

from PIL import Image

from glmimage.data.sample import EditSample, Sample


@dataclass(frozen=True)
class SamplingConfig:
    steps: int | None = None  # None: the model's own default (tiny 4, nano 30, official 50)
    guidance: float = 1.5
    seed: int = 0  # sample i uses seed + i, so one image can be reproduced alone

    def __post_init__(self) -> None:
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
        res = self.engine.generate(sample.prompt, width=sample.width, height=sample.height, steps=s.steps,
                                   guidance=s.guidance, seed=s.seed + sample.index, num_images=1)
        return res.images[0]

    def edit(self, es: EditSample) -> Image.Image:
        s = self.sampling
        res = self.engine.edit(es.instruction, images=es.refs, width=es.target.width, height=es.target.height,
                               steps=s.steps, guidance=s.guidance, seed=s.seed + es.index, num_images=1)
        return res.images[0]
