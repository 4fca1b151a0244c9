import io

import numpy as np
import pytest
import torch
from PIL import Image

from glmimage.engine import Engine, Plan
from glmimage.engine.planner import CodesOnlyLogitsProcessor, make_plan, target_grids
from glmimage.errors import InputError


def test_same_seed_same_image_and_other_seed_other_image(tiny_engine):
    a = tiny_engine.generate('a poster "A"', width=64, height=64, steps=2, seed=1)
    b = tiny_engine.generate('a poster "A"', width=64, height=64, steps=2, seed=1)
    c = tiny_engine.generate('a poster "A"', width=64, height=64, steps=2, seed=2)
    assert np.array_equal(np.asarray(a.images[0]), np.asarray(b.images[0]))
    assert not np.array_equal(np.asarray(a.images[0]), np.asarray(c.images[0]))
    assert a.metadata[0]["plan_hash"] == b.metadata[0]["plan_hash"]


def test_plan_once_decode_many_equals_generate(tiny_engine):
    plan = tiny_engine.plan('a card "TEA"', width=96, height=64, seed=4)
    assert isinstance(plan, Plan) and plan.grid == (2, 3) and plan.preview_grid == target_grids(64, 96)[1]
    assert plan.preview_tokens.numel() == plan.preview_grid[0] * plan.preview_grid[1]
    record = plan.to_dict()
    assert record["hash"] == plan.hash and len(record["target_tokens"]) == 6 and record["grid"] == [2, 3]
    variants = tiny_engine.decode(plan, seed=4, steps=2, num_images=3)
    assert len(variants.images) == 3 and len({m["seed"] for m in variants.metadata}) == 3
    assert {m["plan_hash"] for m in variants.metadata} == {plan.hash}
    direct = tiny_engine.generate('a card "TEA"', width=96, height=64, steps=2, seed=4, num_images=3)
    for x, y in zip(variants.images, direct.images):
        assert np.array_equal(np.asarray(x), np.asarray(y))


def test_metadata_and_timings_per_stage(tiny_engine):
    r = tiny_engine.generate("a slide 'Q3 REPORT'", width=64, height=64, steps=2, guidance=2.0, seed=9)
    meta = r.metadata[0]
    assert meta["seed"] == 9 and meta["steps"] == 2 and meta["guidance"] == 2.0
    assert meta["glyph_texts"] == ["Q3 REPORT"] and meta["mode"] == "text-to-image"
    assert set(meta["timings"]) == {"planner", "decoder", "vae"} and meta["timings"]["planner"] > 0
    assert r.timings["total"] >= r.timings["decoder"] > 0


def test_edit_size_follows_the_first_reference(tiny_engine):
    ref = Image.new("RGB", (130, 64), (10, 200, 10))  # snapped to 128x64
    r = tiny_engine.edit("make it red", images=[ref], steps=1, seed=0)
    assert r.images[0].size == (128, 64)
    r = tiny_engine.edit("make it red", images=[ref], width=64, height=64, steps=1, seed=0)
    assert r.images[0].size == (64, 64)


@pytest.mark.parametrize("kwargs,match", [
    (dict(prompt=""), "prompt is empty"),
    (dict(prompt="   "), "prompt is empty"),
    (dict(prompt="x" * 5000), "limit is 2000"),
    (dict(width=100), "width=100 is not a valid size: use a multiple of 32 in \\[64, 512\\]"),
    (dict(width=32), "width=32 is not a valid size"),
    (dict(width=1024), "width=1024 is not a valid size"),
    (dict(width=64, height=320), "aspect ratio above 4:1"),
    (dict(steps=0), "steps must be"),
    (dict(guidance=-1.0), "guidance must be"),
    (dict(seed=-3), "seed must be"),
    (dict(num_images=0), "num_images must be"),
])
def test_bad_generation_arguments_raise_input_errors(tiny_engine, kwargs, match):
    args = dict(prompt="a poster", width=64, height=64, steps=1)
    args.update(kwargs)
    with pytest.raises(InputError, match=match):
        tiny_engine.generate(**args)


def _png_bytes(size=(64, 64)):
    buf = io.BytesIO()
    Image.new("RGB", size, (1, 2, 3)).save(buf, format="PNG")
    return buf.getvalue()


@pytest.mark.parametrize("images,match", [
    ([], "1 to 4 reference images"),
    ([_png_bytes()] * 5, "1 to 4 reference images"),
    ([b"hello, not an image"], "not an image"),
    ([_png_bytes()[:60]], "truncated or corrupt"),
    ([b""], "empty file"),
    ([_png_bytes((8, 8))], "too small"),
    ([_png_bytes((400, 64))], "aspect ratio"),
    (["/no/such/file.png"], "file not found"),
])
def test_bad_references_raise_input_errors(tiny_engine, images, match):
    with pytest.raises(InputError, match=match):
        tiny_engine.edit("edit", images=images, steps=1)


