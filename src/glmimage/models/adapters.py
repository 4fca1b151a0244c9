"""LoRA adapters (PEFT) on a loaded pipeline: what `glmimage generate --lora` reads and `glmimage train lora` writes.

An adapters folder holds one PEFT adapter per target, `decoder/` and/or `planner/`, each with its
`adapter_config.json`; a target names the pipeline component it adapts (PIPE_ATTR).
"""

from __future__ import annotations

from pathlib import Path

from glmimage.errors import InputError

PIPE_ATTR = {"decoder": "transformer", "planner": "vision_language_encoder"}  # the pipeline component of a target


def apply_adapters(pipe, adapters_dir: str | Path, merge: bool = True) -> None:
    """Load saved adapters into a pipeline (e.g. `Engine.from_pretrained(...).pipe`), merged into the weights by
    default so inference runs at the base model's speed."""
    from peft import PeftModel

    root = Path(adapters_dir)
    found = False
    for target, attr in PIPE_ATTR.items():
        if (root / target / "adapter_config.json").is_file():
            model = PeftModel.from_pretrained(getattr(pipe, attr), root / target)
            if merge:
                model.merge_and_unload()
            found = True
    if not found:
        raise InputError(f"no adapters under {root} (expected decoder/ or planner/ with adapter_config.json)")
