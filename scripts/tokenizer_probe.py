"""The code probe of model directories' tokenizers (e.g. the shipped nano beside a candidate): do their codes say
what objects a design holds, and where is shape lost (docs/training.md, stage 2)? Prints a JSON object per model.

    .venv/bin/python scripts/tokenizer_probe.py nano runs/nano/tokenizer/model --set probe_samples=100
    # do the codes of word cards say which letter fills each cell (lettering route 2)?
    .venv/bin/python scripts/tokenizer_probe.py nano --characters --set probe_samples=200 --set world_kinds=[word_card]

Models: model directories (official layout) or the name of a shipped preset (nano). The world, the probe's designs
and their number (`probe_samples`) come from the tokenizer config (--config, --set key=value).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from glmimage.errors import GlmImageError
from glmimage.models.load import load_model_dir, shipped_weights
from glmimage.training.config import load_config, parse_overrides
from glmimage.training.tokenizer import TokenizerTrainConfig, tokenizer_character_probe, tokenizer_probe

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "train" / "tokenizer-nano.yaml"


def model_tokenizer_probe(model_dir: str | Path, cfg: TokenizerTrainConfig,
                          characters: bool = False) -> dict[str, float]:
    """The code probe of any model directory's tokenizer, at `cfg.probe_samples` designs per split (`characters`:
    the character probe instead of the object probe)."""
    pipe = load_model_dir(model_dir).pipe
    probe = tokenizer_character_probe if characters else tokenizer_probe
    return probe(pipe.vision_language_encoder, pipe.processor.image_processor, cfg)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="+", help="model directories, or a shipped preset's name (nano)")
    parser.add_argument("--config", default=str(CONFIG), help="tokenizer config (default: %(default)s)")
    parser.add_argument("--characters", action="store_true",
                        help="probe which character fills each text cell (word cards: --set world_kinds=[word_card])")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config value (repeatable)")
    args = parser.parse_args(argv)
    try:
        cfg = load_config(TokenizerTrainConfig, args.config, parse_overrides(args.set))
        for model in args.models:
            report = model_tokenizer_probe(shipped_weights(model) or model, cfg, args.characters)
            print(json.dumps({"model": model, **report}, indent=2), flush=True)
    except GlmImageError as exc:
        print(f"tokenizer_probe: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
