"""What the two GRPO stages share (training/grpo_decoder.py, training/grpo_planner.py): the config fields of group
rollouts, group-normalised advantages, the clipped surrogate, the policy update, deterministic renders of plans with
the engine's own decoder loop, the rewards read from the images, and the reward curves.

GRPO (group relative policy optimisation): for each prompt the policy draws a group of `group_size` samples; each
sample's advantage is its reward minus the group's mean, over the group's standard deviation (so only the ranking
within the group matters and no value model is needed); the loss is PPO's clipped surrogate
    -min(ratio * A, clip(ratio, 1 - c, 1 + c) * A),  ratio = exp(logp_new - logp_rollout),
plus `kl_weight` times a KL estimate to the frozen starting model. Each step draws fresh rollouts with the current
weights and then makes `updates_per_step` optimiser updates on them (the ratio is 1 at the first, the clip acts from
the second on). The learning-rate schedule and the EMA advance once per step.

Rewards (`image_reward`), all in [0, 1], read from the rendered image against the world's ground truth:
- `ned`: CVTG-2K NED of the prompt's quoted texts against what the OCR (rapidocr) reads: a word half right earns half,
  so a model that reads 0 words exactly still gets signal;
- `background`: 1 when the image's frame has the prompt's background colour (detector.dominant_colour), else 0;
- `objects`: share of the design's objects found with the right shape, colour and position (detector.check_objects);
- `quality`: share of pixels within the detector's colour distance of a named colour. The world's designs are flat
  areas of named colours, so blur, noise and colour casts lower it; a small weight keeps text rewards from being
  bought with mush (the "small image-quality term" of Flow-GRPO-style recipes, kept this simple on purpose);
- `colour`: 1 - mean RGB distance of the image to one named colour / the largest possible distance (a sanity reward:
  does training move the model at all).

LoRA variant (`lora_rank` > 0, the recipe for the official model on GPUs): the stage trains PEFT adapters on the
module's projections instead of all its weights (the frozen base may be bf16: `base_dtype`); the KL reference is the
same module with its adapters switched off (no second copy of a 9B planner or 7B DiT); save points write the
adapters (`<out>/adapters/<target>`, what `glmimage generate --lora` reads) and, with `merge: true`, the end writes
the merged model directory too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from glmimage.errors import InputError
from glmimage.training import common, lora

REWARD_TERMS = ("ned", "background", "objects", "quality", "colour")


@dataclass
class GrpoConfig(common.RunConfig):
    """Group rollouts and the GRPO objective. `batch_size` is the number of prompts per process and step; each
    prompt gets `group_size` samples."""

    group_size: int = 4
    num_samples: int = 0  # prompts from the first N train designs (a fresh order every epoch); 0 = endless stream
    clip_range: float = 0.2
    kl_weight: float = 0.04
    updates_per_step: int = 1
    advantage_eps: float = 1e-4  # added to the group's std (a group of equal rewards gets advantage 0)
    reward_weights: dict | None = None  # term -> weight (REWARD_TERMS); the stage's default when None
    reward_colour: str = "red"  # the `colour` term's named colour
    heldout_samples: int = 4  # validation prompts of the held-out figures, at step 0 and each save point; 0 = off
    lora_rank: int = 0  # > 0: train LoRA adapters of this rank instead of all the module's weights
    lora_alpha: float = 0.0  # LoRA scale numerator; 0 = lora_rank
    lora_modules: tuple[str, ...] = ()  # the adapted projections; () = the stage's default (lora.TARGET_MODULES)
    base_dtype: str = "float32"  # the frozen weights with LoRA (bfloat16 halves the official model's memory)
    merge: bool = False  # with LoRA: also write the merged weights as a complete model directory at the end

    def __post_init__(self) -> None:
        super().__post_init__()
        from glmimage.data.palette import PALETTE

        if self.group_size < 2:
            raise InputError(f"group_size must be >= 2 (advantages are relative to the group), got {self.group_size}")
        if self.updates_per_step < 1 or self.num_samples < 0 or self.heldout_samples < 0:
            raise InputError("updates_per_step must be >= 1, num_samples and heldout_samples >= 0")
        if not 0 < self.clip_range < 1 or self.kl_weight < 0 or self.advantage_eps <= 0:
            raise InputError("clip_range must be in (0, 1), kl_weight >= 0, advantage_eps > 0")
        weights = dict(self.reward_weights or {})
        unknown = sorted(set(weights) - set(REWARD_TERMS))
        if unknown or any(not isinstance(v, (int, float)) or v < 0 for v in weights.values()):
            raise InputError(f"reward_weights maps terms of {REWARD_TERMS} to weights >= 0, got {self.reward_weights}")
        if self.reward_weights is not None and not any(weights.values()):
            raise InputError("reward_weights gives every term weight 0")
        if self.reward_colour not in {c.name for c in PALETTE}:
            raise InputError(f"reward_colour must be a palette colour, got {self.reward_colour!r}")
        self.lora_modules = tuple(self.lora_modules)
        if self.lora_rank < 0 or self.lora_alpha < 0:
            raise InputError("lora_rank and lora_alpha must be >= 0")
        if self.base_dtype not in lora.BASE_DTYPES:
            raise InputError(f"base_dtype must be one of {sorted(lora.BASE_DTYPES)}, got {self.base_dtype!r}")
        if not self.lora_rank and (self.base_dtype != "float32" or self.merge or self.lora_modules):
            raise InputError("base_dtype, merge and lora_modules apply to LoRA runs only: set lora_rank > 0")


# -- what trains: the whole module or LoRA adapters on it -------------------------------------------------------
@dataclass
class Policy:
    """The trained component (`target`: "decoder" or "planner", updated in place in the pipeline) and, in a LoRA run,
    its PEFT wrapper."""

    target: str
    module: torch.nn.Module
    peft: object | None = None

    @property
    def lora(self) -> bool:
        return self.peft is not None

    def adapters_off(self):
        """Context in which the module runs without its adapters: the frozen start, LoRA's KL reference."""
        return self.peft.disable_adapter()  # type: ignore[attr-defined]


