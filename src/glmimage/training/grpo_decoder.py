"""Decoder GRPO (Flow-GRPO style): the DiT rewarded for how it renders, above all text that OCR reads back.

The engine's sampler is deterministic (Euler steps of the flow ODE), so a sample has no log-probability. Rollouts
use its stochastic twin, `sde_step` (Flow-GRPO, Liu et al. 2025): at the engine's own noise levels (`flow_timesteps`:
same timesteps, same resolution shift), the step from sigma to sigma' < sigma is the Gaussian
    x' ~ N(mean, std^2),  std = eta * sqrt(sigma / (1 - sigma)) * sqrt(sigma - sigma'),
    mean = x (1 - std_t^2 (sigma - sigma') / (2 sigma)) - v (1 + std_t^2 (1 - sigma) / (2 sigma)) (sigma - sigma')
(std_t = eta * sqrt(sigma / (1 - sigma)), with sigma = 1 read as the next level, as Flow-GRPO does), which has the
ODE's marginals; with eta = 0 the mean is the engine's Euler step x + (sigma' - sigma) v. A step's log-probability is
the Gaussian's, averaged over the latent's elements (`step_log_prob`). Guidance is applied as the engine applies it
(one batched forward of guided and unguided rows), in rollouts and in the update alike.

Each step: `batch_size` train prompts, each with one plan (the design's ground-truth codes, or the frozen planner's
plan with `plan_source: sampled`), fixed for its group so the decoder alone is credited; `group_size` SDE rollouts per
plan from different noise; rewards from the decoded images (training/grpo.py: OCR NED of the quoted texts plus a small
quality term by default); group-normalised advantages; the clipped ratio on every rollout step; KL to the frozen
starting decoder, Flow-GRPO's closed form for two Gaussians of the same std: |mean - mean_ref|^2 / (2 std^2).
Only the DiT trains (the glyph encoder, planner and VAE stay as they are). Inference is untouched: the engine keeps
its deterministic sampler, and the held-out figures are measured with it.

    glmimage train grpo-decoder --config configs/train/grpo-decoder-nano.yaml   # init: a trained model directory
    # LoRA on the official model (GPUs): configs/train/grpo-decoder-official.yaml, see docs/training.md
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from glmimage.engine.decoder import flow_timesteps, forward_arguments, guided_velocity
from glmimage.engine.plan import Plan
from glmimage.engine.planner import target_grids, vq_codes
from glmimage.errors import InputError
from glmimage.training import common, grpo

PLAN_SOURCES = ("ground-truth", "sampled")
DEFAULT_REWARD = {"ned": 1.0, "quality": 0.1}


@dataclass
class DecoderGrpoConfig(grpo.GrpoConfig):
    eta: float = 0.7  # SDE noise level (0 = the engine's ODE: no exploration, no log-probabilities)
    rollout_steps: int = 10  # sampler steps of a rollout (every step is trained)
    guidance: float = 1.5  # CFG of rollouts and updates (1 = off)
    plan_source: str = "ground-truth"
    clip_range: float = 1e-4  # per-step ratios of whole latents move fast: Flow-GRPO's clip
    eval_steps: int = 10  # deterministic sampler steps of the held-out figures
    eval_guidance: float = 1.5

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.eta > 0:
            raise InputError(f"eta must be > 0 (rollouts need a noise level), got {self.eta}")
        if self.rollout_steps < 1 or self.eval_steps < 1 or self.guidance < 0 or self.eval_guidance < 0:
            raise InputError("rollout_steps and eval_steps must be >= 1, guidance and eval_guidance >= 0")
        if self.plan_source not in PLAN_SOURCES:
            raise InputError(f"plan_source must be one of {PLAN_SOURCES}, got {self.plan_source!r}")


# -- the stochastic sampler ----------------------------------------------------------------------------------
def step_std(sigma: float, sigma_next: float, sigma_max: float, eta: float) -> tuple[float, float]:
    """(std_t, std of the step): Flow-GRPO's noise schedule at level sigma (sigma = 1 uses `sigma_max`, the first
    level below 1, so the first step stays finite)."""
    std_t = eta * math.sqrt(sigma / (1 - (sigma_max if sigma >= 1 else sigma)))
    return std_t, std_t * math.sqrt(sigma - sigma_next)


def sde_mean(velocity: torch.Tensor, latents: torch.Tensor, sigma: float, sigma_next: float,
             std_t: float) -> torch.Tensor:
    """The mean of the step's Gaussian (eta = 0: the Euler step latents + (sigma_next - sigma) * velocity)."""
    dt = sigma_next - sigma
    return (latents.float() * (1 + std_t**2 / (2 * sigma) * dt)
            + velocity.float() * (1 + std_t**2 * (1 - sigma) / (2 * sigma)) * dt)


