"""The size rule of every entry point (engine, prompts, CLI, service), torch-free so anything can import it."""

from __future__ import annotations

from glmimage.errors import InputError
from glmimage.models.presets import SizeLimits

MAX_ASPECT = 4.0  # the vision processor (smart_resize) refuses aspect ratios above 4


def check_size(width: int, height: int, limits: SizeLimits) -> None:
    """The one size rule (the prompts layer, the CLI and the service call it too)."""
    for label, side in (("width", width), ("height", height)):
        if not isinstance(side, int) or isinstance(side, bool):
            raise InputError(f"{label} must be an integer number of pixels, got {side!r}")
        if side % limits.multiple or not limits.min_side <= side <= limits.max_side:
            raise InputError(f"{label}={side} is not a valid size: use a multiple of {limits.multiple} "
                             f"in [{limits.min_side}, {limits.max_side}]")
    if max(width, height) / min(width, height) > MAX_ASPECT:
        raise InputError(f"{width}x{height} has an aspect ratio above {MAX_ASPECT:.0f}:1")


def snap_size(width: int, height: int, limits: SizeLimits) -> tuple[int, int]:
    """The valid size closest to (width, height) with about the same aspect ratio."""
    scale = 1.0
    if max(width, height) > limits.max_side:
        scale = limits.max_side / max(width, height)
    if min(width, height) * scale < limits.min_side:
        scale = limits.min_side / min(width, height)

    def snap(side: float) -> int:
        side = round(side / limits.multiple) * limits.multiple
        return int(min(max(side, limits.min_side), limits.max_side))

    return snap(width * scale), snap(height * scale)
