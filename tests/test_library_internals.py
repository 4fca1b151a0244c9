"""The library internals glmimage relies on (docs/library-internals.md), one test per entry.

Each test checks that the private attribute, module, signature or behaviour an entry names is still there and still
does what the code assumes, so that an upgrade of torch, transformers, diffusers, accelerate or peft fails here, by
name, instead of somewhere downstream (a silent fallback, a slower path, an image that no longer matches the
reference). Cheap: a tiny random model built in memory, no compiling, no training.

A failure names the entry. Read its section in docs/library-internals.md (where the code uses it and why), adapt
the code to the new release, and update the entry and its test together.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect

import pytest
import torch

DOC = "docs/library-internals.md"


@contextlib.contextmanager
def relied_on(entry: str):
    """Turn any failure inside into one message that names the entry and the document."""
    try:
        yield
    except Exception as exc:  # AssertionError included: pytest's rewritten message is kept
        detail = str(exc) if isinstance(exc, AssertionError) else f"{type(exc).__name__}: {exc}"
        pytest.fail(f"library internal [{entry}] changed or is gone; glmimage relies on it: see {DOC}, "
                    f"section {entry}, for where and why.\n{detail}", pytrace=False)


def parameters(fn) -> list[str]:
    return list(inspect.signature(fn).parameters)


@pytest.fixture()
def tiny():
    """The tiny preset's pipeline, random weights, in memory (a fresh one per test: some tests change it)."""
    from glmimage.models.build import build_pipeline
    from glmimage.models.presets import TINY

    pipe = build_pipeline(TINY, seed=0)
    for name in ("vision_language_encoder", "text_encoder", "transformer", "vae"):
        getattr(pipe, name).eval()  # as the engine runs them (no dropout)
    return pipe


def _text_inputs(pipe, width: int = 64, height: int = 64, images: list | None = None) -> dict:
    from glmimage.engine.planner import chat_inputs

    content = [{"type": "image", "image": img} for img in images or []]
    content.append({"type": "text", "text": 'a poster "SALE"'})
    return dict(chat_inputs(pipe.processor, [content], width, height, "cpu"))


# -- torch ---------------------------------------------------------------------------------------------------------
def test_T1_dynamo_recompile_limit():
    with relied_on("T1 torch._dynamo.config.recompile_limit"):
        import torch._dynamo

        limit = torch._dynamo.config.recompile_limit
        assert isinstance(limit, int) and limit >= 1
        with torch._dynamo.config.patch(recompile_limit=limit + 1):
            assert torch._dynamo.config.recompile_limit == limit + 1


def test_T2_inductor_freezing_flag_patched_around_calls():
    with relied_on("T2 torch._inductor.config.patch(freezing=True)"):
        import torch._inductor.config as inductor_config

        before = inductor_config.freezing
        with inductor_config.patch(freezing=True):
            assert inductor_config.freezing is True
        assert inductor_config.freezing == before


def test_T3_inductor_option_names():
    from glmimage.engine.inductor import FROZEN_OPTIONS

    with relied_on("T3 inductor option names"):
        import torch._inductor.config as inductor_config

        # FROZEN_OPTIONS (the DiT and VAE) and the planner's sampling step (fast_planner.CompiledDecodeStep)
        for name in [*FROZEN_OPTIONS, "cpp_wrapper", "fallback_random", "apply_gumbel_max_trick"]:
            node = inductor_config
            for part in name.split("."):
                assert hasattr(node, part), f"torch._inductor.config has no option {name!r}"
                node = getattr(node, part)


def test_T4_set_stance_skip_guard_eval_unsafe():
    with relied_on("T4 torch.compiler.set_stance(skip_guard_eval_unsafe=True)"):
        assert "skip_guard_eval_unsafe" in parameters(torch.compiler.set_stance)


def test_T5_multinomial_one_sample_is_argmax_over_exponential_draws():
    from glmimage.engine.fast_planner import draw_one

    with relied_on("T5 torch.multinomial one-sample path"):
        probs = torch.softmax(torch.randn(3, 50, generator=torch.Generator().manual_seed(0)), dim=-1)
        for seed in range(5):
            torch.manual_seed(seed)
            expected = torch.multinomial(probs, num_samples=1)
            torch.manual_seed(seed)
            assert torch.equal(draw_one(probs), expected), f"seed {seed}: draw_one no longer draws multinomial's ids"


