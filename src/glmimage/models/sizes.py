"""Sizes: the one owner of how every entry point (engine, prompts, policy, CLI, service, bench) parses, checks and
resolves an image size. Torch-free, so anything can import it.

A valid size has both sides multiples of `limits.multiple` (32: the planner's grid is 1/32 of the pixels) within
[limits.min_side, limits.max_side], and an aspect ratio of at most `MAX_ASPECT`. Each model has its own limits
(`glmimage.models.presets`): tiny 64..512, nano 128..512 centred on 256x256, official 512..2048 centred on
1024x1024 (the reference processor's bounds).

    parse_size("768x512")                     -> (768, 512)        the text form, nothing checked yet
    check_size(768, 512, limits)              -> None or InputError
    resolve_size(limits, width=, height=, aspect=, reference_size=)  the rule of every entry point
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any, Protocol

from glmimage.errors import InputError
from glmimage.models.presets import SizeLimits, get_preset

__all__ = [
    "ASPECT_PRESETS",
    "MAX_ASPECT",
    "LimitsLike",
    "SizeLimits",
    "check_size",
    "limits_for_model",
    "nearest_same_aspect",
    "parse_aspect",
    "parse_size",
    "resolve_size",
    "size_for_aspect",
    "size_for_edit",
    "snap_size",
    "validate_size",
]

MAX_ASPECT = 4.0  # the vision processor (smart_resize) refuses aspect ratios above 4

# name -> (width ratio, height ratio). Where a name is a common format, the ratio is that format's.
ASPECT_PRESETS: dict[str, tuple[int, int]] = {
    "square": (1, 1),
    "portrait": (4, 5),  # feed portrait post
    "landscape": (3, 2),
    "poster": (2, 3),
    "slide": (16, 9),
    "vertical-social": (9, 16),
    "story": (9, 16),
    "banner": (3, 1),
    "leaderboard": (4, 1),
    "card": (7, 4),  # business card, 3.5 x 2 in
    "social-card": (40, 21),  # link preview card, 1200 x 630
}

# How far (in log ratio, ~relative) a size may miss the asked ratio in favour of the model's pixel count. At 256x256
# one step of 32 px moves the ratio ~12%, so a tighter tolerance would push small models far from their trained
# area (slide on nano: 288x160, -30% pixels, instead of 352x192).
_ASPECT_TOLERANCE = 0.05
# Beyond this the ratio cannot be honoured at all (e.g. 8:1 with sides 128..512).
_ASPECT_REJECT = 0.15

_SIZE_TEXT = re.compile(r"\s*(\d{1,5})\s*x\s*(\d{1,5})\s*")


class LimitsLike(Protocol):
    """What the size rule reads of a model's limits (SizeLimits, a frozen dataclass: read-only members)."""

    @property
    def min_side(self) -> int: ...
    @property
    def max_side(self) -> int: ...
    @property
    def multiple(self) -> int: ...
    @property
    def default_width(self) -> int: ...
    @property
    def default_height(self) -> int: ...


def parse_size(size: Any) -> tuple[int, int]:
    """'768x512' (any case, spaces around the x allowed) or a (768, 512) pair -> (768, 512). Only the form is
    checked here: whether the size suits a model is `check_size`'s business."""
    if isinstance(size, str):
        if m := _SIZE_TEXT.fullmatch(size.lower()):
            return int(m.group(1)), int(m.group(2))
    elif isinstance(size, (tuple, list)) and len(size) == 2:
        return size[0], size[1]
    raise InputError(f"size={size!r} must look like '768x512'")


def check_size(width: int, height: int, limits: LimitsLike) -> None:
    """The one size rule: InputError unless (width, height) is a valid size for `limits`."""
    for label, side in (("width", width), ("height", height)):
        if not isinstance(side, int) or isinstance(side, bool):
            raise InputError(f"{label} must be an integer number of pixels, got {side!r}")
        if side % limits.multiple or not limits.min_side <= side <= limits.max_side:
            raise InputError(f"{label}={side} is not a valid size: use a multiple of {limits.multiple} "
                             f"in [{limits.min_side}, {limits.max_side}]")
    if max(width, height) / min(width, height) > MAX_ASPECT:
        raise InputError(f"{width}x{height} has an aspect ratio above {MAX_ASPECT:.0f}:1")


def validate_size(width: int, height: int, limits: LimitsLike) -> tuple[int, int]:
    """(width, height), checked by `check_size`."""
    check_size(width, height, limits)
    return width, height


def snap_size(width: int, height: int, limits: LimitsLike) -> tuple[int, int]:
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


def limits_for_model(model: str) -> SizeLimits:
    """The size limits of a model preset ("tiny", "nano", "official") or of a glmimage model directory,
    read without loading any weights."""
    if Path(model).is_dir():
        from glmimage.models.build import GLMIMAGE_META_FILE  # lazy: glmimage.models.build imports torch

        meta = Path(model) / GLMIMAGE_META_FILE
        if not meta.is_file():
            raise InputError(f"{model} has no {GLMIMAGE_META_FILE}; load it with the engine to read its limits")
        return SizeLimits(**json.loads(meta.read_text())["limits"])
    try:
        return get_preset(model).limits
    except KeyError as exc:
        raise InputError(f"{exc.args[0]} (or give a model directory)") from None


