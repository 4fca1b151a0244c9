"""Checkpoints that resume exactly: `checkpoints/step-XXXXXXXX/` holds accelerate's state (models, optimizer,
schedule, EMA, RNGs) and `trainer_state.json` (stage, step, data position, config), written last so that its presence
marks a complete checkpoint; the newest `keep_checkpoints` are kept."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from glmimage.errors import InputError
from glmimage.training.config import config_dict
from glmimage.training.logs import plot_losses, truncate_log

if TYPE_CHECKING:
    from glmimage.training.run import Run

STATE_FILE = "trainer_state.json"
CHECKPOINT_PREFIX = "step-"


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
