"""Reference renderers that prove the harness: the world's own ground truth (should score near the maximum),
uniform noise and shuffled pairs (should score near zero)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
from PIL import Image

from glmimage.data.sample import EditSample, Sample


def ground_truth(sample: Sample) -> Image.Image:
    return sample.image


def ground_truth_edit(es: EditSample) -> Image.Image:
    return es.target.image


def _noise_like(key: str, width: int, height: int, seed: int) -> Image.Image:
    digest = hashlib.blake2b(f"{seed}/{key}".encode(), digest_size=8).digest()
    rng = np.random.default_rng(int.from_bytes(digest, "big"))
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


def noise(seed: int = 0):
    """Uniform RGB noise of the requested size, deterministic per sample."""

    def render(sample: Sample) -> Image.Image:
        return _noise_like(sample.key, sample.width, sample.height, seed)

    return render


def noise_edit(seed: int = 0):
    def render(es: EditSample) -> Image.Image:
        return _noise_like(es.key, es.target.width, es.target.height, seed)

    return render


def shuffled(samples: Sequence[Sample]):
    """Each sample is answered with the ground-truth render of the next one (a different kind of design)."""
    if len(samples) < 2:
        raise ValueError("shuffled pairs need at least two samples")
    nxt = {s.key: samples[(i + 1) % len(samples)].image for i, s in enumerate(samples)}
    return lambda sample: nxt[sample.key]


def shuffled_edit(samples: Sequence[EditSample]):
    if len(samples) < 2:
        raise ValueError("shuffled pairs need at least two samples")
    nxt = {s.key: samples[(i + 1) % len(samples)].target.image for i, s in enumerate(samples)}
    return lambda es: nxt[es.key]


def vae_reconstruction(model: str):
    """The ground truth through a model's VAE (encode, posterior mode, decode): what the decoder could at best give
    back. Its OCR by text height is the gate before decoder training spends hours on the VAE's latents."""
    import torch

    from glmimage.engine import Engine

    vae = Engine.from_pretrained(model).pipe.vae.float().eval()

    @torch.no_grad()
    def render(sample: Sample) -> Image.Image:
        pixels = torch.from_numpy(np.asarray(sample.image.convert("RGB"), dtype=np.float32)).permute(2, 0, 1)[None]
        out = vae.decode(vae.encode(pixels / 127.5 - 1).latent_dist.mode()).sample[0].clamp(-1, 1)
        return Image.fromarray(((out + 1) * 127.5).round().byte().permute(1, 2, 0).numpy())

    return render