# -- transformers --------------------------------------------------------------------------------------------------
def test_X1_attn_implementation_is_read_at_call_time(tiny):
    with relied_on("X1 text_config._attn_implementation + AttentionInterface.register"):
        from transformers import AttentionInterface
        from transformers.integrations.sdpa_attention import sdpa_attention_forward
        from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

        calls = []

        def spy(*args, **kwargs):
            calls.append(1)
            return sdpa_attention_forward(*args, **kwargs)

        planner = tiny.vision_language_encoder
        text_config = planner.config.get_text_config()
        assert text_config._attn_implementation == "sdpa"
        AttentionInterface.register("glmimage_test_spy", spy)
        AttentionMaskInterface.register("glmimage_test_spy", sdpa_mask)
        text_config._attn_implementation = "glmimage_test_spy"
        inputs = _text_inputs(tiny)
        with torch.no_grad():
            planner(**inputs, logits_to_keep=1)
        assert calls, "the language model did not call the attention registered under config._attn_implementation"


def test_X2_sdpa_attention_forward_and_pack_gqa():
    with relied_on("X2 transformers.integrations.sdpa_attention (pack_gqa, sdpa_attention_forward)"):
        from transformers.integrations.sdpa_attention import pack_gqa, sdpa_attention_forward

        assert parameters(sdpa_attention_forward)[:7] == ["module", "query", "key", "value", "attention_mask",
                                                          "dropout", "scaling"]
        query = torch.randn(2, 8, 1, 16)
        packed = pack_gqa(query, 4)
        assert packed.shape == (2, 2, 4, 16) and torch.equal(packed.reshape(2, 8, 1, 16), query)


def test_X3_prefill_leaves_decode_positions_on_the_model(tiny):
    from glmimage.engine.planner import target_grids

    with relied_on("X3 GlmImageModel._prefill_len / _cached_decode_position_ids / get_rope_index"):
        from transformers import DynamicCache

        planner = tiny.vision_language_encoder
        model = planner.model
        assert parameters(model.get_rope_index)[:4] == ["input_ids", "image_grid_thw", "images_per_sample",
                                                        "attention_mask"]
        inputs = _text_inputs(tiny, 64, 96)
        with torch.no_grad():
            planner(**inputs, past_key_values=DynamicCache(config=planner.config.get_text_config()), use_cache=True,
                    logits_to_keep=1)
        (h, w), (ph, pw) = target_grids(96, 64)
        assert model._prefill_len == inputs["input_ids"].shape[-1]
        positions = model._cached_decode_position_ids
        assert positions is not None and positions.shape[:2] == (1, 3)
        assert positions.shape[-1] >= ph * pw + h * w  # every token of the plan has its position


def test_X4_planner_module_layout_and_image_tokens(tiny):
    from glmimage.engine.planner import reference_tokens

    with relied_on("X4 GlmImageForConditionalGeneration layout (model.visual/vqmodel/language_model, lm_head)"):
        from PIL import Image

        planner = tiny.vision_language_encoder
        model = planner.model
        for path in ("model.visual", "model.language_model.embed_tokens", "model.vqmodel.quant_conv",
                     "model.vqmodel.quantize.embedding.weight", "lm_head", "config.vq_config.num_embeddings",
                     "config.image_token_id"):
            node = planner
            for part in path.split("."):
                assert hasattr(node, part), f"the planner has no {path}"
                node = getattr(node, part)
        image = Image.new("RGB", (64, 64), (200, 30, 30))
        inputs = _text_inputs(tiny, images=[image])
        grids = inputs["image_grid_thw"][:1]
        codes = reference_tokens(planner, inputs["pixel_values"], grids)  # get_image_features + get_image_tokens
        assert len(codes) == 1 and codes[0].numel() == int(grids[0].prod())
        assert int(codes[0].max()) < model.vqmodel.quantize.embedding.weight.shape[0]


