"""Model presets: plain dataclass configs for every component, one dict of presets.

All presets build the same library classes (transformers `GlmImageForConditionalGeneration`, `T5EncoderModel`;
diffusers `GlmImageTransformer2DModel`, `AutoencoderKL`, `FlowMatchEulerDiscreteScheduler`) and share the official
geometry: planner grids at 1/32 of the pixels (about 256 preview tokens first in text-to-image), a 16-channel 8x
VAE, DiT patch 2 (1/16 grid), the plan upsampled 2x onto the DiT grid, 3-D MRoPE with half the head rotated.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace


@dataclass(frozen=True)
class PlannerConfig:
    """The AR planner: GLM text decoder + ViT vision encoder + semantic VQ (GlmImageConfig)."""

    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    intermediate_size: int
    mrope_section: tuple[int, int, int]
    vision_depth: int
    vision_hidden_size: int
    vision_heads: int
    vision_intermediate_size: int
    vision_image_size: int  # side of the learned position grid (interpolated to any image size)
    codebook_size: int
    code_dim: int
    text_vocab_size: int  # BPE text tokens above the codes (small presets build their tokenizer)
    vocab_size: int | None = None  # official: fixed by the published tokenizer; small presets: derived
    vision_vocab_size: int | None = None  # lm_head width; None = codes only (cannot emit image end)
    patch_size: int = 16
    partial_rotary_factor: float = 0.5
    rope_theta: float = 10000.0
    image_token_id: int | None = None  # official: 167855; small presets: from the tokenizer

    def __post_init__(self) -> None:
        head_dim = self.hidden_size // self.num_heads
        if self.hidden_size % self.num_heads:
            raise ValueError(f"hidden_size {self.hidden_size} not divisible by num_heads {self.num_heads}")
        if self.num_heads % self.num_kv_heads:
            raise ValueError(f"num_heads {self.num_heads} not divisible by num_kv_heads {self.num_kv_heads}")
        # transformers' GlmImageTextRotaryEmbedding splits the rotated half of each head into (t, h, w) sections.
        rotated = int(head_dim * self.partial_rotary_factor) // 2
        if sum(self.mrope_section) != rotated:
            raise ValueError(f"mrope_section {self.mrope_section} must sum to "
                             f"head_dim*partial_rotary_factor/2 = {rotated}")
        if self.vision_hidden_size % self.vision_heads:
            raise ValueError("vision_hidden_size must be divisible by vision_heads")

    @property
    def image_start_id(self) -> int:
        return self.codebook_size

    @property
    def image_end_id(self) -> int:
        return self.codebook_size + 1


@dataclass(frozen=True)
class GlyphEncoderConfig:
    """The ByT5-style glyph encoder (T5EncoderModel over bytes)."""

    d_model: int
    num_layers: int
    num_heads: int
    d_kv: int
    d_ff: int
    vocab_size: int = 384  # ByT5: 3 specials + 256 bytes + 125 extra ids

    def __post_init__(self) -> None:
        if self.num_layers < 1 or self.d_model < 1:
            raise ValueError("glyph encoder needs at least one layer and a positive width")


@dataclass(frozen=True)
class DecoderConfig:
    """The single-stream DiT (GlmImageTransformer2DModel)."""

    num_layers: int
    num_heads: int
    head_dim: int
    time_embed_dim: int
    condition_dim: int
    patch_size: int = 2
    latent_channels: int = 16

    def __post_init__(self) -> None:
        if self.head_dim % 4:
            raise ValueError(f"head_dim must be a multiple of 4 for the 2-D RoPE, got {self.head_dim}")


@dataclass(frozen=True)
class VAEConfig:
    """AutoencoderKL: 16 latent channels, 8x downsampling (len(block_out_channels) == 4)."""

    block_out_channels: tuple[int, ...]
    layers_per_block: int
    norm_num_groups: int
    latent_channels: int = 16

    def __post_init__(self) -> None:
        if len(self.block_out_channels) != 4:
            raise ValueError("the official geometry is 8x downsampling: 4 VAE blocks")
        if any(c % self.norm_num_groups for c in self.block_out_channels):
            raise ValueError(f"every block width must be divisible by norm_num_groups={self.norm_num_groups}")


@dataclass(frozen=True)
class SizeLimits:
    """Valid output sizes of a model: each side a multiple of `multiple` within [min_side, max_side]."""

    min_side: int
    max_side: int
    multiple: int = 32
    default_width: int = 256
    default_height: int = 256
    # Reference images pass through the vision processor; its pixel bounds for smart_resize.
    min_pixels: int = 128 * 128
    max_pixels: int = 512 * 512

    def __post_init__(self) -> None:
        if self.min_side % self.multiple or self.max_side % self.multiple:
            raise ValueError("min_side and max_side must be multiples of `multiple`")


@dataclass(frozen=True)
class ModelPreset:
    name: str
    planner: PlannerConfig
    glyph: GlyphEncoderConfig
    decoder: DecoderConfig
    vae: VAEConfig
    limits: SizeLimits
    # Planner sampling defaults (official generation_config / model card).
    temperature: float = 0.9
    top_p: float = 0.75
    default_steps: int = 50
    default_guidance: float = 1.5
    notes: str = ""
    extra: dict = field(default_factory=dict)


# Random weights, seconds on the CPU: for tests. The lm_head covers only the codes, so a random planner can't end
# an image early (the reference pipeline has no guard against that: ports have seen 1023 of 1024 tokens).
TINY = ModelPreset(
    name="tiny",
    planner=PlannerConfig(
        hidden_size=64, num_layers=2, num_heads=2, num_kv_heads=1, intermediate_size=128, mrope_section=(2, 3, 3),
        vision_depth=1, vision_hidden_size=32, vision_heads=2, vision_intermediate_size=64, vision_image_size=256,
        codebook_size=64, code_dim=32, text_vocab_size=512,
    ),
    glyph=GlyphEncoderConfig(d_model=32, num_layers=1, num_heads=2, d_kv=16, d_ff=64),
    decoder=DecoderConfig(num_layers=2, num_heads=2, head_dim=16, time_embed_dim=32, condition_dim=16),
    vae=VAEConfig(block_out_channels=(8, 16, 16, 16), layers_per_block=1, norm_num_groups=4),
    limits=SizeLimits(min_side=64, max_side=512, default_width=64, default_height=64, min_pixels=32 * 32),
    default_steps=4,
    notes="random weights for tests",
)

# The shape we train and ship as the CPU default: 256x256, 19.3M parameters, 38.5 MB in bf16 (the shipped weights
# must stay under 40 MB). Split: the DiT gets the largest share (it renders the glyphs; its adaLN width is halved to
# 128, still 1/2 of the model width where the official model uses 1/8), the planner enough to lay out 64 target +
# 256 preview codes over a 1024-code book (5 layers, a 2-layer ViT for the semantic tokens), the glyph encoder a
# 3-layer ByT5, the VAE a light 4-level encoder/decoder.
NANO = ModelPreset(
    name="nano",
    planner=PlannerConfig(
        hidden_size=256, num_layers=5, num_heads=4, num_kv_heads=2, intermediate_size=704, mrope_section=(4, 6, 6),
        vision_depth=2, vision_hidden_size=256, vision_heads=4, vision_intermediate_size=1024, vision_image_size=512,
        codebook_size=1024, code_dim=256, text_vocab_size=2048, vision_vocab_size=1024 + 2,
    ),
    glyph=GlyphEncoderConfig(d_model=256, num_layers=3, num_heads=4, d_kv=64, d_ff=512),
    decoder=DecoderConfig(num_layers=7, num_heads=4, head_dim=64, time_embed_dim=128, condition_dim=64),
    # VAE widths (16, 32, 64, 64): a training step ~3.7x faster than with (32, 64, 128, 128) (batch 8, 128px crops,
    # one core); the 16-channel 8x latent geometry is unchanged. 4 norm groups, not 16: with one channel
    # per group the first level's GroupNorm (conv_norm_out too) is an instance norm that zeroes a flat-colour area,
    # and the colour of a poster background is then lost (measured: MSE 0.23 after 250 steps, flat-grey output).
    vae=VAEConfig(block_out_channels=(16, 32, 64, 64), layers_per_block=1, norm_num_groups=4),
    limits=SizeLimits(min_side=128, max_side=512),
    default_steps=30,
)

# The exact configuration of zai-org/GLM-Image (its published config files); built on the meta device only.
OFFICIAL = ModelPreset(
    name="official",
    planner=PlannerConfig(
        hidden_size=4096, num_layers=40, num_heads=32, num_kv_heads=2, intermediate_size=13696,
        mrope_section=(8, 12, 12), vision_depth=40, vision_hidden_size=1536, vision_heads=16,
        vision_intermediate_size=6144, vision_image_size=2048, codebook_size=16384, code_dim=2048,
        text_vocab_size=168064 - 16386, vocab_size=168064, vision_vocab_size=16512, image_token_id=167855,
    ),
    glyph=GlyphEncoderConfig(d_model=1472, num_layers=12, num_heads=6, d_kv=64, d_ff=3584),
    decoder=DecoderConfig(num_layers=30, num_heads=32, head_dim=128, time_embed_dim=512, condition_dim=256),
    vae=VAEConfig(block_out_channels=(128, 256, 512, 512), layers_per_block=2, norm_num_groups=32),
    limits=SizeLimits(min_side=512, max_side=2048, default_width=1024, default_height=1024,
                      min_pixels=512 * 512, max_pixels=2048 * 2048),
    default_steps=50,
)

# The official model's widths with one layer in every stack, random weights: `glmimage bench --model official-slice`
# measures speed where matmuls are as large as the official ones (nano's are small enough to be overhead- and
# bandwidth-bound). The text vocabulary is cut to 2048 BPE tokens (an embedding lookup costs nothing per token, and
# 168k rows would add 2.7 GB); the lm_head still covers the 16384 codes. Speed only: nothing trains it.
OFFICIAL_SLICE = replace(
    OFFICIAL,
    name="official-slice",
    planner=replace(OFFICIAL.planner, num_layers=1, vision_depth=1, text_vocab_size=2048, vocab_size=None,
                    vision_vocab_size=None, image_token_id=None),
    glyph=replace(OFFICIAL.glyph, num_layers=1),
    decoder=replace(OFFICIAL.decoder, num_layers=1),
    limits=replace(OFFICIAL.limits, min_side=256, default_width=256, default_height=256, min_pixels=256 * 256),
    default_steps=8,
    notes="official widths, one layer per stack, random weights: speed benchmarks only",
)

PRESETS: dict[str, ModelPreset] = {"tiny": TINY, "nano": NANO, "official": OFFICIAL, "official-slice": OFFICIAL_SLICE}


def get_preset(name: str) -> ModelPreset:
    try:
        return PRESETS[name]
    except KeyError:
        raise KeyError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}") from None
