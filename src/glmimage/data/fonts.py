"""Fonts: the DejaVu TrueType files shipped inside matplotlib (a pinned dependency), so a fresh install has them."""

from __future__ import annotations

import os
from functools import cache, lru_cache

from PIL import ImageFont

# Style name used in prompts -> file name inside matplotlib's font folder.
FONT_FILES = {
    "bold sans-serif": "DejaVuSans-Bold.ttf",
    "sans-serif": "DejaVuSans.ttf",
    "bold serif": "DejaVuSerif-Bold.ttf",
    "monospace": "DejaVuSansMono-Bold.ttf",
}
TITLE_FONTS = ("bold sans-serif", "bold serif", "monospace")
BODY_FONTS = ("sans-serif", "bold sans-serif")


@cache
def font_dir() -> str:
    import matplotlib

    path = os.path.join(matplotlib.get_data_path(), "fonts", "ttf")
    if not os.path.isfile(os.path.join(path, FONT_FILES["sans-serif"])):
        raise FileNotFoundError(f"DejaVu fonts not found in {path}; reinstall matplotlib")
    return path


@lru_cache(maxsize=512)
def load_font(style: str, size: int) -> ImageFont.FreeTypeFont:
    if style not in FONT_FILES:
        raise KeyError(f"unknown font style {style!r}; known: {sorted(FONT_FILES)}")
    return ImageFont.truetype(os.path.join(font_dir(), FONT_FILES[style]), size)


def text_size(text: str, style: str, size: int) -> tuple[int, int]:
    """Ink width and height of one line of text."""
    x0, y0, x1, y1 = load_font(style, size).getbbox(text)
    return x1 - x0, y1 - y0


def fit_size(text: str, style: str, max_w: float, max_h: float, max_size: int, min_size: int) -> int:
    """Largest size in [min_size, max_size] whose ink fits max_w x max_h (min_size when none fits)."""
    size = max_size
    while size > min_size:
        w, h = text_size(text, style, size)
        if w <= max_w and h <= max_h:
            return size
        size -= 1 if size < 24 else 2
    return min_size
