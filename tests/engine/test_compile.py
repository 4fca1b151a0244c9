"""`EngineOptions(compile=True)`: the compiled planner step and DiT give the eager engine's plans and images.

Tolerance as for the reference (1e-5 on float pixels): inductor reorders float sums, so bit-equality is not claimed.
Plans are compared token for token: a logit that moved by ~1e-6 would have to land a sample exactly on a
boundary of the sampling distribution to change a token.
"""

import numpy as np
import pytest
import torch
from PIL import Image

TOL = 1e-5


@pytest.fixture(scope="module")
def compiled_engine(tiny_dir):
    from glmimage.engine import Engine
    from glmimage.engine.options import EngineOptions
    from glmimage.models.load import load_model

    return Engine(load_model(str(tiny_dir)), options=EngineOptions(compile=True))


def test_compiled_engine_equals_eager_for_text_to_image(compiled_engine, tiny_engine):
    prompts = ['A poster titled "SUMMER SALE"', "A banner 'OPEN' and \"EVERY DAY\""]
    for _ in range(2):  # the second call runs the graphs compiled by the first
        ours = compiled_engine.generate(prompts, width=64, height=96, steps=3, guidance=1.5, seed=7, output_type="np")
    eager = tiny_engine.generate(prompts, width=64, height=96, steps=3, guidance=1.5, seed=7, output_type="np")
    for a, b in zip(ours.plans, eager.plans):
        assert torch.equal(a.preview_tokens, b.preview_tokens)
        assert torch.equal(a.target_tokens, b.target_tokens)
    assert max(np.abs(x - y).max() for x, y in zip(ours.images, eager.images)) < TOL
    assert compiled_engine._decoder_forward is not None and compiled_engine._planner_step is not None


def test_compiled_engine_equals_eager_for_edits(compiled_engine, tiny_engine):
    rng = np.random.default_rng(0)
    refs = [Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)) for _ in range(2)]
    ours = compiled_engine.edit("make it blue", images=refs, steps=2, seed=3, guidance=3.0, output_type="np")
    eager = tiny_engine.edit("make it blue", images=refs, steps=2, seed=3, guidance=3.0, output_type="np")
    assert torch.equal(ours.plans[0].target_tokens, eager.plans[0].target_tokens)
    assert np.abs(ours.images[0] - eager.images[0]).max() < TOL


def test_static_cache_is_sized_in_buckets(compiled_engine):
    from glmimage.engine.fast_planner import CACHE_BUCKET

    cache = compiled_engine._planner_step.new_cache(CACHE_BUCKET + 1)
    assert cache.get_max_length() == 2 * CACHE_BUCKET


def test_unguarded_planner_steps_keep_each_plan_on_its_own_graph(compiled_engine, tiny_engine):
    """Guards are checked on a plan's first token only: plans whose static caches differ in size (different graphs)
    must still each equal the eager plan when they alternate."""
    prompt = 'A poster titled "SUMMER SALE"'
    for width, height in [(64, 64), (512, 512), (64, 64)]:
        ours = compiled_engine.plan(prompt, width=width, height=height, seed=5)
        eager = tiny_engine.plan(prompt, width=width, height=height, seed=5)
        assert torch.equal(ours.target_tokens, eager.target_tokens)
        assert torch.equal(ours.preview_tokens, eager.preview_tokens)


def test_transposed_weight_storage_keeps_values_and_results():
    from glmimage.engine.fast_planner import store_linear_weights_transposed

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(16, 24), torch.nn.ReLU(), torch.nn.Linear(24, 8, bias=False))
    before = [p.detach().clone() for p in model.parameters()]
    x = torch.randn(3, 16)
    expected = model(x)
    store_linear_weights_transposed([model])
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    assert model[0].weight.t().is_contiguous() and model[2].weight.t().is_contiguous()
    assert torch.allclose(model(x), expected, atol=1e-6)


def test_compile_refuses_what_it_cannot_serve(tiny_dir):
    from glmimage.engine import Engine
    from glmimage.engine.options import EngineOptions
    from glmimage.models.load import load_model

    with pytest.raises(ValueError, match="step cache"):
        EngineOptions(compile=True, step_cache_threshold=0.05)
    with pytest.raises(ValueError, match="sequential"):
        Engine(load_model(str(tiny_dir), sequential=True), options=EngineOptions(compile=True))
    with pytest.raises(ValueError, match="offload"):
        Engine(load_model(str(tiny_dir)), options=EngineOptions(compile=True), offload=True)


def test_prompts_of_similar_text_length_share_the_compiled_graphs(compiled_engine):
    from torch._dynamo.utils import counters

    compiled_engine.generate('A poster titled "SPRING"', width=64, height=64, steps=1, seed=0)
    graphs = counters["stats"]["unique_graphs"]
    compiled_engine.generate('A poster titled "AUTUMN FAIR"', width=64, height=64, steps=1, seed=0)
    assert counters["stats"]["unique_graphs"] == graphs  # glyph tokens padded to one bucket: no new graph


def test_glyph_padding_to_a_multiple_is_masked():
    from glmimage.engine.glyphs import pad_batch

    text, mask = pad_batch([torch.ones(1, 5, 3), torch.ones(1, 33, 3)], multiple_of=32)
    assert text.shape == (2, 64, 3) and mask.sum(dim=1).tolist() == [5, 33]
    assert bool(mask[:, -5:].all()) and not bool(mask[0, :-5].any())  # left padding, real tokens last
