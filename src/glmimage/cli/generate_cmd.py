"""`glmimage generate | edit | info`: the engine from the command line."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from glmimage.defaults import MAX_REFERENCES, check_reference_count
from glmimage.errors import InputError


def _sampling_args(p: argparse.ArgumentParser) -> None:
    from glmimage.defaults import DEFAULT_MODEL

    p.add_argument("prompt", help='the prompt; quote the text to render, e.g. \'a poster titled "SALE"\'')
    p.add_argument("--model", default=DEFAULT_MODEL, help=f"preset name or model directory (default: {DEFAULT_MODEL})")
    p.add_argument("--size", help="WIDTHxHEIGHT, multiples of 32 (default: the model's)")
    p.add_argument("--width", type=int)
    p.add_argument("--height", type=int)
    p.add_argument("--steps", type=int, help="decoder steps (default: the model's)")
    p.add_argument("--guidance", type=float, help="classifier-free guidance (default: the model's)")
    p.add_argument("--seed", type=int, help="default: drawn at random (and recorded in the PNG)")
    p.add_argument("-n", "--num-images", type=int, help="images per prompt (default: the policy's)")
    p.add_argument("--out", default="outputs/image.png", help="output PNG (with -n > 1: name_0.png, name_1.png, ...)")
    p.add_argument("--json", action="store_true", help="print machine-readable results on stdout")
    p.add_argument("--policy", help="parameter policy YAML (default: $GLMIMAGE_POLICY or the shipped one)")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:1, ... (default: cuda when available)")
    p.add_argument("--dtype", default="auto", choices=("auto", "float32", "bfloat16", "float16"),
                   help="weights dtype (default: bfloat16 on cuda, float32 on cpu)")
    p.add_argument("--memory", default="kept", choices=("kept", "offload", "sequential"),
                   help="kept: all components on the device; offload: in host memory, each on the device for its "
                        "stage; sequential: each read from disk for its stage (model directories only)")
    p.add_argument("--lora", help="LoRA adapters from `glmimage train lora` (a folder with decoder/ and/or planner/)")
    p.add_argument("--no-progress", action="store_true")


def register(subparsers) -> None:
    gen = subparsers.add_parser("generate", help="text-to-image")
    _sampling_args(gen)
    gen.set_defaults(func=run_generate)

    edit = subparsers.add_parser("edit", help=f"image-to-image with 1 to {MAX_REFERENCES} reference images")
    _sampling_args(edit)
    edit.add_argument("--image", action="append", required=True,
                      help=f"reference image (repeat for up to {MAX_REFERENCES})")
    edit.add_argument("--keep", choices=("on", "off"),
                      help="keep the first reference wherever the plan leaves it unchanged (default: the model's "
                           "setting)")
    edit.add_argument("--copy-bias", type=float,
                      help="the planner's bias (nats) towards the reference's codes (default: the model's setting)")
    edit.add_argument("--mask", help="PNG of the first image's size whose transparent pixels (alpha 0) mark where to "
                                     "edit (OpenAI's edit mask); the rest keeps the first image exactly")
    edit.set_defaults(func=run_edit)

    info = subparsers.add_parser("info", help="what a model is: components, parameters, limits")
    from glmimage.defaults import DEFAULT_MODEL

    info.add_argument("--model", default=DEFAULT_MODEL)
    info.add_argument("--json", action="store_true")
    info.set_defaults(func=run_info)


def _dims(args) -> tuple[int | None, int | None]:
    """--size or --width/--height, as the parameter policy takes them (it checks them with the one size rule)."""
    from glmimage.models.sizes import parse_size

    if args.size and (args.width or args.height):
        raise InputError("give either --size or --width/--height, not both")
    return parse_size(args.size) if args.size else (args.width, args.height)


def _output_paths(out: str, n: int) -> list[Path]:
    path = Path(out)
    if path.suffix.lower() != ".png":
        raise InputError(f"--out must end in .png, got {out!r}")
    if n == 1:
        return [path]
    return [path.with_name(f"{path.stem}_{i}{path.suffix}") for i in range(n)]


def _save(result, out: str, as_json: bool) -> int:
    from glmimage.io import save_png

    paths = _output_paths(out, len(result.images))
    records = []
    for image, meta, path in zip(result.images, result.metadata, paths):
        save_png(image, path, meta)
        records.append({"path": str(path), **meta})
    if as_json:
        print(json.dumps({"images": records, "timings": result.timings}, indent=2))
    else:
        for r in records:
            print(f"wrote {r['path']} ({r['width']}x{r['height']}, seed {r['seed']}, plan {r['plan_hash']})")
        t = result.timings
        print(f"planner {t['planner']:.2f}s  decoder {t['decoder']:.2f}s  vae {t['vae']:.2f}s", file=sys.stderr)
    return 0


def _engine(args):
    from glmimage.engine import Engine
    from glmimage.engine.options import resolve_device

    device, dtype = resolve_device(args.device, args.dtype)
    return Engine.from_pretrained(args.model, device=device, dtype=dtype, sequential=args.memory == "sequential",
                                  offload=args.memory == "offload")


def _governed_request(args, references=()):
    """The request as the API and the service build it: the parameter policy checks what the user set and fills
    the central defaults (the same `ParameterPolicy.apply` everywhere)."""
    from glmimage.policy import GenerationRequest, load_policy

    width, height = _dims(args)
    user = {"width": width, "height": height, "steps": args.steps, "guidance": args.guidance, "seed": args.seed,
            "num_images": args.num_images}
    request = load_policy(args.policy).apply(GenerationRequest(args.prompt, references=tuple(references)), user)
    _output_paths(args.out, request.num_images or 1)  # fail before loading anything
    return request


def _run(args, references=(), keep_mask=None) -> int:
    from glmimage.policy import dispatch

    run_options = {"progress": not args.no_progress}
    if keep_mask is not None:
        run_options["keep_mask"] = keep_mask
    if getattr(args, "keep", None):
        run_options["keep"] = args.keep == "on"
    if getattr(args, "copy_bias", None) is not None:
        run_options["copy_bias"] = args.copy_bias
    request = _governed_request(args, references)
    engine = _engine(args)
    if args.lora:
        from glmimage.models.adapters import apply_adapters

        apply_adapters(engine.pipe, args.lora)  # merged into the weights: no slowdown
    return _save(dispatch(engine, request, **run_options), args.out, args.json)


def run_generate(args) -> int:
    return _run(args)


def run_edit(args) -> int:
    from glmimage.engine.references import load_reference

    check_reference_count(len(args.image))
    refs = [load_reference(Path(p), name=p) for p in args.image]  # check every file before loading the model
    return _run(args, refs, _keep_mask(args, refs[0].size) if args.mask else None)


def _keep_mask(args, reference_size: tuple[int, int]):
    """--mask as the engine's keep mask, checked before the model loads."""
    from PIL import Image, UnidentifiedImageError

    from glmimage.engine.keep import mask_from_alpha

    if args.keep == "off":
        raise InputError("--keep off and --mask contradict each other: the mask says what to keep")
    if args.size or args.width or args.height:
        raise InputError("a masked edit keeps the first image's size: leave --size/--width/--height out")
    try:
        with Image.open(args.mask) as im:
            im.load()
            if im.size != reference_size:
                raise InputError(f"--mask is {im.width}x{im.height}; it must be the first image's size "
                                 f"({reference_size[0]}x{reference_size[1]})")
            keep = mask_from_alpha(im)
    except (OSError, UnidentifiedImageError) as exc:
        raise InputError(f"--mask {args.mask}: not a readable image ({exc})") from None
    if bool(keep.all()):
        raise InputError("--mask has no fully transparent pixel (alpha 0): it marks nothing to edit")
    return keep


def run_info(args) -> int:
    from glmimage.models.info import model_info

    info = model_info(args.model)
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        for key, value in info.items():
            print(f"{key:>16}: {value}")
    return 0
