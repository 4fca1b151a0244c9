"""What the stages report: PSNR, OCR word accuracy (CVTG-2K definition, glmimage.evaluation), codebook usage and
perplexity, and PNG grids to look at."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image


def to_uint8(pixels: torch.Tensor) -> list[Image.Image]:
    """(B, 3, H, W) in [-1, 1] -> PIL images (the pipeline's postprocess arithmetic)."""
    x = ((pixels.detach().float().clamp(-1, 1) + 1) / 2 * 255).round().to(torch.uint8)
    return [Image.fromarray(a.permute(1, 2, 0).cpu().numpy()) for a in x]


def psnr(a: Image.Image, b: Image.Image) -> float:
    """PSNR in dB of two 8-bit images (peak 255)."""
    x = np.asarray(a.convert("RGB"), dtype=np.float64)
    y = np.asarray(b.convert("RGB"), dtype=np.float64)
    mse = float(((x - y) ** 2).mean())
    return float("inf") if mse == 0 else 10 * math.log10(255.0**2 / mse)


def ocr_word_accuracy(images: list[Image.Image], texts: list[list[str]]) -> float | None:
    """Mean CVTG-2K word accuracy of images against the texts each should show (None when no image has text)."""
    from glmimage.evaluation.ocr import read_text
    from glmimage.evaluation.text_metrics import score_texts

    scores = []
    for image, gt in zip(images, texts):
        gt = [t for t in gt if t.split()]
        if not gt:
            continue
        scores.append(score_texts(gt, [line.text for line in read_text(image)]).word_accuracy)
    return sum(scores) / len(scores) if scores else None


def codebook_stats(codes: torch.Tensor, codebook_size: int) -> dict[str, float]:
    """Usage (share of codes used at least once) and perplexity (exp of the code distribution's entropy)."""
    counts = torch.bincount(codes.view(-1).long(), minlength=codebook_size).double()
    p = counts / counts.sum()
    entropy = -(p[p > 0] * p[p > 0].log()).sum().item()
    return {"codebook_usage": float((counts > 0).double().mean()), "perplexity": math.exp(entropy)}


def save_grid(rows: list[list[Image.Image]], path: str | Path, labels: list[str] | None = None) -> Path:
    """Rows of equal-size images into one PNG (row labels drawn on the left when given)."""
    from PIL import ImageDraw

    w, h = rows[0][0].size
    pad = 4
    label_w = 90 if labels else 0
    cols = max(len(r) for r in rows)
    canvas = Image.new("RGB", (label_w + cols * (w + pad) + pad, len(rows) * (h + pad) + pad), "white")
    draw = ImageDraw.Draw(canvas)
    for i, row in enumerate(rows):
        y = pad + i * (h + pad)
        if labels:
            draw.text((4, y + h // 2 - 6), labels[i], fill="black")
        for j, img in enumerate(row):
            canvas.paste(img.convert("RGB").resize((w, h)), (label_w + pad + j * (w + pad), y))
    path = Path(path)
    canvas.save(path)
    return path
