"""The planner's validation report of model directories (e.g. the shipped nano beside a candidate): teacher-forced
loss and top-1 token accuracy, text-to-image and edits, and for edits the accuracy on kept and changed cells
(docs/training.md, stage 3), as a planner run writes it to metrics.json. Prints a JSON object per model.

    .venv/bin/python scripts/planner_report.py nano runs/nano/planner/model --set eval_samples=64

Models: model directories (official layout) or the name of a shipped preset (nano). The world, the validation
designs (`eval_samples`) and the share of edits (`edit_fraction` > 0 adds them) come from the planner config
(--config, --set key=value).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from glmimage.errors import GlmImageError
from glmimage.models.load import load_model_dir, shipped_weights
from glmimage.training.config import load_config, parse_overrides
from glmimage.training.planner import PlannerTrainConfig, validation_report

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "train" / "planner-nano.yaml"


def model_planner_report(model_dir: str | Path, cfg: PlannerTrainConfig) -> dict:
    """The validation report of a model directory's planner."""
    pipe = load_model_dir(model_dir, torch.float32).pipe
    pipe.vision_language_encoder.eval()
    return validation_report(pipe, cfg)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="+", help="model directories, or a shipped preset's name (nano)")
    parser.add_argument("--config", default=str(CONFIG), help="planner config (default: %(default)s)")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config value (repeatable)")
    args = parser.parse_args(argv)
    try:
        cfg = load_config(PlannerTrainConfig, args.config, parse_overrides(args.set))
        for model in args.models:
            report = model_planner_report(shipped_weights(model) or model, cfg)
            print(json.dumps({"model": model, **report}, indent=2), flush=True)
    except GlmImageError as exc:
        print(f"planner_report: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
