"""Edit evaluation: preservation outside the changed region (PSNR / SSIM against the source), success inside
it (the requested text, colour, object, palette or subject), and consistency of kept subjects."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image
from tqdm import tqdm

from glmimage.data.sample import Box, EditSample, ObjectItem, cell_of
from glmimage.data.subjects import Subject, subject_image
from glmimage.evaluation.detector import DetectorConfig, check_objects, dominant_colour
from glmimage.evaluation.image_metrics import psnr, ssim
from glmimage.evaluation.ocr import OcrConfig, read_text
from glmimage.evaluation.text_metrics import score_texts, word_accuracy, words_of

RenderEdit = Callable[[EditSample], Image.Image]

PRESERVED_SSIM = 0.8  # a local edit that leaves less than this SSIM outside its mask broke the rest of the image
SUBJECT_MATCH = 0.5  # masked SSIM at which a subject counts as the same subject
RESTYLE_TEXT_KEPT = 0.8  # share of the design's words a restyle must keep legible


@dataclass
class EditRecord:
    key: str
    kind: str
    instruction: str
    inside_ok: bool  # the requested change is there
    success: bool  # ... and (local edits) the rest is preserved
    psnr_outside: float | None
    ssim_outside: float | None
    subject_similarity: float | None  # identity / compose: mean over subjects
    word_accuracy: float | None  # CVTG word accuracy of the target's texts in the output
    details: dict[str, Any]
    render_seconds: float = 0.0
    score_seconds: float = 0.0
    image: Image.Image | None = field(default=None, repr=False)

    def to_json(self) -> dict[str, Any]:
        out = {k: v for k, v in vars(self).items() if k != "image"}
        out["render_seconds"] = round(self.render_seconds, 4)
        out["score_seconds"] = round(self.score_seconds, 4)
        return out


def subject_similarity(image: Image.Image, box: Box, ref: Image.Image, ref_box: Box, subject: Subject,
                       size: int = 64) -> float:
    """SSIM between the subject's crop in the output and in the reference, on the subject's silhouette only
    (backgrounds differ between scenes), clipped at 0."""
    a = image.convert("RGB").crop(box).resize((size, size), Image.Resampling.BILINEAR)
    b = ref.convert("RGB").crop(ref_box).resize((size, size), Image.Resampling.BILINEAR)
    mask = np.asarray(subject_image(subject, size, size).getchannel("A")) > 127
    return max(0.0, ssim(a, b, mask) or 0.0)


def _object(cls: str, colour: str, box: list[int], w: int, h: int) -> ObjectItem:
    b = tuple(box)
    return ObjectItem(cls, colour, b, cell_of(b, w, h))


def _correct(image: Image.Image, obj: ObjectItem, detector: DetectorConfig) -> bool:
    return check_objects(image, [obj], detector)[0].correct


def score_edit(es: EditSample, image: Image.Image, ocr_config: OcrConfig | None = None,
               detector: DetectorConfig | None = None) -> EditRecord:
    ocr_config, detector = ocr_config or OcrConfig(), detector or DetectorConfig()
    target = es.target
    w, h = target.width, target.height
    image = image.convert("RGB")
    if image.size != (w, h):
        image = image.resize((w, h), Image.Resampling.BICUBIC)
    e = es.edit
    lines = [line.text for line in read_text(image, ocr_config)]
    ocr_words = words_of(lines)
    gt_texts = [t.text for t in target.texts]
    wacc = score_texts(gt_texts, lines).word_accuracy if words_of(gt_texts) else None
    details: dict[str, Any] = {"ocr_lines": lines}
    sim = None

    if es.kind == "text_replace":
        new_words = words_of([e["new"]])
        keep = set(words_of(gt_texts))
        stale = [x for x in words_of([e["old"]]) if x not in keep]
        details.update(new_word_accuracy=word_accuracy(new_words, ocr_words),
                       old_words_left=[x for x in stale if x in ocr_words])
        inside = details["new_word_accuracy"] == 1.0 and not details["old_words_left"]
    elif es.kind in ("recolour", "add", "move"):
        colour = e["new"] if es.kind == "recolour" else e["colour"]
        now = _correct(image, _object(e["cls"], colour, e["box"], w, h), detector)
        before = None
        if es.kind == "recolour":
            before = _correct(image, _object(e["cls"], e["old"], e["box"], w, h), detector)
        elif es.kind == "move":
            before = _correct(image, _object(e["cls"], colour, e["from"], w, h), detector)
        details.update(requested_object_found=now, previous_state_still_there=before)
        inside = now and not before
    elif es.kind == "remove":
        left = _correct(image, _object(e["cls"], e["colour"], e["box"], w, h), detector)
        details.update(object_still_there=left)
        inside = not left
    elif es.kind == "restyle":
        bg = dominant_colour(image)
        details.update(background=bg, requested_background=e["background"])
        inside = bg == e["background"] and (wacc is None or wacc >= RESTYLE_TEXT_KEPT)
    elif es.kind in ("identity", "compose"):
        refs = es.refs if es.kind == "compose" else es.refs[:1] * len(target.subjects)
        sims = [subject_similarity(image, s.box, ref, tuple(rb), s.subject)
                for s, ref, rb in zip(target.subjects, refs, e["ref_boxes"])]
        details.update(subject_similarities=[round(x, 4) for x in sims])
        sim = float(np.mean(sims))
        inside = all(x >= SUBJECT_MATCH for x in sims)
    else:
        raise ValueError(f"unknown edit kind {es.kind!r}")

    p = s = None
    if es.local:
        keep_mask = ~es.mask
        p, s = psnr(image, es.refs[0], keep_mask), ssim(image, es.refs[0], keep_mask)
    success = bool(inside) and (s is None or s >= PRESERVED_SSIM)
    return EditRecord(es.key, es.kind, es.instruction, bool(inside), success, p, s, sim, wacc, details, image=image)


def summarize_edits(records: Sequence[EditRecord]) -> dict[str, Any]:
    def mean(values):
        values = [v for v in values if v is not None]
        return float(np.mean(values)) if values else None

    def pooled(rs: Sequence[EditRecord]) -> dict[str, Any]:
        return {
            "samples": len(rs),
            "success": mean([r.success for r in rs]),
            "inside_ok": mean([r.inside_ok for r in rs]),
            "psnr_outside": mean([r.psnr_outside for r in rs]),
            "ssim_outside": mean([r.ssim_outside for r in rs]),
            "subject_similarity": mean([r.subject_similarity for r in rs]),
            "word_accuracy": mean([r.word_accuracy for r in rs]),
        }

    by_kind: dict[str, list[EditRecord]] = defaultdict(list)
    for r in records:
        by_kind[r.kind].append(r)
    summary = pooled(records)
    summary["render_seconds_per_image"] = mean([r.render_seconds for r in records])
    summary["score_seconds_per_image"] = mean([r.score_seconds for r in records])
    summary["by_kind"] = {k: pooled(v) for k, v in sorted(by_kind.items())}
    return summary


def evaluate_edits(samples: Sequence[EditSample], render: RenderEdit, ocr_config: OcrConfig | None = None,
                   detector: DetectorConfig | None = None,
                   progress: bool = True) -> tuple[list[EditRecord], dict[str, Any]]:
    records = []
    for es in tqdm(samples, desc="eval edits", disable=not progress, unit="img"):
        t0 = time.perf_counter()
        image = render(es)
        t1 = time.perf_counter()
        record = score_edit(es, image, ocr_config, detector)
        record.render_seconds, record.score_seconds = t1 - t0, time.perf_counter() - t1
        records.append(record)
    return records, summarize_edits(records)
