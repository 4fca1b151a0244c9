"""The default model's scorecard: every lettering target of the README's state table, from three `glmimage eval`
runs on the test split (held-out words, phrasings and combinations), each with a grid of its samples.

    .venv/bin/python scripts/scorecard.py --model nano --n 16 --out outputs/scorecard-nano

Rows: word cards (OCR word accuracy, NED, background colour right: word-card prompts in the test split use only
held-out phrasings); the largest text of posters, banners and slides; every quoted text and the objects of the
world's default mix; edits' PSNR outside the changed region.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

RUNS = {  # name -> extra eval arguments
    "word_cards": ["--kinds", "word_card", "--edits", "0"],
    "headlines": ["--kinds", "poster,banner,slide", "--edits", "0"],
    "mix": [],  # the default mix, with as many edits as designs
}


def row(label: str, target: str, value, fmt: str = "{:.3f}") -> str:
    return f"| {label} | {target} | {'-' if value is None else fmt.format(value)} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="nano")
    parser.add_argument("--n", type=int, default=16)
    parser.add_argument("--plans", default="sampled", choices=("sampled", "ground-truth"))
    parser.add_argument("--guidance", type=float, help="the decoder's guidance (default: the model's)")
    parser.add_argument("--out", default="outputs/scorecard")
    args = parser.parse_args()
    out = Path(args.out)
    results = {}
    for name, extra in RUNS.items():
        folder = out / name
        cmd = [sys.executable, "-m", "glmimage.cli.main", "eval", "--model", args.model, "--split", "test",
               "--n", str(args.n), "--plans", args.plans, "--out", str(folder), "--no-progress", *extra]
        if args.guidance is not None:
            cmd += ["--guidance", str(args.guidance)]
        subprocess.run(cmd, check=True)
        results[name] = json.loads((folder / "results.json").read_text())
    cards, heads, mix = (results[k]["t2i"]["summary"] for k in ("word_cards", "headlines", "mix"))
    edits = (results["mix"].get("edits") or {}).get("summary") or {}
    lines = [
        f"Scorecard of `{args.model}` (test split, {args.n} designs per run, plans: {args.plans}, guidance: "
        f"{'the model default' if args.guidance is None else args.guidance})", "",
        "| measure | target | value |", "|---|---|---|",
        row("word cards: OCR word accuracy", ">= 0.80", cards["word_accuracy"]),
        row("word cards: NED", ">= 0.90", cards["ned"]),
        row("largest text of posters, banners, slides: word accuracy", ">= 0.60", heads["largest_text_right"]),
        row("all quoted texts: OCR word accuracy", ">= 0.30", mix["word_accuracy"]),
        row("held-out phrasings: background colour right", ">= 0.90", cards["background_right"]),
        row("objects with the right shape, colour and place", ">= 0.60", mix["object_correct"]),
        row("edits: PSNR outside the changed region", ">= 30 dB", edits.get("psnr_outside"), "{:.1f} dB"),
        "", "Word accuracy by text height (all three runs' words):", "",
    ]
    buckets: dict[str, list[float]] = {}
    for summary in (cards, heads, mix):
        for name, b in summary.get("word_accuracy_by_height", {}).items():
            words, right = buckets.get(name, [0, 0.0])
            buckets[name] = [words + b["words"], right + b["word_accuracy"] * b["words"]]
    lines += ["| text height | words | word accuracy |", "|---|---|---|"]
    lines += [f"| {name} px | {w} | {r / w:.3f} |" for name, (w, r) in buckets.items() if w]
    text = "\n".join(lines) + "\n"
    (out / "scorecard.md").write_text(text)
    (out / "scorecard.json").write_text(json.dumps({k: v["t2i"]["summary"] for k, v in results.items()}
                                                   | {"edits": edits}, indent=1))
    print(text)


if __name__ == "__main__":
    main()
