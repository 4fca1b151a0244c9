"""The engine: plan, decode, generate and edit on one loaded model.

    engine = Engine.from_pretrained("tiny")
    result = engine.generate('A poster titled "SALE"', width=256, height=256, seed=0)
"""

from __future__ import annotations

import contextlib
import copy
import gc
import threading
import time

import torch
from PIL import Image

import glmimage
from glmimage.defaults import (
    DEFAULT_MODEL,
    MAX_COPY_BIAS,
    MAX_PROMPT_CHARS,
    MAX_REFERENCES,
    check_prompt_length,
    check_reference_count,
)
from glmimage.engine.attention import install_masked_attention
from glmimage.engine.decoder import denoise, initial_latents, vae_stats, write_reference_cache
from glmimage.engine.fast_planner import CompiledDecodeStep, supports_fast_sampling
from glmimage.engine.glyph_text import extract_glyph_texts
from glmimage.engine.glyphs import encode_glyph_text
from glmimage.engine.inductor import compile_frozen
from glmimage.engine.keep import KeepConfig, keep_plan, masked
from glmimage.engine.options import EngineOptions, enable_step_cache, torch_threads
from glmimage.engine.plan import Plan
from glmimage.engine.planner import make_plan, make_plans
from glmimage.engine.references import fit_reference, load_reference
from glmimage.engine.results import GenerationResult
from glmimage.engine.seeds import plan_seeds
from glmimage.errors import InputError, ModelLoadError
from glmimage.models.load import HEAVY_COMPONENTS, LoadedModel, load_component, load_model
from glmimage.models.sizes import resolve_size

MAX_IMAGES = 16
MAX_STEPS = 200
MAX_GUIDANCE = 20.0
OFFLOAD_DEVICE = torch.device("cpu")  # where offloaded components wait between stages
# Compiled engines: glyph tokens are padded (masked) to a multiple of this, so prompts of similar text length share
# one DiT graph; and each compiled function may keep this many graphs (sizes x batches x glyph buckets).
COMPILED_GLYPH_BUCKET = 16
COMPILED_GRAPHS = 64


