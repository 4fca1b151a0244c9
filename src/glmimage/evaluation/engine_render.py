"""Renderers backed by the engine: generate each test prompt, or run each edit, with fixed sampling settings."""

from __future__ import annotations

from dataclasses import dataclass

from PIL import Image

from glmimage.data.sample import EditSample, Sample

PLAN_SOURCES = ("sampled", "ground-truth")
KEEP_CHOICES = ("model", "on", "off")


@dataclass(frozen=True)
class SamplingConfig:
    steps: int | None = None  # None: the model's own default (tiny 4, nano 30, official 50)
    guidance: float = 1.5
    seed: int = 0  # sample i uses seed + i, so one image can be reproduced alone
    # "sampled": the planner writes each plan; "ground-truth": each plan's target codes are the VQ codes of the world's
    # own render (the edit's target for edits), so the decoder (DiT, glyph encoder, VAE) is measured alone
    plans: str = "sampled"
    # edits: "model" = the model's own settings; "on"/"off" = keep the reference where the plan leaves it unchanged
    # (engine.keep) or not; copy_bias: the planner's bias towards the reference's codes (None: the model's)
    keep: str = "model"
    copy_bias: float | None = None

    def __post_init__(self) -> None:
        if self.plans not in PLAN_SOURCES:
            raise ValueError(f"plans must be one of {PLAN_SOURCES}, got {self.plans!r}")
        if self.keep not in KEEP_CHOICES:
            raise ValueError(f"keep must be one of {KEEP_CHOICES}, got {self.keep!r}")
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

        grid = target_grids(sample.height, sample.width)[0]
        return Plan(prompt=sample.prompt, width=sample.width, height=sample.height, grid=grid,
                    target_tokens=self._codes(sample.image, grid))

    def true_edit_plan(self, es: EditSample):
        """The edit plan a perfect planner would write: the references fitted and coded as the engine fits and codes
        them, and the codes of the edit's target render as the target grid."""
        from glmimage.engine import Plan
        from glmimage.engine.planner import target_grids
        from glmimage.engine.references import fit_reference, load_reference

        refs = [fit_reference(load_reference(r), self.engine.limits) for r in es.refs]
        ref_grids = [target_grids(r.height, r.width)[0] for r in refs]
        grid = target_grids(es.target.height, es.target.width)[0]
        return Plan(prompt=es.instruction, width=es.target.width, height=es.target.height, grid=grid,
                    target_tokens=self._codes(es.target.image, grid), reference_grids=ref_grids,
                    reference_tokens=[self._codes(r, g) for r, g in zip(refs, ref_grids)], reference_images=refs)

    def _codes(self, image: Image.Image, grid: tuple[int, int]):
        from glmimage.engine.planner import vq_codes

        pipe = self.engine.pipe
        return vq_codes(pipe.vision_language_encoder, pipe.processor.image_processor, [image], grid)[0]

    def edit(self, es: EditSample) -> Image.Image:
        s = self.sampling
        keep = {"model": None, "on": True, "off": False}[s.keep]
        if s.plans == "ground-truth":
            return self.engine.decode(self.true_edit_plan(es), seed=s.seed + es.index, steps=s.steps,
                                      guidance=s.guidance, keep=keep).images[0]
        res = self.engine.edit(es.instruction, images=es.refs, width=es.target.width, height=es.target.height,
                               steps=s.steps, guidance=s.guidance, seed=s.seed + es.index, num_images=1, keep=keep,
                               copy_bias=s.copy_bias)
        return res.images[0]