def load_pipeline(cfg: GrpoConfig):
    """The starting pipeline; a LoRA run loads the frozen weights in `base_dtype`."""
    return common.load_pipeline(cfg, lora.BASE_DTYPES[cfg.base_dtype])


def make_policy(pipe, cfg: GrpoConfig, target: str) -> Policy:
    """The stage's trained component, PEFT-wrapped in place in a LoRA run (adapters drawn from the run's seed, so
    every process and every resumed run starts from the same ones)."""
    module = getattr(pipe, lora.PIPE_ATTR[target])
    if not cfg.lora_rank:
        return Policy(target, module)
    torch.manual_seed(common.derived_seed(cfg.seed, "grpo-lora-adapters"))
    peft = lora.wrap_module(module, cfg.lora_rank, cfg.lora_alpha or float(cfg.lora_rank), 0.0,
                            cfg.lora_modules or lora.TARGET_MODULES[target])
    return Policy(target, module, peft)


class AdaptersOff(torch.nn.Module):
    """A LoRA policy's module called with its adapters switched off: the frozen starting model, without a copy."""

    def __init__(self, policy: Policy):
        super().__init__()
        self.policy = policy

    def forward(self, *args, **kwargs):
        with self.policy.adapters_off():
            return self.policy.module(*args, **kwargs)


def kl_reference(policy: Policy, kl_weight: float):
    """What the KL compares against: None without KL, the module with adapters off (LoRA), else a frozen copy."""
    if kl_weight <= 0:
        return None
    return AdaptersOff(policy) if policy.lora else frozen_copy(policy.module)


# -- the objective ------------------------------------------------------------------------------------------
def group_advantages(rewards: torch.Tensor, eps: float) -> torch.Tensor:
    """(P, G) rewards -> (P, G) advantages: standardised within each prompt's group."""
    mean = rewards.mean(dim=1, keepdim=True)
    std = rewards.std(dim=1, keepdim=True, unbiased=False)
    return (rewards - mean) / (std + eps)