def step_log_prob(sample: torch.Tensor, mean: torch.Tensor, std: float) -> torch.Tensor:
    """(B,) log-density of `sample` under N(mean, std^2), averaged over each row's elements."""
    logp = -((sample.detach().float() - mean) ** 2) / (2 * std**2) - math.log(std) - 0.5 * math.log(2 * math.pi)
    return logp.mean(dim=tuple(range(1, logp.ndim)))


def sde_step(velocity: torch.Tensor, latents: torch.Tensor, sigma: float, sigma_next: float, sigma_max: float,
             eta: float, generator: torch.Generator | None = None, sample: torch.Tensor | None = None):
    """One stochastic step: (next latents, their log-probability (B,), mean, std). `sample`: score a given next
    latent instead of drawing one. With eta = 0 the step is the mean (the engine's Euler step) and the
    log-probability is None."""
    std_t, std = step_std(sigma, sigma_next, sigma_max, eta)
    mean = sde_mean(velocity, latents, sigma, sigma_next, std_t)
    if std == 0:
        return mean if sample is None else sample, None, mean, std
    if sample is None:
        noise = torch.randn(mean.shape, generator=generator, dtype=mean.dtype).to(mean.device)
        sample = mean + std * noise
    return sample, step_log_prob(sample, mean, std), mean, std


def conditions(prior: torch.Tensor, glyph_embeds: list[torch.Tensor], empty_embed: torch.Tensor, guidance: float,
               image_size: tuple[int, int], dtype) -> dict:
    """The forward arguments of a text-to-image batch (all but latents and timestep), as `engine.decoder.denoise`
    builds its batched pass: guided rows then unguided rows (plan dropped, glyphs of "") when guidance > 1."""
    guided = guidance > 1.0
    embeds = list(glyph_embeds) + ([empty_embed] * prior.shape[0] if guided else [])
    target_size = torch.tensor([list(image_size)], dtype=dtype, device=prior.device)
    return forward_arguments(prior, embeds, guided, target_size)


def velocity(forward, kwargs: dict, latents: torch.Tensor, t: torch.Tensor, guidance: float,
             model_dtype) -> torch.Tensor:
    """The guided velocity at (latents, t), as the engine's loop computes it."""
    return guided_velocity(forward, [kwargs], latents, t, guidance, model_dtype)


