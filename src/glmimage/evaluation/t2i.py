"""Text-to-image evaluation: OCR the output against the quoted texts, detect the objects against the ground
truth. Works with any `render(sample) -> PIL.Image`, so the model, the world's own renders, noise and shuffled
pairs all go through the same code."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from PIL import Image
from tqdm import tqdm

from glmimage.data.sample import Sample
from glmimage.evaluation.detector import DetectorConfig, ObjectCheck, check_objects, dominant_colour
from glmimage.evaluation.ocr import OcrConfig, OcrLine, read_text
from glmimage.evaluation.text_metrics import TextScore, mean_ocr_reward, score_texts

Render = Callable[[Sample], Image.Image]


@dataclass
class T2IRecord:
    key: str
    kind: str
    prompt: str
    gt_texts: list[str]
    ocr: list[OcrLine]
    text: TextScore
    ocr_reward: float
    objects: list[ObjectCheck]
    render_seconds: float
    score_seconds: float = 0.0  # OCR + detector
    image: Image.Image | None = field(default=None, repr=False)
    word_heights: tuple[int, ...] = ()  # per ground-truth word: the ink height (px) of the text line it is in
    largest_text_ok: bool | None = None  # every word of the tallest text read exactly (None: no text)
    background_ok: bool | None = None  # the image's frame has the prompt's background colour (None: unknown)

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "kind": self.kind,
            "prompt": self.prompt,
            "gt_texts": self.gt_texts,
            "ocr_lines": [{"text": o.text, "score": round(o.score, 4), "box": list(o.box)} for o in self.ocr],
            "word_accuracy": self.text.word_accuracy,
            "ned": self.text.ned,
            "words": [{"word": w, "correct": c, "similarity": round(s, 4)}
                      for w, c, s in zip(self.text.gt_words, self.text.correct, self.text.similarity)],
            "ocr_reward": self.ocr_reward,
            "objects": [vars(c) | {"correct": c.correct} for c in self.objects],
            "render_seconds": round(self.render_seconds, 4),
            "score_seconds": round(self.score_seconds, 4),
            "word_heights": list(self.word_heights),
            "largest_text_ok": self.largest_text_ok,
            "background_ok": self.background_ok,
        }


def _fit(image: Image.Image, sample: Sample) -> Image.Image:
    """Outputs are scored at the requested size (a model may return another size, e.g. a shuffled pair)."""
    image = image.convert("RGB")
    size = (sample.width, sample.height)
    return image if image.size == size else image.resize(size, Image.Resampling.BICUBIC)


# Text height buckets (ink height of the line in pixels; capitals' height for upper-case words): small print, body,
# headings, display type. The VAE and the decoder behave differently on each.
HEIGHT_BUCKETS = ((0, 16, "<16"), (16, 24, "16-24"), (24, 32, "24-32"), (32, 10**6, ">=32"))


def height_bucket(height: int) -> str:
    return next(name for lo, hi, name in HEIGHT_BUCKETS if lo <= height < hi)


def text_figures(sample: Sample, text: TextScore) -> tuple[tuple[int, ...], bool | None]:
    """Per-word line heights (words in `score_texts` order) and whether the tallest text was read whole."""
    heights, spans, start = [], [], 0
    for t in sample.texts:
        n = len(t.text.split())
        heights += [t.box[3] - t.box[1]] * n
        spans.append((t.box[3] - t.box[1], start, start + n))
        start += n
    if not spans:
        return (), None
    _, lo, hi = max(spans, key=lambda s: s[0])
    return tuple(heights), all(text.correct[lo:hi])


def score_t2i(sample: Sample, image: Image.Image, ocr_config: OcrConfig | None = None,
              detector: DetectorConfig | None = None) -> T2IRecord:
    ocr_config, detector = ocr_config or OcrConfig(), detector or DetectorConfig()
    image = _fit(image, sample)
    lines = read_text(image, ocr_config)
    gt_texts = [t.text for t in sample.texts]
    read = [line.text for line in lines]
    text = score_texts(gt_texts, read)
    heights, largest_ok = text_figures(sample, text)
    background = sample.layout.get("background")
    return T2IRecord(
        sample.key, sample.kind, sample.prompt, gt_texts, lines, text,
        mean_ocr_reward(gt_texts, read), check_objects(image, sample.objects, detector), render_seconds=0.0,
        image=image, word_heights=heights, largest_text_ok=largest_ok,
        background_ok=None if background is None else dominant_colour(image) == background,
    )


def summarize_t2i(records: Sequence[T2IRecord]) -> dict[str, Any]:
    """Overall figures: CVTG-2K word accuracy and NED pooled over all words (and the per-sample means), the
    OCR reward, and object presence / colour / position accuracy pooled over all objects; plus per kind."""

    def pooled(rs: Sequence[T2IRecord]) -> dict[str, Any]:
        words = [c for r in rs for c in r.text.correct]
        sims = [s for r in rs for s in r.text.similarity]
        objs = [o for r in rs for o in r.objects]
        out = {
            "samples": len(rs),
            "words": len(words),
            "word_accuracy": sum(words) / len(words) if words else None,
            "ned": sum(sims) / len(sims) if sims else None,
            "sample_word_accuracy": sum(r.text.word_accuracy for r in rs) / len(rs) if rs else None,
            "sample_ned": sum(r.text.ned for r in rs) / len(rs) if rs else None,
            "ocr_reward": sum(r.ocr_reward for r in rs) / len(rs) if rs else None,
            "objects": len(objs),
        }
        for name in ("present", "colour_ok", "position_ok", "correct"):
            out[f"object_{name}"] = sum(getattr(o, name) for o in objs) / len(objs) if objs else None
        for name in ("largest_text_ok", "background_ok"):
            known = [getattr(r, name) for r in rs if getattr(r, name) is not None]
            out[name.replace("_ok", "_right")] = sum(known) / len(known) if known else None
        by_height: dict[str, list[bool]] = defaultdict(list)
        for r in rs:
            for ok, h in zip(r.text.correct, r.word_heights):
                by_height[height_bucket(h)].append(ok)
        out["word_accuracy_by_height"] = {name: {"words": len(by_height[name]),
                                                 "word_accuracy": sum(by_height[name]) / len(by_height[name])}
                                          for _, _, name in HEIGHT_BUCKETS if by_height[name]}
        return out

    by_kind: dict[str, list[T2IRecord]] = defaultdict(list)
    for r in records:
        by_kind[r.kind].append(r)
    summary = pooled(records)
    summary["render_seconds_per_image"] = sum(r.render_seconds for r in records) / max(1, len(records))
    summary["score_seconds_per_image"] = sum(r.score_seconds for r in records) / max(1, len(records))
    summary["by_kind"] = {k: pooled(v) for k, v in sorted(by_kind.items())}
    return summary


def evaluate_t2i(samples: Sequence[Sample], render: Render, ocr_config: OcrConfig | None = None,
                 detector: DetectorConfig | None = None,
                 progress: bool = True) -> tuple[list[T2IRecord], dict[str, Any]]:
    """Render every sample, score it, and summarise."""
    records = []
    for sample in tqdm(samples, desc="eval t2i", disable=not progress, unit="img"):
        t0 = time.perf_counter()
        image = render(sample)
        t1 = time.perf_counter()
        record = score_t2i(sample, image, ocr_config, detector)
        record.render_seconds, record.score_seconds = t1 - t0, time.perf_counter() - t1
        records.append(record)
    return records, summarize_t2i(records)
