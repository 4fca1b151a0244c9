"""The world: sample i of a split, text-to-image or edit, as a pure function of (seed, split, i)."""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Iterator
from dataclasses import replace

from glmimage.data.config import WorldConfig
from glmimage.data.design import Design
from glmimage.data.edits import EditContext, build_edit, to_sample
from glmimage.data.heldout import SplitPicker
from glmimage.data.layouts import ASPECTS, build_design
from glmimage.data.sample import EditSample, Sample
from glmimage.errors import InputError


def seeded_rng(*parts: object) -> random.Random:
    """A generator seeded from the parts' text, identical on every machine and Python run."""
    digest = hashlib.blake2b("/".join(map(str, parts)).encode(), digest_size=8).digest()
    return random.Random(int.from_bytes(digest, "big"))


def aspect_dims(size: int, aspect: tuple[int, int]) -> tuple[int, int]:
    """Width and height, multiples of 32, with area about size^2 and the given aspect ratio."""
    a = aspect[0] / aspect[1]
    w = max(128, round(size * math.sqrt(a) / 32) * 32)
    h = max(128, round(size / math.sqrt(a) / 32) * 32)
    return w, h


class World:
    def __init__(self, config: WorldConfig | None = None):
        self.config = config or WorldConfig()

    def with_split(self, split: str) -> World:
        return World(replace(self.config, split=split))

    # -- text to image ----------------------------------------------------------------------------------
    def kind_of(self, index: int) -> str:
        return self.config.kinds[index % len(self.config.kinds)]

    def _dims(self, kind: str, rng: random.Random) -> tuple[int, int]:
        if not self.config.mixed_aspect:
            return self.config.size, self.config.size
        return aspect_dims(self.config.size, rng.choice(ASPECTS[kind]))

    def design(self, index: int, kind: str | None = None) -> Design:
        kind = kind or self.kind_of(index)
        rng = seeded_rng(self.config.seed, self.config.split, "t2i", index, kind)
        picker = SplitPicker(rng, self.config.split)
        w, h = self._dims(kind, rng)
        return build_design(kind, w, h, rng, picker)

    def sample(self, index: int, kind: str | None = None) -> Sample:
        if index < 0:
            raise InputError(f"sample index must be >= 0, got {index}")
        return to_sample(self.design(index, kind), index, self.config.split)

    def samples(self, start: int = 0, stop: int | None = None) -> Iterator[Sample]:
        i = start
        while stop is None or i < stop:
            yield self.sample(i)
            i += 1

    # -- image to image ---------------------------------------------------------------------------------
    def edit_kind_of(self, index: int) -> str:
        return self.config.edit_kinds[index % len(self.config.edit_kinds)]

    def edit_sample(self, index: int, kind: str | None = None) -> EditSample:
        if index < 0:
            raise InputError(f"sample index must be >= 0, got {index}")
        kind = kind or self.edit_kind_of(index)
        rng = seeded_rng(self.config.seed, self.config.split, "edit", index, kind)
        picker = SplitPicker(rng, self.config.split)

        def build(design_kind: str) -> Design:
            return build_design(design_kind, *self._dims(design_kind, rng), rng, picker)

        ctx = EditContext(rng, picker, self.config.split, index, self.config.kinds,
                          lambda k: self._dims(k, rng), build)
        return build_edit(kind, ctx)

    def edit_samples(self, start: int = 0, stop: int | None = None) -> Iterator[EditSample]:
        i = start
        while stop is None or i < stop:
            yield self.edit_sample(i)
            i += 1