def clipped_surrogate(logp_new: torch.Tensor, logp_old: torch.Tensor, advantages: torch.Tensor,
                      clip_range: float) -> tuple[torch.Tensor, dict]:
    """PPO's clipped objective as a loss (elementwise over matching shapes, averaged), with the share clipped."""
    ratio = torch.exp(logp_new - logp_old)
    unclipped = -advantages * ratio
    clipped = -advantages * torch.clamp(ratio, 1 - clip_range, 1 + clip_range)
    loss = torch.maximum(unclipped, clipped).mean()
    clip_share = ((ratio - 1).abs() > clip_range).float().mean().item()
    return loss, {"clip_share": clip_share, "ratio": ratio.detach().mean().item()}


def policy_update(run: common.Run, losses, opt, params) -> tuple[float, float]:
    """One optimiser update from the gradients of an iterable of loss terms (each backpropagated as it comes, so the
    graphs of several rollout steps are never held at once). Returns (the summed loss, the gradient norm before
    clipping)."""
    params = [p for p in params if p.requires_grad]
    opt.zero_grad(set_to_none=True)
    total = 0.0
    for loss in losses:
        run.accelerator.backward(loss)
        total += loss.item()
    norm = 0.0
    if run.cfg.grad_clip:
        norm = float(run.accelerator.clip_grad_norm_(params, run.cfg.grad_clip))
    opt.step()
    opt.zero_grad(set_to_none=True)
    return total, norm


def finish_updates(sched, ema, params) -> None:
    """After a step's updates: the schedule and the EMA advance once."""
    sched.step()
    if ema is not None:
        ema.step([p for p in params if p.requires_grad])


def frozen_copy(module: torch.nn.Module) -> torch.nn.Module:
    """The KL reference: a frozen copy of the starting weights."""
    import copy

    ref = copy.deepcopy(module)
    return ref.requires_grad_(False).eval()


def prompt_indices(run: common.Run, step: int) -> list[int]:
    """Train-design indices of this process's prompts at `step` (the stream as the other stages address it)."""
    from glmimage.training.data import dataset_index

    return [dataset_index(p, run.cfg.num_samples, run.cfg.seed) for p in run.positions(step)]


# -- the run's save points -------------------------------------------------------------------------------------
def save_weights(run: common.Run, pipe, ema, policy: Policy) -> Path:
    """The trained weights (EMA when there is one): the complete model directory, or a LoRA run's adapters."""
    if not policy.lora:
        return common.export_with_ema(run, pipe, ema, policy.module)
    lora.save_ema_adapters(run, {policy.target: policy.peft}, ema, policy.module)
    return run.out / lora.ADAPTERS_DIR


def save_hooks(run: common.Run, pipe, ema, policy: Policy, report):
    """(held_out(step), save_point(step)) of a GRPO run: the held-out figures (`report()`, with the EMA weights when
    there are any) logged at `step`; a save point writes the weights (`save_weights`), logs the figures and redraws
    the reward curves."""

    def held_out(step: int) -> dict:
        if not run.cfg.heldout_samples:
            return {}
        with common.with_ema_weights(ema, policy.module.parameters()):
            figures = report()
        common.log_scalars(run, step, figures)
        return figures

    def save_point(step: int) -> None:
        save_weights(run, pipe, ema, policy)
        held_out(step)
        plot_rewards(run)

    return held_out, save_point


def finish_run(run: common.Run, pipe, ema, policy: Policy, held_out) -> Path:
    """The end of a GRPO run: the weights (a LoRA run with `merge` also writes the merged model directory), the last
    held-out figures (also the run's metrics), the curves. Returns the model directory, or the adapters folder."""
    path = save_weights(run, pipe, ema, policy)
    metrics = held_out(run.cfg.steps)
    if policy.lora and run.cfg.merge:
        with common.with_ema_weights(ema, policy.module.parameters()):
            policy.peft.merge_and_unload()  # type: ignore[attr-defined]  # in place: the pipeline holds merged weights
        path = common.export_model(run, pipe)
    plot_rewards(run)
    common.record_metrics(run, metrics if run.main else {})
    return path


