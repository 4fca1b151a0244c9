"""PSNR and SSIM: known values, masks, and agreement with a direct (slow) SSIM computation."""

from __future__ import annotations

import numpy as np
import pytest

from glmimage.evaluation.image_metrics import PSNR_CAP, psnr, ssim, ssim_map


def test_psnr_known_values_and_mask():
    a = np.zeros((8, 8, 3), np.uint8)
    b = a.copy()
    assert psnr(a, b) == PSNR_CAP
    b[:4] = 10  # MSE over all pixels = 50 -> 10*log10(255^2/50)
    assert psnr(a, b) == pytest.approx(10 * np.log10(255**2 / 50))
    mask = np.zeros((8, 8), bool)
    mask[4:] = True  # only the untouched half
    assert psnr(a, b, mask) == PSNR_CAP
    assert psnr(a, b, np.zeros((8, 8), bool)) is None


def _direct_ssim(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """SSIM map by explicit 11x11 Gaussian windows over reflect-padded single-channel images."""
    k = np.arange(11) - 5
    g = np.exp(-(k**2) / (2 * 1.5**2))
    w = np.outer(g, g) / np.outer(g, g).sum()
    px, py = np.pad(x, 5, mode="reflect"), np.pad(y, 5, mode="reflect")
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    out = np.zeros_like(x)
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            wx, wy = px[i:i + 11, j:j + 11], py[i:i + 11, j:j + 11]
            mx, my = (w * wx).sum(), (w * wy).sum()
            vx, vy = (w * wx * wx).sum() - mx * mx, (w * wy * wy).sum() - my * my
            cxy = (w * wx * wy).sum() - mx * my
            out[i, j] = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return out


def test_ssim_matches_direct_computation():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (20, 24)).astype(np.float64)
    y = np.clip(x + rng.normal(0, 30, x.shape), 0, 255)
    assert np.allclose(ssim_map(x[..., None], y[..., None]), _direct_ssim(x, y), atol=1e-9)


def test_ssim_orders_similarity_and_respects_mask():
    rng = np.random.default_rng(1)
    img = np.zeros((64, 64, 3), np.uint8)
    img[16:48, 16:48] = (200, 40, 40)
    noisy = rng.integers(0, 256, img.shape, dtype=np.uint8)
    assert ssim(img, img) == pytest.approx(1.0)
    assert ssim(img, noisy) < 0.1
    half = img.copy()
    half[:, 32:] = noisy[:, 32:]
    left = np.zeros((64, 64), bool)
    left[:, :20] = True
    assert ssim(img, half, left) == pytest.approx(1.0, abs=1e-6)
    assert ssim(img, half, ~left) < 0.5
    with pytest.raises(ValueError):
        ssim(img, img[:32])