def test_X5_generation_config_fields_and_generate_order(tiny):
    from glmimage.engine.fast_planner import _UNSUPPORTED, sample_tokens, sampling_processors
    from glmimage.engine.planner import CodesOnlyLogitsProcessor

    with relied_on("X5 GenerationConfig processor fields / generate()'s sampling order"):
        from transformers import GenerationConfig, LogitsProcessorList

        config = GenerationConfig()
        missing = [name for name in _UNSUPPORTED if not hasattr(config, name)]
        assert not missing, f"GenerationConfig no longer has {missing}"
        planner = tiny.vision_language_encoder
        leading = [CodesOnlyLogitsProcessor(planner.config.vq_config.num_embeddings)]
        inputs = _text_inputs(tiny)
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            torch.manual_seed(3)
            ours = sample_tokens(planner, dict(inputs), 6, sampling_processors(planner.generation_config, leading))
            torch.manual_seed(3)
            theirs = planner.generate(**inputs, generation_config=planner.generation_config, max_new_tokens=6,
                                      do_sample=True, logits_processor=LogitsProcessorList(leading))
        assert torch.equal(ours, theirs[:, : ours.shape[-1]]), "the fast sampler no longer writes generate()'s tokens"


def test_X6_warper_settings_are_hashable_plain_values():
    with relied_on("X6 logits warpers' instance attributes (vars) as compiled-step keys"):
        from transformers import TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

        for warper in (TemperatureLogitsWarper(0.9), TopKLogitsWarper(top_k=5, min_tokens_to_keep=1),
                       TopPLogitsWarper(top_p=0.8, min_tokens_to_keep=1)):
            key = (type(warper).__qualname__, tuple(sorted(vars(warper).items())))
            hash(key)
            assert not any(torch.is_tensor(v) for v in vars(warper).values())


def test_X7_cache_constructors(tiny):
    with relied_on("X7 StaticCache(config=, max_cache_len=) / DynamicCache(config=)"):
        from transformers import DynamicCache, StaticCache

        text_config = tiny.vision_language_encoder.config.get_text_config()
        DynamicCache(config=text_config)
        assert StaticCache(config=text_config, max_cache_len=256).get_max_length() == 256


def test_X8_processor_target_size_kwargs(tiny):
    from glmimage.engine.planner import target_grids

    with relied_on("X8 GlmImageProcessor.apply_chat_template(processor_kwargs={target_h, target_w})"):
        inputs = _text_inputs(tiny, 64, 96)
        assert {"input_ids", "attention_mask", "image_grid_thw", "images_per_sample"} <= set(inputs)
        (h, w), (ph, pw) = target_grids(96, 64)
        grids = {tuple(int(x) for x in g) for g in inputs["image_grid_thw"]}
        assert grids == {(1, h, w), (1, ph, pw)}, grids


def test_X9_image_processor_size_in_pixels(tiny):
    with relied_on("X9 image_processor.size shortest_edge / longest_edge (pixel counts)"):
        size = tiny.processor.image_processor.size
        assert isinstance(size["shortest_edge"], int) and isinstance(size["longest_edge"], int)
        assert size["longest_edge"] > size["shortest_edge"] >= 32 * 32


def test_X10_pil_image_processor_module_path():
    with relied_on("X10 transformers.models.glm_image.image_processing_pil_glm_image"):
        module = importlib.import_module("transformers.models.glm_image.image_processing_pil_glm_image")
        assert hasattr(module, "GlmImageImageProcessorPil")


