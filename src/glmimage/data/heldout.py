"""Held-out rules: which words and which colour-shape-position combinations each split may draw.

Validation and test samples contain at least one word and one object combination never used in training (when
the layout has room for one); the rest is drawn from the training pool so the sample is otherwise familiar.
"""

from __future__ import annotations

import random
from functools import cache

from glmimage.data.palette import MIN_OBJECT_SEPARATION, OBJECT_COLOURS, RGB, rgb_distance
from glmimage.data.vocabulary import SPLITS, split_of, words_for


@cache
def combo_split(colour: str, cls: str, cell: str) -> str:
    return split_of(f"combo:{colour}|{cls}|{cell}")


class SplitPicker:
    """Draws words and object combinations for one sample under its split's rules."""

    def __init__(self, rng: random.Random, split: str, own_share: float = 0.5):
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        self.rng = rng
        self.split = split
        self.own_share = own_share
        self.own_word_used = False
        self.own_combo_used = False

    @property
    def held_out(self) -> bool:
        return self.split != "train"

    def word(self, category: str) -> str:
        own, shared = words_for(category, self.split)
        if not self.held_out:
            return self.rng.choice(own)
        if own and (not self.own_word_used or self.rng.random() < self.own_share):
            self.own_word_used = True
            return self.rng.choice(own)
        return self.rng.choice(shared)

    def combo(self, cell: str, classes: tuple[str, ...], avoid: list[RGB]) -> tuple[str, str] | None:
        """(class, colour name) for an object in `cell`, far from every colour in `avoid`; None if none fits."""
        colours = [
            c.name for c in OBJECT_COLOURS if all(rgb_distance(c.rgb, a) >= MIN_OBJECT_SEPARATION for a in avoid)
        ]
        candidates = [(k, c) for k in classes for c in colours]
        if not candidates:
            return None
        owned = [(k, c) for k, c in candidates if combo_split(c, k, cell) == self.split]
        if not self.held_out:
            return self.rng.choice(owned) if owned else None
        shared = [(k, c) for k, c in candidates if combo_split(c, k, cell) == "train"]
        if owned and (not self.own_combo_used or self.rng.random() < self.own_share * 0.5):
            self.own_combo_used = True
            return self.rng.choice(owned)
        return self.rng.choice(shared) if shared else None
