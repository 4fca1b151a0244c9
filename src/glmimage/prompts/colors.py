"""Colours for prompts and QA: hex parsing, sRGB -> CIELAB, a colour's everyday name, palette distance."""

from __future__ import annotations

import re

import numpy as np

from glmimage.errors import InputError

_HEX = re.compile(r"#?([0-9a-fA-F]{6}|[0-9a-fA-F]{3})")

# Everyday names a text-to-image model knows; the prompt says "navy blue (#1B2A49)" rather than a bare hex code,
# since hex codes are rare in captions.
NAMED_COLORS: dict[str, str] = {
    "black": "#000000", "charcoal": "#36454F", "dark gray": "#555555", "gray": "#808080",
    "light gray": "#D3D3D3", "white": "#FFFFFF", "ivory": "#FFFFF0", "beige": "#F5F5DC", "cream": "#FFFDD0",
    "red": "#E02020", "crimson": "#B0182F", "maroon": "#800000", "coral": "#FF7F50", "salmon": "#FA8072",
    "pink": "#FFB6C1", "hot pink": "#FF69B4", "magenta": "#FF00FF", "purple": "#800080", "lavender": "#C8A2C8",
    "violet": "#8F00FF", "navy blue": "#1B2A49", "royal blue": "#4169E1", "blue": "#1F5FD0", "sky blue": "#87CEEB",
    "teal": "#008080", "turquoise": "#40E0D0", "cyan": "#00D0E0", "mint green": "#98FF98", "green": "#228B22",
    "forest green": "#0B4D1E", "olive": "#808000", "lime green": "#32CD32", "yellow": "#FFD700",
    "mustard": "#E1AD01", "orange": "#FF8C00", "burnt orange": "#CC5500", "brown": "#8B4513", "tan": "#D2B48C",
    "gold": "#D4AF37", "silver": "#C0C0C0",
}


def parse_hex(color: str) -> tuple[int, int, int]:
    """'#1b2a49', '1B2A49' or '#fff' -> (r, g, b) in 0..255."""
    m = _HEX.fullmatch(color.strip()) if isinstance(color, str) else None
    if not m:
        raise InputError(f"colour {color!r} is not a hex colour like '#1B2A49'")
    h = m.group(1)
    if len(h) == 3:
        h = "".join(c * 2 for c in h)
    return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)


def to_hex(rgb: tuple[int, int, int]) -> str:
    return "#{:02X}{:02X}{:02X}".format(*rgb)


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB in 0..255, shape (..., 3) -> CIELAB (D65), shape (..., 3). Formulas: IEC 61966-2-1 and CIE 15."""
    c = np.asarray(rgb, dtype=np.float64) / 255.0
    c = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    m = np.array([[0.4124564, 0.3575761, 0.1804375],
                  [0.2126729, 0.7151522, 0.0721750],
                  [0.0193339, 0.1191920, 0.9503041]])
    xyz = c @ m.T / np.array([0.95047, 1.0, 1.08883])
    eps, kappa = 216 / 24389, 24389 / 27
    f = np.where(xyz > eps, np.cbrt(xyz), (kappa * xyz + 16) / 116)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], axis=-1)


_NAME_LAB = rgb_to_lab(np.array([parse_hex(h) for h in NAMED_COLORS.values()]))


def color_name(color: str) -> str:
    """The nearest everyday name of a hex colour (CIE76 distance in Lab)."""
    lab = rgb_to_lab(np.array(parse_hex(color)))
    return list(NAMED_COLORS)[int(np.argmin(np.linalg.norm(_NAME_LAB - lab, axis=-1)))]


def palette_distance(image, palette: list[str], *, space: str = "lab", max_pixels: int = 256 * 256) -> float:
    """Mean distance from each pixel to its nearest palette colour: CIE76 delta E in Lab (2.3 is a just
    noticeable difference), or Euclidean 0..255 units in RGB. Large images are downscaled to ~max_pixels first."""
    if not palette:
        raise InputError("palette_distance needs at least one palette colour")
    if space not in ("lab", "rgb"):
        raise InputError(f"space must be 'lab' or 'rgb', got {space!r}")
    img = image.convert("RGB")
    if img.width * img.height > max_pixels:
        scale = (max_pixels / (img.width * img.height)) ** 0.5
        img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))))
    pixels = np.asarray(img, dtype=np.float64).reshape(-1, 3)
    colors = np.array([parse_hex(c) for c in palette], dtype=np.float64)
    if space == "lab":
        pixels, colors = rgb_to_lab(pixels), rgb_to_lab(colors)
    dist = np.linalg.norm(pixels[:, None, :] - colors[None, :, :], axis=-1)  # (pixels, colours)
    return float(dist.min(axis=1).mean())
