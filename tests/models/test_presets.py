import pytest

from glmimage.models.params import parameter_counts
from glmimage.models.presets import (
    NANO,
    OFFICIAL,
    OFFICIAL_SLICE,
    PRESETS,
    DecoderConfig,
    PlannerConfig,
    VAEConfig,
    get_preset,
)


def test_official_parameter_counts_match_the_published_sizes():
    counts = parameter_counts(OFFICIAL)
    # Published: AR planner ~9B (GLM-4-9B text decoder), DiT decoder ~7B.
    assert counts["planner_text"] == pytest.approx(9e9, rel=0.05)
    assert counts["decoder"] == pytest.approx(7e9, rel=0.05)
    assert counts["planner_vision"] > 1e9


def test_nano_is_about_20_million_parameters_and_ships_under_40_mb_in_bf16():
    counts = parameter_counts(NANO)
    assert 19e6 <= counts["total"] <= 40e6
    assert counts["total"] * 2 < 40e6  # bf16 bytes of every component
    assert counts["decoder"] == max(counts[k] for k in ("planner", "glyph_encoder", "decoder", "vae"))


def test_small_presets_keep_the_official_geometry():
    for preset in PRESETS.values():
        assert preset.decoder.patch_size == OFFICIAL.decoder.patch_size
        assert preset.decoder.latent_channels == 16
        assert len(preset.vae.block_out_channels) == 4  # 8x VAE
        assert preset.planner.patch_size == 16
        assert preset.planner.partial_rotary_factor == OFFICIAL.planner.partial_rotary_factor
        assert preset.limits.multiple == 32


def test_mrope_section_must_fit_the_rotated_half_of_a_head():
    kwargs = {f: getattr(NANO.planner, f) for f in NANO.planner.__dataclass_fields__}
    kwargs["mrope_section"] = (8, 12, 12)
    with pytest.raises(ValueError, match="mrope_section"):
        PlannerConfig(**kwargs)


def test_invalid_component_configs_raise():
    with pytest.raises(ValueError, match="head_dim"):
        DecoderConfig(num_layers=1, num_heads=1, head_dim=6, time_embed_dim=8, condition_dim=8)
    with pytest.raises(ValueError, match="8x downsampling"):
        VAEConfig(block_out_channels=(8, 8, 8), layers_per_block=1, norm_num_groups=4)
    with pytest.raises(KeyError, match="unknown preset"):
        get_preset("huge")


def test_official_slice_has_the_official_layer_shapes_with_one_layer_per_stack():
    import torch
    from diffusers import GlmImageTransformer2DModel
    from transformers import GlmImageForConditionalGeneration, T5EncoderModel

    from glmimage.models.build import decoder_kwargs, glyph_encoder_config, planner_config

    def layer_shapes(preset):
        p = preset.planner
        vocab = p.vocab_size or 4096
        with torch.device("meta"):
            planner = GlmImageForConditionalGeneration(planner_config(preset, vocab, vocab - 4))
            dit = GlmImageTransformer2DModel(**decoder_kwargs(preset))
            glyph = T5EncoderModel(glyph_encoder_config(preset))
        blocks = {"text": planner.model.language_model.layers, "vision": planner.model.visual.blocks,
                  "dit": dit.transformer_blocks, "glyph": glyph.encoder.block}
        return ({k: [(n, t.shape) for n, t in b[0].named_parameters()] for k, b in blocks.items()},
                {k: len(b) for k, b in blocks.items()})

    official, official_depth = layer_shapes(OFFICIAL)
    sliced, sliced_depth = layer_shapes(OFFICIAL_SLICE)
    assert sliced == official
    assert set(sliced_depth.values()) == {1} and min(official_depth.values()) > 1
    assert OFFICIAL_SLICE.vae == OFFICIAL.vae
    counts = parameter_counts(OFFICIAL_SLICE)
    assert 0.5e9 < counts["total"] < 1.2e9  # a few GB in float32: it fits this machine
