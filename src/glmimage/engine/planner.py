"""The AR planner: prompt (+ reference images as semantic-VQ tokens) -> preview grid -> target grid.

Inputs are built by the library's `GlmImageProcessor` chat template exactly as the reference pipeline builds them,
and decoding uses `GlmImageForConditionalGeneration.generate`, so positions (3-D MRoPE) are the library's. Two fixes
over the reference: reference images are tokenized per image (the reference concatenates their feature maps first
and crashes), and sampling is restricted to VQ codes so the plan can't end early with an image-end token.
"""

from __future__ import annotations

import copy
import time

import torch
from PIL import Image
from tqdm.auto import tqdm
from transformers import LogitsProcessor, LogitsProcessorList

from glmimage.engine.fast_planner import sample_tokens, sampling_processors, supports_fast_sampling
from glmimage.engine.plan import Plan

VQ_PATCH = 16  # vision patch (preset patch_size); the planner's grid is side/32 because the processor halves first


class CodesOnlyLogitsProcessor(LogitsProcessor):
    """Mask every id >= codebook_size (image start/end and beyond) while the grids are being written."""

    scores_only = True  # reads only the scores: the compiled planner step may apply it in its graph

    def __init__(self, codebook_size: int):
        self.codebook_size = codebook_size

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        if scores.shape[-1] > self.codebook_size:
            scores = scores.clone()
            scores[:, self.codebook_size :] = float("-inf")
        return scores


class ReferenceCopyLogitsProcessor(LogitsProcessor):
    """Edit plans: `bias` added to the logit of the first reference's code at the cell being written, so a cell keeps
    the reference unless the planner wants a change by more than `bias` nats (an edit changes few cells; a weak
    planner left alone redraws many it should keep)."""

    def __init__(self, codes: torch.Tensor, prompt_len: int, bias: float):
        self.codes, self.prompt_len, self.bias = codes, prompt_len, bias

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        cell = input_ids.shape[-1] - self.prompt_len
        if cell >= self.codes.numel():
            return scores
        scores = scores.clone()
        scores[:, self.codes[cell]] += self.bias
        return scores


class ProgressLogitsProcessor(LogitsProcessor):
    """Ticks a progress bar once per generated token (changes no score)."""

    tick_only = True  # reads nothing: the compiled planner step ticks it outside its graph

    def __init__(self, bar: tqdm):
        self.bar = bar

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        self.bar.update(1)
        return scores


