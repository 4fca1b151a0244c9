"""Planner GRPO: the AR planner rewarded for what the picture says and where things are.

Each step: `batch_size` train prompts; for each, `group_size` plans from the engine's own sampler (`make_plans`: the
planner's generation settings, one generator per plan); every plan rendered by the frozen decoder with the engine's
deterministic loop in `decode_steps` steps, all plans of a group from the same latent seed (so the plan alone makes
the difference); rewards read from the renders against the design's ground truth (training/grpo.py: background
colour, objects' shape/colour/position, the quoted text by OCR NED); group-normalised advantages; PPO's clipped ratio
per generated token (preview and target codes: the whole plan is the action); KL to the frozen starting planner per
token with the k3 estimator exp(r) - r - 1, r = logp_ref - logp (DeepSeekMath's GRPO).

Log-probabilities are those of the sampled codes under the planner's logits, teacher-forced on the plan exactly as
the planner stage builds its sequences (training/planner.py: the library's positions, so they are the sampler's
logits), restricted to the codebook (the sampler's codes-only mask) at the sampler's temperature. The sampler's
top-p/top-k truncation is left out of the density: the plans are drawn inside the nucleus, and a truncated density
would give the updated policy -inf wherever its nucleus moved.

    glmimage train grpo-planner --config configs/train/grpo-planner-nano.yaml   # init: a trained model directory
    # LoRA on the official model (GPUs): configs/train/grpo-planner-official.yaml, see docs/training.md
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from glmimage.errors import InputError
from glmimage.training import common, grpo
from glmimage.training.planner import IGNORE, build_sequence, collate, freeze_tokenizer, planner_logits

DEFAULT_REWARD = {"background": 1.0, "objects": 1.0, "ned": 1.0}


@dataclass
class PlannerGrpoConfig(grpo.GrpoConfig):
    decode_steps: int = 4  # the frozen decoder's sampler steps per rendered plan (few are enough to judge a layout)
    decode_guidance: float = 1.5

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.decode_steps < 1 or self.decode_guidance < 0:
            raise InputError("decode_steps must be >= 1 and decode_guidance >= 0")


def plan_item(plan) -> dict:
    """A text-to-image plan as the planner stage's encoded item (what `build_sequence` teacher-forces)."""
    return {"prompt": plan.prompt, "size": [plan.width, plan.height], "preview": plan.preview_tokens,
            "codes": plan.target_tokens}


def plan_batch(planner, processor, plans: list) -> dict:
    return collate([build_sequence(planner, processor, plan_item(p)) for p in plans],
                   planner.config.text_config.pad_token_id)


def token_log_probs(model, planner, batch: dict, device) -> tuple[torch.Tensor, torch.Tensor]:
    """((B, T) log-probabilities of each position's next token, (B, T) mask of the generated positions): the
    codebook's logits at the sampler's temperature."""
    labels = batch["labels"].to(device)
    valid = labels != IGNORE
    codebook = planner.config.vq_config.num_embeddings
    temperature = planner.generation_config.temperature or 1.0
    logits = planner_logits(model, batch, device)[..., :codebook].float() / temperature
    logp = torch.log_softmax(logits, dim=-1).gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return logp, valid


def sample_plans(planner, processor, samples: list, group: int, seeds: list[list[int]]) -> list:
    """`group` plans per sample (prompt-major) from the engine's batched sampler."""
    from glmimage.engine.planner import make_plans

    plans = []
    for sample, row_seeds in zip(samples, seeds):
        plans += make_plans(planner, processor, [sample.prompt] * group, sample.width, sample.height, row_seeds)
    return plans


def rewards_of(pipe, plans: list, samples: list, latent_seeds: list[int], cfg) -> tuple[torch.Tensor, list[dict]]:
    """Render the plans with the frozen decoder and score each against its sample (samples and seeds per plan)."""
    images = grpo.render_plans(pipe, pipe.transformer, plans, latent_seeds, cfg.decode_steps, cfg.decode_guidance)
    return grpo.score(images, samples, cfg, DEFAULT_REWARD)


