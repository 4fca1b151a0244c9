"""`glmimage eval`: score a model (or the harness's reference renderers) on the world's held-out split."""

from __future__ import annotations

import json
import os

from glmimage.data.vocabulary import SPLITS
from glmimage.errors import InputError
from glmimage.evaluation.engine_render import KEEP_CHOICES, PLAN_SOURCES

MODES = ("ground-truth", "noise", "shuffled")


def register(subparsers) -> None:
    p = subparsers.add_parser("eval", help="text rendering (OCR), prompt following and editing scores")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--model", help="preset name or model directory to evaluate")
    what.add_argument("--ground-truth", action="store_true", help="score the world's own renders (should be ~1)")
    what.add_argument("--noise", action="store_true", help="score uniform noise (should be ~0)")
    what.add_argument("--shuffled", action="store_true", help="score each prompt against another sample's render")
    what.add_argument("--self-check", action="store_true", help="all three reference renderers, one table")
    what.add_argument("--vae", metavar="MODEL", help="score the ground truth through this model's VAE (encode + "
                      "decode): the ceiling its latents leave the decoder; see word_accuracy_by_height")
    p.add_argument("--split", default="test", choices=SPLITS)
    p.add_argument("--n", type=int, default=16, help="text-to-image samples")
    p.add_argument("--edits", type=int, default=None, help="edit samples (default: as many as --n; 0 for none)")
    p.add_argument("--world-seed", type=int, default=0)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--mixed-aspect", action="store_true")
    p.add_argument("--kinds", help="comma-separated design kinds, e.g. word_card (default: the world's mix)")
    p.add_argument("--steps", type=int, default=None, help="decoder steps (model only; default: the model's)")
    p.add_argument("--guidance", type=float, default=1.5, help="guidance (model only)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed; sample i uses seed + i (model only)")
    p.add_argument("--plans", default="sampled", choices=PLAN_SOURCES,
                   help="model only: 'ground-truth' decodes every sample from the VQ codes of the world's render (an "
                        "edit's target for edits): the decoder alone, without planner errors")
    p.add_argument("--keep", default="model", choices=KEEP_CHOICES,
                   help="model only: edits keep the reference wherever their plan leaves it unchanged (on/off; "
                        "default: the model's setting)")
    p.add_argument("--copy-bias", type=float,
                   help="model only: the planner's bias (nats) towards the reference's codes in edit plans "
                        "(default: the model's setting)")
    p.add_argument("--ocr", choices=("rapidocr", "tesseract"), default="rapidocr",
                   help="the OCR engine that reads the images: rapidocr (the default, and the GRPO reward's) or "
                        "tesseract (a second engine, e.g. to check a model trained against rapidocr's reading)")
    p.add_argument("--ocr-threads", type=int, default=1)
    p.add_argument("--grid", type=int, default=16, help="samples shown in grid.png")
    p.add_argument("--out", help="output directory (default outputs/eval_<what>)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run_eval)


def _renderers(mode: str, samples, edit_samples, args):
    from glmimage.evaluation import baselines

    if mode == "ground-truth":
        return baselines.ground_truth, baselines.ground_truth_edit, "ground-truth"
    if mode == "noise":
        return baselines.noise(args.seed), baselines.noise_edit(args.seed), "noise"
    if mode == "vae":
        return baselines.vae_reconstruction(args.vae), baselines.ground_truth_edit, f"vae:{args.vae}"
    if mode == "shuffled":
        if len(samples) < 2 or (edit_samples and len(edit_samples) < 2):
            raise InputError("--shuffled needs --n >= 2 (and --edits 0 or >= 2)")
        return baselines.shuffled(samples), baselines.shuffled_edit(edit_samples) if edit_samples else None, "shuffled"
    from glmimage.evaluation.engine_render import EngineRenderer, SamplingConfig

    sampling = SamplingConfig(args.steps, args.guidance, args.seed, args.plans, args.keep, args.copy_bias)
    renderer = EngineRenderer.load(args.model, sampling)
    return renderer, renderer.edit, renderer.model_id


def _run_one(mode: str, args, out_dir: str) -> dict:
    from glmimage.data.config import WorldConfig
    from glmimage.data.world import World
    from glmimage.evaluation.editing import evaluate_edits
    from glmimage.evaluation.ocr import OcrConfig
    from glmimage.evaluation.report import write_report
    from glmimage.evaluation.t2i import evaluate_t2i

    kinds = {"kinds": tuple(k.strip() for k in args.kinds.split(",") if k.strip())} if args.kinds else {}
    world = World(WorldConfig(size=args.size, mixed_aspect=args.mixed_aspect, split=args.split, seed=args.world_seed,
                              **kinds))
    n_edits = args.n if args.edits is None else args.edits
    samples = [world.sample(i) for i in range(args.n)]
    edit_samples = [world.edit_sample(i) for i in range(n_edits)]
    render, render_edit, label = _renderers(mode, samples, edit_samples, args)
    ocr = OcrConfig(engine=args.ocr, threads=args.ocr_threads)
    progress = not args.no_progress
    t2i = evaluate_t2i(samples, render, ocr, progress=progress)
    edits = None
    if edit_samples:
        records, summary = evaluate_edits(edit_samples, render_edit, ocr, progress=progress)
        edits = (records, summary, edit_samples)
    meta = {"renderer": label, "split": args.split, "n": args.n, "edits": n_edits, "world_seed": args.world_seed,
            "size": args.size, "mixed_aspect": args.mixed_aspect, "ocr": args.ocr}
    if mode == "model":
        meta.update(steps=args.steps, guidance=args.guidance, seed=args.seed, plans=args.plans,
                    keep=args.keep, copy_bias=args.copy_bias)
    paths = write_report(out_dir, f"glmimage eval: {label}", meta, t2i, edits, grid_samples=args.grid)
    return {"meta": meta, "t2i": t2i[1], "edits": edits[1] if edits else None, "paths": paths}


def _check(args) -> None:
    if args.n < 1:
        raise InputError(f"--n must be >= 1, got {args.n}")
    if args.edits is not None and args.edits < 0:
        raise InputError(f"--edits must be >= 0, got {args.edits}")
    if args.grid < 0:
        raise InputError(f"--grid must be >= 0, got {args.grid}")


SELF_CHECK_FIGURES = (("t2i", "word_accuracy"), ("t2i", "ned"), ("t2i", "ocr_reward"), ("t2i", "object_correct"),
                      ("edits", "success"), ("edits", "psnr_outside"), ("edits", "ssim_outside"),
                      ("edits", "subject_similarity"))


def run_eval(args) -> int:
    _check(args)
    if args.self_check:
        out = args.out or "outputs/eval_self_check"
        results = {m: _run_one(m, args, os.path.join(out, m)) for m in MODES}
        header = "| renderer | " + " | ".join(f"{s} {k}" for s, k in SELF_CHECK_FIGURES) + " |"
        rows = [header, "|---" * (len(SELF_CHECK_FIGURES) + 1) + "|"]
        for m, r in results.items():
            cells = []
            for section, key in SELF_CHECK_FIGURES:
                v = (r[section] or {}).get(key)
                cells.append("-" if v is None else f"{v:.3f}")
            rows.append(f"| {m} | " + " | ".join(cells) + " |")
        table = "\n".join(rows) + "\n"
        os.makedirs(out, exist_ok=True)
        with open(os.path.join(out, "self_check.md"), "w") as f:
            f.write(f"# Harness self-check ({args.split}, n={args.n})\n\n" + table)
        with open(os.path.join(out, "self_check.json"), "w") as f:
            json.dump({m: {"t2i": r["t2i"], "edits": r["edits"]} for m, r in results.items()}, f, indent=1)
        print(table)
        return 0
    if args.model or args.vae:
        mode = "model" if args.model else "vae"
    else:
        mode = next(m for m in MODES if getattr(args, m.replace("-", "_")))
    out = args.out or f"outputs/eval_{(args.model or mode).strip('/').replace('/', '_')}"
    r = _run_one(mode, args, out)
    t = r["t2i"]
    line = {"out": out, "word_accuracy": t["word_accuracy"], "ned": t["ned"], "object_correct": t["object_correct"]}
    if r["edits"]:
        line["edit_success"] = r["edits"]["success"]
    print(json.dumps(line))
    return 0
