"""`glmimage brief compile | plan | render | qa`: briefs, planner hooks, prompt templates and brand QA."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from glmimage.errors import InputError

PLANNER_KEY_ENV = "GLMIMAGE_PLANNER_API_KEY"


def add_planner_args(p) -> None:
    p.add_argument("--planner", choices=("rule", "openai"), default="rule",
                   help="planner hook for one-line requests (default: rule-based)")
    p.add_argument("--planner-url", help="OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1")
    p.add_argument("--planner-model", help="model name the endpoint serves")


def make_planner_from_args(args):
    from glmimage.prompts.planner_hook import make_planner

    return make_planner(args.planner, base_url=args.planner_url, model=args.planner_model,
                        api_key=os.environ.get(PLANNER_KEY_ENV))


def register(subparsers) -> None:
    from glmimage.defaults import DEFAULT_MODEL

    brief = subparsers.add_parser("brief", help="compile briefs, expand requests, render templates, check brands")
    sub = brief.add_subparsers(dest="brief_command", required=True)

    comp = sub.add_parser("compile", help="a brief (YAML/JSON) -> the GLM-style prompt, its texts and size")
    comp.add_argument("brief", help="brief file (.yaml or .json)")
    comp.add_argument("--brand", help="brand kit file")
    comp.add_argument("--library", help="prompt library folder (for briefs that name a template)")
    comp.add_argument("--model", default=DEFAULT_MODEL, help=f"whose size limits apply (default: {DEFAULT_MODEL})")
    comp.add_argument("--json", action="store_true", help="print one JSON object")
    comp.set_defaults(func=run_compile)

    plan = sub.add_parser("plan", help="a one-line request -> a brief (visual specification) in YAML")
    plan.add_argument("request", help='e.g. \'a vertical poster for our summer sale titled "SALE"\'')
    add_planner_args(plan)
    plan.add_argument("--out", help="write the brief here instead of printing it")
    plan.set_defaults(func=run_plan)

    render = sub.add_parser("render", help="render a template from a prompt library")
    render.add_argument("template", help="name or name@version")
    render.add_argument("--library", required=True, help="prompt library folder")
    render.add_argument("--var", action="append", default=[], metavar="KEY=VALUE", help="a template variable")
    render.set_defaults(func=run_render)

    qa = sub.add_parser("qa", help="check an image against a brand kit (exit 1 when it fails)")
    qa.add_argument("image")
    qa.add_argument("--brand", required=True)
    qa.add_argument("--ocr-text", default="", help="the text an OCR read from the image")
    qa.add_argument("--json", action="store_true")
    qa.set_defaults(func=run_qa)


def run_compile(args) -> int:
    from glmimage.models.sizes import limits_for_model
    from glmimage.prompts.brand import load_brand_kit
    from glmimage.prompts.brief import compile_brief, load_brief
    from glmimage.prompts.library import FilePromptLibrary

    compiled = compile_brief(
        load_brief(args.brief),
        load_brand_kit(args.brand) if args.brand else None,
        limits=limits_for_model(args.model),
        library=FilePromptLibrary(args.library) if args.library else None,
    )
    if args.json:
        print(json.dumps({"prompt": compiled.prompt, "glyph_texts": compiled.glyph_texts, "width": compiled.width,
                          "height": compiled.height, "mode": compiled.mode, "references": compiled.references,
                          "template": compiled.template, "warnings": [w.message for w in compiled.warnings]},
                         indent=2, ensure_ascii=False))
        return 0
    print(compiled.prompt)
    print(f"texts: {compiled.glyph_texts}  size: {compiled.width}x{compiled.height}  mode: {compiled.mode}"
          + (f"  template: {compiled.template}" if compiled.template else ""), file=sys.stderr)
    for warning in compiled.warnings:
        print(f"warning: {warning.message}", file=sys.stderr)
    return 0


def run_plan(args) -> int:
    import yaml

    spec = make_planner_from_args(args).expand(args.request)
    text = yaml.safe_dump(spec.to_dict(), sort_keys=False, allow_unicode=True)
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
        print(f"wrote {args.out}", file=sys.stderr)
    else:
        print(text, end="")
    return 0


def run_render(args) -> int:
    from glmimage.prompts.library import FilePromptLibrary

    variables = {}
    for item in args.var:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InputError(f"--var {item!r} must look like KEY=VALUE")
        variables[key] = value
    print(FilePromptLibrary(args.library).resolve(args.template).render(variables))
    return 0


def run_qa(args) -> int:
    from glmimage.engine.references import load_reference
    from glmimage.prompts.brand import load_brand_kit

    report = load_brand_kit(args.brand).qa(load_reference(Path(args.image), name=args.image), args.ocr_text)
    if args.json:
        print(json.dumps({"passed": report.passed, "forbidden_found": report.forbidden_found,
                          "palette_distance": report.palette_distance, "problems": report.problems()}, indent=2))
    else:
        distance = "n/a" if report.palette_distance is None else f"{report.palette_distance:.1f}"
        print(f"{'PASS' if report.passed else 'FAIL'}: palette distance {distance} "
              f"(max {report.max_palette_distance}), forbidden words found: {report.forbidden_found or 'none'}")
        for problem in report.problems():
            print(f"  - {problem}")
    return 0 if report.passed else 1
