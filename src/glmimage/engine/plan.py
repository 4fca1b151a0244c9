"""The visual plan: what the planner decided, as a first-class object that can be rendered many times."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import torch


@dataclass
class Plan:
    """Planner output for one prompt.

    `target_tokens` (h*w,) are the VQ codes of the target grid at 1/32 of the pixels; `preview_tokens` the ~256-token
    preview (text-to-image only); `reference_tokens` the codes of each reference image (image-to-image), with their
    1/32 grids. The decoder uses the target and reference codes upsampled 2x to its 1/16 grid.
    """

    prompt: str
    width: int
    height: int
    grid: tuple[int, int]  # (h, w) of the target at 1/32
    target_tokens: torch.Tensor
    preview_grid: tuple[int, int] | None = None
    preview_tokens: torch.Tensor | None = None
    reference_grids: list[tuple[int, int]] = field(default_factory=list)
    reference_tokens: list[torch.Tensor] = field(default_factory=list)
    reference_images: list = field(default_factory=list)  # PIL images resized to their valid sizes
    seed: int | None = None
    model_id: str = ""
    planner_seconds: float = 0.0

    def __post_init__(self) -> None:
        h, w = self.grid
        if self.target_tokens.numel() != h * w:
            raise ValueError(f"plan has {self.target_tokens.numel()} target tokens for a {h}x{w} grid")

    @property
    def is_edit(self) -> bool:
        return bool(self.reference_tokens)

    @property
    def hash(self) -> str:
        """Content hash of what the decoder will see (tokens, grids, size), not of the prompt wording."""
        digest = hashlib.sha256()
        digest.update(f"{self.width}x{self.height}:{self.grid}".encode())
        digest.update(self.target_tokens.to(torch.int64).cpu().numpy().tobytes())
        for grid, tokens in zip(self.reference_grids, self.reference_tokens):
            digest.update(f"ref{grid}".encode())
            digest.update(tokens.to(torch.int64).cpu().numpy().tobytes())
        return digest.hexdigest()[:16]

    def upsampled_target(self) -> torch.Tensor:
        """(h*2 * w*2,) codes on the DiT grid (nearest 2x, as the reference pipeline)."""
        return upsample_tokens(self.target_tokens, *self.grid)

    def to_dict(self) -> dict:
        return {
            "prompt": self.prompt, "width": self.width, "height": self.height, "grid": list(self.grid),
            "target_tokens": self.target_tokens.tolist(),
            "preview_grid": list(self.preview_grid) if self.preview_grid else None,
            "preview_tokens": self.preview_tokens.tolist() if self.preview_tokens is not None else None,
            "reference_grids": [list(g) for g in self.reference_grids],
            "reference_tokens": [t.tolist() for t in self.reference_tokens],
            "seed": self.seed, "model_id": self.model_id, "hash": self.hash,
        }


def upsample_tokens(tokens: torch.Tensor, h: int, w: int) -> torch.Tensor:
    grid = tokens.view(1, 1, h, w).float()
    return torch.nn.functional.interpolate(grid, scale_factor=2, mode="nearest").long().view(-1)
