"""Per-image QA: is the picture there at all (not blank, not flat, at the resolution asked for), does it say the
quoted text (OCR match score), and does the text it shows pass the content policy and the brand kit.

The pixel checks are plain numpy on the luminance in [0, 255]. OCR sits behind `TextChecker`, so tests and
deployments without OCR can swap it; the default reads with the evaluation module's OCR, imported lazily.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from PIL import Image

from glmimage.service.safety import SafetyPolicy


@dataclass(frozen=True)
class CheckResult:
    check: str  # blank | flat | resolution | text | content_policy | brand
    passed: bool
    score: float | None
    detail: str


@dataclass(frozen=True)
class QAConfig:
    # A blank image is one colour up to noise: luminance std below this (0..255 scale).
    blank_max_std: float = 2.0
    # A flat image has (almost) no edges: mean absolute luminance gradient below this.
    flat_min_gradient: float = 1.0
    # Under-resolved, two signs. Pixel repetition: the detail a 2x box down / nearest up round trip loses,
    # relative to all detail (exactly 0 when every 2x2 block is one colour). Low-pass: the share of spectral
    # energy above half the Nyquist frequency (what a half-size picture cannot hold). Measured on 256 px
    # renders: small sharp text 0.11, one big sharp word 0.021, text drawn at half size and upscaled bicubic
    # 0.028, at quarter size 0.0002; tiny-model outputs 0.17-0.19. Big sharp lettering and a 2x upscale
    # overlap, so the threshold only catches 4x upscales and worse; 2x shows as pixel repetition or not at all.
    min_fine_detail: float = 0.005
    min_high_band: float = 0.005
    # Text: OCR match score (Flow-GRPO OCR reward averaged over the quoted texts) needed to pass.
    min_text_score: float = 0.6

    def __post_init__(self) -> None:
        if not 0.0 <= self.min_text_score <= 1.0:
            raise ValueError(f"min_text_score must be in [0, 1], got {self.min_text_score}")
        if min(self.blank_max_std, self.flat_min_gradient, self.min_fine_detail, self.min_high_band) < 0:
            raise ValueError("QA thresholds must not be negative")


def luminance(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("L"), dtype=np.float32)  # (H, W) in [0, 255]


def check_blank(image: Image.Image, config: QAConfig) -> CheckResult:
    std = float(luminance(image).std())
    return CheckResult("blank", std > config.blank_max_std, std,
                       f"luminance std {std:.2f} (blank at or below {config.blank_max_std})")


def mean_gradient(lum: np.ndarray) -> float:
    gx = np.abs(np.diff(lum, axis=1)).mean() if lum.shape[1] > 1 else 0.0
    gy = np.abs(np.diff(lum, axis=0)).mean() if lum.shape[0] > 1 else 0.0
    return float((gx + gy) / 2)


def check_flat(image: Image.Image, config: QAConfig) -> CheckResult:
    grad = mean_gradient(luminance(image))
    return CheckResult("flat", grad >= config.flat_min_gradient, grad,
                       f"mean gradient {grad:.2f} (flat below {config.flat_min_gradient})")


def fine_detail_ratio(lum: np.ndarray) -> float:
    """Share of the image's detail that lives at the finest scale: |x - up(down(x))| over |x - mean|, with a
    2x2 box average down and nearest up. 0 for an image upscaled 2x (or more) by repeating pixels."""
    h, w = (lum.shape[0] // 2) * 2, (lum.shape[1] // 2) * 2
    x = lum[:h, :w]
    coarse = x.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))  # (H/2, W/2)
    up = np.repeat(np.repeat(coarse, 2, axis=0), 2, axis=1)  # (H, W)
    total = np.abs(x - x.mean()).mean()
    return float(np.abs(x - up).mean() / total) if total > 0 else 0.0


def high_band_share(lum: np.ndarray) -> float:
    """Share of the (Hann-windowed) spectral energy at frequencies above 1/4 cycle per pixel on either axis."""
    x = lum - lum.mean()
    window = np.outer(np.hanning(x.shape[0]), np.hanning(x.shape[1]))
    power = np.abs(np.fft.fft2(x * window)) ** 2  # (H, W)
    fy = np.abs(np.fft.fftfreq(x.shape[0]))[:, None]
    fx = np.abs(np.fft.fftfreq(x.shape[1]))[None, :]
    total = power.sum()
    return float(power[(fx > 0.25) | (fy > 0.25)].sum() / total) if total > 0 else 0.0


def check_resolution(image: Image.Image, width: int, height: int, config: QAConfig) -> CheckResult:
    if image.size != (width, height):
        return CheckResult("resolution", False, None, f"image is {image.width}x{image.height}, asked {width}x{height}")
    lum = luminance(image)
    repeat, high = fine_detail_ratio(lum), high_band_share(lum)
    passed = repeat >= config.min_fine_detail and high >= config.min_high_band
    return CheckResult("resolution", passed, high,
                       f"fine-detail ratio {repeat:.3f} (min {config.min_fine_detail}), high-band energy "
                       f"{high:.4f} (min {config.min_high_band})")


class TextChecker(Protocol):
    """Reads the text of an image and scores it against the texts the prompt asked for."""

    def read(self, image: Image.Image) -> str: ...

    def score(self, image: Image.Image, expected_texts: list[str]) -> float: ...


def text_match_score(recognized: str, expected_texts: list[str]) -> float:
    """Flow-GRPO's OCR reward averaged over the expected texts (evaluation.text_metrics); 1.0 when nothing
    non-empty is expected."""
    from glmimage.evaluation.text_metrics import mean_ocr_reward

    targets = [t for t in expected_texts if t.strip()]
    return mean_ocr_reward(targets, [recognized]) if targets else 1.0


class OcrTextChecker:
    """The default TextChecker: the evaluation module's OCR (rapidocr), loaded on first use."""

    def __init__(self) -> None:
        self._read: Callable[[Image.Image], str] | None = None
        self._lock = threading.Lock()  # the OCR session is loaded once and not shared between threads

    def read(self, image: Image.Image) -> str:
        with self._lock:
            if self._read is None:
                self._read = _load_ocr()
            return self._read(image)

    def score(self, image: Image.Image, expected_texts: list[str]) -> float:
        return text_match_score(self.read(image), expected_texts)


