"""Keeping what an edit leaves alone: the cells the plan does not change come from the reference.

The planner writes an edit's target grid next to the reference's own codes; where they agree (and away from any cell
that changes) the edit has nothing to do, so the engine keeps the reference there, twice:
- in the latents, at every denoising step (the reference latent noised to the step's level, as diffusers' inpainting
  pipelines do), so the DiT paints the changed cells to fit what is kept;
- in the pixels, after the VAE: the reference's own pixels over the kept cells, blended over a feathered border
  (the VAE round trip alone loses ~6 dB of PSNR at nano size).
Only the changed cells themselves are redrawn by default (`grow` 0): a margin of one cell around each, tried first,
redrew 9 cells for every isolated change and kept less of the source on every measure (docs/training.md).
The mask comes from the model's plan only: no user mask, no ground truth. Plans that change most cells (restyles,
new scenes) keep nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from glmimage.engine.decoder import encode_reference, vae_stats
from glmimage.engine.plan import Plan


@dataclass(frozen=True)
class KeepConfig:
    grow: int = 0  # cells around every changed cell that may change too (1 was measured worse: 27.8 -> 37.8 dB at 0)
    max_changed: float = 0.6  # a plan that changes more of the grid than this is a new image: keep nothing
    feather: float = 0.25  # width of the pixel blend at the border, as a share of one planner cell

    def __post_init__(self) -> None:
        if self.grow < 0:
            raise ValueError(f"grow must be >= 0, got {self.grow}")
        if not 0 < self.max_changed <= 1:
            raise ValueError(f"max_changed must be in (0, 1], got {self.max_changed}")
        if self.feather < 0:
            raise ValueError(f"feather must be >= 0, got {self.feather}")


def kept_cells(plan: Plan, config: KeepConfig = KeepConfig()) -> torch.Tensor | None:
    """(h, w) bool on the planner's grid, True where the output keeps the first reference; None where nothing can
    be kept (not an edit, a reference of another size or grid, or a plan that changes most cells)."""
    if not plan.is_edit:
        return None
    reference = plan.reference_images[0]
    if plan.reference_grids[0] != plan.grid or (reference.width, reference.height) != (plan.width, plan.height):
        return None
    h, w = plan.grid
    changed = (plan.target_tokens != plan.reference_tokens[0]).view(1, 1, h, w).float()
    if config.grow:
        changed = F.max_pool2d(changed, 2 * config.grow + 1, stride=1, padding=config.grow)
    changed = changed.view(h, w).bool()
    if changed.float().mean() > config.max_changed:
        return None
    return ~changed


def cell_mask(cells: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(1, 1, height, width) float mask (1 = keep) from a planner-grid mask, nearest upsampling."""
    return F.interpolate(cells[None, None].float(), size=(height, width), mode="nearest")


def feathered(mask: torch.Tensor, radius: int) -> torch.Tensor:
    """Soften a (B, 1, H, W) keep mask inward: 1 deep inside kept areas, falling to 0 at their border, so the blend
    never reaches into a changed cell."""
    if radius < 1:
        return mask
    kernel = 2 * radius + 1
    inner = -F.max_pool2d(-mask, kernel, stride=1, padding=radius)  # erode: kept pixels radius away from a change
    return F.avg_pool2d(inner, kernel, stride=1, padding=radius, count_include_pad=False) * mask


def renoised(reference: torch.Tensor, noise: torch.Tensor, sigma: float) -> torch.Tensor:
    """The flow-matching sample at noise level sigma: (1 - sigma) * x0 + sigma * noise."""
    return (1.0 - sigma) * reference + sigma * noise


@dataclass
class KeepPlan:
    """What the decoder needs to keep cells of a batch: masks (B, 1, ...) at latent and pixel size, the references'
    normalised latents and their pixels in [-1, 1]; rows that keep nothing have all-zero masks."""

    latent_mask: torch.Tensor
    pixel_mask: torch.Tensor
    latents: torch.Tensor
    pixels: torch.Tensor
    shares: list[float]  # kept share of each row's cells (metadata)

    def blend_latents(self, latents: torch.Tensor, noise: torch.Tensor, sigma: float) -> torch.Tensor:
        reference = renoised(self.latents, noise, sigma).to(latents.dtype)
        return self.latent_mask * reference + (1 - self.latent_mask) * latents

    def blend_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.pixel_mask * self.pixels.to(pixels.dtype) + (1 - self.pixel_mask) * pixels


@torch.no_grad()
def keep_plan(plans: list[Plan], vae, image_processor, config: KeepConfig, vae_scale: int, device,
              dtype) -> KeepPlan | None:
    """The batch's keep masks and reference latents and pixels; None when no row keeps anything. Kept cells need the
    output at the reference's size (`kept_cells`), so each reference is encoded at its own size, once per plan."""
    cells = [kept_cells(p, config) for p in plans]
    if all(c is None for c in cells):
        return None
    height, width = plans[0].height, plans[0].width
    mean, std = vae_stats(vae, device, dtype)
    encoded: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}  # a plan decoded num_images times repeats in `plans`
    latent_masks, pixel_masks, latents, pixels, shares = [], [], [], [], []
    for plan, kept in zip(plans, cells):
        if kept is None:
            kept = torch.zeros(plan.grid, dtype=torch.bool)
            pixel = torch.zeros(1, 3, height, width, device=device, dtype=dtype)  # masked out: any values do
            latent = torch.zeros(1, vae.config.latent_channels, height // vae_scale, width // vae_scale,
                                 device=device, dtype=dtype)
        else:
            if id(plan) not in encoded:
                encoded[id(plan)] = encode_reference(vae, image_processor, plan.reference_images[0], mean, std,
                                                     device, dtype)
            pixel, latent = encoded[id(plan)]
        pixels.append(pixel)
        latents.append(latent)
        latent_masks.append(cell_mask(kept, height // vae_scale, width // vae_scale))
        cell = height // plan.grid[0]
        pixel_masks.append(feathered(cell_mask(kept, height, width), round(config.feather * cell)))
        shares.append(float(kept.float().mean()))
    return KeepPlan(torch.cat(latent_masks).to(device, dtype), torch.cat(pixel_masks).to(device, dtype),
                    torch.cat(latents), torch.cat(pixels), shares)
