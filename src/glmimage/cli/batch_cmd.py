"""`glmimage batch run`: a CSV/JSONL of briefs x variants, planned once per brief, resumable."""

from __future__ import annotations

import json
import sys

from glmimage.cli.brief_cmd import add_planner_args, make_planner_from_args


def register(subparsers) -> None:
    from glmimage.defaults import DEFAULT_MODEL

    batch = subparsers.add_parser("batch", help="run a batch of briefs x variants")
    sub = batch.add_subparsers(dest="batch_command", required=True)
    run = sub.add_parser("run", help="run (or resume) a batch file; finished images are skipped")
    run.add_argument("batch", help="batch file (.jsonl or .csv)")
    run.add_argument("--out", required=True, help="output folder (images, manifest.jsonl, contact_sheet.png)")
    run.add_argument("--model", default=DEFAULT_MODEL,
                     help=f"preset name or model directory (default: {DEFAULT_MODEL})")
    run.add_argument("--brand", help="brand kit applied to every row")
    run.add_argument("--policy", help="parameter policy file (default: $GLMIMAGE_POLICY or the shipped default)")
    run.add_argument("--library", help="prompt library folder (for briefs that name a template)")
    add_planner_args(run)
    run.add_argument("--json", action="store_true", help="print the manifest records as JSON")
    run.add_argument("--no-progress", action="store_true")
    run.add_argument("--compile", action="store_true",
                     help="run the engine compiled: same images, faster after each size's first image compiles")
    run.set_defaults(func=run_batch_cmd)


def run_batch_cmd(args) -> int:
    from glmimage.engine import Engine
    from glmimage.engine.options import EngineOptions
    from glmimage.policy import load_policy
    from glmimage.prompts.batch import run_batch
    from glmimage.prompts.brand import load_brand_kit
    from glmimage.prompts.library import FilePromptLibrary

    # Everything that can be wrong in the inputs is read before the model loads.
    policy = load_policy(args.policy)
    brand = load_brand_kit(args.brand) if args.brand else None
    library = FilePromptLibrary(args.library) if args.library else None
    planner = make_planner_from_args(args)
    engine = Engine.from_pretrained(args.model, options=EngineOptions(compile=args.compile))
    report = run_batch(engine, args.batch, args.out, brand=brand, policy=policy, library=library, planner=planner,
                       progress=not args.no_progress)
    if args.json:
        print(json.dumps(report.records, indent=2, ensure_ascii=False))
    else:
        print(f"{report.items} briefs: {report.generated} images made, {report.skipped} already done, "
              f"{report.plans} plans; manifest {report.manifest}")
        for item_id, messages in report.warnings.items():
            for message in messages:
                print(f"warning: {item_id}: {message}", file=sys.stderr)
        if report.contact_sheet:
            print(f"contact sheet {report.contact_sheet}", file=sys.stderr)
    return 0
