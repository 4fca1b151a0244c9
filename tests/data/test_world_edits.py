"""Edit samples: local edits change only their mask; every kind builds and says what it wants."""

from __future__ import annotations

import numpy as np
import pytest

from glmimage.data import EDIT_KINDS, World, WorldConfig

WORLD = World(WorldConfig(split="test"))


@pytest.mark.parametrize("kind", EDIT_KINDS)
def test_edit_kind_builds_and_is_deterministic(kind):
    a = WORLD.edit_sample(2, kind=kind)
    b = World(WorldConfig(split="test")).edit_sample(2, kind=kind)
    assert a.kind == kind and a.instruction == b.instruction
    assert np.array_equal(np.asarray(a.target.image), np.asarray(b.target.image))
    assert a.mask.shape == (a.target.height, a.target.width) and a.mask.dtype == bool
    assert 1 <= len(a.refs) <= 3
    if a.local:
        src, tgt = np.asarray(a.refs[0]), np.asarray(a.target.image)
        outside = ~a.mask
        assert a.mask.any() and outside.mean() > 0.5
        assert np.array_equal(src[outside], tgt[outside])  # nothing outside the mask moved
        assert not np.array_equal(src[a.mask], tgt[a.mask])  # and something inside did
    else:
        assert a.mask.all()
    gt = a.ground_truth()
    assert gt["instruction"] == a.instruction and gt["target"]["texts"]


def test_text_replacement_target_holds_the_new_text_only():
    for i in range(4):
        es = WORLD.edit_sample(i, kind="text_replace")
        texts = [t.text for t in es.target.texts]
        assert es.edit["new"] in texts and es.edit["old"] not in texts
        assert f'"{es.edit["old"]}"' in es.instruction and f'"{es.edit["new"]}"' in es.instruction


def test_object_edits_match_their_targets():
    rec = WORLD.edit_sample(1, kind="recolour")
    assert any(o.colour == rec.edit["new"] and list(o.box) == rec.edit["box"] for o in rec.target.objects)
    rem = WORLD.edit_sample(1, kind="remove")
    assert not any(o.colour == rem.edit["colour"] and o.cls == rem.edit["cls"] for o in rem.target.objects)
    add = WORLD.edit_sample(1, kind="add")
    assert any(o.colour == add.edit["colour"] and o.cls == add.edit["cls"] for o in add.target.objects)
    mv = WORLD.edit_sample(1, kind="move")
    moved = [o for o in mv.target.objects if o.colour == mv.edit["colour"] and o.cls == mv.edit["cls"]]
    assert moved and moved[0].cell == mv.edit["cell"]


def test_composition_has_one_reference_per_subject():
    for i in range(3):
        es = WORLD.edit_sample(i, kind="compose")
        assert len(es.refs) == len(es.target.subjects) == len(es.edit["subjects"]) in (2, 3)
        for k in range(len(es.refs)):
            assert f"image {k + 1}" in es.instruction


def test_restyle_changes_the_background_to_the_requested_one():
    es = WORLD.edit_sample(0, kind="restyle")
    assert es.target.layout["background"] == es.edit["background"]
    assert es.edit["background"] in es.instruction
    assert [t.text for t in es.target.texts]  # texts are kept