# -- diffusers -----------------------------------------------------------------------------------------------------
def test_D1_attention_processor_contract(tiny):
    from glmimage.engine.attention import GlmImageMaskedAttnProcessor, install_masked_attention

    with relied_on("D1 GlmImageAttnProcessor call contract / attention_kwargs reaching the processor"):
        from diffusers.models.embeddings import apply_rotary_emb
        from diffusers.models.transformers.transformer_glm_image import GlmImageAttnProcessor

        library = parameters(GlmImageAttnProcessor.__call__)
        ours = parameters(GlmImageMaskedAttnProcessor.__call__)
        assert ours[: len(library)] == library, f"library processor takes {library}"
        assert {"sequence_dim", "use_real_unbind_dim"} <= set(parameters(apply_rotary_emb))
        attn = tiny.transformer.transformer_blocks[0].attn1
        for name in ("to_q", "to_k", "to_v", "norm_q", "norm_k", "heads", "to_out", "set_processor", "processor"):
            assert hasattr(attn, name), f"Attention has no {name}"

        seen = []

        class Spy(GlmImageMaskedAttnProcessor):
            def __call__(self, *args, reference_rows=None, reference_visible=None, **kwargs):
                seen.append(reference_rows)
                return super().__call__(*args, reference_rows=reference_rows, reference_visible=reference_visible,
                                        **kwargs)

        transformer = tiny.transformer
        install_masked_attention(transformer)
        assert isinstance(transformer.transformer_blocks[0].attn1.processor, GlmImageMaskedAttnProcessor)
        for block in transformer.transformer_blocks:
            block.attn1.set_processor(Spy())
        rows = torch.tensor([0])
        _decoder_forward(transformer, attention_kwargs={"reference_rows": rows})
        assert seen and all(r is rows for r in seen), "attention_kwargs no longer reach the attention processor"


