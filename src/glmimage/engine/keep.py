"""Keeping what an edit leaves alone: the cells the plan does not change come from the reference.

The planner writes an edit's target grid next to the reference's own codes; where they agree (and away from any cell
that changes) the edit has nothing to do, so the engine keeps the reference there, twice:
- in the latents, at every denoising step (the reference latent noised to the step's level, as diffusers' inpainting
  pipelines do), so the DiT paints the changed cells to fit what is kept;
- in the pixels, after the VAE: the reference's own pixels over the kept cells, blended over a feathered border
  (the VAE round trip alone loses ~6 dB of PSNR at nano size).
Only the changed cells themselves are redrawn by default (`grow` 0): a margin of one cell around each, tried first,
redrew 9 cells for every isolated change and kept less of the source on every measure (docs/training.md).
By default the mask comes from the model's plan (no ground truth); plans that change most cells (restyles, new
scenes) keep nothing. An explicit pixel mask (`KeepConfig(mask=...)`, `Engine.edit(keep_mask=...)`; what an OpenAI
edit mask says, `mask_from_alpha`) replaces the plan's: the output keeps the reference exactly where it says, at
pixel resolution, whatever the plan changed there.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from glmimage.engine.decoder import encode_reference, vae_stats
from glmimage.engine.plan import Plan
from glmimage.errors import InputError


@dataclass(frozen=True)
class KeepConfig:
    grow: int = 0  # cells around every changed cell that may change too (1 was measured worse: 27.8 -> 37.8 dB at 0)
    max_changed: float = 0.6  # a plan that changes more of the grid than this is a new image: keep nothing
    feather: float = 0.25  # width of the pixel blend at the border, as a share of one planner cell
    # An explicit mask, (H, W), True (non-zero) where the output keeps the first reference, at that reference's size
    # (scaled to the output's, nearest). Given, it replaces the plan's mask: grow and max_changed do not apply.
    # A bool/number array or tensor, or a PIL image ("1"/"L": non-zero keeps); see `mask_from_alpha`.
    mask: torch.Tensor | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.mask is not None:
            object.__setattr__(self, "mask", as_keep_mask(self.mask))
        if self.grow < 0:
            raise ValueError(f"grow must be >= 0, got {self.grow}")
        if not 0 < self.max_changed <= 1:
            raise ValueError(f"max_changed must be in (0, 1], got {self.max_changed}")
        if self.feather < 0:
            raise ValueError(f"feather must be >= 0, got {self.feather}")


def as_keep_mask(mask) -> torch.Tensor:
    """(H, W) bool tensor, True = keep, from a tensor, an array or a one-channel PIL image (non-zero keeps)."""
    if isinstance(mask, Image.Image):
        if mask.mode not in ("1", "L"):
            raise InputError(f"a keep mask image must have one channel (mode 1 or L), got mode {mask.mode}; "
                             "for an image whose transparent pixels mark the edit, use mask_from_alpha")
        mask = np.asarray(mask)
    tensor = mask if isinstance(mask, torch.Tensor) else torch.from_numpy(np.array(mask))
    if tensor.dim() != 2 or tensor.numel() == 0:
        raise InputError(f"a keep mask is 2-d (height, width), got shape {tuple(tensor.shape)}")
    return tensor.detach().cpu() != 0


def mask_from_alpha(image: Image.Image) -> torch.Tensor:
    """An OpenAI edit mask: a PNG whose fully transparent pixels (alpha 0) mark where to edit. Returns the keep
    mask (True where alpha > 0). InputError for an image without an alpha channel."""
    if image.mode not in ("RGBA", "LA", "PA") and not (image.mode == "P" and "transparency" in image.info):
        raise InputError(f"the mask has no alpha channel (mode {image.mode}); send a PNG whose transparent pixels "
                         "(alpha 0) mark where to edit")
    return as_keep_mask(np.asarray(image.convert("RGBA"))[..., 3])


def masked(config: KeepConfig | None, mask) -> KeepConfig:
    """`config` (None: the defaults) keeping exactly where `mask` says."""
    return replace(config or KeepConfig(), mask=mask)


def _user_masks(plan: Plan, config: KeepConfig, vae_scale: int) -> tuple[torch.Tensor, torch.Tensor, float] | None:
    """(latent mask, feathered pixel mask, kept share) of an explicit mask for `plan`; None for text-to-image."""
    if not plan.is_edit or config.mask is None:
        return None
    reference = plan.reference_images[0]
    if (reference.width, reference.height) != (plan.width, plan.height):
        raise InputError(f"a keep mask needs the output at the first reference's size ({reference.width}x"
                         f"{reference.height}), got {plan.width}x{plan.height}")
    pixels = F.interpolate(config.mask[None, None].float(), size=(plan.height, plan.width), mode="nearest")
    latent = -F.max_pool2d(-pixels, vae_scale)  # a latent is kept only where all of its pixels are
    cell = plan.height // plan.grid[0]
    return latent, feathered(pixels, round(config.feather * cell)), float(pixels.mean())


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
    explicit = config.mask is not None
    users = [_user_masks(p, config, vae_scale) for p in plans] if explicit else [None] * len(plans)
    cells = [None] * len(plans) if explicit else [kept_cells(p, config) for p in plans]
    if all(c is None for c in cells) and all(u is None for u in users):
        return None
    height, width = plans[0].height, plans[0].width
    mean, std = vae_stats(vae, device, dtype)
    encoded: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}  # a plan decoded num_images times repeats in `plans`
    latent_masks, pixel_masks, latents, pixels, shares = [], [], [], [], []
    for plan, kept, user in zip(plans, cells, users):
        if kept is None and user is None:
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
        if user is not None:
            latent_masks.append(user[0])
            pixel_masks.append(user[1])
            shares.append(user[2])  # of the pixels
            continue
        assert kept is not None
        latent_masks.append(cell_mask(kept, height // vae_scale, width // vae_scale))
        cell = height // plan.grid[0]
        pixel_masks.append(feathered(cell_mask(kept, height, width), round(config.feather * cell)))
        shares.append(float(kept.float().mean()))
    return KeepPlan(torch.cat(latent_masks).to(device, dtype), torch.cat(pixel_masks).to(device, dtype),
                    torch.cat(latents), torch.cat(pixels), shares)