def target_grids(height: int, width: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """(target, preview) grids: target at 1/32 of the pixels, preview ~256 tokens of the same aspect ratio."""
    h, w = height // 32, width // 32
    ratio = h / w
    return (h, w), (int(ratio**0.5 * 16), int((1 / ratio) ** 0.5 * 16))


@torch.no_grad()
def reference_tokens(planner, pixel_values: torch.Tensor, grids: torch.Tensor) -> list[torch.Tensor]:
    """Semantic-VQ codes of each reference image, one (h*w,) tensor per image."""
    features = planner.get_image_features(pixel_values, grids).pooler_output  # list of (C, h, w)
    # Pass the per-image list: the library quantizes each (C, h, w) map on its own.
    codes = planner.get_image_tokens(list(features), grids)
    sizes = grids.prod(dim=-1).tolist()
    return list(torch.split(codes, sizes))


def vq_inputs(image_processor, images: list[Image.Image], grid: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Packed ViT patches of images resized so their planner grid is `grid` (h, w): resize to grid*16 pixels and
    skip the processor's own resize; for an image whose sides are 32*grid this equals the processor's output."""
    h, w = grid
    resized = [img if img.size == (w * VQ_PATCH, h * VQ_PATCH) else
               img.resize((w * VQ_PATCH, h * VQ_PATCH), Image.Resampling.BICUBIC) for img in images]
    out = image_processor(images=resized, do_resize=False, return_tensors="pt")
    return out["pixel_values"], out["image_grid_thw"]


@torch.no_grad()
def vq_codes(planner, image_processor, images: list[Image.Image], grid: tuple[int, int]) -> torch.Tensor:
    """(B, h*w) semantic-VQ codes of images at a planner grid, with the library's quantizer."""
    pixel_values, grids = vq_inputs(image_processor, images, grid)
    model = planner.model
    features = model.get_image_features(pixel_values.to(planner.device), grids.to(planner.device)).pooler_output
    codes = model.get_image_tokens(list(features), grids)
    return codes.view(len(images), -1).cpu()


def chat_inputs(processor, contents: list[list[dict]], width: int, height: int, device) -> dict:
    """The library processor's inputs for one user turn per prompt (left-padded when there are several), as the
    reference pipeline builds them."""
    return processor.apply_chat_template(
        [[{"role": "user", "content": content}] for content in contents], tokenize=True, return_dict=True,
        return_tensors="pt", processor_kwargs={"padding": len(contents) > 1, "target_h": height, "target_w": width},
    ).to(device)


def plan_processors(planner, bar: tqdm) -> list[LogitsProcessor]:
    """Ours, before the generation config's warpers: codes only, and a progress tick per token."""
    return [CodesOnlyLogitsProcessor(planner.config.vq_config.num_embeddings), ProgressLogitsProcessor(bar)]


@torch.no_grad()
def make_plan(planner, processor, prompt: str, width: int, height: int, seed: int,
              references: list | None = None, model_id: str = "", progress: bool = False,
              sampler: str = "fast", compiled=None, sampling: dict | None = None) -> Plan:
    """Run the planner for one prompt. `references` are PIL images already resized to valid sizes.
    `compiled`: a `CompiledDecodeStep` of this planner for the fast sampler's decoding steps.
    `sampling`: generation-config fields to use instead of the planner's own (e.g. {"top_p": 0.75}), and for edits
    `copy_bias` (`ReferenceCopyLogitsProcessor`; applies when the first reference has the target's grid)."""
    start = time.perf_counter()
    device = planner.device
    is_t2i = not references
    content = [{"type": "image", "image": img} for img in references or []]
    content.append({"type": "text", "text": prompt})
    inputs = chat_inputs(processor, [content], width, height, device)

    (h, w), (ph, pw) = target_grids(height, width)
    ref_tokens, ref_grids = [], []
    if references:  # not is_t2i
        source_grids = inputs["image_grid_thw"][: len(references)]
        ref_tokens = reference_tokens(planner, inputs["pixel_values"], source_grids)
        ref_grids = [(int(g[1]), int(g[2])) for g in source_grids]
    num_new = (ph * pw + h * w) if is_t2i else h * w

    bar = tqdm(total=num_new + 1, desc="planner", unit="tok", disable=not progress, leave=False)
    leading = plan_processors(planner, bar)
    sampling = dict(sampling or {})
    copy_bias = float(sampling.pop("copy_bias", 0.0))
    if copy_bias and ref_grids and ref_grids[0] == (h, w):
        prompt_len = inputs["input_ids"].shape[-1]
        leading.insert(1, ReferenceCopyLogitsProcessor(ref_tokens[0].to(device), prompt_len, copy_bias))
    # Same RNG use as the reference (global seed set right before generate), isolated from the caller's RNG.
    config = planner.generation_config
    if sampling:
        config = copy.deepcopy(config)
        config.update(**sampling)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if sampler == "fast" and supports_fast_sampling(config):
            outputs = sample_tokens(planner, dict(inputs), num_new + 1, sampling_processors(config, leading),
                                    compiled=compiled)
        else:
            outputs = planner.generate(**inputs, generation_config=config, max_new_tokens=num_new + 1,
                                       do_sample=True, logits_processor=LogitsProcessorList(leading))
    bar.close()
    generated = outputs[0, inputs["input_ids"].shape[-1] :]
    if generated.numel() < num_new:
        raise RuntimeError(f"planner stopped after {generated.numel()} of {num_new} tokens")
    preview = generated[: ph * pw] if is_t2i else None
    target = generated[ph * pw : ph * pw + h * w] if is_t2i else generated[: h * w]
    return Plan(
        prompt=prompt, width=width, height=height, grid=(h, w), target_tokens=target.cpu(),
        preview_grid=(ph, pw) if is_t2i else None, preview_tokens=preview.cpu() if preview is not None else None,
        reference_grids=ref_grids, reference_tokens=[t.cpu() for t in ref_tokens],
        reference_images=list(references or []), seed=seed, model_id=model_id,
        planner_seconds=time.perf_counter() - start,
    )


@torch.no_grad()
def make_plans(planner, processor, prompts: list[str], width: int, height: int, seeds: list[int],
               model_id: str = "", progress: bool = False) -> list[Plan]:
    """Text-to-image plans of several prompts in one left-padded batch, as the reference batches them: each weight
    read serves every prompt. Prompt i draws from its own generator seeded `seeds[i]`, so its plan is the plan of
    `make_plan(prompts[i], seed=seeds[i])` (same tokens; the padding only changes float rounding, tested).
    Needs the fast sampler's generation settings (`supports_fast_sampling`). Runs eagerly: with the padding mask the
    compiled step was slower than this loop, and this loop faster than the prompts' plans one by one, compiled."""
    if len(prompts) != len(seeds):
        raise ValueError("one seed per prompt")
    start = time.perf_counter()
    inputs = chat_inputs(processor, [[{"type": "text", "text": prompt}] for prompt in prompts], width, height,
                         planner.device)
    (h, w), (ph, pw) = target_grids(height, width)
    num_new = ph * pw + h * w
    bar = tqdm(total=num_new + 1, desc=f"planner x{len(prompts)}", unit="tok", disable=not progress, leave=False)
    leading = plan_processors(planner, bar)
    generators = [torch.Generator(device=planner.device).manual_seed(seed) for seed in seeds]
    outputs = sample_tokens(planner, dict(inputs), num_new + 1, sampling_processors(planner.generation_config, leading),
                            generators=generators)
    bar.close()
    seconds = (time.perf_counter() - start) / len(prompts)
    prompt_len = inputs["input_ids"].shape[-1]
    plans = []
    for row, (prompt, seed) in enumerate(zip(prompts, seeds)):
        generated = outputs[row, prompt_len:]
        plans.append(Plan(
            prompt=prompt, width=width, height=height, grid=(h, w), target_tokens=generated[ph * pw : num_new].cpu(),
            preview_grid=(ph, pw), preview_tokens=generated[: ph * pw].cpu(), reference_grids=[],
            reference_tokens=[], reference_images=[], seed=seed, model_id=model_id, planner_seconds=seconds,
        ))
    return plans
