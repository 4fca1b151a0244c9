"""The object detector: finds every object on ground-truth renders, nothing on noise, and notices a wrong colour
or a wrong place."""

from __future__ import annotations

import copy

import numpy as np
from PIL import Image

from glmimage.data import KINDS, World, WorldConfig
from glmimage.data.design import Shape, render_design
from glmimage.evaluation.detector import check_objects, dominant_colour, label_image

WORLD = World(WorldConfig(split="test"))


def test_every_object_of_every_kind_is_found_on_ground_truth():
    checked = 0
    for i in range(2 * len(KINDS)):
        s = WORLD.sample(i)
        for c in check_objects(s.image, s.objects):
            assert c.correct, (s.key, c)
            checked += 1
    assert checked >= 20


def test_noise_has_no_objects():
    rng = np.random.default_rng(0)
    for i in range(len(KINDS)):
        s = WORLD.sample(i)
        noise = Image.fromarray(rng.integers(0, 256, (s.height, s.width, 3), dtype=np.uint8))
        assert not any(c.present for c in check_objects(noise, s.objects))


def test_wrong_colour_and_wrong_place_are_caught():
    design = WORLD.design(0, kind="poster")
    i = next(k for k, el in enumerate(design.elements) if isinstance(el, Shape))
    obj = render_design(design).objects[0]
    recoloured = copy.deepcopy(design)
    recoloured.elements[i].colour = "white" if obj.colour != "white" else "black"
    c = check_objects(render_design(recoloured).image, [obj])[0]
    assert c.present and not c.colour_ok and not c.correct

    moved = copy.deepcopy(design)
    x0, y0, x1, y1 = obj.box
    w = design.width
    dx = -x0 + 4 if (x0 + x1) / 2 > w / 2 else w - x1 - 4  # to the far side
    moved.elements[i].box = (x0 + dx, y0, x1 + dx, y1)
    c = check_objects(render_design(moved).image, [obj])[0]
    assert c.present and c.colour_ok and not c.position_ok and c.found_cell != obj.cell


def test_labels_and_background():
    s = WORLD.sample(3)
    labels = label_image(s.image)
    assert labels.shape == (s.height, s.width) and (labels >= 0).mean() > 0.9
    assert dominant_colour(s.image) == s.layout["background"]
