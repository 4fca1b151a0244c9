"""`EngineOptions(compile=True)`: the compiled planner step and DiT give the eager engine's plans and images.

Tolerance as for the reference (1e-5 on float pixels): inductor reorders float sums, so bit-equality is not claimed.
Plans are compared token for token: a logit that moved by ~1e-6 would have to land a sample exactly on a
boundary of the sampling distribution to change a token.
"""

import numpy as np
import pytest
import torch
from PIL import Image

# Compiling costs tens of seconds per shape: left out of `make test-fast`, run by `make test`.
pytestmark = pytest.mark.slow

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


def _packed_linears(compile_fn) -> int:
    """How many linear weights inductor prepacked (only frozen graphs pack them) when `compile_fn` compiled a layer."""
    from torch._dynamo.utils import counters

    counters.clear()
    layer = torch.nn.Linear(8, 4)
    with torch.no_grad():
        x = torch.randn(3, 8)
        assert torch.allclose(compile_fn(layer)(x), layer(x), atol=1e-6)
    return counters["inductor"]["mkldnn_linear_weight_pack_matcher_count"]


def test_compile_frozen_freezes_where_the_option_alone_does_not():
    from glmimage.engine.inductor import compile_frozen

    assert _packed_linears(lambda m: torch.compile(m, options={"freezing": True})) == 0  # torch 2.13: a no-op
    assert _packed_linears(compile_frozen) == 1


def test_compile_frozen_gives_the_layers_results():
    from glmimage.engine.inductor import compile_frozen

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(16, 64), torch.nn.GELU(approximate="tanh"), torch.nn.Linear(64, 16))
    x = torch.randn(5, 16) * 3
    with torch.no_grad():
        assert torch.allclose(compile_frozen(model)(x), model(x), atol=1e-5)


def test_draw_one_draws_what_multinomial_draws():
    from glmimage.engine.fast_planner import draw_one

    for seed in range(200):
        torch.manual_seed(seed)
        logits = torch.randn(2, 300) * (1 + seed % 4)
        logits[:, 100:] = float("-inf")  # as the codes-only mask leaves them
        probs = torch.softmax(logits, dim=-1)
        state = torch.get_rng_state()
        expected, after_expected = torch.multinomial(probs, 1), torch.rand(1)
        torch.set_rng_state(state)
        assert torch.equal(draw_one(probs), expected)
        assert torch.equal(torch.rand(1), after_expected)  # the generator moved on alike


def test_split_processors_keeps_id_readers_in_python():
    from tqdm.auto import tqdm
    from transformers import TemperatureLogitsWarper

    from glmimage.engine.fast_planner import split_processors
    from glmimage.engine.planner import CodesOnlyLogitsProcessor, ProgressLogitsProcessor, ReferenceCopyLogitsProcessor

    codes, tick = CodesOnlyLogitsProcessor(16), ProgressLogitsProcessor(tqdm(disable=True))
    temperature = TemperatureLogitsWarper(0.9)
    assert split_processors([codes, tick, temperature]) == ([codes, temperature], [tick])
    assert split_processors([codes, ReferenceCopyLogitsProcessor(torch.zeros(4, dtype=torch.long), 3, 5.0)]) is None


def test_packed_gqa_attention_equals_the_library_sdpa():
    from transformers.integrations.sdpa_attention import repeat_kv

    from glmimage.engine.fast_planner import packed_gqa_sdpa

    torch.manual_seed(0)
    module = torch.nn.Module()
    module.num_key_value_groups, module.is_causal = 2, True
    query, key, value = torch.randn(1, 4, 1, 8), torch.randn(1, 2, 12, 8), torch.randn(1, 2, 12, 8)
    mask = torch.ones(1, 1, 1, 12, dtype=torch.bool)
    mask[..., 9:] = False  # static cache slots not written yet
    ours, _ = packed_gqa_sdpa(module, query, key, value, mask, scaling=0.3)
    plain = torch.nn.functional.scaled_dot_product_attention(query, repeat_kv(key, 2), repeat_kv(value, 2),
                                                             attn_mask=mask, scale=0.3)
    assert ours.shape == (1, 1, 4, 8)
    assert torch.allclose(ours, plain.transpose(1, 2), atol=1e-6)
    prefill, _ = packed_gqa_sdpa(module, torch.randn(1, 4, 3, 8), key[:, :, :3], value[:, :, :3], None, scaling=0.3)
    assert prefill.shape == (1, 3, 4, 8)  # longer queries: the library's path
