"""Decoder-stage training throughput, recipes side by side in one process (samples/s of a full training step:
glyph encoder, DiT forward and backward, AdamW update).

The recipes run in alternating rounds on the same items, so passing load hits them alike; the table reports each
recipe's median step and its ratio to the first (the stage's recipe before bf16 and both cores). Nothing else should
run meanwhile (stop a training run first: it resumes exactly).

    python benchmarks/decoder_train_throughput.py --model src/glmimage/weights/nano --rounds 3 --steps 4
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import time
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Recipe:
    name: str
    threads: int
    bf16: bool
    image_size: int = 256
    binding: bool = False


RECIPES = (
    Recipe("fp32, 1 thread (before)", 1, False),
    Recipe("fp32, 2 threads", 2, False),
    Recipe("bf16 autocast, 2 threads", 2, True),
    Recipe("bf16, 2 threads, binding loss", 2, True, binding=True),
    Recipe("bf16, 2 threads, 128px", 2, True, image_size=128),
)


def items_for(pipe, size: int, count: int) -> list[dict]:
    from glmimage.training.data import World, WorldConfig, world_item
    from glmimage.training.encode import encode_codes, encode_latents

    world = World(WorldConfig(size=size, kinds=("word_card", "poster", "banner", "slide")))
    out = []
    for i in range(count):
        item = world_item(world, "t2i", i)
        out.append({**encode_codes(pipe, item), "latent": encode_latents(pipe, [item.image])[0]})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="src/glmimage/weights/nano")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=4, help="timed steps per recipe and round (after one warm-up)")
    parser.add_argument("--json", help="write the results here too")
    args = parser.parse_args()

    from glmimage.engine.attention import install_masked_attention
    from glmimage.models.load import load_model_dir
    from glmimage.training.binding import install_binding_attention
    from glmimage.training.decoder import DecoderTrainConfig, decoder_step_loss

    pipe = load_model_dir(args.model, torch.float32).pipe
    torch.set_num_threads(2)
    items = {size: items_for(pipe, size, args.batch_size) for size in {r.image_size for r in RECIPES}}
    params = [p for m in (pipe.transformer, pipe.text_encoder) for p in m.parameters()]
    opt = torch.optim.AdamW(params, lr=1e-6)  # tiny steps: the weights hardly move between recipes
    times: dict[str, list[float]] = {r.name: [] for r in RECIPES}
    for _ in range(args.rounds):
        for recipe in RECIPES:
            torch.set_num_threads(recipe.threads)
            cfg = DecoderTrainConfig(preset="nano", image_size=recipe.image_size, batch_size=args.batch_size,
                                     binding_loss_weight=0.1 if recipe.binding else 0.0)
            if recipe.binding:
                install_binding_attention(pipe.transformer, 1)
            else:
                install_masked_attention(pipe.transformer)
            for step in range(args.steps + 1):
                gen = torch.Generator().manual_seed(step)
                start = time.perf_counter()
                autocast = torch.autocast("cpu", dtype=torch.bfloat16) if recipe.bf16 else contextlib.nullcontext()
                with autocast:
                    loss, _ = decoder_step_loss(pipe.transformer, pipe.text_encoder, pipe.tokenizer,
                                                items[recipe.image_size], cfg, gen, pipe.scheduler.config)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, 1.0)
                opt.step()
                opt.zero_grad(set_to_none=True)
                if step:  # the first step of each recipe warms its kernels up
                    times[recipe.name].append(time.perf_counter() - start)
    base = statistics.median(times[RECIPES[0].name])
    rows = []
    print(f"| recipe | s/step (batch {args.batch_size}) | samples/s | vs before |")
    print("|---|---|---|---|")
    for recipe in RECIPES:
        t = statistics.median(times[recipe.name])
        rows.append({"recipe": recipe.name, "s_per_step": t, "samples_per_s": args.batch_size / t, "ratio": base / t})
        print(f"| {recipe.name} | {t:.3f} | {args.batch_size / t:.2f} | {base / t:.2f}x |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
