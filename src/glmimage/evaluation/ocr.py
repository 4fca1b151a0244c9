"""OCR with rapidocr (PaddleOCR models shipped inside its wheel, so it runs offline), loaded once per process."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass

import numpy as np
from PIL import Image


@dataclass(frozen=True)
class OcrConfig:
    # rapidocr already enlarges the detector input to >= 736 px; enlarging before that read worse on our renders
    # (word accuracy on ground truth 0.97 at 1x vs 0.93 at 2x, docs/data_and_eval.md).
    upscale: float = 1.0
    threads: int = 1  # onnxruntime intra-op threads; the machine is shared
    min_score: float = 0.5  # lines below this recognition confidence are dropped
    # The detector enlarges its input so the short side is at least this; 512 reads the world's ground truth as
    # well as rapidocr's default 736 (word accuracy 1.0 on 140 samples) at 0.6x the time.
    detector_side: int = 512

    def __post_init__(self) -> None:
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
