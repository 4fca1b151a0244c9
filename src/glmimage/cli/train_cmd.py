"""`glmimage train <stage> --config X.yaml [--resume] [--out DIR] [--init DIR] [--set key=value ...]`.

Stages run in this order, each reading the model directory the previous one wrote:
vae -> tokenizer -> planner and decoder -> lora; `glmimage train ship --model DIR --name nano` then writes a
trained directory in bf16 to the shipped weights. Under several processes:
`accelerate launch --num_processes N [--cpu] -m glmimage.cli.main train <stage> --config X.yaml`.
"""

from __future__ import annotations

import argparse
import importlib

# Stage name -> module with `CONFIG` (its dataclass) and `train(config) -> Path`.
STAGES = {
    "vae": "glmimage.training.vae",
    "tokenizer": "glmimage.training.tokenizer",
    "planner": "glmimage.training.planner",
    "glyph": "glmimage.training.glyph",
    "decoder": "glmimage.training.decoder",
    "lora": "glmimage.training.lora",
    "grpo-planner": "glmimage.training.grpo_planner",
    "grpo-decoder": "glmimage.training.grpo_decoder",
}
HELP = {
    "vae": "stage 1: the VAE (AutoencoderKL); writes latents_mean/std",
    "tokenizer": "stage 2: the semantic-VQ tokenizer (ViT + codebook) with an auxiliary latent head",
    "planner": "stage 3: the AR planner, teacher-forced on prompt -> preview -> target and on edits",
    "glyph": "optional, before the decoder: align the glyph encoder to rendered strings (Glyph-ByT5-style)",
    "decoder": "stage 4: the DiT decoder and glyph encoder by flow matching",
    "lora": "stage 5: LoRA adapters for decoder and planner from a folder of images + captions",
    "grpo-planner": "RL after stage 4: the planner by GRPO, rewarded on layouts the frozen decoder renders",
    "grpo-decoder": "RL after stage 4: the DiT by Flow-GRPO (SDE rollouts), rewarded on OCR-read text",
}


def register(subparsers) -> None:
    from glmimage.training.arguments import add_run_arguments

    parser = subparsers.add_parser("train", help="train a component: " + " | ".join(STAGES))
    stages = parser.add_subparsers(dest="stage", required=True)
    for name in STAGES:
        stage = stages.add_parser(name, help=HELP[name])
        add_run_arguments(stage)
        stage.set_defaults(func=run_train)
    ship = stages.add_parser("ship", help="write a trained model directory (bf16) as the shipped weights of a preset")
    ship.add_argument("--model", required=True, help="the trained model directory (e.g. runs/nano/decoder/model)")
    ship.add_argument("--planner", help="take the planner from this directory (planner stage run beside the decoder)")
    ship.add_argument("--vae", help="take the VAE from this directory (an encoder-frozen VAE run beside the decoder)")
    ship.add_argument("--name", default="nano", help="the preset whose shipped weights it becomes (default: nano)")
    ship.add_argument("--dtype", default="bf16", choices=["bf16", "fp16"])
    ship.add_argument("--top-p", type=float, help="the planner's sampling top_p (its generation config: both "
                      "diffusers and glmimage use it)")
    ship.add_argument("--edit-top-p", type=float, help="top_p for edit plans only (glmimage.json; our engine)")
    ship.add_argument("--edit-copy-bias", type=float, help="edit plans' bias (nats) towards the reference's codes "
                      "(glmimage.json; our engine)")
    ship.add_argument("--edit-keep", action=argparse.BooleanOptionalAction, default=None,
                      help="edits keep the reference where their plan leaves it unchanged (glmimage.json; our engine)")
    ship.set_defaults(func=run_ship)


def run_train(args) -> int:
    from glmimage.training.common import config_from_args

    module = importlib.import_module(STAGES[args.stage])
    path = module.train(config_from_args(module.CONFIG, args))
    print(path)
    return 0


def run_ship(args) -> int:
    from glmimage.training.ship import ship, weight_bytes

    path = ship(args.model, args.name, args.dtype, planner_dir=args.planner, top_p=args.top_p,
                edit_top_p=args.edit_top_p, vae_dir=args.vae, edit_copy_bias=args.edit_copy_bias,
                edit_keep=args.edit_keep)
    print(f"{path} ({weight_bytes(path) / 1e6:.1f} MB)")
    return 0
