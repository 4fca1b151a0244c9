"""Ground-truth plans: the decoder measured alone, from the VQ codes of the world's own render."""

from __future__ import annotations

import numpy as np
import pytest

from glmimage.data.config import WorldConfig
from glmimage.data.world import World
from glmimage.evaluation.engine_render import EngineRenderer, SamplingConfig


@pytest.fixture(scope="module")
def sample():
    return World(WorldConfig(size=128, split="test")).sample(0)


def test_ground_truth_plans_decode_the_renders_own_codes(tiny_dir, sample):
    from glmimage.engine import Engine
    from glmimage.engine.planner import target_grids, vq_codes

    engine = Engine.from_pretrained(str(tiny_dir))
    truth = EngineRenderer(engine, SamplingConfig(steps=2, seed=3, plans="ground-truth"))
    plan = truth.true_plan(sample)
    grid = target_grids(128, 128)[0]
    pipe = engine.pipe
    assert plan.grid == grid and plan.preview_tokens is None
    assert plan.target_tokens.equal(vq_codes(pipe.vision_language_encoder, pipe.processor.image_processor,
                                             [sample.image], grid)[0])
    image = truth(sample)
    expected = engine.decode(plan, seed=3 + sample.index, steps=2).images[0]
    assert np.array_equal(np.asarray(image), np.asarray(expected))
    sampled = EngineRenderer(engine, SamplingConfig(steps=2, seed=3))(sample)
    assert sampled.size == image.size and not np.array_equal(np.asarray(sampled), np.asarray(image))


def test_plan_source_is_checked():
    with pytest.raises(ValueError, match="plans must be one of"):
        SamplingConfig(plans="oracle")


def test_ground_truth_edit_plans_keep_the_references_and_take_the_targets_codes(tiny_dir):
    from glmimage.engine import Engine
    from glmimage.engine.planner import vq_codes

    es = next(e for e in map(World(WorldConfig(size=128, split="test")).edit_sample, range(8)) if e.local)
    engine = Engine.from_pretrained(str(tiny_dir))
    truth = EngineRenderer(engine, SamplingConfig(steps=2, seed=3, plans="ground-truth"))
    plan = truth.true_edit_plan(es)
    sampled_plan = engine.plan(es.instruction, 128, 128, images=es.refs)
    pipe = engine.pipe
    codes = vq_codes(pipe.vision_language_encoder, pipe.processor.image_processor, [es.target.image], plan.grid)[0]
    assert plan.target_tokens.equal(codes) and not plan.target_tokens.equal(sampled_plan.target_tokens)
    assert all(a.equal(b) for a, b in zip(plan.reference_tokens, sampled_plan.reference_tokens, strict=True))
    image = truth.edit(es)
    expected = engine.decode(plan, seed=3 + es.index, steps=2).images[0]
    assert np.array_equal(np.asarray(image), np.asarray(expected))
    sampled = EngineRenderer(engine, SamplingConfig(steps=2, seed=3)).edit(es)
    assert not np.array_equal(np.asarray(sampled), np.asarray(image))
