"""`glmimage bench`: speed, memory and agreement against the reference pipeline."""

from __future__ import annotations

import json
from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser("bench", help="our engine vs diffusers' GlmImagePipeline on the same weights")
    p.add_argument("--model", default="nano", help="preset or model directory (random presets measure speed only)")
    p.add_argument("--size", default="256x256")
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--batch-sizes", default="1,4,8")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--repeats", type=int, default=3, help="keep the fastest of N runs per measurement")
    p.add_argument("--no-approximations", action="store_true")
    p.add_argument("--no-compile", action="store_true",
                   help="measure our engine eager only (default: compiled, with an eager row beside it)")
    p.add_argument("--distinct-prompts", type=int, default=8, metavar="N",
                   help="also time one call with N different prompts (0: skip)")
    p.add_argument("--quality", type=int, default=0, metavar="N",
                   help="score exact and each approximation with glmimage eval on N test designs")
    p.add_argument("--out", default="outputs/bench")
    p.set_defaults(func=run)


def run(args) -> int:
    from glmimage.bench.compare import BenchConfig, run_bench
    from glmimage.errors import InputError
    from glmimage.models.sizes import parse_size

    width, height = parse_size(args.size)
    try:
        batches = tuple(int(b) for b in args.batch_sizes.split(","))
    except ValueError:
        raise InputError(f"--batch-sizes must look like 1,4,8, got {args.batch_sizes!r}") from None
    kwargs = dict(model=args.model, width=width, height=height, steps=args.steps, batch_sizes=batches,
                  num_threads=args.threads, repeats=args.repeats, quality_samples=args.quality,
                  compile=not args.no_compile, distinct_prompts=args.distinct_prompts)
    if args.no_approximations:
        kwargs["approximations"] = {}
    report = run_bench(BenchConfig(**kwargs), Path(args.out))
    print((Path(args.out) / "bench.md").read_text())
    print(json.dumps(report["max_abs_diff_vs_reference"]))
    return 0