def _load_ocr() -> Callable[[Image.Image], str]:
    """image -> all recognised lines, top to bottom, joined by spaces (the evaluation module's rapidocr)."""
    from glmimage.evaluation.ocr import read_text

    return lambda image: " ".join(line.text for line in read_text(image))


def run_checks(
    image: Image.Image,
    *,
    width: int,
    height: int,
    expected_texts: list[str],
    config: QAConfig,
    text_checker: TextChecker | None,
    safety: SafetyPolicy,
    brand=None,
) -> list[CheckResult]:
    """All checks for one output image. OCR runs once and feeds the text, policy and brand checks."""
    results = [check_blank(image, config), check_flat(image, config),
               check_resolution(image, width, height, config)]
    if text_checker is None:
        return results
    text = text_checker.read(image)
    if any(t.strip() for t in expected_texts):
        score = text_match_score(text, expected_texts)
        results.append(CheckResult("text", score >= config.min_text_score, score,
                                   f"OCR match {score:.2f} for {expected_texts} (read {text[:200]!r})"))
    verdict = safety.check(text) if text.strip() else None
    if verdict is not None and verdict.action != "allow":
        results.append(CheckResult("content_policy", False, None, f"rendered text: {verdict.reason}"))
    if brand is not None:
        report = brand.qa(image, text)
        results.append(CheckResult("brand", report.passed, report.palette_distance,
                                   "; ".join(report.problems()) or "on brand"))
    return results
