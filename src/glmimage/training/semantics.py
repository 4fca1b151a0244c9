"""What the semantic-VQ codes know about a design: per-cell labels from the world's ground truth, and a probe.

A design's objects decide what its picture shows; the planner only writes codes and the DiT reads nothing else about
the objects, so a shape or colour the codes do not carry cannot be drawn, whatever the planner and DiT learn. The
probe measures it: the codes of the cells an object covers predict its class and colour by naive Bayes fitted on
train designs (how often each code falls on objects of each label), scored on validation designs next to always
answering the most frequent label. A shape shows at its border, so the probe reads every cell the object covers,
not only its centre (the inside of a filled star and of a filled circle look alike). The same labels, per cell, are
what the tokenizer's optional semantic loss predicts.
"""

from __future__ import annotations

import functools
import math
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence

import torch

from glmimage.data.palette import OBJECT_COLOURS
from glmimage.data.sample import Sample
from glmimage.data.shapes import ALL_CLASSES

NONE = "none"
SHAPE_LABELS = (NONE, "text") + ALL_CLASSES  # a cell shows nothing we label, text, or an object of a class
COLOUR_LABELS = (NONE,) + tuple(c.name for c in OBJECT_COLOURS)  # the colour of the object in the cell
MIN_COVER = 0.25  # share of a cell a box must cover to label it


def cell_cover(box, r: int, c: int, sample: Sample, grid: tuple[int, int]) -> float:
    """Share of planner cell (r, c) that a box covers."""
    cell_h, cell_w = sample.height / grid[0], sample.width / grid[1]
    x0, y0, x1, y1 = box
    dx = min(x1, (c + 1) * cell_w) - max(x0, c * cell_w)
    dy = min(y1, (r + 1) * cell_h) - max(y0, r * cell_h)
    return max(dx, 0) * max(dy, 0) / (cell_w * cell_h)