@torch.no_grad()
def heldout_report(pipe, cfg) -> dict:
    """`group_size` plans (fixed seeds) for each of the first `heldout_samples` validation prompts, rendered from
    fixed latent seeds: the reward and every term (grpo.heldout_figures)."""
    from glmimage.training.data import make_world

    planner = pipe.vision_language_encoder
    mode = planner.training
    planner.eval()
    world = make_world(cfg, "validation")
    samples = [world.sample(i) for i in range(cfg.heldout_samples)]
    seeds = [[common.derived_seed("heldout", i, g) for g in range(cfg.group_size)] for i in range(len(samples))]
    plans = sample_plans(planner, pipe.processor, samples, cfg.group_size, seeds)
    per_plan = [s for s in samples for _ in range(cfg.group_size)]
    latent_seeds = [i for i in range(len(samples)) for _ in range(cfg.group_size)]
    images = grpo.render_plans(pipe, pipe.transformer, plans, latent_seeds, cfg.decode_steps, cfg.decode_guidance)
    planner.train(mode)
    return grpo.heldout_figures(images, per_plan, cfg, DEFAULT_REWARD)


def train(cfg: PlannerGrpoConfig) -> Path:
    from glmimage.training.data import make_world

    run = common.start_run("grpo-planner", cfg)
    pipe = grpo.load_pipeline(cfg)
    planner, processor = pipe.vision_language_encoder, pipe.processor
    for frozen in (pipe.vae, pipe.transformer, pipe.text_encoder):
        frozen.requires_grad_(False).eval()
    freeze_tokenizer(planner)
    policy = grpo.make_policy(pipe, cfg, "planner")
    reference = grpo.kl_reference(policy, cfg.kl_weight)
    opt, sched = common.make_optimizer(run, planner.parameters())
    ema = common.make_ema(run, planner)
    model, opt = run.accelerator.prepare(planner.train(), opt)
    freeze_tokenizer(planner)
    common.resume(run)
    world = make_world(cfg)
    group = cfg.group_size

    held_out, save_point = grpo.save_hooks(run, pipe, ema, policy, lambda: heldout_report(pipe, cfg))

    if run.start_step == 0:
        held_out(0)
    for step, _ in common.train_steps(run):
        samples = [world.sample(i) for i in grpo.prompt_indices(run, step)]
        seeds = [[common.derived_seed(cfg.seed, "plan", step, run.rank, j, g) for g in range(group)]
                 for j in range(len(samples))]
        planner.eval()
        plans = sample_plans(planner, processor, samples, group, seeds)
        planner.train()
        freeze_tokenizer(planner)
        per_plan = [s for s in samples for _ in range(group)]
        latent_seeds = [common.derived_seed(cfg.seed, "latent", step, run.rank, j) % 2**62
                        for j in range(len(samples)) for _ in range(group)]
        rewards, terms = rewards_of(pipe, plans, per_plan, latent_seeds, cfg)
        advantages = grpo.group_advantages(rewards.view(len(samples), group), cfg.advantage_eps).view(-1, 1)
        batch = plan_batch(planner, processor, plans)
        with torch.no_grad():
            old, valid = token_log_probs(model, planner, batch, run.device)
            ref = token_log_probs(reference, planner, batch, run.device)[0] if reference is not None else None
        adv = advantages.to(run.device).expand_as(old)
        parts: dict = {"reward": rewards.mean().item(), **grpo.mean_terms(terms, "reward_"),
                       "reward_group_std": rewards.view(len(samples), group).std(dim=1).mean().item()}
        norms = []
        for _ in range(cfg.updates_per_step):
            new, _ = token_log_probs(model, planner, batch, run.device)
            loss, p = grpo.clipped_surrogate(new[valid], old[valid], adv[valid], cfg.clip_range)
            parts.update(p)
            if ref is not None:
                delta = ref[valid] - new[valid]
                kl = (torch.exp(delta) - delta - 1).mean()
                loss = loss + cfg.kl_weight * kl
                parts["kl"] = kl.item()
            parts["loss"], norm = grpo.policy_update(run, [loss], opt, planner.parameters())
            norms.append(norm)
        grpo.finish_updates(sched, ema, planner.parameters())
        parts["grad_norm"] = sum(norms) / len(norms)
        common.finish_step(run, step + 1, parts, lambda s=step + 1: save_point(s))
    planner.eval()
    return grpo.finish_run(run, pipe, ema, policy, held_out)


CONFIG = PlannerGrpoConfig  # what `glmimage train grpo-planner` loads the YAML into


def main(argv: list[str] | None = None) -> int:
    return common.stage_cli("grpo-planner", CONFIG, train, argv)


if __name__ == "__main__":
    sys.exit(main())
