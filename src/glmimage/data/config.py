"""The world's configuration."""

from __future__ import annotations

from dataclasses import dataclass

from glmimage.data.layouts import ALL_KINDS, KINDS
from glmimage.data.vocabulary import SPLITS
from glmimage.errors import InputError

EDIT_KINDS = ("text_replace", "recolour", "add", "remove", "move", "restyle", "identity", "compose")


@dataclass(frozen=True)
class WorldConfig:
    """What the world renders. Sample i of a split is a pure function of (seed, split, i, this config)."""

    size: int = 256  # side of square samples; with mixed_aspect, the area stays about size^2
    mixed_aspect: bool = False  # each kind picks from its own aspect ratios (banners wide, social posts tall)
    kinds: tuple[str, ...] = KINDS  # drawn round-robin (sample i is kinds[i % len]); a kind may repeat
    edit_kinds: tuple[str, ...] = EDIT_KINDS
    split: str = "train"
    seed: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.size, int) or self.size % 32 or not 128 <= self.size <= 2048:
            raise InputError(f"size must be a multiple of 32 in [128, 2048], got {self.size!r}")
        if self.split not in SPLITS:
            raise InputError(f"split must be one of {SPLITS}, got {self.split!r}")
        if not self.kinds or any(k not in ALL_KINDS for k in self.kinds):  # repeats weight a kind in the mix
            raise InputError(f"kinds must be a non-empty list of {ALL_KINDS}, got {self.kinds!r}")
        if not self.edit_kinds or any(k not in EDIT_KINDS for k in self.edit_kinds):
            raise InputError(f"edit_kinds must be a non-empty subset of {EDIT_KINDS}, got {self.edit_kinds!r}")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise InputError(f"seed must be a non-negative integer, got {self.seed!r}")