def test_huge_reference_is_refused_before_decoding(tiny_engine, tmp_path):
    # A PNG header that claims 20000x20000 pixels: refused from the header, never decoded.
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", 20000, 20000, 8, 2, 0, 0, 0)
    bomb = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 100))
            + chunk(b"IEND", b""))
    with pytest.raises(InputError, match="too large"):
        tiny_engine.edit("edit", images=[bomb], steps=1)


def test_codes_only_sampling_never_ends_a_plan_early(tiny_dir):
    """A planner that strongly prefers image-end still writes the whole grid (ports hit 1023 of 1024 tokens)."""
    engine = Engine.from_pretrained(str(tiny_dir))
    planner = engine.pipe.vision_language_encoder
    codebook = planner.config.vq_config.num_embeddings
    # Widen the lm_head to codes + start/end, as the official vision_vocab_size does, and make "end" dominant.
    old = planner.lm_head
    new = torch.nn.Linear(old.in_features, codebook + 2, bias=True)
    with torch.no_grad():
        new.weight.zero_()
        new.weight[:codebook] = old.weight
        new.bias.zero_()
        new.bias[codebook + 1] = 50.0
    planner.lm_head = new
    plan = make_plan(planner, engine.pipe.processor, "a poster", 64, 64, seed=0)
    assert plan.target_tokens.numel() == 4 and int(plan.target_tokens.max()) < codebook

    scores = torch.zeros(1, codebook + 2)
    scores[0, codebook + 1] = 50.0
    masked = CodesOnlyLogitsProcessor(codebook)(None, scores)
    assert torch.isinf(masked[0, codebook:]).all() and torch.isfinite(masked[0, :codebook]).all()


def test_fast_planner_loop_writes_the_same_tokens_as_generate(tiny_dir):
    from glmimage.engine.options import EngineOptions
    from glmimage.models.load import load_model

    fast = Engine(load_model(str(tiny_dir)), options=EngineOptions(planner="fast"))
    library = Engine(load_model(str(tiny_dir)), options=EngineOptions(planner="library"))
    ref = Image.new("RGB", (64, 96), (40, 90, 200))
    for seed in (0, 1, 2):
        a = fast.plan('a banner "HELLO"', width=96, height=64, seed=seed)
        b = library.plan('a banner "HELLO"', width=96, height=64, seed=seed)
        assert torch.equal(a.target_tokens, b.target_tokens) and torch.equal(a.preview_tokens, b.preview_tokens)
    a = fast.plan("make it red", seed=5, images=[ref])
    b = library.plan("make it red", seed=5, images=[ref])
    assert torch.equal(a.target_tokens, b.target_tokens) and a.hash == b.hash


def test_prompts_planned_together_write_the_tokens_each_writes_alone(tiny_engine):
    prompts = ['a banner "HELLO"', 'A recipe card titled "LEMON CAKE" with three steps', "a red circle"]
    together = tiny_engine.plan_many(prompts, width=96, height=64, seeds=[4, 5, 6])
    for prompt, seed, plan in zip(prompts, (4, 5, 6), together):
        alone = tiny_engine.plan(prompt, width=96, height=64, seed=seed)
        assert plan.prompt == prompt and plan.seed == seed
        assert torch.equal(plan.target_tokens, alone.target_tokens)
        assert torch.equal(plan.preview_tokens, alone.preview_tokens)
    # generate() plans a list of prompts together: prompt k's image is still the image it makes alone
    many = tiny_engine.generate(prompts[:2], width=64, height=64, steps=2, seed=9, output_type="np")
    alone = tiny_engine.generate(prompts[1], width=64, height=64, steps=2, seed=10, output_type="np")
    assert np.abs(many.images[1] - alone.images[0]).max() < 1e-5
    with pytest.raises(InputError, match="seeds"):
        tiny_engine.plan_many(prompts, seeds=[1])


def test_approximate_options_run_and_stay_close(tiny_dir):
    from glmimage.engine.options import EngineOptions
    from glmimage.models.load import load_model

    exact = Engine(load_model(str(tiny_dir))).generate('a tag "$5"', width=64, height=64, steps=3, output_type="np")
    for options in (EngineOptions(decoder_dtype="bfloat16"), EngineOptions(step_cache_threshold=0.5)):
        approx = Engine(load_model(str(tiny_dir)), options=options).generate(
            'a tag "$5"', width=64, height=64, steps=3, output_type="np")
        assert np.abs(approx.images[0] - exact.images[0]).mean() < 0.05
    with pytest.raises(ValueError, match="planner must be"):
        EngineOptions(planner="turbo")
    with pytest.raises(ValueError, match="num_threads"):
        EngineOptions(num_threads=0)


