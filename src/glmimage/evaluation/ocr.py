"""OCR with rapidocr (PaddleOCR models shipped inside its wheel, so it runs offline), loaded once per process; or
with Tesseract (`engine="tesseract"`, the `tesseract` program, e.g. Debian's tesseract-ocr), a second engine whose
errors are independent of the first: what a model trained against rapidocr's reading (a GRPO reward) is checked with.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import threading
from dataclasses import dataclass

import numpy as np
from PIL import Image

OCR_ENGINES = ("rapidocr", "tesseract")


@dataclass(frozen=True)
class OcrConfig:
    engine: str = "rapidocr"
    # rapidocr already enlarges the detector input to >= 736 px; enlarging before that read worse on our renders
    # (word accuracy on ground truth 0.97 at 1x vs 0.93 at 2x, docs/data_and_eval.md).
    upscale: float = 1.0
    threads: int = 1  # onnxruntime intra-op threads; the machine is shared
    min_score: float = 0.5  # lines below this recognition confidence are dropped
    # The detector enlarges its input so the short side is at least this; 512 reads the world's ground truth as
    # well as rapidocr's default 736 (word accuracy 1.0 on 140 samples) at 0.6x the time.
    detector_side: int = 512

    def __post_init__(self) -> None:
        if self.engine not in OCR_ENGINES:
            raise ValueError(f"engine must be one of {OCR_ENGINES}, got {self.engine!r}")
        if not 0.5 <= self.upscale <= 4:
            raise ValueError(f"upscale must be in [0.5, 4], got {self.upscale}")
        if self.threads < 1:
            raise ValueError(f"threads must be >= 1, got {self.threads}")
        if not 0 <= self.min_score <= 1:
            raise ValueError(f"min_score must be in [0, 1], got {self.min_score}")
        if not 256 <= self.detector_side <= 2048:
            raise ValueError(f"detector_side must be in [256, 2048], got {self.detector_side}")


@dataclass(frozen=True)
class OcrLine:
    text: str
    score: float
    box: tuple[int, int, int, int]  # (x0, y0, x1, y1) in the input image's pixels


_ENGINES: dict[tuple[int, int], object] = {}
_LOCK = threading.Lock()


def _bundled_models() -> dict[str, str]:
    """Model files that ship inside the rapidocr wheel; pointing at them guarantees no download is tried."""
    import rapidocr

    root = os.path.join(os.path.dirname(rapidocr.__file__), "models")
    files = {
        "Det.model_path": "PP-OCRv6_det_small.onnx",
        "Rec.model_path": "PP-OCRv6_rec_small.onnx",
        "Cls.model_path": "ch_ppocr_mobile_v2.0_cls_mobile.onnx",
    }
    paths = {k: os.path.join(root, v) for k, v in files.items()}
    missing = [p for p in paths.values() if not os.path.isfile(p)]
    if missing:
        raise FileNotFoundError(f"rapidocr's bundled models are missing: {missing}; reinstall rapidocr==3.10.0")
    return paths


def get_engine(threads: int = 1, detector_side: int = 512):
    """The process-wide rapidocr engine for these settings (created on first use)."""
    key = (threads, detector_side)
    with _LOCK:
        if key not in _ENGINES:
            from rapidocr import RapidOCR

            params = {
                "Global.log_level": "error",
                "Global.use_cls": False,  # designs are upright; the angle classifier only costs time
                # Without dilation the detector keeps words of neighbouring cards apart (recipe steps, dashboards).
                "Det.use_dilation": False,
                "Det.limit_side_len": detector_side,
                "EngineConfig.onnxruntime.intra_op_num_threads": threads,
                "EngineConfig.onnxruntime.inter_op_num_threads": 1,
                **_bundled_models(),
            }
            _ENGINES[key] = RapidOCR(params=params)
        return _ENGINES[key]


def read_text(image: Image.Image, config: OcrConfig = OcrConfig()) -> list[OcrLine]:
    """Every text line the OCR finds, top to bottom."""
    img = image.convert("RGB")
    if config.upscale != 1.0:
        size = (round(img.width * config.upscale), round(img.height * config.upscale))
        img = img.resize(size, Image.Resampling.BICUBIC)
    if config.engine == "tesseract":
        return tesseract_lines(img, config)
    out = get_engine(config.threads, config.detector_side)(np.asarray(img))
    if out.txts is None or out.boxes is None:
        return []
    lines = []
    for text, score, quad in zip(out.txts, out.scores, out.boxes):
        if score < config.min_score or not text.strip():
            continue
        q = np.asarray(quad) / config.upscale
        box = (int(q[:, 0].min()), int(q[:, 1].min()), int(np.ceil(q[:, 0].max())), int(np.ceil(q[:, 1].max())))
        lines.append(OcrLine(text.strip(), float(score), box))
    lines.sort(key=lambda line: (line.box[1], line.box[0]))
    return lines


# Tesseract reads small renders poorly at their own size (its recogniser expects ~30 px x-heights): the image is
# enlarged so its short side is `detector_side` * this before reading.
TESSERACT_SCALE = 2


def tesseract_lines(img: Image.Image, config: OcrConfig) -> list[OcrLine]:
    """Tesseract's words grouped into its lines (sparse text mode: designs are not pages), words below `min_score`
    confidence dropped; boxes in the caller's (possibly upscaled) image pixels divided back by `upscale`."""
    program = shutil.which("tesseract")
    if program is None:
        raise FileNotFoundError("the tesseract program is not installed (Debian: apt-get install tesseract-ocr)")
    factor = max(1.0, TESSERACT_SCALE * config.detector_side / min(img.size))
    big = img.resize((round(img.width * factor), round(img.height * factor)), Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    big.save(buffer, format="PNG")
    scale = factor * config.upscale  # tesseract's pixels per pixel of the caller's image
    env = {**os.environ, "OMP_THREAD_LIMIT": str(config.threads)}
    out = subprocess.run([program, "stdin", "stdout", "--psm", "11", "-l", "eng", "tsv"], input=buffer.getvalue(),
                         capture_output=True, check=True, env=env).stdout.decode("utf-8", "replace")
    words: dict[tuple[str, str, str], list[tuple[str, float, tuple[float, float, float, float]]]] = {}
    for row in out.splitlines()[1:]:
        cols = row.split("\t")
        if len(cols) < 12 or cols[0] != "5" or not cols[11].strip():
            continue
        confidence = float(cols[10]) / 100
        if confidence < config.min_score:
            continue
        left, top, width, height = (float(c) for c in cols[6:10])
        box = (left / scale, top / scale, (left + width) / scale, (top + height) / scale)
        words.setdefault((cols[2], cols[3], cols[4]), []).append((cols[11].strip(), confidence, box))
    lines = []
    for group in words.values():
        group.sort(key=lambda w: w[2][0])
        boxes = [w[2] for w in group]
        box = (int(min(b[0] for b in boxes)), int(min(b[1] for b in boxes)), int(np.ceil(max(b[2] for b in boxes))),
               int(np.ceil(max(b[3] for b in boxes))))
        lines.append(OcrLine(" ".join(w[0] for w in group), float(np.mean([w[1] for w in group])), box))
    lines.sort(key=lambda line: (line.box[1], line.box[0]))
    return lines
