"""Sizes for prompts and briefs: the names the prompts layer has always offered, owned by `glmimage.models.sizes`
(the one place where sizes are parsed, checked and resolved); nothing is defined here."""

from glmimage.models.sizes import (
    ASPECT_PRESETS,
    LimitsLike,
    SizeLimits,
    limits_for_model,
    parse_aspect,
    resolve_size,
    size_for_aspect,
    size_for_edit,
    validate_size,
)

__all__ = [
    "ASPECT_PRESETS",
    "LimitsLike",
    "SizeLimits",
    "limits_for_model",
    "parse_aspect",
    "resolve_size",
    "size_for_aspect",
    "size_for_edit",
    "validate_size",
]
