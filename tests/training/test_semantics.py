"""Per-cell labels from the world's ground truth and the code probe (`training/semantics.py`)."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from glmimage.data.sample import ObjectItem, Sample, TextItem
from glmimage.training.semantics import (
    COLOUR_LABELS,
    SHAPE_LABELS,
    cell_labels,
    character_cells,
    character_probe,
    character_rows,
    code_probe,
    linear_probe,
    object_features,
    object_rows,
)


def design(objects, texts=()) -> Sample:
    return Sample(0, "train", "poster", Image.new("RGB", (64, 64)), "p", list(texts), list(objects), {})


def test_cell_labels_take_the_covering_object_then_text_then_none():
    star = ObjectItem("star", "red", (0, 0, 32, 32))
    sliver = ObjectItem("circle", "blue", (32, 0, 36, 32))  # an eighth of cell (0, 1): below MIN_COVER
    text = TextItem("HI", (32, 32, 64, 64))
    over_text = ObjectItem("ring", "green", (0, 32, 30, 64))  # covers most of cell (1, 0), which text touches less
    shape, colour = cell_labels(design([star, sliver, over_text], [text, TextItem("x", (20, 40, 32, 60))]), (2, 2))
    names = [[SHAPE_LABELS[i] for i in row] for row in shape.tolist()]
    assert names == [["star", "none"], ["ring", "text"]]
    assert [[COLOUR_LABELS[i] for i in row] for row in colour.tolist()] == [["red", "none"], ["green", "none"]]


def test_code_probe_scores_naive_bayes_against_the_majority():
    train = [((1, 2), "star", "red"), ((1, 3), "star", "red"), ((4, 2), "circle", "red"), ((5,), "bar", "blue"),
             ((5, 6), "bar", "blue"), ((6,), "bar", "blue"), ((7,), "bar", "blue")]  # majorities: bar, blue
    validation = [((1, 2), "star", "red"), ((4,), "circle", "blue"), ((5, 9), "bar", "blue"), ((9,), "star", "blue")]
    probe = code_probe(train, validation)
    # code 1 only ever lies on stars, code 4 on the circle, 5 on bars; 9 is unseen (the prior decides: bar, blue)
    assert probe["probe_class_accuracy"] == 0.75 and probe["probe_class_baseline"] == 0.25
    assert probe["probe_colour_accuracy"] == 0.75  # code 4 lies on red only
    assert probe["probe_colour_baseline"] == 0.75
    assert probe["probe_codes_seen"] == 4 / 6 and probe["probe_objects"] == 4
    with pytest.raises(ValueError):
        code_probe([], validation)


def test_object_rows_read_the_codes_of_every_cell_an_object_covers():
    import torch

    sample = design([ObjectItem("heart", "pink", (40, 40, 60, 60)), ObjectItem("bar", "gray", (0, 0, 20, 64)),
                     ObjectItem("star", "red", (28, 28, 36, 36))])  # the star covers no cell's quarter: its centre
    codes = torch.tensor([[5, 6, 7, 8]])  # grid 2x2: (0,0)=5 (0,1)=6 (1,0)=7 (1,1)=8
    assert object_rows([sample], codes, (2, 2)) == [((8,), "heart", "pink"), ((5, 7), "bar", "gray"),
                                                    ((8,), "star", "red")]


def test_object_features_average_the_cells_an_object_covers():
    import torch

    sample = design([ObjectItem("bar", "gray", (0, 0, 20, 64)), ObjectItem("heart", "pink", (40, 40, 60, 60))])
    features = torch.arange(8.0).view(1, 2, 2, 2)  # channel 0: cells 0..3, channel 1: cells 4..7
    assert object_features([sample], features).tolist() == [[1.0, 5.0], [3.0, 7.0]]  # cells (0,0),(1,0); (1,1)


def test_linear_probe_reads_a_separable_label_and_not_noise():
    import torch

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(200, 8, generator=gen)
    labels = ["a" if v > 0 else "b" for v in x[:, 3].tolist()]
    assert linear_probe(x[:150], labels[:150], x[150:], labels[150:]) >= 0.95
    noise = ["a" if v > 0 else "b" for v in torch.randn(200, generator=gen).tolist()]
    assert linear_probe(x[:150], noise[:150], x[150:], noise[150:]) < 0.75


def test_character_cells_take_the_character_covering_most_of_each_cell():
    # "AB C" on a 4x4 grid of 16 px cells: A covers cell (0, 0), B cell (0, 1) and an eighth of (0, 2) (below
    # MIN_COVER), the space (which covers the rest of (0, 2)) is skipped, C covers (0, 3); a big "Z" below spans
    # rows 2-3 of column 0 (one box per character: each cell is the character's)
    boxes = ((0, 0, 16, 16), (16, 0, 34, 16), (34, 0, 48, 16), (48, 0, 64, 16))
    texts = [TextItem("AB C", (0, 0, 64, 16), char_boxes=boxes),
             TextItem("Z", (0, 32, 16, 64), char_boxes=((0, 32, 16, 64),))]
    cells = character_cells(design([], texts), (4, 4))
    assert cells == {(0, 0): "A", (0, 1): "B", (0, 3): "C", (2, 0): "Z", (3, 0): "Z"}
    rows = character_rows([design([], texts)], torch.arange(16).view(1, 16), (4, 4))
    assert sorted(rows) == [((0,), "A"), ((1,), "B"), ((3,), "C"), ((8,), "Z"), ((12,), "Z")]


def test_character_probe_reads_codes_that_name_letters_and_not_random_ones():
    letters = "ABCDEFGH"
    gen = torch.Generator().manual_seed(0)
    draws = [letters[i] for i in torch.randint(0, len(letters), (400,), generator=gen).tolist()]
    telling = [((letters.index(ch) * 3 + k % 3,), ch) for k, ch in enumerate(draws)]  # 3 codes per letter
    random = [((int(c),), ch) for c, ch in zip(torch.randint(0, 24, (400,), generator=gen).tolist(), draws)]
    good = character_probe(telling[:300], telling[300:])
    bad = character_probe(random[:300], random[300:])
    assert good["probe_char_accuracy"] == 1.0 and good["probe_char_cells"] == 100
    assert bad["probe_char_accuracy"] < bad["probe_char_baseline"] + 0.15
    lower = [(codes, ch.lower()) for codes, ch in telling[300:]]
    assert character_probe(telling[:300], lower)["probe_char_accuracy_caseless"] == 1.0
    with pytest.raises(ValueError):
        character_probe([], telling)