# -- rendering ------------------------------------------------------------------------------------------------
def glyph_inputs(pipe, prompts: list[str], dtype) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Each prompt's glyph embedding and that of "" (the unguided branch), as the engine computes them."""
    from glmimage.engine.glyph_text import extract_glyph_texts
    from glmimage.engine.glyphs import encode_glyph_text

    with torch.no_grad():
        cache: dict[str, torch.Tensor] = {}
        for p in prompts:
            if p not in cache:
                cache[p] = encode_glyph_text(extract_glyph_texts(p), pipe.tokenizer, pipe.text_encoder).to(dtype)
        empty = encode_glyph_text([], pipe.tokenizer, pipe.text_encoder).to(dtype)
    return [cache[p] for p in prompts], empty


@torch.no_grad()
def decode_latents(pipe, latents: torch.Tensor) -> list[Image.Image]:
    from glmimage.engine.decoder import vae_stats

    vae = pipe.vae
    mean, std = vae_stats(vae, latents.device, vae.dtype)
    pixels = vae.decode(latents.to(vae.dtype) * std + mean, return_dict=False)[0]
    return list(pipe.image_processor.postprocess(pixels.float(), output_type="pil"))


@torch.no_grad()
def render_plans(pipe, transformer, plans: list, seeds: list[int], steps: int, guidance: float) -> list[Image.Image]:
    """Text-to-image plans of one size rendered with the engine's deterministic loop (`engine.decoder.denoise`),
    image i from latent seed seeds[i], as `Engine.decode` renders them."""
    import copy

    from glmimage.engine.decoder import denoise, initial_latents

    device, dtype = transformer.device, transformer.dtype
    glyphs, empty = glyph_inputs(pipe, [p.prompt for p in plans], dtype)
    latents = initial_latents(plans, seeds, transformer.config.in_channels, pipe.vae_scale_factor, device, dtype)
    prior = torch.stack([p.upsampled_target() for p in plans]).to(device)
    latents = denoise(transformer, copy.deepcopy(pipe.scheduler), latents, prior, glyphs, empty, guidance, steps,
                      image_size=(plans[0].height, plans[0].width))
    return decode_latents(pipe, latents)


# -- rewards -------------------------------------------------------------------------------------------------
def reward_weights(cfg, default: dict[str, float]) -> dict[str, float]:
    return {k: float(v) for k, v in (cfg.reward_weights if cfg.reward_weights is not None else default).items() if v}


def reward_terms(image: Image.Image, sample, terms, colour: str = "red", ocr: bool = True) -> dict[str, float]:
    """The requested terms (REWARD_TERMS) of one image against its world sample; a term the sample can't judge
    (no quoted text, no background, no objects) is left out."""
    from glmimage.evaluation.detector import check_objects, dominant_colour, label_image

    image = image.convert("RGB")
    if image.size != (sample.width, sample.height):
        image = image.resize((sample.width, sample.height), Image.Resampling.BICUBIC)
    out = {}
    texts = [t.text for t in sample.texts]
    if "ned" in terms and texts and ocr:
        from glmimage.evaluation.ocr import read_text
        from glmimage.evaluation.text_metrics import normalized_edit_similarity, words_of

        lines = [line.text for line in read_text(image)]
        out["ned"] = normalized_edit_similarity(words_of(texts), words_of(lines))
    background = sample.layout.get("background")
    if "background" in terms and background is not None:
        out["background"] = float(dominant_colour(image) == background)
    if "objects" in terms and sample.objects:
        checks = check_objects(image, sample.objects)
        out["objects"] = sum(c.correct for c in checks) / len(checks)
    if "quality" in terms:
        out["quality"] = float((label_image(image) >= 0).mean())
    if "colour" in terms:
        out["colour"] = colour_closeness(image, colour)
    return out


