"""A programmatic object detector for the world's designs: label pixels by nearest named colour, cut the labels
into connected blobs, and name each blob's shape by the template it overlaps best.

For each ground-truth object it answers: is there a blob of that shape and about that size (present), is one of
them in the requested colour (colour), and does that one sit in the requested third of the image (position).
On the world's own renders every answer is yes; on noise no blob is large enough to be anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np
from PIL import Image

from glmimage.data.palette import PALETTE
from glmimage.data.sample import Box, ObjectItem, cell_of
from glmimage.data.shapes import SHAPE_CLASSES, shape_mask

_PALETTE_RGB = np.array([c.rgb for c in PALETTE], dtype=np.float32)  # (P, 3)
_NAMES = [c.name for c in PALETTE]
# A chart bar has the silhouette of a square (a filled rectangle); the template decides the rest.
_SILHOUETTE = {"bar": "square"}


@dataclass(frozen=True)
class DetectorConfig:
    max_colour_distance: float = 80.0  # farther than this from every named colour: unlabelled
    min_template_iou: float = 0.55  # a blob is a shape only if it overlaps that shape's template this much
    area_range: tuple[float, float] = (0.35, 3.0)  # blob area / expected area of the ground-truth object

    def __post_init__(self) -> None:
        if self.max_colour_distance <= 0:
            raise ValueError(f"max_colour_distance must be > 0, got {self.max_colour_distance}")
        if not 0 < self.min_template_iou <= 1:
            raise ValueError(f"min_template_iou must be in (0, 1], got {self.min_template_iou}")
        lo, hi = self.area_range
        if not 0 < lo < 1 < hi:
            raise ValueError(f"area_range must be (lo < 1 < hi), got {self.area_range}")


@dataclass(frozen=True)
class Blob:
    colour: str
    cls: str  # best template (a bar reads as "square")
    iou: float  # overlap with that template
    box: Box
    area: int


@dataclass(frozen=True)
class ObjectCheck:
    cls: str
    colour: str
    cell: str
    present: bool  # a blob of this shape and size exists somewhere
    colour_ok: bool  # ... and one of them has the requested colour
    position_ok: bool  # ... and that one sits in the requested third
    found_cell: str | None

    @property
    def correct(self) -> bool:
        return self.present and self.colour_ok and self.position_ok


def label_image(image: Image.Image, max_distance: float = 80.0) -> np.ndarray:
    """(H, W) index into PALETTE of each pixel's nearest named colour, -1 where none is within max_distance."""
    px = np.asarray(image.convert("RGB"), dtype=np.float32)
    d2 = ((px[:, :, None, :] - _PALETTE_RGB[None, None]) ** 2).sum(-1)  # (H, W, P)
    labels = d2.argmin(-1).astype(np.int16)
    labels[np.take_along_axis(d2, labels[..., None].astype(np.int64), -1)[..., 0] > max_distance**2] = -1
    return labels


def dominant_colour(image: Image.Image, border: float = 0.04) -> str | None:
    """The named colour of most pixels in a thin frame around the image: its background."""
    labels = label_image(image)
    h, w = labels.shape
    b = max(1, round(border * min(h, w)))
    frame = np.concatenate([labels[:b].ravel(), labels[-b:].ravel(), labels[:, :b].ravel(), labels[:, -b:].ravel()])
    frame = frame[frame >= 0]
    if frame.size == 0:
        return None
    return _NAMES[int(np.bincount(frame).argmax())]


@lru_cache(maxsize=8192)
def _template(cls: str, w: int, h: int) -> np.ndarray:
    return np.asarray(shape_mask(cls, w, h)) > 127


def classify_blob(mask: np.ndarray, cfg: DetectorConfig) -> tuple[str, float]:
    """Best shape class of a binary blob cropped to its bounding box, and its template IoU."""
    h, w = mask.shape
    best, best_iou = "", 0.0
    for cls in SHAPE_CLASSES:
        t = _template(cls, w, h)
        iou = float(np.logical_and(mask, t).sum() / max(1, np.logical_or(mask, t).sum()))
        if iou > best_iou:
            best, best_iou = cls, iou
    return best, best_iou


def find_blobs(image: Image.Image, min_area: int, max_area: int, cfg: DetectorConfig = DetectorConfig()) -> list[Blob]:
    """Every single-colour connected blob with min_area <= area <= max_area that looks like a known shape."""
    labels = label_image(image, cfg.max_colour_distance)
    blobs = []
    for k in np.unique(labels):
        if k < 0:
            continue
        layer = (labels == k).astype(np.uint8)
        n, comp, stats, _ = cv2.connectedComponentsWithStats(layer, connectivity=4)
        for j in range(1, n):
            x, y, w, h, area = (int(v) for v in stats[j])
            if not min_area <= area <= max_area or w < 4 or h < 4:
                continue
            cls, iou = classify_blob(comp[y:y + h, x:x + w] == j, cfg)
            if iou >= cfg.min_template_iou:
                blobs.append(Blob(_NAMES[k], cls, iou, (x, y, x + w, y + h), area))
    return blobs


def expected_area(obj: ObjectItem) -> int:
    x0, y0, x1, y1 = obj.box
    return int(_template(obj.cls, x1 - x0, y1 - y0).sum())


def check_objects(image: Image.Image, objects: list[ObjectItem],
                  cfg: DetectorConfig = DetectorConfig()) -> list[ObjectCheck]:
    """Score each ground-truth object against the blobs found in the image."""
    if not objects:
        return []
    areas = [expected_area(o) for o in objects]
    lo, hi = cfg.area_range
    blobs = find_blobs(image, max(8, int(lo * min(areas))), int(hi * max(areas)), cfg)
    w, h = image.size
    checks = []
    for obj, area in zip(objects, areas):
        want = _SILHOUETTE.get(obj.cls, obj.cls)
        same = [b for b in blobs if b.cls == want and lo * area <= b.area <= hi * area]
        coloured = [b for b in same if b.colour == obj.colour]
        cells = [cell_of(b.box, w, h) for b in coloured]
        found = obj.cell if obj.cell in cells else (cells[0] if cells else None)
        checks.append(ObjectCheck(obj.cls, obj.colour, obj.cell, bool(same), bool(coloured), obj.cell in cells, found))
    return checks
