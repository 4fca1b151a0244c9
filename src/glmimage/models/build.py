"""Build every component of a preset from the library classes, and write a model directory in the official
diffusers layout (model_index.json + one folder per component, processor and tokenizers included)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import torch
from diffusers import (
    AutoencoderKL,
    FlowMatchEulerDiscreteScheduler,
    GlmImagePipeline,
    GlmImageTransformer2DModel,
)
from transformers import (
    ByT5Tokenizer,
    GenerationConfig,
    GlmImageConfig,
    GlmImageForConditionalGeneration,
    GlmImageProcessor,
    T5Config,
    T5EncoderModel,
)
from transformers.models.glm_image.image_processing_pil_glm_image import GlmImageImageProcessorPil

from glmimage.models.presets import ModelPreset
from glmimage.models.tokenizer import TokenizerSpec, build_planner_tokenizer

# The scheduler of the official checkpoint: CogView4-style flow matching with a linear resolution shift,
# mu = sqrt(seq_len / 256) * 0.75 + 0.25 computed by the pipeline (diffusers' GlmImagePipeline).
SCHEDULER_CONFIG = dict(
    num_train_timesteps=1000,
    shift=1.0,
    use_dynamic_shifting=True,
    base_shift=0.25,
    max_shift=0.75,
    base_image_seq_len=256,
    max_image_seq_len=4096,
    time_shift_type="linear",
)

GLMIMAGE_META_FILE = "glmimage.json"  # our own record of the preset a directory was built from


def read_meta(model_dir) -> dict:
    """A model directory's glmimage.json ({} when it has none, e.g. the official directory)."""
    meta_file = Path(model_dir) / GLMIMAGE_META_FILE
    return json.loads(meta_file.read_text()) if meta_file.is_file() else {}


def planner_config(preset: ModelPreset, vocab_size: int, image_token_id: int) -> GlmImageConfig:
    p = preset.planner
    return GlmImageConfig(
        text_config=dict(
            vocab_size=vocab_size,
            hidden_size=p.hidden_size,
            intermediate_size=p.intermediate_size,
            num_hidden_layers=p.num_layers,
            num_attention_heads=p.num_heads,
            num_key_value_heads=p.num_kv_heads,
            vision_vocab_size=p.vision_vocab_size or p.codebook_size,
            max_position_embeddings=8192 if preset.name != "official" else 131072,
            rope_parameters=dict(
                rope_type="default",
                rope_theta=p.rope_theta,
                partial_rotary_factor=p.partial_rotary_factor,
                mrope_section=list(p.mrope_section),
            ),
            pad_token_id=vocab_size - 1 if preset.name != "official" else 167841,
            eos_token_id=p.image_end_id,
        ),
        vision_config=dict(
            depth=p.vision_depth,
            hidden_size=p.vision_hidden_size,
            num_heads=p.vision_heads,
            intermediate_size=p.vision_intermediate_size,
            image_size=p.vision_image_size,
            patch_size=p.patch_size,
            spatial_merge_size=1,
        ),
        vq_config=dict(embed_dim=p.code_dim, num_embeddings=p.codebook_size, latent_channels=p.vision_hidden_size),
        image_token_id=image_token_id,
        image_start_token_id=p.image_start_id,
        image_end_token_id=p.image_end_id,
    )


def glyph_encoder_config(preset: ModelPreset) -> T5Config:
    g = preset.glyph
    return T5Config(
        vocab_size=g.vocab_size,
        d_model=g.d_model,
        d_kv=g.d_kv,
        d_ff=g.d_ff,
        num_layers=g.num_layers,
        num_heads=g.num_heads,
        feed_forward_proj="gated-gelu",  # ByT5 uses gated GELU
        is_encoder_decoder=False,
        use_cache=False,
        pad_token_id=0,
        eos_token_id=1,
    )