def colour_closeness(image: Image.Image, colour: str) -> float:
    from glmimage.data.palette import PALETTE

    rgb = np.array(next(c.rgb for c in PALETTE if c.name == colour), dtype=np.float32)
    pixels = np.asarray(image.convert("RGB"), dtype=np.float32)
    return float(1 - np.linalg.norm(pixels - rgb, axis=-1).mean() / (255 * math.sqrt(3)))


def score(images: list[Image.Image], samples: list, cfg, default: dict[str, float]) -> tuple[torch.Tensor, list[dict]]:
    """Each image's reward (the weighted terms of the stage's reward) and its terms, against its sample."""
    weights = reward_weights(cfg, default)
    terms = [reward_terms(img, s, weights, cfg.reward_colour) for img, s in zip(images, samples)]
    return torch.tensor([combine(t, weights) for t in terms]), terms


def heldout_figures(images: list[Image.Image], samples: list, cfg, default: dict[str, float]) -> dict[str, float]:
    """The held-out report of renders of validation designs: the reward as trained (`heldout_reward`) and every
    term of REWARD_TERMS (`heldout_<term>`), those the reward weighs and those it never saw, so a reward bought at
    the expense of the rest shows."""
    weights = reward_weights(cfg, default)
    terms = [reward_terms(img, s, REWARD_TERMS, cfg.reward_colour) for img, s in zip(images, samples)]
    rewards = [combine(t, weights) for t in terms]
    return {"heldout_reward": sum(rewards) / len(rewards), **mean_terms(terms, "heldout_")}


def combine(terms: dict[str, float], weights: dict[str, float]) -> float:
    """Weighted mean of the terms present (weights renormalised over them); 0 when none applies."""
    present = {k: w for k, w in weights.items() if k in terms}
    total = sum(present.values())
    return sum(terms[k] * w for k, w in present.items()) / total if total else 0.0


def mean_terms(rows: list[dict[str, float]], prefix: str) -> dict[str, float]:
    """Per-term means over the rows that have the term, named prefix + term."""
    out = {}
    for name in sorted({k for r in rows for k in r}):
        values = [r[name] for r in rows if name in r]
        out[f"{prefix}{name}"] = sum(values) / len(values)
    return out


# -- curves ---------------------------------------------------------------------------------------------------
def plot_rewards(run: common.Run) -> None:
    """rewards.png beside loss.png, three panels against the step: the training rewards (each prompt's group differs,
    so raw thin and a moving average thick), the held-out figures (markers at step 0 and each save point) and the
    KL to the start."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from glmimage.training.logs import moving_average

    if not run.main:
        return
    series: dict[str, list[tuple[int, float]]] = {}
    for step, name, value in common.read_log(run.log_path()):
        if name.startswith(("reward", "kl", "heldout_")):
            series.setdefault(name, []).append((step, value))
    if not series:
        return
    fig, (rewards, held, kl) = plt.subplots(3, 1, figsize=(7, 8), sharex=True)
    for name, points in sorted(series.items()):
        steps, values = [s for s, _ in points], [v for _, v in points]
        if name.startswith("heldout_"):
            held.plot(steps, values, marker="o", markersize=3, linewidth=1.2, label=name.removeprefix("heldout_"))
            continue
        ax = kl if name.startswith("kl") else rewards
        line = ax.plot(steps, values, alpha=0.25, linewidth=0.8)[0]
        ax.plot(steps, moving_average(values), color=line.get_color(), linewidth=1.8, label=name)
    rewards.set_ylabel("training reward")
    held.set_ylabel("held-out figures")
    kl.set_ylabel("KL to the start")
    kl.set_xlabel("step")
    for ax in (rewards, held, kl):
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=7)
    rewards.set_title(f"{run.stage} ({run.cfg.out})")
    fig.tight_layout()
    fig.savefig(run.out / "rewards.png", dpi=100)
    plt.close(fig)
