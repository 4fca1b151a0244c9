"""Model directories: the pipeline a stage starts from, and the complete directory it writes back (`model/`, the
official layout: the updated component and the others unchanged, with the stage's record in `glmimage.json`), with
the final metrics (`metrics.json`)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from glmimage.training.logs import plot_losses
from glmimage.training.optim import with_ema_weights

if TYPE_CHECKING:
    from glmimage.training.run import Run


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
