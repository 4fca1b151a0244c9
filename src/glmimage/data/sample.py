"""What the world hands out: a rendered design with its prompt and complete ground truth, and edit samples."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from glmimage.data.subjects import Subject

Box = tuple[int, int, int, int]  # (x0, y0, x1, y1) in pixels, x1/y1 exclusive

ROWS = ("top", "middle", "bottom")
COLS = ("left", "center", "right")


def cell_of(box: Box, width: int, height: int) -> str:
    """The third of the image (row-col, e.g. 'top-left') that holds the box centre."""
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    col = min(2, max(0, int(3 * cx / width)))
    row = min(2, max(0, int(3 * cy / height)))
    return f"{ROWS[row]}-{COLS[col]}"


@dataclass
class TextItem:
    text: str
    box: Box
    colour: str = ""
    style: str = ""
    size: int = 0
    role: str = "text"
    char_boxes: tuple[Box, ...] = ()  # one per character: its advance span across the line's ink height


@dataclass
class ObjectItem:
    cls: str
    colour: str
    box: Box
    cell: str = ""
    role: str = "object"


@dataclass
class SubjectItem:
    subject: Subject
    box: Box
    cell: str = ""


@dataclass
class Sample:
    """One text-to-image sample: the design, the prompt that asks for it, and everything in it."""

    index: int
    split: str
    kind: str
    image: Image.Image
    prompt: str
    texts: list[TextItem]
    objects: list[ObjectItem]
    layout: dict[str, Any]
    subjects: list[SubjectItem] = field(default_factory=list)

    @property
    def width(self) -> int:
        return self.image.width

    @property
    def height(self) -> int:
        return self.image.height

    @property
    def key(self) -> str:
        return f"{self.split}_{self.kind}_{self.index:08d}"

    def ground_truth(self) -> dict[str, Any]:
        """JSON-ready ground truth (everything but the pixels)."""
        return {
            "index": self.index,
            "split": self.split,
            "kind": self.kind,
            "width": self.width,
            "height": self.height,
            "prompt": self.prompt,
            "texts": [vars(t) | {"box": list(t.box), "char_boxes": [list(c) for c in t.char_boxes]}
                      for t in self.texts],
            "objects": [vars(o) | {"box": list(o.box)} for o in self.objects],
            "subjects": [
                {"subject": vars(s.subject), "name": s.subject.name, "box": list(s.box), "cell": s.cell}
                for s in self.subjects
            ],
            "layout": self.layout,
        }


@dataclass
class EditSample:
    """One image-to-image sample: references + instruction -> target, with the region the edit may change."""

    index: int
    split: str
    kind: str  # edit kind, e.g. "recolour"
    refs: list[Image.Image]
    instruction: str
    target: Sample  # the expected result with its full ground truth
    mask: np.ndarray  # (H, W) bool, True where the target may differ from refs[0]
    edit: dict[str, Any]  # what changed, in the terms the success check needs

    @property
    def key(self) -> str:
        return f"{self.split}_edit_{self.kind}_{self.index:08d}"

    @property
    def local(self) -> bool:
        """A local edit keeps everything outside the mask; restyle / identity / compose make a new image."""
        return bool(self.edit.get("local", False))

    def ground_truth(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "split": self.split,
            "kind": self.kind,
            "instruction": self.instruction,
            "edit": self.edit,
            "num_refs": len(self.refs),
            "mask_fraction": float(self.mask.mean()),
            "target": self.target.ground_truth(),
        }
