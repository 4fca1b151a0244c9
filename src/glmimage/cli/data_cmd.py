"""`glmimage data preview | export | bench`: look at, write out and time the synthetic design world."""

from __future__ import annotations

import json
import os
import time

from glmimage.data.config import WorldConfig
from glmimage.data.vocabulary import SPLITS


def _world_args(p) -> None:
    p.add_argument("--split", default="train", choices=SPLITS)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--size", type=int, default=256, help="side of square samples (area with --mixed-aspect)")
    p.add_argument("--mixed-aspect", action="store_true", help="each kind uses its own aspect ratios")


def _world(args):
    from glmimage.data.world import World

    return World(WorldConfig(size=args.size, mixed_aspect=args.mixed_aspect, split=args.split, seed=args.seed))


def register(subparsers) -> None:
    data = subparsers.add_parser("data", help="the synthetic design world: preview, export, bench")
    sub = data.add_subparsers(dest="data_command", required=True)

    p = sub.add_parser("preview", help="a PNG contact sheet with samples of every kind and every edit")
    _world_args(p)
    p.add_argument("--per-kind", type=int, default=2)
    p.add_argument("--no-edits", action="store_true")
    p.add_argument("--out", default="outputs/data_preview.png")
    p.set_defaults(func=run_preview)

    p = sub.add_parser("export", help="write a split as webdataset tar shards (PNG + JSON per sample)")
    _world_args(p)
    p.add_argument("--n", type=int, required=True, help="number of samples")
    p.add_argument("--start", type=int, default=0, help="first sample index (to resume or extend)")
    p.add_argument("--shard-size", type=int, default=1000)
    p.add_argument("--edits", action="store_true", help="export edit samples instead of text-to-image")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run_export)

    p = sub.add_parser("bench", help="samples per second of the generator in this process")
    _world_args(p)
    p.add_argument("--n", type=int, default=200)
    p.add_argument("--edits", action="store_true")
    p.set_defaults(func=run_bench)


def run_preview(args) -> int:
    from glmimage.data.preview import preview_grid
    from glmimage.errors import InputError

    if args.per_kind < 1:
        raise InputError(f"--per-kind must be >= 1, got {args.per_kind}")
    sheet = preview_grid(_world(args), per_kind=args.per_kind, edits=not args.no_edits)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    sheet.save(args.out)
    print(args.out)
    return 0


def run_export(args) -> int:
    from glmimage.data.export import export_split

    manifest = export_split(_world(args), args.out, args.n, start=args.start, shard_size=args.shard_size,
                            edits=args.edits, progress=not args.no_progress)
    print(json.dumps({k: manifest[k] for k in ("split", "edits", "count", "shards")}))
    return 0


def run_bench(args) -> int:
    world = _world(args)
    make = world.edit_sample if args.edits else world.sample
    make(0)  # fonts and caches
    t0 = time.perf_counter()
    for i in range(1, args.n + 1):
        make(i)
    rate = args.n / (time.perf_counter() - t0)
    print(json.dumps({"samples_per_second": round(rate, 1), "n": args.n, "edits": args.edits, "size": args.size,
                      "mixed_aspect": args.mixed_aspect}))
    return 0
