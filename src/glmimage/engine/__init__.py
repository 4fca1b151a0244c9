"""The engine: plan (AR planner), decode (DiT + VAE), generate and edit.

The names below load on first use, so that the engine's torch-free modules (`glmimage.engine.glyph_text`,
which the prompts layer reads) can be imported without torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from glmimage.engine.engine import DEFAULT_MODEL, Engine
    from glmimage.engine.plan import Plan
    from glmimage.engine.results import GenerationResult

__all__ = ["DEFAULT_MODEL", "Engine", "GenerationResult", "Plan"]

_HOMES = {"DEFAULT_MODEL": "glmimage.defaults", "Engine": "glmimage.engine.engine", "Plan": "glmimage.engine.plan",
          "GenerationResult": "glmimage.engine.results"}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        value = getattr(importlib.import_module(_HOMES[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
