"""Defaults and limits every entry point shares, in a module light enough to import anywhere (no torch)."""

from glmimage.errors import InputError

# The model `make demo`, the CLI and the service use when none is named: the trained nano weights shipped in
# src/glmimage/weights/nano (see README, "State of the default model"). Tests name "tiny" (random, built in memory).
DEFAULT_MODEL = "nano"

# The largest bias (nats) an edit plan may give the reference's own codes (engine.plan's `copy_bias`); at ~8 the nano
# planner already copies its reference whole.
MAX_COPY_BIAS = 50.0

# The longest prompt (characters) the engine, the CLI and the service accept. 2,000: the glyph encoder reads at most
# 2,048 byte tokens per quoted text, so no quoted text of an accepted (ASCII) prompt is cut short. A service may
# lower it (GLMIMAGE_MAX_PROMPT_CHARS), not raise it.
MAX_PROMPT_CHARS = 2000

# The most reference images an edit takes: the reference pipeline's edit condition takes at most 4. A service may
# lower it (GLMIMAGE_MAX_REFERENCE_IMAGES), not raise it.
MAX_REFERENCES = 4


def check_prompt_length(prompt: str, limit: int = MAX_PROMPT_CHARS) -> None:
    """The one prompt length rule and its message (InputError)."""
    if len(prompt) > limit:
        raise InputError(f"prompt has {len(prompt)} characters, the limit is {limit}")


def check_reference_count(count: int, limit: int = MAX_REFERENCES) -> None:
    """The one rule on the number of an edit's reference images and its message (InputError)."""
    if not 1 <= count <= limit:
        raise InputError(f"an edit takes 1 to {limit} reference images, got {count}")