def test_sequential_loading_gives_the_same_images(tiny_dir):
    kept = Engine.from_pretrained(str(tiny_dir))
    sequential = Engine.from_pretrained(str(tiny_dir), sequential=True)
    assert sequential.pipe.transformer is None and sequential.pipe.vision_language_encoder is None
    ref = Image.new("RGB", (64, 64), (200, 40, 40))
    for run in (lambda e: e.generate('a card "TEA"', width=64, height=64, steps=2, seed=3, output_type="np"),
                lambda e: e.edit("make it blue", images=[ref], steps=2, seed=3, output_type="np")):
        a, b = run(kept), run(sequential)
        assert np.array_equal(a.images[0], b.images[0])


def test_offload_moves_each_component_to_the_device_only_for_its_stage(tiny_dir, monkeypatch):
    from glmimage.engine import engine as engine_module

    kept = Engine.from_pretrained(str(tiny_dir))
    offload = Engine.from_pretrained(str(tiny_dir), offload=True)
    # This machine has no GPU: the host is named "cpu:0" and the execution device "cpu", so the moves can be told apart.
    monkeypatch.setattr(engine_module, "OFFLOAD_DEVICE", torch.device("cpu:0"))
    components = {id(getattr(offload.pipe, n)): n for n in ("vision_language_encoder", "text_encoder", "transformer",
                                                             "vae")}
    on_device, visited, most = set(), [], [0]
    original_to = torch.nn.Module.to

    def spy(module, *args, **kwargs):
        name = components.get(id(module))
        if name is not None:
            if str(args[0]) == "cpu":
                on_device.add(name)
                visited.append(name)
                most[0] = max(most[0], len(on_device))
            else:
                on_device.discard(name)
        return original_to(module, *args, **kwargs)

    monkeypatch.setattr(torch.nn.Module, "to", spy)
    ref = Image.new("RGB", (64, 64), (200, 40, 40))
    for run, together in ((lambda e: e.generate('a card "TEA"', width=64, height=64, steps=2, seed=3,
                                                output_type="np"), 1),
                          (lambda e: e.edit("make it blue", images=[ref], steps=2, seed=3, output_type="np"), 2)):
        visited.clear()
        most[0] = 0
        image = run(offload).images[0]
        assert set(visited) == set(components.values()) and not on_device  # every stage ran, all went back
        assert most[0] == together  # one component at a time (the edit's DiT stage also encodes with the VAE)
        assert np.abs(run(kept).images[0] - image).max() < 1e-5  # moved tensors may round differently (1e-7)
    with pytest.raises(ValueError, match="pick one"):
        Engine.from_pretrained(str(tiny_dir), sequential=True, offload=True)


def test_tiny_preset_in_bfloat16_generates():
    engine = Engine.from_pretrained("tiny", dtype=torch.bfloat16)
    assert engine.dtype == torch.bfloat16 and engine.pipe.transformer.dtype == torch.bfloat16
    assert engine.generate('a card "OK"', steps=1).images[0].size == (64, 64)


def test_the_tiny_preset_built_in_memory_runs_in_eval_mode_and_repeats_itself():
    """Freshly built modules train by default: the glyph encoder's dropout made every call differ (0.02 seen)."""
    engine = Engine.from_pretrained("tiny")
    assert not any(getattr(engine.pipe, name).training
                   for name in ("vision_language_encoder", "text_encoder", "transformer", "vae"))
    plan = engine.plan('A banner "OPEN NOW" and "TODAY"', width=64, height=64, seed=5)
    first, second = (engine.decode(plan, seed=3, steps=2, output_type="np").images[0] for _ in range(2))
    assert np.array_equal(first, second)


def test_device_and_dtype_resolution():
    from glmimage.engine.options import resolve_device

    expected = ("cuda", torch.bfloat16) if torch.cuda.is_available() else ("cpu", torch.float32)
    assert resolve_device("auto", "auto") == expected
    assert resolve_device("cuda:1", "auto") == ("cuda:1", torch.bfloat16)
    assert resolve_device("cpu", "bfloat16") == ("cpu", torch.bfloat16)
    with pytest.raises(ValueError, match="dtype must be"):
        resolve_device("cpu", "int8")
