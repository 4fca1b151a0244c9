"""PSNR and SSIM in numpy, optionally restricted to a mask (preservation outside an edit's changed region)."""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from PIL import Image

PSNR_CAP = 100.0  # identical pixels: report this instead of infinity so means stay finite


def _as_float(image: Image.Image | np.ndarray) -> np.ndarray:
    arr = np.asarray(image.convert("RGB") if isinstance(image, Image.Image) else image, dtype=np.float64)
    return arr if arr.ndim == 3 else arr[..., None]


def _check(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None) -> None:
    if a.shape != b.shape:
        raise ValueError(f"images differ in shape: {a.shape} vs {b.shape}")
    if mask is not None and mask.shape != a.shape[:2]:
        raise ValueError(f"mask shape {mask.shape} does not match image {a.shape[:2]}")


def psnr(a, b, mask: np.ndarray | None = None, peak: float = 255.0) -> float | None:
    """Peak signal-to-noise ratio in dB over the pixels where mask is True (all pixels without a mask);
    None when the mask selects nothing."""
    x, y = _as_float(a), _as_float(b)
    _check(x, y, mask)
    err = (x - y) ** 2
    if mask is not None:
        if not mask.any():
            return None
        err = err[mask]
    mse = float(err.mean())
    return PSNR_CAP if mse == 0 else min(PSNR_CAP, 10 * np.log10(peak**2 / mse))


def _gaussian_kernel(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    k = np.arange(size) - (size - 1) / 2
    g = np.exp(-(k**2) / (2 * sigma**2))
    return g / g.sum()


def _blur(x: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Separable 'same' Gaussian filter of an (H, W) array, edges reflected."""
    r = len(g) // 2
    p = np.pad(x, r, mode="reflect")
    p = sliding_window_view(p, len(g), axis=0) @ g  # (H, W + 2r)
    return sliding_window_view(p, len(g), axis=1) @ g  # (H, W)


def ssim_map(a, b, peak: float = 255.0) -> np.ndarray:
    """Per-pixel SSIM (Wang et al. 2004: 11x11 Gaussian window, sigma 1.5, K1 0.01, K2 0.03), averaged
    over colour channels; shape (H, W)."""
    x, y = _as_float(a), _as_float(b)
    _check(x, y, None)
    g = _gaussian_kernel()
    c1, c2 = (0.01 * peak) ** 2, (0.03 * peak) ** 2
    maps = []
    for ch in range(x.shape[2]):
        xc, yc = x[..., ch], y[..., ch]
        mx, my = _blur(xc, g), _blur(yc, g)
        sxx = _blur(xc * xc, g) - mx * mx
        syy = _blur(yc * yc, g) - my * my
        sxy = _blur(xc * yc, g) - mx * my
        maps.append(((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2)))
    return np.mean(maps, axis=0)


def ssim(a, b, mask: np.ndarray | None = None) -> float | None:
    """Mean SSIM over the pixels where mask is True (all pixels without a mask); None when it selects nothing."""
    m = ssim_map(a, b)
    if mask is not None:
        _check(_as_float(a), _as_float(b), mask)
        if not mask.any():
            return None
        return float(m[mask].mean())
    return float(m.mean())
