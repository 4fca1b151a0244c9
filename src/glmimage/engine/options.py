"""How the engine runs: exact settings (same output) and opt-in approximations (measured quality cost).

Exact:
- the planner's sampling loop ("fast" = our lean loop, tokens equal generate()'s; "library" = generate());
- CPU threads;
- how the two CFG branches run: "batched" (default), one forward of 2B rows, the unguided rows' shorter glyph text
  padded and masked; "split", two forwards as the reference runs them. Batched was faster in every setting measured
  (nano, 256x256: 1 or 2 threads, eager or compiled; docs/experiments/speed.md);
- `compile`: torch.compile of the DiT's forward and the VAE decoder (inductor, weights frozen into the graphs:
  `engine/inductor.py`) and of the planner's decoding step with a static KV cache, its sampling inside the graph.
  Same plans and images within float tolerance; each new shape compiles first (tens of seconds on a CPU), so it pays
  off in servers and batch jobs, not for one image.
Approximate (off by default): bf16 matmuls (autocast) for the decoder and VAE, diffusers' First Block Cache on the
DiT (skips the remaining blocks when the first block's residual barely changed between steps). Fewer steps is
simply `steps=` on each call.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class EngineOptions:
    planner: str = "fast"  # "fast" | "library"
    num_threads: int | None = None  # None: leave torch's setting alone
    decoder_dtype: str = "float32"  # "float32" | "bfloat16" (approximate)
    step_cache_threshold: float | None = None  # First Block Cache threshold, e.g. 0.05 (approximate)
    cfg_mode: str = "batched"  # "batched" | "split" (exact: same images within float tolerance)
    compile: bool = False  # torch.compile the DiT and the planner's decoding step (exact within float tolerance)

    def __post_init__(self) -> None:
        if self.planner not in ("fast", "library"):
            raise ValueError(f"planner must be 'fast' or 'library', got {self.planner!r}")
        if self.num_threads is not None and self.num_threads < 1:
            raise ValueError(f"num_threads must be >= 1, got {self.num_threads}")
        if self.decoder_dtype not in ("float32", "bfloat16"):
            raise ValueError(f"decoder_dtype must be 'float32' or 'bfloat16', got {self.decoder_dtype!r}")
        if self.step_cache_threshold is not None and self.step_cache_threshold <= 0:
            raise ValueError("step_cache_threshold must be positive")
        if self.cfg_mode not in ("batched", "split"):
            raise ValueError(f"cfg_mode must be 'batched' or 'split', got {self.cfg_mode!r}")
        if self.cfg_mode == "split" and self.step_cache_threshold is not None:
            # First Block Cache compares successive forwards: alternating guided/unguided calls would break it
            raise ValueError("the step cache needs cfg_mode 'batched'")
        if self.compile and self.step_cache_threshold is not None:
            # the cache's hooks decide per forward whether to skip blocks: not one fixed graph
            raise ValueError("compile and the step cache do not combine: pick one")

    @property
    def split_cfg(self) -> bool:
        """Whether the two CFG branches run as separate forwards."""
        return self.cfg_mode == "split"

    @property
    def exact(self) -> bool:
        return self.decoder_dtype == "float32" and self.step_cache_threshold is None


@contextlib.contextmanager
def torch_threads(num_threads: int | None):
    """Run with `num_threads` intra-op threads, restoring the previous setting after."""
    if num_threads is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(num_threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def enable_step_cache(transformer, threshold: float) -> None:
    """diffusers' First Block Cache; GlmImage blocks return (hidden, encoder_hidden) like CogView4's."""
    from diffusers import FirstBlockCacheConfig
    from diffusers.hooks._helpers import TransformerBlockMetadata, TransformerBlockRegistry
    from diffusers.models.transformers.transformer_glm_image import GlmImageTransformerBlock

    try:
        TransformerBlockRegistry.get(GlmImageTransformerBlock)
    except ValueError:
        TransformerBlockRegistry.register(
            model_class=GlmImageTransformerBlock,
            metadata=TransformerBlockMetadata(return_hidden_states_index=0, return_encoder_hidden_states_index=1),
        )
    transformer.enable_cache(FirstBlockCacheConfig(threshold=threshold))


def resolve_device(device: str = "auto", dtype: str = "auto") -> tuple[str, torch.dtype]:
    """"auto" device: cuda when available, else cpu; "auto" dtype: bfloat16 on cuda (the reference's), else float32."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if dtype == "auto":
        dtype = "bfloat16" if device.startswith("cuda") else "float32"
    if dtype not in ("float32", "bfloat16", "float16"):
        raise ValueError(f"dtype must be auto, float32, bfloat16 or float16, got {dtype!r}")
    return device, getattr(torch, dtype)
