"""Shared set-up of every training stage, as plain functions: configs from YAML, the accelerate Accelerator,
seeding, the data position of a step, checkpoints that resume exactly, the CSV log with its loss-curve PNG, the
progress bar, and reading/writing complete model directories.

A run directory holds: `config.yaml` (the resolved config), `log.csv` (step,name,value), `loss.png`,
`checkpoints/step-XXXXXXXX/` (accelerate state + `trainer_state.json`), `model/` (a complete model directory in the
official layout: the updated component and the others unchanged) and `metrics.json` (the final evaluation).
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import math
import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
import yaml
from tqdm.auto import tqdm

from glmimage.errors import InputError
from glmimage.training.arguments import add_run_arguments

STATE_FILE = "trainer_state.json"
CHECKPOINT_PREFIX = "step-"
MIXED_PRECISION = ("no", "fp16", "bf16")
LR_SCHEDULES = ("constant", "cosine")


@dataclass
class RunConfig:
    """What every stage shares. Stage configs add their own fields; YAML files spell out every value."""

    preset: str = "tiny"  # model shape: fresh weights when `init` is None, and the limits written with the model
    init: str | None = None  # model directory to start from (official layout); None = fresh weights of `preset`
    out: str = "runs/tiny/stage"  # run directory
    seed: int = 0
    steps: int = 10
    batch_size: int = 2  # per process
    lr: float = 1e-4
    adam_betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0
    warmup_steps: int = 0
    lr_schedule: str = "constant"
    min_lr_ratio: float = 0.1  # cosine decays to lr * min_lr_ratio
    grad_clip: float = 1.0  # 0 = off
    ema_decay: float = 0.0  # 0 = off; else the exported weights are the EMA
    log_every: int = 1
    save_every: int = 5
    keep_checkpoints: int = 2
    image_size: int = 128  # side of the (square) training images
    world_seed: int = 0  # seed of the synthetic world (glmimage.data)
    world_kinds: tuple[str, ...] = ()  # design kinds drawn round-robin (repeat one to weight it); () = the world's mix
    mixed_precision: str = "no"
    cpu_threads: int = 0  # torch threads per process; 0 = leave torch's default
    find_unused_parameters: bool = False
    resume: bool = False  # continue from the latest checkpoint in `out`
    eval_samples: int = 4  # validation samples for the final metrics
    eval_ocr: bool = True  # OCR word accuracy in the final metrics (rapidocr, ~0.2 s an image)

    def __post_init__(self) -> None:
        from glmimage.models.presets import PRESETS

        if self.preset not in PRESETS or self.preset == "official" and self.init is None:
            raise InputError(f"preset must be one of {sorted(p for p in PRESETS if p != 'official')} "
                             f"(official only with init=<model dir>), got {self.preset!r}")
        positive = ("steps", "batch_size", "log_every", "save_every", "keep_checkpoints")
        for name in positive:
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise InputError(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        for name in ("warmup_steps", "cpu_threads", "eval_samples", "seed", "world_seed"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 0:
                raise InputError(f"{name} must be a non-negative integer, got {getattr(self, name)!r}")
        if not self.lr > 0:
            raise InputError(f"lr must be positive, got {self.lr}")
        if len(self.adam_betas) != 2 or not all(0 <= b < 1 for b in self.adam_betas):
            raise InputError(f"adam_betas must be two numbers in [0, 1), got {self.adam_betas}")
        self.adam_betas = tuple(self.adam_betas)
        if self.lr_schedule not in LR_SCHEDULES:
            raise InputError(f"lr_schedule must be one of {LR_SCHEDULES}, got {self.lr_schedule!r}")
        if not 0 <= self.min_lr_ratio <= 1:
            raise InputError(f"min_lr_ratio must be in [0, 1], got {self.min_lr_ratio}")
        if not 0 <= self.ema_decay < 1:
            raise InputError(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        if self.grad_clip < 0 or self.weight_decay < 0:
            raise InputError("grad_clip and weight_decay must be >= 0")
        if self.mixed_precision not in MIXED_PRECISION:
            raise InputError(f"mixed_precision must be one of {MIXED_PRECISION}, got {self.mixed_precision!r}")
        from glmimage.data.layouts import ALL_KINDS

        # "~" and $VARS in paths: long runs keep their checkpoints outside the work tree (docs/training-runs.md)
        self.out = expand_path(self.out)
        self.init = expand_path(self.init) if self.init else self.init

        self.world_kinds = tuple(self.world_kinds or ())
        if any(k not in ALL_KINDS for k in self.world_kinds):
            raise InputError(f"world_kinds must name kinds of {ALL_KINDS}, got {self.world_kinds!r}")
        if self.image_size % 32 or not 128 <= self.image_size <= 2048:
            raise InputError(f"image_size must be a multiple of 32 in [128, 2048] (the world's sizes), "
                             f"got {self.image_size}")


@dataclass
class DataConfig(RunConfig):
    """Stages that train on encoded world samples (codes and/or latents), cached on disk or encoded per batch."""

    num_samples: int = 32  # text-to-image samples encoded once and cached; 0 = encode every batch (endless stream)
    num_edit_samples: int = 0  # image-to-image samples (same rule)
    edit_fraction: float = 0.0  # share of stream positions that are image-to-image
    cache_dir: str = "runs/cache"
    cache_shard_size: int = 16

    def __post_init__(self) -> None:
        super().__post_init__()
        self.cache_dir = expand_path(self.cache_dir)
        if not 0 <= self.edit_fraction <= 1:
            raise InputError(f"edit_fraction must be in [0, 1], got {self.edit_fraction}")
        if min(self.num_samples, self.num_edit_samples) < 0 or self.cache_shard_size < 1:
            raise InputError("num_samples and num_edit_samples must be >= 0, cache_shard_size >= 1")
        if self.edit_fraction > 0 and self.num_samples > 0 and self.num_edit_samples == 0:
            raise InputError("edit_fraction > 0 with a cached set (num_samples > 0) needs num_edit_samples > 0")


def expand_path(path: str) -> str:
    return os.path.expandvars(os.path.expanduser(str(path)))


# -- configs ------------------------------------------------------------------------------------------------
def load_config(cls, path: str | Path | None = None, overrides: dict[str, Any] | None = None):
    """A stage config from a YAML file plus overrides (e.g. from `--set key=value`); unknown keys are errors."""
    values: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise InputError(f"config file not found: {path}")
        loaded = yaml.safe_load(path.read_text()) or {}
        if not isinstance(loaded, dict):
            raise InputError(f"{path} must hold a mapping of config keys, got {type(loaded).__name__}")
        values.update(loaded)
    values.update(overrides or {})
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise InputError(f"unknown config keys {unknown} for {cls.__name__}; valid keys: {sorted(known)}")
    try:
        return cls(**coerce_floats(cls, values))
    except TypeError as exc:
        raise InputError(f"bad config for {cls.__name__}: {exc}") from None


def coerce_floats(cls, values: dict[str, Any]) -> dict[str, Any]:
    """YAML 1.1 reads `5e-4` (no dot) as a string: turn such strings into floats for float fields."""
    float_fields = {f.name for f in fields(cls) if str(f.type).split(" |")[0] == "float"}
    out = dict(values)
    for key in float_fields & set(values):
        if isinstance(values[key], str):
            try:
                out[key] = float(values[key])
            except ValueError:
                raise InputError(f"{key} must be a number, got {values[key]!r}") from None
    return out


def parse_overrides(items: list[str] | None) -> dict[str, Any]:
    """`key=value` strings, values parsed as YAML (so `steps=20`, `init=null`, `targets=[decoder]` work)."""
    out = {}
    for item in items or []:
        if "=" not in item:
            raise InputError(f"--set expects key=value, got {item!r}")
        key, value = item.split("=", 1)
        out[key.strip()] = yaml.safe_load(value)
    return out


def config_dict(cfg) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(cfg).items()}


# -- seeding and data positions -----------------------------------------------------------------------------
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


# -- the run --------------------------------------------------------------------------------------------------
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


# -- logging --------------------------------------------------------------------------------------------------
def log_scalars(run: Run, step: int, values: dict[str, float]) -> None:
    """Accumulate the step's scalars; every `log_every` steps the means over the interval, averaged over processes,
    go to log.csv (main process). The bar shows the latest local loss."""
    if run.bar is not None and "loss" in values:
        run.bar.set_postfix(loss=f"{values['loss']:.4f}", refresh=False)
    for name, value in values.items():
        total, count = run.pending.get(name, (0.0, 0))
        run.pending[name] = (total + float(value), count + 1)
    if step % run.cfg.log_every and step != run.cfg.steps:
        return
    names = sorted(run.pending)
    means = torch.tensor([run.pending[n][0] / run.pending[n][1] for n in names], device=run.device)
    means = run.accelerator.reduce(means, reduction="mean")
    run.pending.clear()
    if run.main:
        append_log(run.log_path(), step, dict(zip(names, means.tolist())))


def append_log(path: Path, step: int, values: dict[str, float]) -> None:
    new = not path.exists()
    with path.open("a", newline="") as f:
        writer = csv.writer(f)
        if new:
            writer.writerow(["step", "name", "value", "time"])
        now = round(time.time(), 3)
        for name, value in values.items():
            writer.writerow([step, name, repr(float(value)), now])


def read_log(path: Path) -> list[tuple[int, str, float]]:
    if not path.exists():
        return []
    with path.open() as f:
        return [(int(r["step"]), r["name"], float(r["value"])) for r in csv.DictReader(f)]


def truncate_log(path: Path, last_step: int) -> None:
    """On resume, forget what was logged after the checkpoint, so the log reads like one uninterrupted run."""
    if not path.exists():
        return
    with path.open() as f:
        rows = [r for r in csv.reader(f)]
    kept = [rows[0]] + [r for r in rows[1:] if int(r[0]) <= last_step]
    with path.open("w", newline="") as f:
        csv.writer(f).writerows(kept)


def plot_losses(log: Path, png: Path, title: str = "") -> None:
    """Every logged series whose name starts with 'loss': raw (thin) and a moving average (thick)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series: dict[str, list[tuple[int, float]]] = {}
    for step, name, value in read_log(log):
        if name.startswith("loss"):
            series.setdefault(name, []).append((step, value))
    if not series:
        return
    fig, ax = plt.subplots(figsize=(7, 4))
    for name, points in sorted(series.items()):
        steps = [s for s, _ in points]
        values = [v for _, v in points]
        window = max(1, len(values) // 20)
        smooth = [sum(values[max(0, i - window + 1) : i + 1]) / len(values[max(0, i - window + 1) : i + 1])
                  for i in range(len(values))]
        line = ax.plot(steps, values, alpha=0.25, linewidth=0.8)[0]
        ax.plot(steps, smooth, color=line.get_color(), linewidth=1.8, label=name)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    if all(v > 0 for pts in series.values() for _, v in pts):
        ax.set_yscale("log")
    ax.set_title(title)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    plt.close(fig)


# -- checkpoints ----------------------------------------------------------------------------------------------
def checkpoint_dirs(out: Path) -> list[Path]:
    root = Path(out) / "checkpoints"
    if not root.is_dir():
        return []
    dirs = [d for d in root.iterdir() if d.name.startswith(CHECKPOINT_PREFIX) and (d / STATE_FILE).is_file()]
    return sorted(dirs, key=lambda d: int(d.name[len(CHECKPOINT_PREFIX):]))


def latest_checkpoint(out: Path) -> Path | None:
    dirs = checkpoint_dirs(out)
    return dirs[-1] if dirs else None


def save_checkpoint(run: Run, step: int) -> Path:
    """Models, optimizer, schedule, EMA and RNG states (accelerate), plus step, data position and config."""
    path = run.out / "checkpoints" / f"{CHECKPOINT_PREFIX}{step:08d}"
    run.accelerator.save_state(str(path))
    if run.main:
        state = {
            "stage": run.stage, "step": step, "world_size": run.world_size, "batch_size": run.cfg.batch_size,
            "data_position": run.data_offset + step * run.world_size * run.cfg.batch_size,
            "config": config_dict(run.cfg),
        }
        (path / STATE_FILE).write_text(json.dumps(state, indent=2))  # written last: marks the checkpoint complete
        for old in checkpoint_dirs(run.out)[: -run.cfg.keep_checkpoints]:
            shutil.rmtree(old, ignore_errors=True)
        plot_losses(run.log_path(), run.out / "loss.png", f"{run.stage} ({run.cfg.out})")
    run.accelerator.wait_for_everyone()
    return path


def resume(run: Run) -> dict:
    """Load the latest checkpoint when `resume` is set; sets run.start_step and run.data_offset."""
    if not run.cfg.resume:
        return {}
    path = latest_checkpoint(run.out)
    if path is None:
        return {}
    state = json.loads((path / STATE_FILE).read_text())
    if state["stage"] != run.stage:
        raise InputError(f"{path} is a {state['stage']} checkpoint, not {run.stage}")
    run.accelerator.load_state(str(path))
    run.start_step = int(state["step"])
    # The stream continues where it stopped even if the number of processes or the batch size changed.
    run.data_offset = int(state["data_position"]) - run.start_step * run.world_size * run.cfg.batch_size
    if run.main:
        truncate_log(run.log_path(), run.start_step)
    return state


def should_save(run: Run, step: int) -> bool:
    return step % run.cfg.save_every == 0 or step == run.cfg.steps


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


# -- model directories ----------------------------------------------------------------------------------------
def load_pipeline(cfg, dtype: torch.dtype = torch.float32):
    """The pipeline a stage starts from: `init` (a model directory in the official layout) or fresh preset weights."""
    from glmimage.models.build import build_pipeline
    from glmimage.models.load import load_model_dir
    from glmimage.models.presets import get_preset

    if cfg.init is None:
        return build_pipeline(get_preset(cfg.preset), seed=cfg.seed, dtype=dtype)
    return load_model_dir(cfg.init, dtype).pipe


# glmimage.json settings of the init directory that a stage's model keeps (they describe how to run the model,
# not what trained it), e.g. the shipped nano's edit_sampling: without it, a decoder run from the shipped model
# would plan its edits differently from the model it started from.
KEPT_SETTINGS = ("edit_sampling", "edit_keep")


def export_model(run: Run, pipe) -> Path:
    """Write the complete model directory (main process): loadable by the engine and by GlmImagePipeline."""
    from glmimage.models.build import read_meta, write_model_dir
    from glmimage.models.presets import get_preset

    path = run.out / "model"
    if run.main:
        record = {"stage": run.stage, "steps": run.cfg.steps, "out": str(run.cfg.out), "metrics": {}}
        meta = read_meta(run.cfg.init) if run.cfg.init is not None else {}  # earlier stages' records and settings
        extra = {key: meta[key] for key in KEPT_SETTINGS if key in meta}
        extra["training"] = list(meta.get("training", [])) + [record]
        tmp = run.out / "model.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        write_model_dir(pipe, tmp, get_preset(run.cfg.preset), extra_meta=extra)
        shutil.rmtree(path, ignore_errors=True)
        tmp.rename(path)
    run.accelerator.wait_for_everyone()
    return path


def record_metrics(run: Run, metrics: dict) -> None:
    """Final metrics: metrics.json, the stage's record in model/glmimage.json, and the loss curve."""
    from glmimage.models.build import GLMIMAGE_META_FILE

    if run.main:
        (run.out / "metrics.json").write_text(json.dumps(metrics, indent=2))
        meta_file = run.out / "model" / GLMIMAGE_META_FILE
        if meta_file.is_file():
            meta = json.loads(meta_file.read_text())
            meta["training"][-1]["metrics"] = metrics
            meta_file.write_text(json.dumps(meta, indent=2))
        plot_losses(run.log_path(), run.out / "loss.png", f"{run.stage} ({run.cfg.out})")
    run.accelerator.wait_for_everyone()


def export_with_ema(run: Run, pipe, ema, module: torch.nn.Module) -> Path:
    """Write the model directory with the EMA weights of `module` in place (the training weights are restored)."""
    with with_ema_weights(ema, module.parameters()):
        return export_model(run, pipe)


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


def stage_cli(stage: str, config_cls, train_fn, argv: list[str] | None = None) -> int:
    ("""`python -m glmimage.training.<stage> --config X [--resume] [--out DIR] [--set k=v ...]` """
     """(for accelerate launch).""")
    import argparse
    import sys

    from glmimage.errors import GlmImageError

    parser = argparse.ArgumentParser(prog=f"glmimage.training.{stage}")
    add_run_arguments(parser)
    args = parser.parse_args(argv)
    try:
        train_fn(config_from_args(config_cls, args))
    except GlmImageError as exc:  # one line, as the glmimage CLI prints it
        print(f"glmimage.training.{stage}: error: {exc}", file=sys.stderr)
        return 2
    return 0


def config_from_args(config_cls, args):
    overrides = parse_overrides(args.set)
    if args.out:
        overrides["out"] = args.out
    if args.init:
        overrides["init"] = args.init
    if args.resume:
        overrides["resume"] = True
    return load_config(config_cls, args.config, overrides)

