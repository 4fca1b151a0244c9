"""One process's handle on a training run: the accelerate Accelerator, the run directory with its resolved
`config.yaml`, the stream positions of a step's batch, per-step seeding (a step's randomness depends only on seed,
step and rank, so a resumed run draws what an uninterrupted one draws), the step loop with its progress bar, and what
follows each optimiser step (scalars, throughput, save points).

A run directory holds: `config.yaml` (the resolved config), `log.csv` (step,name,value,time; `training/logs.py`),
`loss.png`, `checkpoints/step-XXXXXXXX/` (`training/checkpoints.py`), `model/` (a complete model directory in the
official layout: the updated component and the others unchanged; `training/export.py`) and `metrics.json` (the
final evaluation).
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml
from tqdm.auto import tqdm

from glmimage.errors import InputError
from glmimage.training.checkpoints import latest_checkpoint, save_checkpoint, should_save
from glmimage.training.config import config_dict
from glmimage.training.logs import log_scalars


def derived_seed(*parts: object) -> int:
    """A 63-bit seed from the parts' text, identical on every machine (no dependence on Python's hash salt)."""
    digest = hashlib.blake2b("/".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1


def seed_step(seed: int, step: int, rank: int) -> torch.Generator:
    """Reseed the global RNGs (dropout) for one step of one process, and return a generator for the step's noise.
    A step's randomness depends only on (seed, step, rank), so a resumed run draws what an uninterrupted one draws."""
    import random

    import numpy as np

    s = derived_seed(seed, "step", step, rank)
    torch.manual_seed(s)
    random.seed(s)
    np.random.seed(s % 2**32)
    return torch.Generator().manual_seed(derived_seed(seed, "noise", step, rank))


@dataclass
class Run:
    """One process's handle on a training run."""

    stage: str
    cfg: Any
    accelerator: Any
    out: Path
    start_step: int = 0
    data_offset: int = 0  # stream position at step 0 (non-zero only after resuming with another world size)
    bar: Any = None  # the progress bar (main process)
    pending: dict = field(default_factory=dict)  # scalars since the last log line: name -> (sum, count)
    step_started: float = 0.0  # perf_counter() when the current step began (samples_per_s)

    @property
    def main(self) -> bool:
        return self.accelerator.is_main_process

    @property
    def rank(self) -> int:
        return self.accelerator.process_index

    @property
    def world_size(self) -> int:
        return self.accelerator.num_processes

    @property
    def device(self) -> torch.device:
        return self.accelerator.device

    def positions(self, step: int) -> list[int]:
        """Stream positions of this process's batch at `step`: processes take interleaved, disjoint slices."""
        b = self.cfg.batch_size
        first = self.data_offset + (step * self.world_size + self.rank) * b
        return list(range(first, first + b))

    def log_path(self) -> Path:
        return self.out / "log.csv"


def quiet_libraries() -> None:
    """One progress bar per run: the libraries' own bars (weight loading, shard writing) and notes are off."""
    import logging

    import diffusers
    import transformers

    diffusers.utils.logging.disable_progress_bar()
    transformers.utils.logging.disable_progress_bar()
    for name in ("diffusers", "transformers"):
        logging.getLogger(name).setLevel(logging.ERROR)


def start_run(stage: str, cfg) -> Run:
    """Accelerator, threads, run directory and resolved config; raises if `out` has checkpoints and not `resume`."""
    from accelerate import Accelerator
    from accelerate.utils import DistributedDataParallelKwargs

    if cfg.cpu_threads:
        torch.set_num_threads(cfg.cpu_threads)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    quiet_libraries()
    accelerator = Accelerator(
        cpu=not torch.cuda.is_available(),  # on CPUs several processes need cpu=True to form a gloo group
        mixed_precision=cfg.mixed_precision,
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=cfg.find_unused_parameters)],
    )
    out = Path(cfg.out)
    if latest_checkpoint(out) is not None and not cfg.resume:
        raise InputError(f"{out} already holds checkpoints: pass --resume to continue, or another --out")
    if accelerator.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.yaml").write_text(yaml.safe_dump({"stage": stage, **config_dict(cfg)}, sort_keys=False))
    accelerator.wait_for_everyone()
    return Run(stage=stage, cfg=cfg, accelerator=accelerator, out=out)


def train_steps(run: Run) -> Iterator[tuple[int, torch.Generator]]:
    """Steps start_step..steps-1 with the progress bar (loss and ETA, main process only) and per-step seeding."""
    bar = tqdm(total=run.cfg.steps, initial=run.start_step, desc=run.stage, disable=not run.main, dynamic_ncols=True)
    run.bar = bar
    try:
        for step in range(run.start_step, run.cfg.steps):
            run.step_started = time.perf_counter()
            yield step, seed_step(run.cfg.seed, step, run.rank)
            bar.update(1)
    finally:
        bar.close()


def finish_step(run: Run, step: int, parts: dict[str, float], export_model_dir: Callable[[], Any]) -> None:
    """After optimiser step `step` (1-based): log its scalars; at save points write a checkpoint and, before the last
    step, the model directory (the stage writes the final one itself, after its loop). Throughput (samples_per_s,
    all processes) covers the step's data, forward, backward and update, not the save points."""
    if run.step_started:
        elapsed = time.perf_counter() - run.step_started
        parts = {**parts, "samples_per_s": run.cfg.batch_size * run.world_size / max(elapsed, 1e-9)}
    log_scalars(run, step, parts)
    if should_save(run, step):
        save_checkpoint(run, step)
        if step < run.cfg.steps:
            export_model_dir()
