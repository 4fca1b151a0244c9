"""The decoder's held-out report of model directories (e.g. the shipped nano beside a candidate), as a decoder run
writes it to metrics.json: velocity MSE on the first `heldout_samples` validation designs (words never trained on),
fixed noise and noise levels, over the whole image and over the cells under the texts, with everything, without the
glyph embeddings and without the plan (docs/training.md, stage 4). Prints a JSON object per model.

    .venv/bin/python scripts/decoder_heldout_report.py nano runs/nano/decoder/model

Models: model directories (official layout) or the name of a shipped preset (nano). The world and the number of
designs come from the decoder config (--config, --set key=value).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from glmimage.engine.attention import install_masked_attention
from glmimage.errors import GlmImageError
from glmimage.models.load import load_model_dir, shipped_weights
from glmimage.training.config import load_config, parse_overrides
from glmimage.training.decoder import DecoderTrainConfig, heldout_items, heldout_report

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "train" / "decoder-nano.yaml"


def model_heldout_report(model_dir: str | Path, cfg: DecoderTrainConfig) -> dict:
    """The held-out report of a model directory, as a run writes it (same designs, same fixed draws)."""
    pipe = load_model_dir(model_dir, torch.float32).pipe
    install_masked_attention(pipe.transformer)
    items = heldout_items(pipe, cfg)
    return heldout_report(pipe.transformer, pipe.text_encoder, pipe.tokenizer, items, cfg, pipe.scheduler.config)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="+", help="model directories, or a shipped preset's name (nano)")
    parser.add_argument("--config", default=str(CONFIG), help="decoder config (default: %(default)s)")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config value (repeatable)")
    args = parser.parse_args(argv)
    try:
        cfg = load_config(DecoderTrainConfig, args.config, parse_overrides(args.set))
        for model in args.models:
            report = model_heldout_report(shipped_weights(model) or model, cfg)
            print(json.dumps({"model": model, **report}, indent=2), flush=True)
    except GlmImageError as exc:
        print(f"decoder_heldout_report: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