def schedule(scheduler, steps: int, latents: torch.Tensor, patch: int) -> tuple[torch.Tensor, list[float]]:
    """The engine's timesteps and noise levels (steps + 1 of them, the last 0) for latents of this size."""
    lat_h, lat_w = latents.shape[-2:]
    timesteps = flow_timesteps(scheduler, steps, (lat_h // patch) * (lat_w // patch), latents.device)
    return timesteps, [float(s) for s in scheduler.sigmas]


@dataclass
class Rollout:
    """A batch's trajectory: latents[i] -> latents[i + 1] at timesteps[i], with its log-probabilities at rollout time
    and the frozen reference's means (None without KL)."""

    latents: list[torch.Tensor]
    log_probs: list[torch.Tensor]
    ref_means: list[torch.Tensor | None]
    timesteps: torch.Tensor
    sigmas: list[float]
    stds: list[float]


@torch.no_grad()
def sde_rollout(transformer, scheduler, latents: torch.Tensor, kwargs: dict, guidance: float, steps: int,
                eta: float, generator: torch.Generator | None, forward=None, reference=None) -> Rollout:
    """Denoise `latents` with SDE steps at the engine's noise levels. `forward`: the (possibly wrapped) model to
    call; `reference`: the frozen model whose step means the KL compares against."""
    forward = transformer if forward is None else forward
    dtype = transformer.dtype
    timesteps, sigmas = schedule(scheduler, steps, latents, transformer.config.patch_size)
    sigma_max = sigmas[1]
    out = Rollout([latents.float()], [], [], timesteps, sigmas, [])
    for i, t in enumerate(timesteps):
        v = velocity(forward, kwargs, latents, t, guidance, dtype)
        latents, logp, _, std = sde_step(v, latents, sigmas[i], sigmas[i + 1], sigma_max, eta, generator)
        if reference is not None:
            v_ref = velocity(reference, kwargs, out.latents[-1], t, guidance, dtype)
            out.ref_means.append(sde_mean(v_ref, out.latents[-1], sigmas[i], sigmas[i + 1],
                                          step_std(sigmas[i], sigmas[i + 1], sigma_max, eta)[0]))
        else:
            out.ref_means.append(None)
        out.latents.append(latents.float())
        out.log_probs.append(logp)
        out.stds.append(std)
    return out


def step_losses(forward, model_dtype, rollout: Rollout, kwargs: dict, advantages: torch.Tensor, cfg,
                parts: dict):
    """The loss of each rollout step with the current weights (a generator: each is backpropagated before the next
    is built). Adds clip_share, ratio and kl (means over steps) to `parts`."""
    steps = len(rollout.log_probs)
    sigma_max = rollout.sigmas[1]
    for name in ("clip_share", "ratio", "kl"):
        parts[name] = 0.0
    for i in range(steps):
        x, x_next = rollout.latents[i], rollout.latents[i + 1]
        sigma, sigma_next = rollout.sigmas[i], rollout.sigmas[i + 1]
        std_t, std = step_std(sigma, sigma_next, sigma_max, cfg.eta)
        v = velocity(forward, kwargs, x, rollout.timesteps[i], cfg.guidance, model_dtype)
        mean = sde_mean(v, x, sigma, sigma_next, std_t)
        logp = step_log_prob(x_next, mean, std)
        loss, p = grpo.clipped_surrogate(logp, rollout.log_probs[i], advantages, cfg.clip_range)
        parts["clip_share"] += p["clip_share"] / steps
        parts["ratio"] += p["ratio"] / steps
        ref_mean = rollout.ref_means[i]
        if ref_mean is not None:
            kl = ((mean - ref_mean) ** 2).mean(dim=tuple(range(1, mean.ndim))) / (2 * std**2)
            loss = loss + cfg.kl_weight * kl.mean()
            parts["kl"] += kl.mean().item() / steps
        yield loss / steps


# -- data, plans and rewards -----------------------------------------------------------------------------------
def ground_truth_plan(pipe, sample) -> Plan:
    grid = target_grids(sample.height, sample.width)[0]
    codes = vq_codes(pipe.vision_language_encoder, pipe.processor.image_processor, [sample.image], grid)[0]
    return Plan(prompt=sample.prompt, width=sample.width, height=sample.height, grid=grid, target_tokens=codes)


def prompt_plan(pipe, sample, cfg, seed: int) -> Plan:
    if cfg.plan_source == "ground-truth":
        return ground_truth_plan(pipe, sample)
    from glmimage.engine.planner import make_plan

    return make_plan(pipe.vision_language_encoder, pipe.processor, sample.prompt, sample.width, sample.height, seed)


def heldout_report(run: common.Run, pipe, transformer) -> dict:
    """The deterministic sampler (the engine's) on validation designs the rewards never saw, from their
    ground-truth plans and fixed seeds: the reward and every term (grpo.heldout_figures)."""
    from glmimage.training.data import make_world

    cfg = run.cfg
    world = make_world(cfg, "validation")
    samples = [world.sample(i) for i in range(cfg.heldout_samples)]
    plans = [ground_truth_plan(pipe, s) for s in samples]
    images = []
    for i, plan in enumerate(plans):
        images += grpo.render_plans(pipe, transformer, [plan], [i], cfg.eval_steps, cfg.eval_guidance)
    return grpo.heldout_figures(images, samples, cfg, DEFAULT_REWARD)


# -- the stage -----------------------------------------------------------------------------------------------
def train(cfg: DecoderGrpoConfig) -> Path:
    import copy

    from glmimage.engine.attention import install_masked_attention
    from glmimage.training.data import make_world

    run = common.start_run("grpo-decoder", cfg)
    pipe = grpo.load_pipeline(cfg)
    transformer = pipe.transformer
    dtype = transformer.dtype  # the base weights' (LoRA layers added below keep their own fp32)
    install_masked_attention(transformer)
    for frozen in (pipe.vae, pipe.vision_language_encoder, pipe.text_encoder):
        frozen.requires_grad_(False).eval()
    policy = grpo.make_policy(pipe, cfg, "decoder")
    reference = grpo.kl_reference(policy, cfg.kl_weight)
    opt, sched = common.make_optimizer(run, transformer.parameters())
    ema = common.make_ema(run, transformer)
    model, opt = run.accelerator.prepare(transformer.train(), opt)
    common.resume(run)
    world = make_world(cfg)

    held_out, save_point = grpo.save_hooks(run, pipe, ema, policy, lambda: heldout_report(run, pipe, transformer))

    if run.start_step == 0:
        held_out(0)
    for step, gen in common.train_steps(run):
        samples = [world.sample(i) for i in grpo.prompt_indices(run, step)]
        plans = [prompt_plan(pipe, s, cfg, common.derived_seed(cfg.seed, "plan", step, run.rank, j))
                 for j, s in enumerate(samples)]
        group = cfg.group_size
        rows = [p for p in plans for _ in range(group)]  # prompt-major: the group of plan j is rows j*G..j*G+G-1
        glyphs, empty = grpo.glyph_inputs(pipe, [p.prompt for p in rows], dtype)
        prior = torch.stack([p.upsampled_target() for p in rows]).to(run.device)
        size = (plans[0].height, plans[0].width)
        kwargs = conditions(prior, glyphs, empty, cfg.guidance, size, dtype)
        shape = (len(rows), transformer.config.in_channels, size[0] // pipe.vae_scale_factor,
                 size[1] // pipe.vae_scale_factor)
        noise = torch.randn(shape, generator=gen).to(run.device, dtype)
        rollout = sde_rollout(transformer, copy.deepcopy(pipe.scheduler), noise, kwargs, cfg.guidance,
                              cfg.rollout_steps, cfg.eta, gen, forward=model, reference=reference)
        images = grpo.decode_latents(pipe, rollout.latents[-1])
        rewards, terms = grpo.score(images, [s for s in samples for _ in range(group)], cfg, DEFAULT_REWARD)
        advantages = grpo.group_advantages(rewards.view(len(plans), group), cfg.advantage_eps).view(-1).to(run.device)
        parts: dict = {"reward": rewards.mean().item(), **grpo.mean_terms(terms, "reward_"),
                       "reward_group_std": rewards.view(len(plans), group).std(dim=1).mean().item()}
        norms = []
        for _ in range(cfg.updates_per_step):
            losses = step_losses(model, dtype, rollout, kwargs, advantages, cfg, parts)
            parts["loss"], norm = grpo.policy_update(run, losses, opt, transformer.parameters())
            norms.append(norm)
        grpo.finish_updates(sched, ema, transformer.parameters())
        parts["grad_norm"] = sum(norms) / len(norms)
        common.finish_step(run, step + 1, parts, lambda s=step + 1: save_point(s))
    return grpo.finish_run(run, pipe, ema, policy, held_out)


CONFIG = DecoderGrpoConfig  # what `glmimage train grpo-decoder` loads the YAML into


def main(argv: list[str] | None = None) -> int:
    return common.stage_cli("grpo-decoder", CONFIG, train, argv)


if __name__ == "__main__":
    sys.exit(main())
