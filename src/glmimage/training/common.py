"""Shared set-up of every training stage, one module per concern; this module re-exports their names so that
`common.X` keeps working:

- `config`: the shared config fields (`RunConfig`, `DataConfig`), YAML + overrides, the stage command line;
- `run`: the `Run` handle and accelerator start, seeding, the step loop, what follows each optimiser step;
- `optim`: optimiser, learning-rate schedule, EMA, one optimisation step;
- `logs`: scalars to `log.csv`, the loss curves in `loss.png`;
- `checkpoints`: save, find and resume checkpoints;
- `export`: the pipeline a stage starts from, the model directory and metrics it writes.
"""

from __future__ import annotations

from glmimage.training.checkpoints import (
    CHECKPOINT_PREFIX,
    STATE_FILE,
    checkpoint_dirs,
    latest_checkpoint,
    resume,
    save_checkpoint,
    should_save,
)
from glmimage.training.config import (
    LR_SCHEDULES,
    MIXED_PRECISION,
    DataConfig,
    RunConfig,
    coerce_floats,
    config_dict,
    config_from_args,
    expand_path,
    load_config,
    parse_overrides,
    stage_cli,
)
from glmimage.training.export import KEPT_SETTINGS, export_model, export_with_ema, load_pipeline, record_metrics
from glmimage.training.logs import append_log, log_scalars, plot_losses, read_log, truncate_log
from glmimage.training.optim import make_ema, make_optimizer, optimizer_step, with_ema_weights
from glmimage.training.run import (
    Run,
    derived_seed,
    finish_step,
    quiet_libraries,
    seed_step,
    start_run,
    train_steps,
)

__all__ = [
    "CHECKPOINT_PREFIX", "KEPT_SETTINGS", "LR_SCHEDULES", "MIXED_PRECISION", "STATE_FILE",
    "DataConfig", "Run", "RunConfig",
    "append_log", "checkpoint_dirs", "coerce_floats", "config_dict", "config_from_args", "derived_seed",
    "expand_path", "export_model", "export_with_ema", "finish_step", "latest_checkpoint", "load_config",
    "load_pipeline", "log_scalars", "make_ema", "make_optimizer", "optimizer_step", "parse_overrides",
    "plot_losses", "quiet_libraries", "read_log", "record_metrics", "resume", "save_checkpoint", "seed_step",
    "should_save", "stage_cli", "start_run", "train_steps", "truncate_log", "with_ema_weights",
]