def decoder_kwargs(preset: ModelPreset) -> dict:
    d = preset.decoder
    return dict(
        patch_size=d.patch_size,
        in_channels=d.latent_channels,
        out_channels=d.latent_channels,
        num_layers=d.num_layers,
        attention_head_dim=d.head_dim,
        num_attention_heads=d.num_heads,
        text_embed_dim=preset.glyph.d_model,
        time_embed_dim=d.time_embed_dim,
        condition_dim=d.condition_dim,
        prior_vq_quantizer_codebook_size=preset.planner.codebook_size,
    )


def vae_kwargs(preset: ModelPreset) -> dict:
    v = preset.vae
    n = len(v.block_out_channels)
    return dict(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * n,
        up_block_types=("UpDecoderBlock2D",) * n,
        block_out_channels=tuple(v.block_out_channels),
        layers_per_block=v.layers_per_block,
        latent_channels=v.latent_channels,
        norm_num_groups=v.norm_num_groups,
        use_quant_conv=False,
        use_post_quant_conv=False,
        latents_mean=[0.0] * v.latent_channels,
        latents_std=[1.0] * v.latent_channels,
    )


def build_image_processor(preset: ModelPreset) -> GlmImageImageProcessorPil:
    # The PIL image processor: the default one imports torchvision (see the reference notes).
    return GlmImageImageProcessorPil(
        patch_size=preset.planner.patch_size,
        temporal_patch_size=1,
        merge_size=1,
        image_mean=[0.5, 0.5, 0.5],
        image_std=[0.5, 0.5, 0.5],
        size={"shortest_edge": preset.limits.min_pixels, "longest_edge": preset.limits.max_pixels},
    )


def build_pipeline(preset: ModelPreset, seed: int = 0, dtype: torch.dtype = torch.float32) -> GlmImagePipeline:
    """All components with freshly initialised weights (seeded), assembled as the reference pipeline."""
    if preset.name == "official":
        raise ValueError("the official preset is built on the meta device only: use official_parameter_counts()")
    torch.manual_seed(seed)
    tokenizer = build_planner_tokenizer(TokenizerSpec(preset.planner.codebook_size, preset.planner.text_vocab_size))
    vocab_size = -(-len(tokenizer) // 64) * 64  # round up: the embedding may be larger than the tokenizer
    image_token_id = tokenizer.convert_tokens_to_ids(tokenizer.image_token)
    processor = GlmImageProcessor(image_processor=build_image_processor(preset), tokenizer=tokenizer,
                                  chat_template=tokenizer.chat_template)
    planner = GlmImageForConditionalGeneration(planner_config(preset, vocab_size, image_token_id))
    planner.generation_config = GenerationConfig(
        do_sample=True, temperature=preset.temperature, top_p=preset.top_p, top_k=0,
        bos_token_id=preset.planner.image_start_id, eos_token_id=preset.planner.image_end_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    glyph_encoder = T5EncoderModel(glyph_encoder_config(preset))
    transformer = GlmImageTransformer2DModel(**decoder_kwargs(preset))
    vae = AutoencoderKL(**vae_kwargs(preset))
    scheduler = FlowMatchEulerDiscreteScheduler(**SCHEDULER_CONFIG)
    pipe = GlmImagePipeline(
        tokenizer=ByT5Tokenizer(),
        processor=processor,
        text_encoder=glyph_encoder,
        vision_language_encoder=planner,
        vae=vae,
        transformer=transformer,
        scheduler=scheduler,
    )
    return pipe if dtype == torch.float32 else pipe.to(dtype=dtype)


def write_model_dir(pipe: GlmImagePipeline, path: str | Path, preset: ModelPreset | None = None,
                    extra_meta: dict | None = None) -> Path:
    """Save in the official diffusers layout; `GlmImagePipeline.from_pretrained(path)` loads it."""
    path = Path(path)
    pipe.save_pretrained(path, safe_serialization=True)
    meta = {"format": "glmimage/1", **(extra_meta or {})}
    if preset is not None:
        meta["preset"] = preset.name
        meta["limits"] = asdict(preset.limits)
        meta["default_steps"] = preset.default_steps
        meta["default_guidance"] = preset.default_guidance
    (path / GLMIMAGE_META_FILE).write_text(json.dumps(meta, indent=2))
    return path