class Engine:
    def __init__(self, model: LoadedModel, device: str = "cpu", max_batch: int = 8,
                 options: EngineOptions | None = None, offload: bool = False):
        if offload and model.sequential:
            raise ValueError("offload keeps every component in host memory; sequential loading keeps none: pick one")
        self.model = model
        self.options = options or EngineOptions()
        self.device = torch.device(device)
        # offload: components live in host memory and visit the device only for their stage (the whole model in
        # RAM, the largest stage on the GPU); no re-reading from disk as with sequential loading.
        self.offload = offload
        self.pipe = model.pipe if offload else model.pipe.to(device)
        self.max_batch = max_batch
        if not model.sequential:
            for name in HEAVY_COMPONENTS:
                self._prepare(name, getattr(self.pipe, name))
        self._planner_step = self._decoder_forward = self._vae_decode = None
        if self.options.compile:
            if model.sequential or offload:
                # compiled graphs hold the weights of the modules they were made from: those must stay put
                raise ValueError("compile needs the components kept in place: not with sequential loading or offload")
            torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, COMPILED_GRAPHS)
            self._planner_step = CompiledDecodeStep(self.pipe.vision_language_encoder)
            # weights become graph constants, prepacked for the CPU's kernels (see engine/inductor.py)
            self._decoder_forward = compile_frozen(self.pipe.transformer)
            self._vae_decode = compile_frozen(self.pipe.vae.decode)
        self._lock = threading.RLock()  # the planner keeps per-call state on the module: one call at a time
        try:  # the model's own setting for edits (glmimage.json "edit_keep"); None: keep nothing, as the reference
            self.edit_keep = None if model.edit_keep is None else KeepConfig(**model.edit_keep)
        except (TypeError, ValueError) as exc:
            raise ModelLoadError(f"{model.model_id}: glmimage.json edit_keep: {exc}") from None

    @classmethod
    def from_pretrained(cls, name_or_path: str = DEFAULT_MODEL, device: str = "cpu",
                        dtype: torch.dtype = torch.float32, sequential: bool = False, **kwargs) -> Engine:
        """`sequential=True`: load each heavy component only for its stage (peak memory = the largest stage);
        `offload=True`: keep all in host memory, each on the device only for its stage."""
        return cls(load_model(name_or_path, dtype, sequential), device=device, **kwargs)

    # -- components -----------------------------------------------------------------------------------------
    def _prepare(self, name: str, module):
        """What the engine does to a component once: masked attention, and the opt-in approximations."""
        if name == "transformer":
            install_masked_attention(module)
            if self.options.step_cache_threshold is not None:
                enable_step_cache(module, self.options.step_cache_threshold)
        return module if self.offload else module.to(self.device)

    def _low_precision(self):
        """Approximate: matmuls of the decoder and VAE in bf16 under autocast, weights and norms kept in fp32
        (converting whole modules is slower on CPUs: norms and casts in bf16 cost more than they save)."""
        enabled = self.options.decoder_dtype == "bfloat16"
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=enabled)

    @contextlib.contextmanager
    def _using(self, *names: str):
        """The named heavy components: kept ones as they are, offloaded ones moved to the device for this stage
        and back to host memory after it, or (sequential loading) read from the model directory and released."""
        if self.offload:
            modules = tuple(getattr(self.pipe, name).to(self.device) for name in names)
            try:
                yield modules
            finally:
                for module in modules:
                    module.to(OFFLOAD_DEVICE)
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()
            return
        if not self.model.sequential:
            yield tuple(getattr(self.pipe, name) for name in names)
            return
        path = self.model.path
        assert path is not None  # sequential models are always loaded from a directory
        modules = tuple(self._prepare(n, load_component(path, n, self.model.dtype)) for n in names)
        try:
            yield modules
        finally:
            del modules
            gc.collect()

    # -- properties -----------------------------------------------------------------------------------------
    @property
    def model_id(self) -> str:
        return self.model.model_id

    @property
    def limits(self):
        return self.model.limits

    @property
    def dtype(self) -> torch.dtype:
        return self.model.dtype

    # -- validation -----------------------------------------------------------------------------------------
    def _check_prompt(self, prompt) -> str:
        if not isinstance(prompt, str):
            raise InputError(f"prompt must be a string, got {type(prompt).__name__}")
        if not prompt.strip():
            raise InputError("prompt is empty")
        check_prompt_length(prompt, MAX_PROMPT_CHARS)
        return prompt

    def _sampling(self, steps, guidance, seed, num_images) -> tuple[int, float, int, int]:
        steps = self.model.default_steps if steps is None else steps
        guidance = self.model.default_guidance if guidance is None else guidance
        if not isinstance(steps, int) or not 1 <= steps <= MAX_STEPS:
            raise InputError(f"steps must be an integer in 1..{MAX_STEPS}, got {steps!r}")
        if not isinstance(guidance, (int, float)) or not 0.0 <= guidance <= MAX_GUIDANCE:
            raise InputError(f"guidance must be a number in 0..{MAX_GUIDANCE}, got {guidance!r}")
        if not isinstance(seed, int) or not 0 <= seed < 2**63:
            raise InputError(f"seed must be a non-negative integer, got {seed!r}")
        if not isinstance(num_images, int) or not 1 <= num_images <= MAX_IMAGES:
            raise InputError(f"num_images must be an integer in 1..{MAX_IMAGES}, got {num_images!r}")
        return steps, float(guidance), seed, num_images

    def _size(self, width, height, reference_size: tuple[int, int] | None = None) -> tuple[int, int]:
        """The size rule of every entry point (`glmimage.models.sizes.resolve_size`): both sides or neither;
        neither means the first reference's size snapped to a valid one (edits), else the model's default."""
        return resolve_size(self.limits, width=width, height=height, reference_size=reference_size)

    def _references(self, images) -> list[Image.Image]:
        if images is None or isinstance(images, (str, bytes, Image.Image)):
            images = [] if images is None else [images]
        images = list(images)
        check_reference_count(len(images), MAX_REFERENCES)
        return [fit_reference(load_reference(img, f"reference {i + 1}"), self.limits) for i, img in enumerate(images)]

    # -- planner --------------------------------------------------------------------------------------------
    def plan(self, prompt: str, width: int | None = None, height: int | None = None, seed: int = 0,
             images=None, progress: bool = False, copy_bias: float | None = None) -> Plan:
        """Run the planner only. With `images`, the plan is an edit plan conditioned on those references, sampled
        with the model's edit settings; `copy_bias` (nats) overrides its bias towards the first reference's codes
        (`planner.ReferenceCopyLogitsProcessor`; 0 = none)."""
        prompt = self._check_prompt(prompt)
        self._sampling(None, None, seed, 1)
        refs = self._references(images) if images is not None else None
        sampling = dict(self.model.edit_sampling) if refs else None
        if copy_bias is not None:
            if not isinstance(copy_bias, (int, float)) or not 0 <= copy_bias <= MAX_COPY_BIAS:
                raise InputError(f"copy_bias must be a number in 0..{MAX_COPY_BIAS}, got {copy_bias!r}")
            if sampling is not None:  # an edit (refs)
                sampling["copy_bias"] = float(copy_bias)
        width, height = self._size(width, height, refs[0].size if refs else None)
        with self._lock, torch_threads(self.options.num_threads), self._using("vision_language_encoder") as (planner,):
            return make_plan(planner, self.pipe.processor, prompt, width, height, seed, references=refs,
                             model_id=self.model_id, progress=progress, sampler=self.options.planner,
                             compiled=self._planner_step, sampling=sampling)

    def plan_many(self, prompts: list[str], width: int | None = None, height: int | None = None,
                  seeds: list[int] | None = None, progress: bool = False) -> list[Plan]:
        """Text-to-image plans of several prompts, planned together in batches of up to `max_batch` (the planner
        reads its weights once per token for the whole batch). Plan i equals `plan(prompts[i], seed=seeds[i])`."""
        prompts = [self._check_prompt(p) for p in prompts]
        seeds = list(range(len(prompts))) if seeds is None else list(seeds)
        if len(seeds) != len(prompts):
            raise InputError(f"{len(prompts)} prompts need {len(prompts)} seeds, got {len(seeds)}")
        for seed in seeds:
            self._sampling(None, None, seed, 1)
        width, height = self._size(width, height)
        if len(prompts) == 1 or self.options.planner != "fast" or not supports_fast_sampling(
                self.pipe.vision_language_encoder.generation_config):
            return [self.plan(p, width, height, s, progress=progress) for p, s in zip(prompts, seeds)]
        plans = []
        with self._lock, torch_threads(self.options.num_threads), self._using("vision_language_encoder") as (planner,):
            for start in range(0, len(prompts), self.max_batch):
                chunk = slice(start, start + self.max_batch)
                plans += make_plans(planner, self.pipe.processor, prompts[chunk], width, height, seeds[chunk],
                                    model_id=self.model_id, progress=progress)
        return plans

    # -- decoder --------------------------------------------------------------------------------------------
    def decode(self, plans: Plan | list[Plan], seed: int = 0, steps: int | None = None,
               guidance: float | None = None, num_images: int = 1, progress: bool = False,
               output_type: str = "pil", keep: KeepConfig | bool | None = None) -> GenerationResult:
        """Render plans. Image k (plans in order, `num_images` each) uses latent seed `seed + k`.
        `output_type="np"` returns float arrays in [0, 1] (H, W, 3) instead of PIL images, before 8-bit rounding.
        `keep`: edits keep the first reference wherever their plan leaves it unchanged (`engine.keep`): a
        KeepConfig, True (its defaults), False (never), None (the model's setting, `edit_keep`)."""
        if output_type not in ("pil", "np"):
            raise InputError(f"output_type must be 'pil' or 'np', got {output_type!r}")
        keep = self._keep(keep)
        plans = [plans] if isinstance(plans, Plan) else list(plans)
        if not plans:
            raise InputError("decode needs at least one plan")
        steps, guidance, seed, num_images = self._sampling(steps, guidance, seed, num_images)
        jobs = [(plan, seed + k * num_images + i) for k, plan in enumerate(plans) for i in range(num_images)]
        timings = {"planner": sum(p.planner_seconds for p in plans), "decoder": 0.0, "vae": 0.0}
        images, metadata = [], []
        with self._lock, torch_threads(self.options.num_threads):
            for group in _batches(jobs, self.max_batch):
                imgs, kept, t_dec, t_vae = self._decode_batch(group, steps, guidance, progress, output_type, keep)
                timings["decoder"] += t_dec
                timings["vae"] += t_vae
                for (plan, s), img, share in zip(group, imgs, kept):
                    images.append(img)
                    record = self._metadata(plan, s, steps, guidance, t_dec / len(group), t_vae / len(group))
                    if keep is not None and plan.is_edit:
                        record["kept_share"] = round(share, 4)  # of the planner grid's cells
                    metadata.append(record)
        timings["total"] = timings["planner"] + timings["decoder"] + timings["vae"]
        return GenerationResult(images=images, metadata=metadata, plans=plans, timings=timings)

    def _decode_batch(self, group: list[tuple[Plan, int]], steps: int, guidance: float, progress: bool,
                      output_type: str, keep: KeepConfig | None):
        pipe, dtype, device = self.pipe, self.dtype, self.device
        plans = [p for p, _ in group]
        start = time.perf_counter()
        # 1. Glyph embeddings, once per distinct prompt
        with self._using("text_encoder") as (text_encoder,):
            cache: dict[str, torch.Tensor] = {}
            for p in plans:
                if p.prompt not in cache:
                    texts = extract_glyph_texts(p.prompt)
                    cache[p.prompt] = encode_glyph_text(texts, pipe.tokenizer, text_encoder).to(dtype)
            glyphs = [cache[p.prompt] for p in plans]
            empty = encode_glyph_text([], pipe.tokenizer, text_encoder).to(dtype)
        # The VAE encoder joins the DiT only when references need encoding (a second load when sequential).
        with self._using("transformer", *(("vae",) if plans[0].is_edit else ())) as (transformer, *vae):
            # 2. Reference keys/values, once per distinct plan
            unique = list({id(p): p for p in plans}.values())
            with self._step_cache_context(transformer, "references"):
                kv_cache = (write_reference_cache(transformer, vae[0], pipe.image_processor, unique, dtype)
                            if vae else None)
            rows = torch.tensor([unique.index(p) for p in plans]) if kv_cache is not None else None
            kept = (keep_plan(plans, vae[0], pipe.image_processor, keep, pipe.vae_scale_factor, device, dtype)
                    if vae and keep is not None else None)
            # 3. Noise and prior codes
            latents = initial_latents(plans, [s for _, s in group], transformer.config.in_channels,
                                      pipe.vae_scale_factor, device, dtype)
            prior = torch.stack([p.upsampled_target() for p in plans]).to(device)
            # 4. Denoise with a private scheduler (it keeps a step index)
            scheduler = copy.deepcopy(pipe.scheduler)
            with self._step_cache_context(transformer, "decode"), self._low_precision():
                latents = denoise(transformer, scheduler, latents, prior, glyphs, empty, guidance, steps,
                                  image_size=(plans[0].height, plans[0].width), kv_cache=kv_cache,
                                  reference_rows=rows, progress=progress,
                                  split_cfg=self.options.split_cfg, forward=self._decoder_forward,
                                  glyph_multiple=COMPILED_GLYPH_BUCKET if self.options.compile else 1, keep=kept)
            if self.options.step_cache_threshold is not None:
                transformer._reset_stateful_cache()  # the next batch starts from a full forward
            del kv_cache
        t_dec = time.perf_counter() - start
        # 5. VAE decode
        start = time.perf_counter()
        with torch.no_grad(), self._using("vae") as (vae,), self._low_precision():
            mean, std = vae_stats(vae, device, vae.dtype)
            decode = vae.decode if self._vae_decode is None else self._vae_decode
            pixels = decode(latents.to(vae.dtype) * std + mean, return_dict=False)[0]
        if kept is not None:
            pixels = kept.blend_pixels(pixels.float())
        images = list(pipe.image_processor.postprocess(pixels.float(), output_type=output_type))
        shares = kept.shares if kept is not None else [0.0] * len(plans)
        return images, shares, t_dec, time.perf_counter() - start

    def _keep(self, keep) -> KeepConfig | None:
        if keep is None:
            return self.edit_keep
        if isinstance(keep, bool):
            return KeepConfig() if keep else None
        if not isinstance(keep, KeepConfig):
            raise InputError(f"keep must be a KeepConfig, a bool or None, got {type(keep).__name__}")
        return keep

    def _step_cache_context(self, transformer, name: str):
        """First Block Cache keeps its state per named context; without the option, nothing to do."""
        if self.options.step_cache_threshold is None:
            return contextlib.nullcontext()
        return transformer.cache_context(name)

    def _metadata(self, plan: Plan, seed: int, steps: int, guidance: float, t_dec: float, t_vae: float) -> dict:
        return {
            "prompt": plan.prompt, "mode": "image-to-image" if plan.is_edit else "text-to-image",
            "width": plan.width, "height": plan.height, "seed": seed, "plan_seed": plan.seed, "steps": steps,
            "guidance": guidance, "model_id": self.model_id, "plan_hash": plan.hash,
            "num_references": len(plan.reference_tokens), "glyph_texts": extract_glyph_texts(plan.prompt),
            "timings": {"planner": round(plan.planner_seconds, 4), "decoder": round(t_dec, 4), "vae": round(t_vae, 4)},
            "glmimage_version": glmimage.__version__,
        }

    # -- one call -------------------------------------------------------------------------------------------
    def generate(self, prompt: str | list[str], width: int | None = None, height: int | None = None,
                 steps: int | None = None, guidance: float | None = None, seed: int = 0, num_images: int = 1,
                 progress: bool = False, output_type: str = "pil") -> GenerationResult:
        """Text-to-image. Prompt k is planned with seed `seed + k * num_images` and its images decoded with
        latent seeds counting up from there, so each image can be reproduced alone."""
        prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        if not prompts:
            raise InputError("no prompt given")
        steps, guidance, seed, num_images = self._sampling(steps, guidance, seed, num_images)
        width, height = self._size(width, height)
        plans = self.plan_many(prompts, width, height, plan_seeds(seed, len(prompts), num_images), progress=progress)
        return self.decode(plans, seed=seed, steps=steps, guidance=guidance, num_images=num_images, progress=progress,
                           output_type=output_type)

    def edit(self, prompt: str, images, width: int | None = None, height: int | None = None,
             steps: int | None = None, guidance: float | None = None, seed: int = 0, num_images: int = 1,
             progress: bool = False, output_type: str = "pil", keep: KeepConfig | bool | None = None,
             copy_bias: float | None = None, keep_mask=None) -> GenerationResult:
        """Image-to-image with 1 to 4 references (editing, style transfer, identity, multi-subject).
        The output size follows the first reference unless given. `keep` and `copy_bias` (None: the model's
        settings): see `decode` and `plan`. `keep_mask`: (H, W), non-zero where the output keeps the first
        reference exactly (`KeepConfig.mask`; `keep.mask_from_alpha` reads an OpenAI edit mask); not with keep=False."""
        if keep_mask is not None:
            if keep is False:
                raise InputError("keep=False and a keep_mask contradict each other")
            keep = masked(self._keep(keep), keep_mask)
        steps, guidance, seed, num_images = self._sampling(steps, guidance, seed, num_images)
        plan = self.plan(prompt, width, height, seed, images=images, progress=progress, copy_bias=copy_bias)
        return self.decode(plan, seed=seed, steps=steps, guidance=guidance, num_images=num_images, progress=progress,
                           output_type=output_type, keep=keep)


def _batches(jobs: list[tuple[Plan, int]], max_batch: int):
    """Consecutive jobs that can share one decoder batch: same size, and same reference geometry for edits."""
    def key(plan: Plan):
        return (plan.width, plan.height, tuple(plan.reference_grids), plan.is_edit)

    group: list = []
    for job in jobs:
        if group and (key(job[0]) != key(group[0][0]) or len(group) >= max_batch):
            yield group
            group = []
        group.append(job)
    if group:
        yield group
