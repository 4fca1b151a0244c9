"""Stage configs: the fields every stage shares (`RunConfig`, and `DataConfig` for the stages on encoded world
samples), validated on construction; read from a YAML file plus overrides (`--set key=value`, `--out`, `--init`,
`--resume`), and the command line of `python -m glmimage.training.<stage>`. Torch-free."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import yaml

from glmimage.errors import InputError
from glmimage.training.arguments import add_run_arguments

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


def config_from_args(config_cls, args):
    """The config of parsed `add_run_arguments` arguments: the YAML, then `--set`, `--out`, `--init`, `--resume`."""
    overrides = parse_overrides(args.set)
    if args.out:
        overrides["out"] = args.out
    if args.init:
        overrides["init"] = args.init
    if args.resume:
        overrides["resume"] = True
    return load_config(config_cls, args.config, overrides)


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
