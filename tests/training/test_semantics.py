"""Per-cell labels from the world's ground truth and the code probe (`training/semantics.py`)."""

from __future__ import annotations

import pytest
from PIL import Image

from glmimage.data.sample import ObjectItem, Sample, TextItem
from glmimage.training.semantics import (
    COLOUR_LABELS,
    SHAPE_LABELS,
    cell_labels,
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
