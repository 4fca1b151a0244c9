import numpy as np
import pytest
from PIL import Image

from glmimage.errors import InputError
from glmimage.policy import (
    IMAGE_TO_IMAGE,
    TEXT_TO_IMAGE,
    GenerationRequest,
    dispatch,
    load_policy,
    route,
    validate_for_mode,
)
from glmimage.prompts.sizes import limits_for_model


def ref(size=(96, 64), colour="#1B2A49"):
    return Image.new("RGB", size, colour)


def test_request_validates_its_fields():
    with pytest.raises(InputError, match="prompt is empty"):
        GenerationRequest(prompt="  ")
    with pytest.raises(InputError, match="steps must be an integer"):
        GenerationRequest(prompt="x", steps=2.5)
    with pytest.raises(InputError, match="reference 2 is not a non-empty image"):
        GenerationRequest(prompt="x", references=[ref(), "cat.png"])
    r = GenerationRequest(prompt="x", references=[ref()])
    assert isinstance(r.references, tuple) and r.params()["seed"] is None
    with pytest.raises(InputError, match="unknown request fields"):
        r.with_params(cfg=3)


def test_route_by_references():
    assert route(GenerationRequest(prompt="x")) == TEXT_TO_IMAGE
    assert route(GenerationRequest(prompt="x", references=(ref(),))) == IMAGE_TO_IMAGE


def test_each_mode_is_validated_and_sized():
    limits = limits_for_model("nano")
    t2i = validate_for_mode(GenerationRequest(prompt="x"), limits)
    assert (t2i.width, t2i.height) == (256, 256)
    i2i = validate_for_mode(GenerationRequest(prompt="x", references=(ref((600, 400)),)), limits)
    assert i2i.width > i2i.height and (i2i.width, i2i.height) != (256, 256)  # follows the reference
    asked = validate_for_mode(GenerationRequest(prompt="x", width=256, height=384, references=(ref((600, 400)),)),
                              limits)
    assert (asked.width, asked.height) == (256, 384)
    with pytest.raises(InputError, match="1 to 4 reference images, got 5"):
        validate_for_mode(GenerationRequest(prompt="x", references=tuple(ref() for _ in range(5))), limits)
    with pytest.raises(InputError, match=r"width=1024 is not a valid size.*\[128, 512\]"):
        validate_for_mode(GenerationRequest(prompt="x", width=1024, height=256), limits)


def test_dispatch_runs_both_modes_on_the_tiny_engine(tiny_engine):
    policy = load_policy()
    t2i = policy.apply(GenerationRequest(prompt='a poster "GO"'), {"steps": 2, "seed": 3, "size": "96x64"})
    res = dispatch(tiny_engine, t2i)
    meta = res.metadata[0]
    assert meta["mode"] == "text-to-image" and (meta["width"], meta["height"]) == (96, 64) and meta["seed"] == 3
    assert meta["steps"] == 2 and meta["guidance"] == 1.5 and meta["glyph_texts"] == ["GO"]
    direct = tiny_engine.generate('a poster "GO"', width=96, height=64, steps=2, guidance=1.5, seed=3)
    assert np.array_equal(np.asarray(res.images[0]), np.asarray(direct.images[0]))

    i2i = policy.apply(GenerationRequest(prompt='make it say "NEW"', references=(ref((96, 64)),)),
                       {"steps": 2, "seed": 1})
    res = dispatch(tiny_engine, i2i)
    assert res.metadata[0]["mode"] == "image-to-image" and res.images[0].size == (96, 64)
    assert res.metadata[0]["num_references"] == 1