def cell_labels(sample: Sample, grid: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """(h, w) long tensors: shape and colour label ids per planner cell. A cell takes the object covering most of
    it (at least MIN_COVER of its area), else text if a text box covers MIN_COVER of it, else none."""
    h, w = grid
    shape = torch.zeros(h, w, dtype=torch.long)
    colour = torch.zeros(h, w, dtype=torch.long)
    best = torch.zeros(h, w)
    cover = functools.partial(cell_cover, sample=sample, grid=grid)
    for r in range(h):
        for c in range(w):
            if any(cover(t.box, r, c) >= MIN_COVER for t in sample.texts):
                shape[r, c] = SHAPE_LABELS.index("text")
            for obj in sample.objects:
                share = cover(obj.box, r, c)
                if share >= MIN_COVER and share > best[r, c] and obj.colour in COLOUR_LABELS:
                    best[r, c] = share
                    shape[r, c] = SHAPE_LABELS.index(obj.cls)
                    colour[r, c] = COLOUR_LABELS.index(obj.colour)
    return shape, colour


Row = tuple[tuple[int, ...], str, str]  # (codes of an object's cells, its class, its colour)


def object_cells(sample: Sample, box, grid: tuple[int, int]) -> list[tuple[int, int]]:
    """The planner cells a box covers (MIN_COVER of the cell or more); a box too small for any: its centre's."""
    h, w = grid
    cells = [(r, c) for r in range(h) for c in range(w) if cell_cover(box, r, c, sample, grid) >= MIN_COVER]
    if not cells:
        x0, y0, x1, y1 = box
        r = min(int((y0 + y1) / 2 * h / sample.height), h - 1)
        cells = [(r, min(int((x0 + x1) / 2 * w / sample.width), w - 1))]
    return cells


def object_rows(samples: Sequence[Sample], codes: torch.Tensor, grid: tuple[int, int]) -> list[Row]:
    """(codes of the cells the object covers, class, colour) for every object of the samples; codes (B, h*w)."""
    rows = []
    for sample, sample_codes in zip(samples, codes.view(len(samples), *grid)):
        for obj in sample.objects:
            cells = object_cells(sample, obj.box, grid)
            rows.append((tuple(int(sample_codes[r, c]) for r, c in cells), obj.cls, obj.colour))
    return rows


def object_features(samples: Sequence[Sample], features: torch.Tensor) -> torch.Tensor:
    """(objects, C): each object's mean feature over the cells it covers, objects in `object_rows` order;
    features (B, C, h, w) on the planner grid."""
    grid = tuple(features.shape[2:])
    return torch.stack([torch.stack([f[:, r, c] for r, c in object_cells(sample, obj.box, grid)]).mean(0)
                        for sample, f in zip(samples, features) for obj in sample.objects])


def linear_probe(train_x: torch.Tensor, train_y: list[str], val_x: torch.Tensor, val_y: list[str],
                 steps: int = 500, lr: float = 1e-2, weight_decay: float = 1e-3, seed: int = 0) -> float:
    """Validation accuracy of a softmax classifier fitted full-batch (Adam) on standardised train features: what a
    linear read-out of the features can tell, whatever a code lookup can."""
    labels = sorted(set(train_y))
    y = torch.tensor([labels.index(v) for v in train_y])
    mean, std = train_x.mean(0), train_x.std(0) + 1e-6
    gen = torch.Generator().manual_seed(seed)
    weight = (torch.randn(train_x.shape[1], len(labels), generator=gen) * 0.01).requires_grad_()
    bias = torch.zeros(len(labels), requires_grad=True)
    opt = torch.optim.Adam([weight, bias], lr=lr, weight_decay=weight_decay)
    x = (train_x - mean) / std
    with torch.enable_grad():  # callers measure under no_grad
        for _ in range(steps):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(x @ weight + bias, y).backward()
            opt.step()
    with torch.no_grad():
        guess = (((val_x - mean) / std) @ weight + bias).argmax(1).tolist()
    return sum(labels[g] == v for g, v in zip(guess, val_y)) / len(val_y)


def naive_bayes(train: list[tuple[tuple[int, ...], str]], smoothing: float = 0.5) -> Callable[[tuple[int, ...]], str]:
    """A classifier of code tuples fitted on (codes, label) pairs: log p(label) + sum over the codes seen in training
    of log p(code | label), add-`smoothing` estimates."""
    prior = Counter(label for _, label in train)
    table: dict[int, Counter] = defaultdict(Counter)  # code -> label -> cells
    per_label: Counter = Counter()
    for codes, label in train:
        for code in codes:
            table[code][label] += 1
            per_label[label] += 1
    vocabulary = len(table)

    def log_posterior(codes: tuple[int, ...], label: str) -> float:
        return math.log(prior[label]) + sum(
            math.log((table[code][label] + smoothing) / (per_label[label] + smoothing * vocabulary))
            for code in codes if code in table)

    return lambda codes: max(sorted(prior), key=lambda label: log_posterior(codes, label))


def code_probe(train: list[Row], validation: list[Row], smoothing: float = 0.5) -> dict[str, float]:
    """Class and colour accuracy on `validation` rows of naive Bayes over each object's codes fitted on `train` rows,
    each next to the majority-label baseline; `probe_codes_seen`: share of validation codes that occur in train."""
    if not train or not validation:
        raise ValueError("the probe needs objects in both train and validation designs")
    out = {}
    for field, name in ((1, "class"), (2, "colour")):
        classify = naive_bayes([(row[0], row[field]) for row in train], smoothing)
        majority = Counter(row[field] for row in train).most_common(1)[0][0]
        out[f"probe_{name}_accuracy"] = sum(classify(row[0]) == row[field] for row in validation) / len(validation)
        out[f"probe_{name}_baseline"] = sum(majority == row[field] for row in validation) / len(validation)
    seen = {code for row in train for code in row[0]}
    codes = [code for row in validation for code in row[0]]
    out["probe_codes_seen"] = sum(code in seen for code in codes) / len(codes)
    out["probe_objects"] = float(len(validation))
    return out


# -- characters: do the codes say which letter fills a cell? ------------------------------------------------------
CharRow = tuple[tuple[int, ...], str]  # (the code of a cell, the character covering most of it)


def character_cells(sample: Sample, grid: tuple[int, int]) -> dict[tuple[int, int], str]:
    """Planner cells that one character's box covers most of (at least MIN_COVER), with that character (spaces
    left out): where a plan would have to say which letter to draw."""
    h, w = grid
    best: dict[tuple[int, int], tuple[float, str]] = {}
    for text in sample.texts:
        for char, box in zip(text.text, text.char_boxes):
            if char.isspace():
                continue
            for r in range(h):
                for c in range(w):
                    share = cell_cover(box, r, c, sample, grid)
                    if share >= MIN_COVER and share > best.get((r, c), (0.0, ""))[0]:
                        best[(r, c)] = (share, char)
    return {cell: char for cell, (_, char) in best.items()}


def character_rows(samples: Sequence[Sample], codes: torch.Tensor, grid: tuple[int, int]) -> list[CharRow]:
    """(code, character) of every character cell of the samples; codes (B, h*w)."""
    rows: list[CharRow] = []
    for sample, sample_codes in zip(samples, codes.view(len(samples), *grid)):
        for (r, c), char in character_cells(sample, grid).items():
            rows.append(((int(sample_codes[r, c]),), char))
    return rows


def character_features(samples: Sequence[Sample], features: torch.Tensor) -> torch.Tensor:
    """(cells, C): the feature of every character cell, in `character_rows` order; features (B, C, h, w)."""
    grid = (int(features.shape[2]), int(features.shape[3]))
    return torch.stack([f[:, r, c] for sample, f in zip(samples, features)
                        for (r, c) in character_cells(sample, grid)])


def character_probe(train: list[CharRow], validation: list[CharRow], smoothing: float = 0.5) -> dict[str, float]:
    """Character accuracy on `validation` cells of naive Bayes over their codes fitted on `train` cells, next to
    the majority character and to the accuracy ignoring letter case."""
    if not train or not validation:
        raise ValueError("the character probe needs text cells in both train and validation designs")
    classify = naive_bayes(list(train), smoothing)
    guesses = [classify(codes) for codes, _ in validation]
    majority = Counter(char for _, char in train).most_common(1)[0][0]
    n = len(validation)
    return {
        "probe_char_accuracy": sum(g == char for g, (_, char) in zip(guesses, validation)) / n,
        "probe_char_accuracy_caseless": sum(g.lower() == char.lower() for g, (_, char) in zip(guesses, validation)) / n,
        "probe_char_baseline": sum(majority == char for _, char in validation) / n,
        "probe_char_cells": float(n),
    }
