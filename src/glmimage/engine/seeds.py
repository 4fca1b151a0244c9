"""How one call's seeds are laid out (torch-free: the service's worker uses it without loading the engine)."""

from __future__ import annotations


def plan_seeds(seed: int, prompts: int, num_images: int) -> list[int]:
    """The planner seed of each prompt of one call: `seed + k * num_images` for prompt k. Prompt k's images are
    decoded with latent seeds counting up from its plan seed, so every image can be reproduced alone."""
    return [seed + k * num_images for k in range(prompts)]
