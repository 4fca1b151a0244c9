"""A contact sheet of the world: every design kind, then every edit kind (references -> target, mask)."""

from __future__ import annotations

import textwrap

import numpy as np
from PIL import Image, ImageDraw

from glmimage.data.fonts import load_font
from glmimage.data.world import World

_PAPER, _INK = (255, 255, 255), (30, 30, 30)


def _thumb(image: Image.Image, side: int) -> Image.Image:
    s = side / max(image.size)
    return image.convert("RGB").resize((max(1, round(image.width * s)), max(1, round(image.height * s))),
                                       Image.Resampling.LANCZOS)


def _caption(draw: ImageDraw.ImageDraw, x: int, y: int, text: str, width: int, lines: int) -> None:
    font = load_font("sans-serif", 10)
    for k, line in enumerate(textwrap.wrap(text, max(10, width // 6))[:lines]):
        draw.text((x, y + k * 12), line, font=font, fill=_INK)


def mask_overlay(image: Image.Image, mask: np.ndarray) -> Image.Image:
    """The image with the changed region tinted red."""
    arr = np.asarray(image.convert("RGB"), dtype=np.float32)
    arr[mask] = 0.5 * arr[mask] + 0.5 * np.array([230, 30, 30], dtype=np.float32)
    return Image.fromarray(arr.astype(np.uint8))


def preview_grid(world: World, per_kind: int = 2, edits: bool = True, side: int = 192) -> Image.Image:
    cfg = world.config
    cap_lines = 6
    tile_w, tile_h = side + 8, side + 8 + cap_lines * 12 + 4
    t2i_cols = per_kind
    edit_cols = 5  # up to 3 references, target, mask
    cols = max(t2i_cols * 2, edit_cols)
    t2i_rows = (len(cfg.kinds) + 1) // 2
    edit_rows = len(cfg.edit_kinds) if edits else 0
    sheet = Image.new("RGB", (cols * tile_w, (t2i_rows + edit_rows) * tile_h), _PAPER)
    draw = ImageDraw.Draw(sheet)
    for k, kind in enumerate(cfg.kinds):
        for j in range(per_kind):
            s = world.sample(k + j * len(cfg.kinds), kind=kind)
            x, y = ((k % 2) * per_kind + j) * tile_w, (k // 2) * tile_h
            sheet.paste(_thumb(s.image, side), (x + 4, y + 4))
            _caption(draw, x + 4, y + side + 8, f"[{kind} {s.width}x{s.height}] {s.prompt}", side, cap_lines)
    if edits:
        for r, kind in enumerate(cfg.edit_kinds):
            es = world.edit_sample(r, kind=kind)
            y = (t2i_rows + r) * tile_h
            images = [*es.refs, es.target.image, mask_overlay(es.target.image, es.mask)]
            for c, img in enumerate(images):
                sheet.paste(_thumb(img, side), (c * tile_w + 4, y + 4))
            labels = [f"reference {i + 1}" for i in range(len(es.refs))] + ["target", "changed region"]
            for c, label in enumerate(labels):
                _caption(draw, c * tile_w + 4, y + side + 8, label if c else f"[{kind}] {es.instruction}", side,
                         cap_lines)
    return sheet
