"""The optimiser (AdamW), its learning-rate schedule (warm-up, then constant or cosine), the EMA of the trained
weights, and one optimisation step; all registered with the accelerator so that checkpoints carry them."""

from __future__ import annotations

import contextlib
import math
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from glmimage.training.run import Run


def make_optimizer(run: Run, params) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW with linear warm-up, then constant or cosine. The schedule is stepped once per optimizer step by us
    (accelerate would step a prepared scheduler once per process) and saved with the checkpoint."""
    cfg = run.cfg
    params = [p for p in params if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, betas=cfg.adam_betas, weight_decay=cfg.weight_decay)

    def factor(step: int) -> float:
        if step < cfg.warmup_steps:
            return (step + 1) / cfg.warmup_steps
        if cfg.lr_schedule == "constant":
            return 1.0
        progress = min(1.0, (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps))
        return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
    run.accelerator.register_for_checkpointing(sched)
    return opt, sched


def make_ema(run: Run, model: torch.nn.Module):
    """EMA of the trainable parameters (diffusers' EMAModel), saved with the checkpoint; None when ema_decay is 0."""
    if not run.cfg.ema_decay:
        return None
    from diffusers.training_utils import EMAModel

    ema = EMAModel([p for p in model.parameters() if p.requires_grad], decay=run.cfg.ema_decay)
    run.accelerator.register_for_checkpointing(ema)
    return ema


def optimizer_step(run: Run, loss: torch.Tensor, opt, sched, params, ema=None) -> float:
    """Backward, clip, step, schedule, EMA; returns the gradient norm before clipping (0 when clipping is off)."""
    run.accelerator.backward(loss)
    params = [p for p in params if p.requires_grad]
    norm = 0.0
    if run.cfg.grad_clip:
        norm = float(run.accelerator.clip_grad_norm_(params, run.cfg.grad_clip))
    opt.step()
    sched.step()
    opt.zero_grad(set_to_none=True)
    if ema is not None:
        ema.step(params)
    return norm


@contextlib.contextmanager
def with_ema_weights(ema, params):
    """The EMA weights in place of the live ones (for export and evaluation), restored afterwards."""
    if ema is None:
        yield
        return
    params = [p for p in params if p.requires_grad]
    ema.store(params)
    ema.copy_to(params)
    try:
        yield
    finally:
        ema.restore(params)
