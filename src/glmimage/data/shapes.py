"""Shape silhouettes: the objects and icons of the world, drawn as anti-aliased single-colour masks.

The same masks serve as templates for the evaluation's shape classifier, so drawing and detection agree by
construction.
"""

from __future__ import annotations

import math
from functools import lru_cache

from PIL import Image, ImageDraw

Box = tuple[int, int, int, int]  # (x0, y0, x1, y1), x1/y1 exclusive

# Object classes the prompts name. "bar" is a chart bar (a tall rectangle); the rest are icons.
SHAPE_CLASSES = ("circle", "square", "triangle", "diamond", "star", "heart", "arrow", "cross", "ring")
CHART_CLASSES = ("bar",)
ALL_CLASSES = SHAPE_CLASSES + CHART_CLASSES

_SUPERSAMPLE = 4


def _star(w: float, h: float) -> list[tuple[float, float]]:
    pts = []
    for k in range(10):
        r = 0.5 if k % 2 == 0 else 0.2
        a = -math.pi / 2 + k * math.pi / 5
        pts.append((0.5 + r * math.cos(a), 0.54 + r * 1.05 * math.sin(a)))
    return [(x * w, y * h) for x, y in pts]


def _heart(w: float, h: float) -> list[tuple[float, float]]:
    # Classic parametric heart, normalised to the unit box.
    raw = []
    for k in range(64):
        t = 2 * math.pi * k / 64
        raw.append((16 * math.sin(t) ** 3,
                    -(13 * math.cos(t) - 5 * math.cos(2 * t) - 2 * math.cos(3 * t) - math.cos(4 * t))))
    xs, ys = [p[0] for p in raw], [p[1] for p in raw]
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    return [((x - x0) / (x1 - x0) * w, (y - y0) / (y1 - y0) * h) for x, y in raw]


def _polygon(cls: str, w: float, h: float) -> list[tuple[float, float]] | None:
    if cls == "triangle":
        return [(w / 2, 0), (w, h), (0, h)]
    if cls == "diamond":
        return [(w / 2, 0), (w, h / 2), (w / 2, h), (0, h / 2)]
    if cls == "star":
        return _star(w, h)
    if cls == "heart":
        return _heart(w, h)
    if cls == "arrow":  # pointing right: shaft then head
        t0, t1 = 0.32 * h, 0.68 * h
        return [(0, t0), (0.55 * w, t0), (0.55 * w, 0), (w, h / 2), (0.55 * w, h), (0.55 * w, t1), (0, t1)]
    if cls == "cross":
        a0, a1, b0, b1 = w / 3, 2 * w / 3, h / 3, 2 * h / 3
        return [(a0, 0), (a1, 0), (a1, b0), (w, b0), (w, b1), (a1, b1), (a1, h), (a0, h), (a0, b1), (0, b1),
                (0, b0), (a0, b0)]
    return None


@lru_cache(maxsize=4096)
def shape_mask(cls: str, width: int, height: int) -> Image.Image:
    """Anti-aliased 'L' mask (255 inside) of a shape filling a width x height box."""
    if cls not in ALL_CLASSES:
        raise KeyError(f"unknown shape class {cls!r}; known: {ALL_CLASSES}")
    if width < 1 or height < 1:
        raise ValueError(f"shape box must be at least 1x1, got {width}x{height}")
    s = _SUPERSAMPLE
    W, H = width * s, height * s
    big = Image.new("L", (W, H), 0)
    d = ImageDraw.Draw(big)
    if cls in ("square", "bar"):
        d.rectangle([0, 0, W - 1, H - 1], fill=255)
    elif cls == "circle":
        d.ellipse([0, 0, W - 1, H - 1], fill=255)
    elif cls == "ring":
        d.ellipse([0, 0, W - 1, H - 1], fill=255)
        d.ellipse([0.25 * W, 0.25 * H, 0.75 * W - 1, 0.75 * H - 1], fill=0)
    else:
        d.polygon(_polygon(cls, W - 1, H - 1), fill=255)
    return big.resize((width, height), Image.Resampling.BOX)


def draw_shape(image: Image.Image, cls: str, box: Box, rgb: tuple[int, int, int]) -> None:
    x0, y0, x1, y1 = box
    mask = shape_mask(cls, x1 - x0, y1 - y0)
    image.paste(rgb, (x0, y0, x1, y1), mask)
