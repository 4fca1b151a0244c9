"""Named colours of the world and the contrast rules that keep designs readable and detectable.

Every pixel a design paints comes from this palette, so the evaluation's colour detector can label an image by
nearest named colour and find each object exactly on ground-truth renders.
"""

from __future__ import annotations

from dataclasses import dataclass

RGB = tuple[int, int, int]


@dataclass(frozen=True)
class Colour:
    name: str
    rgb: RGB


# Saturated colours for objects, text accents and bold backgrounds. Chosen to be far apart in RGB so that
# nearest-colour labelling is unambiguous.
OBJECT_COLOURS: tuple[Colour, ...] = (
    Colour("red", (220, 40, 40)),
    Colour("orange", (245, 135, 20)),
    Colour("yellow", (250, 215, 30)),
    Colour("green", (40, 165, 60)),
    Colour("teal", (20, 150, 155)),
    Colour("blue", (40, 90, 225)),
    Colour("purple", (135, 60, 190)),
    Colour("pink", (245, 110, 180)),
    Colour("brown", (125, 75, 35)),
    Colour("black", (20, 20, 20)),
    Colour("white", (252, 252, 252)),
    Colour("gray", (128, 128, 128)),
)

# Calm colours for backgrounds and panels only (never objects), each named the way a prompt would say it.
SURFACE_COLOURS: tuple[Colour, ...] = (
    Colour("navy", (22, 32, 80)),
    Colour("cream", (250, 242, 222)),
    Colour("charcoal", (48, 50, 56)),
    Colour("light gray", (222, 226, 232)),
    Colour("sky blue", (160, 205, 245)),
    Colour("mint", (185, 238, 205)),
    Colour("peach", (255, 212, 180)),
    Colour("lavender", (212, 200, 245)),
    Colour("maroon", (110, 22, 45)),
    Colour("forest green", (22, 75, 48)),
)

PALETTE: tuple[Colour, ...] = OBJECT_COLOURS + SURFACE_COLOURS
_BY_NAME = {c.name: c for c in PALETTE}


def colour(name: str) -> Colour:
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown colour {name!r}; known: {sorted(_BY_NAME)}") from None


def rgb_distance(a: RGB, b: RGB) -> float:
    return sum((x - y) ** 2 for x, y in zip(a, b)) ** 0.5


def relative_luminance(rgb: RGB) -> float:
    """WCAG 2.1 relative luminance."""

    def channel(v: int) -> float:
        c = v / 255.0
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(v) for v in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast_ratio(a: RGB, b: RGB) -> float:
    """WCAG contrast ratio (1..21); 4.5 is the usual threshold for readable text."""
    la, lb = sorted((relative_luminance(a), relative_luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


# Minimum RGB distance between an object and anything it sits on or near, so the detector never confuses them.
MIN_OBJECT_SEPARATION = 110.0
# Text must be at least this contrasted with its background (WCAG AA for large text is 3; we ask for more).
MIN_TEXT_CONTRAST = 4.5
