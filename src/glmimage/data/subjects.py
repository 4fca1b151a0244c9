"""Subjects with an identity: mascots and products that must look the same in every scene they appear in.

A subject is a small recipe (species or container, colours, details); drawing it into any box gives the same
figure at that size, which is what identity-preservation and multi-subject samples are checked against.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from PIL import Image, ImageDraw

from glmimage.data.palette import colour

MASCOT_SPECIES = ("cat", "bear", "robot")
PRODUCT_CONTAINERS = ("bottle", "box", "jar")
_SUPERSAMPLE = 4


@dataclass(frozen=True)
class Subject:
    kind: str  # "mascot" or "product"
    form: str  # species for a mascot, container for a product
    body: str  # colour names
    accent: str
    detail: str

    def __post_init__(self) -> None:
        forms = MASCOT_SPECIES if self.kind == "mascot" else PRODUCT_CONTAINERS if self.kind == "product" else None
        if forms is None:
            raise ValueError(f"subject kind must be 'mascot' or 'product', got {self.kind!r}")
        if self.form not in forms:
            raise ValueError(f"{self.kind} form must be one of {forms}, got {self.form!r}")
        for name in (self.body, self.accent, self.detail):
            colour(name)

    @property
    def name(self) -> str:
        """How a prompt refers to it."""
        if self.kind == "mascot":
            return f"{self.body} {self.form} mascot"
        return f"{self.body} {self.form} with a {self.accent} label"

    @property
    def aspect(self) -> float:
        """Width / height of the figure."""
        return {"cat": 1.0, "bear": 1.0, "robot": 0.9, "bottle": 0.5, "box": 0.8, "jar": 0.75}[self.form]


def _draw_mascot(d: ImageDraw.ImageDraw, s: Subject, W: int, H: int) -> None:
    body, accent, detail = colour(s.body).rgb, colour(s.accent).rgb, colour(s.detail).rgb
    top = 0.18 * H  # room for ears / antenna
    if s.form == "cat":
        d.polygon([(0.12 * W, 0.32 * H), (0.22 * W, 0.0), (0.42 * W, 0.26 * H)], fill=body)
        d.polygon([(0.88 * W, 0.32 * H), (0.78 * W, 0.0), (0.58 * W, 0.26 * H)], fill=body)
        d.ellipse([0.05 * W, top, 0.95 * W, H - 1], fill=body)
    elif s.form == "bear":
        d.ellipse([0.06 * W, 0.02 * H, 0.36 * W, 0.32 * H], fill=body)
        d.ellipse([0.64 * W, 0.02 * H, 0.94 * W, 0.32 * H], fill=body)
        d.ellipse([0.05 * W, top, 0.95 * W, H - 1], fill=body)
    else:  # robot: square head on an antenna
        d.rectangle([0.47 * W, 0.02 * H, 0.53 * W, top], fill=body)
        d.ellipse([0.40 * W, 0.0, 0.60 * W, 0.12 * H], fill=detail)
        d.rounded_rectangle([0.04 * W, top, 0.96 * W, H - 1], radius=0.12 * W, fill=body)
    # belly / face patch and eyes
    d.ellipse([0.28 * W, 0.60 * H, 0.72 * W, 0.95 * H], fill=accent)
    for cx in (0.34, 0.66):
        d.ellipse([(cx - 0.11) * W, 0.34 * H, (cx + 0.11) * W, 0.56 * H], fill=(252, 252, 252))
        d.ellipse([(cx - 0.05) * W, 0.40 * H, (cx + 0.05) * W, 0.52 * H], fill=(20, 20, 20))
    d.polygon([(0.44 * W, 0.56 * H), (0.56 * W, 0.56 * H), (0.50 * W, 0.63 * H)], fill=detail)


def _draw_product(d: ImageDraw.ImageDraw, s: Subject, W: int, H: int) -> None:
    body, accent, detail = colour(s.body).rgb, colour(s.accent).rgb, colour(s.detail).rgb
    if s.form == "bottle":
        d.rectangle([0.36 * W, 0.0, 0.64 * W, 0.08 * H], fill=detail)  # cap
        d.rectangle([0.38 * W, 0.08 * H, 0.62 * W, 0.22 * H], fill=body)  # neck
        d.rounded_rectangle([0.02 * W, 0.20 * H, 0.98 * W, H - 1], radius=0.25 * W, fill=body)
        band = (0.45, 0.75)
    elif s.form == "box":
        d.rectangle([0.0, 0.0, W - 1, H - 1], fill=body)
        d.rectangle([0.0, 0.0, W - 1, 0.12 * H], fill=detail)
        band = (0.35, 0.70)
    else:  # jar with lid
        d.rounded_rectangle([0.05 * W, 0.0, 0.95 * W, 0.16 * H], radius=0.05 * W, fill=detail)
        d.rounded_rectangle([0.0, 0.14 * H, W - 1, H - 1], radius=0.18 * W, fill=body)
        band = (0.40, 0.78)
    y0, y1 = band[0] * H, band[1] * H
    d.rectangle([0.0 if s.form != "bottle" else 0.02 * W, y0, W - 1 if s.form != "bottle" else 0.98 * W, y1],
                fill=accent)
    # emblem: a small diamond in the detail colour, the product's "logo"
    cx, cy, r = 0.5 * W, (y0 + y1) / 2, 0.32 * (y1 - y0)
    d.polygon([(cx, cy - r), (cx + r, cy), (cx, cy + r), (cx - r, cy)], fill=detail)


@lru_cache(maxsize=512)
def subject_image(s: Subject, width: int, height: int) -> Image.Image:
    """RGBA drawing of the subject filling width x height (alpha = its silhouette)."""
    if width < 4 or height < 4:
        raise ValueError(f"subject box must be at least 4x4, got {width}x{height}")
    W, H = width * _SUPERSAMPLE, height * _SUPERSAMPLE
    big = Image.new("RGBA", (W, H), (0, 0, 0, 0))
    d = ImageDraw.Draw(big)
    (_draw_mascot if s.kind == "mascot" else _draw_product)(d, s, W, H)
    return big.resize((width, height), Image.Resampling.BOX)


def draw_subject(image: Image.Image, s: Subject, box: tuple[int, int, int, int]) -> None:
    x0, y0, x1, y1 = box
    figure = subject_image(s, x1 - x0, y1 - y0)
    image.paste(figure, (x0, y0), figure)


def subject_box(s: Subject, cx: float, cy: float, height: float) -> tuple[int, int, int, int]:
    """Box of the subject centred at (cx, cy) with the given height and the subject's own aspect."""
    w = height * s.aspect
    return (round(cx - w / 2), round(cy - height / 2), round(cx + w / 2), round(cy + height / 2))