def _decoder_forward(transformer, **kwargs):
    """One tiny DiT forward at 64x64 (latent 8x8), as write_reference_cache calls it."""
    cfg = transformer.config
    latent = torch.randn(1, cfg.in_channels, 8, 8, generator=torch.Generator().manual_seed(0))
    tokens = (8 // cfg.patch_size) ** 2
    prior = torch.zeros(1, tokens, dtype=torch.long)
    with torch.no_grad():
        return transformer(hidden_states=latent, encoder_hidden_states=torch.zeros(1, 4, cfg.text_embed_dim),
                           prior_token_id=prior, prior_token_drop=torch.zeros_like(prior, dtype=torch.bool),
                           timestep=torch.zeros((1,)), target_size=torch.tensor([[64, 64]]),
                           crop_coords=torch.zeros((1, 2)), return_dict=False, **kwargs)


def test_D2_attention_backend_attributes_and_dispatch():
    with relied_on("D2 processor._attention_backend / _parallel_config + dispatch_attention_fn"):
        from diffusers.models.attention_dispatch import dispatch_attention_fn
        from diffusers.models.transformers.transformer_glm_image import GlmImageAttnProcessor

        assert hasattr(GlmImageAttnProcessor, "_attention_backend")
        assert hasattr(GlmImageAttnProcessor, "_parallel_config")
        params = inspect.signature(dispatch_attention_fn).parameters
        for name in ("attn_mask", "dropout_p", "is_causal", "backend", "parallel_config"):
            assert name in params, f"dispatch_attention_fn has no {name!r}"
        q = torch.randn(1, 3, 2, 4)
        mask = torch.tensor([[True, False, True]])[:, None, None, :]
        out = dispatch_attention_fn(q, q, q, attn_mask=mask, backend=None, parallel_config=None)
        # A boolean mask means "may attend" (key 1 is hidden): equal to attending over keys 0 and 2 only.
        ref = dispatch_attention_fn(q, q[:, [0, 2]], q[:, [0, 2]], backend=None, parallel_config=None)
        assert torch.allclose(out, ref, atol=1e-6)


def test_D3_kv_cache_internals():
    with relied_on("D3 GlmImageKVCache / GlmImageLayerKVCache internals"):
        from diffusers.models.transformers.transformer_glm_image import GlmImageKVCache

        cache = GlmImageKVCache(num_layers=2)
        cache.set_mode("write")
        assert cache[0].mode == "write" and cache[1].mode == "write"
        k = torch.zeros(1, 3, 2, 4)
        cache[0].store(k, k)
        cache[0].store(k, k)  # a second reference of the same sample: appended along the sequence
        cache.next_sample()
        cache[0].store(k, k)
        assert [t.shape[1] for t in cache[0].k_caches] == [6, 3] and len(cache[0].v_caches) == 2
        cache.set_mode("read")
        assert cache[1].mode == "read"


def test_D4_transformer_forward_keywords_and_config(tiny):
    with relied_on("D4 GlmImageTransformer2DModel.forward keywords / config fields"):
        params = set(parameters(type(tiny.transformer).forward))
        needed = {"hidden_states", "encoder_hidden_states", "prior_token_id", "prior_token_drop", "timestep",
                  "target_size", "crop_coords", "attention_mask", "attention_kwargs", "kv_caches", "return_dict"}
        assert needed <= params, f"missing {sorted(needed - params)}"
        for name in ("num_layers", "text_embed_dim", "patch_size", "in_channels"):
            assert hasattr(tiny.transformer.config, name), f"transformer config has no {name}"
        assert len(tiny.transformer.transformer_blocks) == tiny.transformer.config.num_layers


def test_D5_resolution_shift_and_scheduler_index():
    from glmimage.engine.decoder import flow_timesteps
    from glmimage.models.build import SCHEDULER_CONFIG

    with relied_on("D5 pipeline_glm_image.calculate_shift + FlowMatchEulerDiscreteScheduler timesteps/step_index"):
        from diffusers import FlowMatchEulerDiscreteScheduler
        from diffusers.pipelines.glm_image.pipeline_glm_image import calculate_shift

        assert calculate_shift(1024, 256, 0.25, 0.75) == pytest.approx((1024 / 256) ** 0.5 * 0.75 + 0.25)
        scheduler = FlowMatchEulerDiscreteScheduler(**SCHEDULER_CONFIG)
        timesteps = flow_timesteps(scheduler, 4, 1024, "cpu")
        assert len(timesteps) == 4 and len(scheduler.sigmas) == 5
        sample = torch.zeros(1, 2, 2, 2)
        scheduler.step(sample, timesteps[0], sample, return_dict=False)
        assert scheduler.step_index == 1, "step() no longer advances step_index (keep.blend_latents reads it)"


def test_D6_glyph_texts_and_glyph_embeds_match_the_pipeline(tiny):
    from glmimage.engine.glyph_text import extract_glyph_texts
    from glmimage.engine.glyphs import encode_glyph_text

    with relied_on("D6 GlmImagePipeline.get_glyph_texts / _get_glyph_embeds (mirrored)"):
        prompts = ["no quoted text", 'one "SALE"', "two 'A' and \u201cB\u201d", 'three \'x\' "y" \u300cz\u300d']
        for prompt in prompts:
            assert extract_glyph_texts(prompt) == tiny.get_glyph_texts(prompt)[0], prompt
            ours = encode_glyph_text(extract_glyph_texts(prompt), tiny.tokenizer, tiny.text_encoder)
            with torch.no_grad():
                theirs = tiny._get_glyph_embeds(prompt, device=torch.device("cpu"))
            theirs = theirs[0] if isinstance(theirs, (list, tuple)) else theirs
            assert ours.shape == theirs.shape and torch.equal(ours, theirs), prompt


def test_D7_first_block_cache_registry_and_hooks(tiny):
    with relied_on("D7 diffusers.hooks._helpers.TransformerBlockRegistry + enable_cache/_reset_stateful_cache"):
        from diffusers import FirstBlockCacheConfig  # noqa: F401
        from diffusers.hooks._helpers import TransformerBlockMetadata, TransformerBlockRegistry

        class Unregistered(torch.nn.Module):
            pass

        with pytest.raises(ValueError):
            TransformerBlockRegistry.get(Unregistered)
        TransformerBlockMetadata(return_hidden_states_index=0, return_encoder_hidden_states_index=1)
        for name in ("enable_cache", "cache_context", "_reset_stateful_cache"):
            assert callable(getattr(tiny.transformer, name, None)), f"the transformer has no {name}()"


def test_D8_randn_tensor_with_a_generator_per_row():
    with relied_on("D8 diffusers.utils.torch_utils.randn_tensor(generator=[...])"):
        from diffusers.utils.torch_utils import randn_tensor

        shape = (1, 4, 3, 3)
        rows = [randn_tensor(shape, generator=torch.Generator().manual_seed(s)) for s in (5, 6)]
        both = randn_tensor((2, 4, 3, 3), generator=[torch.Generator().manual_seed(s) for s in (5, 6)])
        assert torch.equal(both, torch.cat(rows)), "row i no longer equals a single draw from generator i"


def test_D9_pipeline_loads_without_named_components(tiny, tmp_path):
    from glmimage.models.build import write_model_dir
    from glmimage.models.presets import TINY

    with relied_on("D9 GlmImagePipeline.from_pretrained(<component>=None) / register_modules / vae_scale_factor"):
        from diffusers import GlmImagePipeline

        for name in ("register_modules", "vae_scale_factor", "image_processor"):
            assert hasattr(tiny, name), f"the pipeline has no {name}"
        write_model_dir(tiny, tmp_path / "tiny", TINY)
        heavy = ("vision_language_encoder", "text_encoder", "transformer", "vae")
        pipe = GlmImagePipeline.from_pretrained(tmp_path / "tiny", **{name: None for name in heavy})
        assert all(getattr(pipe, name) is None for name in heavy)
        assert pipe.processor is not None and pipe.tokenizer is not None and pipe.scheduler is not None


def test_D10_vae_config_and_layout(tiny):
    with relied_on("D10 AutoencoderKL latents_mean/latents_std, encoder/quant_conv/decoder, register_to_config"):
        vae = tiny.vae
        channels = vae.config.latent_channels
        assert len(vae.config.latents_mean) == channels and len(vae.config.latents_std) == channels
        for name in ("encoder", "quant_conv", "decoder", "register_to_config"):
            assert hasattr(vae, name), f"AutoencoderKL has no {name}"


# -- accelerate ----------------------------------------------------------------------------------------------------
def test_A1_accelerated_optimizer_wraps_optimizer():
    with relied_on("A1 accelerate AcceleratedOptimizer.optimizer"):
        from accelerate import Accelerator

        weight = torch.nn.Parameter(torch.zeros(3))
        opt = torch.optim.AdamW([weight])
        weight.grad = torch.ones(3)
        opt.step()
        wrapped = Accelerator(cpu=True).prepare(opt)  # what training's optimizer_step and dead-code reinit get
        assert wrapped is not opt and wrapped.optimizer is opt
        assert set(wrapped.optimizer.state[weight]) >= {"exp_avg", "exp_avg_sq"}


# -- peft ----------------------------------------------------------------------------------------------------------
def test_P1_peft_adapts_and_merges_in_place(tmp_path):
    with relied_on("P1 peft get_peft_model / PeftModel.from_pretrained + merge_and_unload in place"):
        from peft import LoraConfig, PeftModel, get_peft_model

        class Block(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.to_q = torch.nn.Linear(4, 4)

            def forward(self, x):
                return self.to_q(x)

        torch.manual_seed(0)
        base = Block()
        peft_model = get_peft_model(base, LoraConfig(r=2, lora_alpha=2, target_modules=["to_q"]))
        assert any("lora_" in name for name, _ in base.named_parameters()), "get_peft_model no longer adapts in place"
        for name, param in base.named_parameters():
            if "lora_B" in name:
                torch.nn.init.ones_(param)
        x = torch.randn(2, 4)
        adapted = base(x).detach()
        peft_model.save_pretrained(tmp_path / "adapter")

        torch.manual_seed(0)
        fresh = Block()
        PeftModel.from_pretrained(fresh, tmp_path / "adapter").merge_and_unload()  # the return value is ignored
        assert isinstance(fresh.to_q, torch.nn.Linear) and not any("lora_" in n for n, _ in fresh.named_parameters())
        assert torch.allclose(fresh(x), adapted, atol=1e-6), "merge_and_unload no longer merges into the module"


def test_P2_lora_target_module_names_exist(tiny):
    from glmimage.training.lora import LoraTrainConfig

    with relied_on("P2 LoRA target module names in the library models"):
        cfg = LoraTrainConfig.__dataclass_fields__
        decoder_names = cfg["decoder_modules"].default
        planner_names = cfg["planner_modules"].default
        decoder = {name for name, _ in tiny.transformer.named_modules()}
        planner = {name for name, _ in tiny.vision_language_encoder.named_modules()}
        for wanted, names in ((decoder_names, decoder), (planner_names, planner)):
            for suffix in wanted:
                assert any(n.endswith("." + suffix) for n in names), f"no module named *.{suffix}"
