"""Training data from the synthetic world, addressed by stream position so the order is a function of the step.

Position p of the train stream is the next text-to-image sample or, for a share `edit_fraction` of positions, the
next image-to-image sample (`stream_slot`). The world renders sample i as a pure function of (seed, split, i), so
every process and every resumed run sees exactly the same data at the same step, and processes read disjoint
positions (`Run.positions`). Images are square (`image_size`): a batch stacks them without padding.

The planner and the tokenizer read images through the vision processor's geometry (grid = side / 32: the
processor halves the image, then 16-pixel patches), the decoder through the VAE (8x) and its 1/16 DiT grid.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
from PIL import Image

from glmimage.data import World, WorldConfig
from glmimage.engine.planner import VQ_PATCH, vq_codes, vq_inputs  # noqa: F401 - the stages read codes through data
from glmimage.engine.references import fit_reference
from glmimage.training.common import derived_seed


def make_world(cfg, split: str = "train") -> World:
    kinds = {"kinds": tuple(cfg.world_kinds)} if getattr(cfg, "world_kinds", ()) else {}
    return World(WorldConfig(size=cfg.image_size, seed=cfg.world_seed, split=split, **kinds))


def is_edit_position(position: int, edit_fraction: float) -> bool:
    """Deterministic interleaving: positions whose fractional share crosses an integer are edits."""
    if edit_fraction <= 0:
        return False
    return int((position + 1) * edit_fraction) > int(position * edit_fraction)


def stream_slot(position: int, edit_fraction: float) -> tuple[str, int]:
    """("t2i" | "edit", ordinal): the stream interleaves two dense sequences, text-to-image samples and edits,
    so a cache of the first N of either kind serves any edit_fraction."""
    edits_before = int(position * edit_fraction)
    if is_edit_position(position, edit_fraction):
        return "edit", edits_before
    return "t2i", position - edits_before


def dataset_index(ordinal: int, size: int, seed: int) -> int:
    """Index into a finite set of `size` items (a fresh permutation every epoch); size 0 = an endless stream."""
    if size == 0:
        return ordinal
    epoch, offset = divmod(ordinal, size)
    return _epoch_order(size, seed, epoch)[offset]


@functools.lru_cache(maxsize=4)
def _epoch_order(size: int, seed: int, epoch: int) -> list[int]:
    gen = torch.Generator().manual_seed(derived_seed(seed, "epoch", epoch))
    return torch.randperm(size, generator=gen).tolist()


@dataclass
class TrainItem:
    """One training example in the terms every stage uses."""

    prompt: str  # the prompt (text-to-image) or the instruction (image-to-image)
    image: Image.Image  # the target
    references: list[Image.Image]  # empty for text-to-image; fitted to valid sizes as the engine fits them
    texts: list[str]  # ground-truth texts visible in the target (for OCR metrics)
    text_boxes: tuple[tuple[int, int, int, int], ...] | list = ()  # their (x0, y0, x1, y1) pixel boxes
    char_boxes: list = ()  # per text, one box per character (the renderer's advance spans)


def world_item(world: World, kind: str, index: int, limits=None) -> TrainItem:
    """World sample `index` of a kind ("t2i" or "edit"); references fitted to the model's valid sizes."""
    if kind == "edit":
        edit = world.edit_sample(index)
        prompt, target = edit.instruction, edit.target
        refs = [fit_reference(r, limits) if limits is not None else r for r in edit.refs]
    else:
        target = world.sample(index)
        prompt, refs = target.prompt, []
    texts = target.texts
    return TrainItem(prompt, target.image, refs, [t.text for t in texts], [t.box for t in texts],
                     [list(t.char_boxes) for t in texts])


def text_mask(boxes, width: int, height: int, cell: int) -> torch.Tensor:
    """(height/cell, width/cell) bool map of the cells any text box touches (a box is widened to whole cells)."""
    mask = torch.zeros(height // cell, width // cell, dtype=torch.bool)
    for x0, y0, x1, y1 in boxes:
        mask[max(0, y0) // cell: -(-min(y1, height) // cell), max(0, x0) // cell: -(-min(x1, width) // cell)] = True
    return mask


def vae_pixels(pipe, images: list[Image.Image]) -> torch.Tensor:
    """(B, 3, H, W) in [-1, 1], as the pipeline's VaeImageProcessor prepares images (and the engine references)."""
    return torch.cat([pipe.image_processor.preprocess(img, height=img.height, width=img.width) for img in images])


def sized(image: Image.Image, size: int) -> Image.Image:
    """Centre-crop to a square and resize to `size` (user folders for LoRA)."""
    side = min(image.size)
    left, top = (image.width - side) // 2, (image.height - side) // 2
    square = image.crop((left, top, left + side, top + side))
    return square if square.size == (size, size) else square.resize((size, size), Image.Resampling.BICUBIC)