def parse_aspect(aspect: str | tuple[int, int] | float) -> float:
    """A preset name ("slide"), a ratio string ("16:9", "16x9", "1.5") or a (w, h) pair -> width / height."""
    w: float
    h: float
    if isinstance(aspect, tuple):
        w, h = aspect
    elif isinstance(aspect, (int, float)) and not isinstance(aspect, bool):
        w, h = float(aspect), 1.0
    elif isinstance(aspect, str) and aspect.strip().lower() in ASPECT_PRESETS:
        w, h = ASPECT_PRESETS[aspect.strip().lower()]
    elif isinstance(aspect, str) and (m := re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*[:x/]\s*(\d+(?:\.\d+)?)\s*", aspect)):
        w, h = float(m.group(1)), float(m.group(2))
    elif isinstance(aspect, str) and re.fullmatch(r"\s*\d+(?:\.\d+)?\s*", aspect):
        w, h = float(aspect), 1.0
    else:
        raise InputError(f"unknown aspect {aspect!r}; use one of {sorted(ASPECT_PRESETS)} or a ratio like '16:9'")
    if w <= 0 or h <= 0:
        raise InputError(f"aspect {aspect!r} must have positive sides")
    return w / h


def _valid_sides(limits: LimitsLike) -> range:
    first = -(-limits.min_side // limits.multiple) * limits.multiple
    return range(first, limits.max_side + 1, limits.multiple)


def _fit(ratio: float, area: float, limits: LimitsLike, what: str) -> tuple[int, int]:
    """The valid size nearest `area` among those whose ratio is close enough to `ratio`."""
    sides = _valid_sides(limits)
    scored = [
        (abs(math.log(w / h) - math.log(ratio)), abs(math.log(w * h / area)), w, h)
        for h in sides for w in sides if max(w, h) / min(w, h) <= MAX_ASPECT
    ]
    best_aspect_err = min(s[0] for s in scored) if scored else math.inf
    if best_aspect_err > _ASPECT_REJECT:
        lo, hi = limits.min_side, limits.max_side
        raise InputError(
            f"{what} (ratio {ratio:.3g}) does not fit this model: sides must be multiples of {limits.multiple} "
            f"in [{lo}, {hi}] with a ratio of at most {MAX_ASPECT:.0f}:1"
        )
    threshold = max(_ASPECT_TOLERANCE, best_aspect_err + 0.01)
    _, _, w, h = min((area_err, aspect_err, w, h) for aspect_err, area_err, w, h in scored if aspect_err <= threshold)
    return w, h


def size_for_aspect(aspect: str | tuple[int, int] | float, limits: LimitsLike) -> tuple[int, int]:
    """A valid (width, height) for an aspect preset or ratio, with about the model's default pixel count."""
    ratio = parse_aspect(aspect)
    area = limits.default_width * limits.default_height
    return _fit(ratio, area, limits, f"aspect {aspect!r}")


def nearest_same_aspect(width: int, height: int, limits: LimitsLike) -> tuple[int, int]:
    """The valid size nearest (width, height) among those closest to its aspect ratio: the ratio first (within 1%
    of the best any valid size reaches), then the pixel count. 1024x1024 on a model of 64..512 is 512x512,
    1536x1024 is 480x320 (the service maps the OpenAI SDKs' sizes a model cannot make with it)."""
    ratio, area = math.log(width / height), math.log(width * height)
    sides = _valid_sides(limits)
    scored = [(abs(math.log(w / h) - ratio), abs(math.log(w * h) - area), w, h)
              for w in sides for h in sides if max(w, h) / min(w, h) <= MAX_ASPECT]
    best = min(s[0] for s in scored)
    _, _, w, h = min(scored, key=lambda s: (s[0] > best + 0.01, s[1], s[0]))
    return w, h


def size_for_edit(reference_size: tuple[int, int], limits: LimitsLike) -> tuple[int, int]:
    """The output size of an edit: the reference's size snapped to a valid one (`snap_size`, the rule
    `engine.edit` follows too)."""

    rw, rh = reference_size
    if rw <= 0 or rh <= 0:
        raise InputError(f"reference image has an empty size {reference_size}")
    if max(rw, rh) / min(rw, rh) > MAX_ASPECT:
        raise InputError(f"reference size {rw}x{rh} has an aspect ratio above {MAX_ASPECT:.0f}:1")
    return snap_size(rw, rh, limits)


def resolve_size(
    limits: LimitsLike,
    *,
    width: int | None = None,
    height: int | None = None,
    aspect: str | tuple[int, int] | float | None = None,
    reference_size: tuple[int, int] | None = None,
) -> tuple[int, int]:
    """One rule for every entry point: explicit width and height win, then an aspect, then the reference's
    size (edits), then the model's default."""
    if (width is None) != (height is None):
        raise InputError(f"give both width and height or neither (got width={width}, height={height})")
    if width is not None and height is not None:  # both or neither (checked above)
        if aspect is not None:
            raise InputError(f"give either width/height ({width}x{height}) or aspect ({aspect!r}), not both")
        return validate_size(width, height, limits)
    if aspect is not None:
        return size_for_aspect(aspect, limits)
    if reference_size is not None:
        return size_for_edit(reference_size, limits)
    return validate_size(limits.default_width, limits.default_height, limits)
