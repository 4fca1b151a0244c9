"""Evaluation outputs: results.json (every figure), summary.md (tables), grid.png / edit_grid.png (pictures)."""

from __future__ import annotations

import json
import os
import textwrap
from collections.abc import Sequence
from typing import Any

from PIL import Image, ImageDraw

from glmimage.data.fonts import load_font
from glmimage.evaluation.editing import EditRecord
from glmimage.evaluation.t2i import T2IRecord

GOOD, BAD, INK, PAPER = (20, 130, 50), (200, 30, 30), (30, 30, 30), (255, 255, 255)


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.3f}"
    return str(v)


T2I_COLUMNS = ("samples", "word_accuracy", "ned", "ocr_reward", "object_present", "object_colour_ok",
               "object_position_ok", "object_correct")
EDIT_COLUMNS = ("samples", "success", "inside_ok", "psnr_outside", "ssim_outside", "subject_similarity",
                "word_accuracy")


def _table(rows: dict[str, dict[str, Any]], columns: Sequence[str]) -> list[str]:
    lines = ["| | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for name, row in rows.items():
        lines.append(f"| {name} | " + " | ".join(_fmt(row.get(c)) for c in columns) + " |")
    return lines


def summary_markdown(title: str, meta: dict[str, Any], t2i: dict[str, Any] | None, edits: dict[str, Any] | None) -> str:
    out = [f"# {title}", ""]
    out += [f"- {k}: `{v}`" for k, v in meta.items()]
    if t2i:
        out += ["", "## Text to image", "",
                ("Word accuracy and NED: CVTG-2K definitions, pooled over all quoted words. Objects: share of "
                 "ground-truth objects found with the right shape (present), colour and third of the image."), ""]
        out += _table({"all": t2i, **t2i["by_kind"]}, T2I_COLUMNS)
    if edits:
        out += ["", "## Editing", "",
                ("Success: the requested change is there and, for local edits, SSIM outside the changed region "
                 "stays >= 0.8. PSNR / SSIM are measured against the source outside the mask."), ""]
        out += _table({"all": edits, **edits["by_kind"]}, EDIT_COLUMNS)
    return "\n".join(out) + "\n"


def _fit(image: Image.Image, side: int) -> Image.Image:
    scale = side / max(image.size)
    return image.convert("RGB").resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))))


def _write_lines(draw: ImageDraw.ImageDraw, x: int, y: int, lines: list[tuple[str, tuple[int, int, int]]],
                 width_chars: int, bottom: int, size: int = 11) -> int:
    font = load_font("sans-serif", size)
    for text, fill in lines:
        for part in textwrap.wrap(text, width_chars) or [""]:
            if y + size > bottom:
                return y
            draw.text((x, y), part, font=font, fill=fill)
            y += size + 3
    return y


def t2i_grid(records: Sequence[T2IRecord], columns: int = 2, side: int = 256, panel: int = 300) -> Image.Image:
    """Tiles of (output image | prompt, OCR result with per-word marks, object checks)."""
    rows = (len(records) + columns - 1) // columns
    tile_w, tile_h = side + panel, side + 8
    grid = Image.new("RGB", (columns * tile_w, max(1, rows) * tile_h), PAPER)
    draw = ImageDraw.Draw(grid)
    for i, r in enumerate(records):
        x, y = (i % columns) * tile_w, (i // columns) * tile_h
        if r.image is not None:
            grid.paste(_fit(r.image, side), (x + 4, y + 4))
        words = " ".join(("+" if c else "-") + w for w, c in zip(r.text.gt_words, r.text.correct))
        objs = ", ".join(("+" if o.correct else "-") + f"{o.colour} {o.cls}" for o in r.objects) or "none"
        lines = [
            (f"{r.key}", INK),
            (f"PROMPT: {r.prompt[:260]}", INK),
            (f"OCR: {' | '.join(o.text for o in r.ocr) or '(nothing)'}", INK),
            (f"words {r.text.word_accuracy:.2f}  NED {r.text.ned:.2f}: {words}",
             GOOD if r.text.word_accuracy == 1 else BAD),
            (f"objects: {objs}", GOOD if all(o.correct for o in r.objects) else BAD),
        ]
        _write_lines(draw, x + side + 10, y + 6, lines, 44, y + tile_h - 4)
    return grid


def edit_grid(records: Sequence[EditRecord], samples: Sequence, side: int = 160, panel: int = 300) -> Image.Image:
    """Rows of (references | output | expected target | instruction and verdict)."""
    max_refs = max((len(s.refs) for s in samples), default=1)
    row_w = (max_refs + 2) * (side + 4) + panel
    grid = Image.new("RGB", (row_w, max(1, len(records)) * (side + 8)), PAPER)
    draw = ImageDraw.Draw(grid)
    for i, (r, s) in enumerate(zip(records, samples)):
        y = i * (side + 8) + 4
        for k, ref in enumerate(s.refs):
            grid.paste(_fit(ref, side), (4 + k * (side + 4), y))
        x = 4 + max_refs * (side + 4)
        if r.image is not None:
            grid.paste(_fit(r.image, side), (x, y))
        grid.paste(_fit(s.target.image, side), (x + side + 4, y))
        lines = [
            (f"{r.kind}: {r.instruction}", INK),
            (f"success {_fmt(r.success)} (inside {_fmt(r.inside_ok)})", GOOD if r.success else BAD),
            (f"outside mask: PSNR {_fmt(r.psnr_outside)} SSIM {_fmt(r.ssim_outside)}", INK),
            (f"subject similarity {_fmt(r.subject_similarity)}  words {_fmt(r.word_accuracy)}", INK),
            ("columns: references | output | expected", INK),
        ]
        _write_lines(draw, x + 2 * (side + 4) + 6, y + 2, lines, 44, y + side)
    return grid


def write_report(out_dir: str, title: str, meta: dict[str, Any],
                 t2i: tuple[list[T2IRecord], dict[str, Any]] | None = None,
                 edits: tuple[list[EditRecord], dict[str, Any], Sequence] | None = None,
                 grid_samples: int = 16) -> dict[str, str]:
    """Write results.json, summary.md and the grids; returns the paths written."""
    os.makedirs(out_dir, exist_ok=True)
    results: dict[str, Any] = {"meta": meta}
    paths = {}
    if t2i:
        results["t2i"] = {"summary": t2i[1], "samples": [r.to_json() for r in t2i[0]]}
        paths["grid"] = os.path.join(out_dir, "grid.png")
        t2i_grid(t2i[0][:grid_samples]).save(paths["grid"])
    if edits:
        results["edits"] = {"summary": edits[1], "samples": [r.to_json() for r in edits[0]]}
        paths["edit_grid"] = os.path.join(out_dir, "edit_grid.png")
        edit_grid(edits[0][:grid_samples], edits[2][:grid_samples]).save(paths["edit_grid"])
    paths["results"] = os.path.join(out_dir, "results.json")
    with open(paths["results"], "w") as f:
        json.dump(results, f, indent=1, default=_fmt)
    paths["summary"] = os.path.join(out_dir, "summary.md")
    with open(paths["summary"], "w") as f:
        f.write(summary_markdown(title, meta, t2i[1] if t2i else None, edits[1] if edits else None))
    return paths
