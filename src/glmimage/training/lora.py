"""Stage 5: LoRA fine-tuning (PEFT) of the decoder and the planner on a folder of the user's images with captions.

The path to adapt a model to a brand: `data_dir` holds images (png/jpg/webp) and a same-name .txt caption each,
written like a prompt (quote the texts the image shows). Images are centre-cropped and resized to `image_size`;
their latents and VQ codes are computed once with the model's own VAE and tokenizer. The decoder learns with the
stage-4 flow-matching loss through adapters on its attention projections (to_q, to_k, to_v, to_out.0), the planner
with the stage-3 teacher-forced loss through adapters on q_proj, k_proj, v_proj, o_proj (the vision tower's
attention is named differently and stays untouched). Adapters are saved with `save_pretrained` under
`<out>/adapters/{decoder,planner}`; `merge: true` also writes a merged model directory (`<out>/model`).

    glmimage train lora --config configs/train/lora-nano.yaml --set data_dir=my_brand/
    # the official model (GPUs): configs/train/lora-official.yaml, see docs/training.md
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import torch
from PIL import Image

from glmimage.engine.glyph_text import extract_glyph_texts
from glmimage.errors import InputError
from glmimage.models.adapters import PIPE_ATTR, apply_adapters  # noqa: F401 (apply_adapters: re-exported)
from glmimage.training.checkpoints import resume
from glmimage.training.config import RunConfig, stage_cli
from glmimage.training.data import TrainItem, dataset_index, sized
from glmimage.training.decoder import decoder_step_loss
from glmimage.training.encode import encode_codes, encode_latents
from glmimage.training.export import export_model, load_pipeline, record_metrics
from glmimage.training.optim import make_ema, make_optimizer, optimizer_step, with_ema_weights
from glmimage.training.planner import build_sequence, collate, freeze_tokenizer, planner_loss
from glmimage.training.run import Run, derived_seed, finish_step, start_run, train_steps

TARGETS = ("decoder", "planner")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
BASE_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
ADAPTERS_DIR = "adapters"
# the projections adapted in each target (the vision tower's attention is named differently and stays untouched)
TARGET_MODULES = {"decoder": ("to_q", "to_k", "to_v", "to_out.0"), "planner": ("q_proj", "k_proj", "v_proj", "o_proj")}


@dataclass
class LoraTrainConfig(RunConfig):
    data_dir: str = ""  # images + same-name .txt captions
    targets: tuple[str, ...] = TARGETS
    rank: int = 8
    alpha: float = 8.0
    dropout: float = 0.0
    decoder_modules: tuple[str, ...] = TARGET_MODULES["decoder"]
    planner_modules: tuple[str, ...] = TARGET_MODULES["planner"]
    planner_weight: float = 1.0  # weight of the planner's loss next to the decoder's
    prior_drop: float = 0.1  # decoder loss, as in stage 4
    glyph_drop: float = 0.1
    loss_space: str = "velocity"
    text_loss_weight: ClassVar[float] = 1.0  # plain MSE: a user's images come without text boxes to weight
    merge: bool = False  # also write the merged weights as a complete model directory
    base_dtype: str = "float32"  # the frozen weights; bfloat16 halves memory for the official model (adapters: fp32)
    eval_steps: int = 4
    eval_guidance: float = 1.5

    def __post_init__(self) -> None:
        super().__post_init__()
        self.targets = tuple(self.targets)
        self.decoder_modules, self.planner_modules = tuple(self.decoder_modules), tuple(self.planner_modules)
        if not self.targets or any(t not in TARGETS for t in self.targets):
            raise InputError(f"targets must be a non-empty subset of {TARGETS}, got {self.targets}")
        if self.rank < 1 or self.alpha <= 0 or not 0 <= self.dropout < 1:
            raise InputError("rank must be >= 1, alpha > 0 and dropout in [0, 1)")
        if not self.data_dir:
            raise InputError("data_dir is required: a folder of images with same-name .txt captions")
        if self.base_dtype not in BASE_DTYPES:
            raise InputError(f"base_dtype must be one of {sorted(BASE_DTYPES)}, got {self.base_dtype!r}")
        if self.loss_space not in ("velocity", "x0"):
            raise InputError(f"loss_space must be 'velocity' or 'x0', got {self.loss_space!r}")


def read_folder(path: str | Path, size: int) -> list[TrainItem]:
    """Images and their captions; InputError naming what is missing."""
    root = Path(path)
    if not root.is_dir():
        raise InputError(f"data_dir not found: {root}")
    images = sorted(p for p in root.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise InputError(f"{root} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    missing = [p.name for p in images if not p.with_suffix(".txt").is_file()]
    if missing:
        raise InputError(f"captions missing for {missing[:5]}{' ...' if len(missing) > 5 else ''}: "
                         f"write one .txt next to each image")
    items = []
    for p in images:
        caption = p.with_suffix(".txt").read_text().strip()
        if not caption:
            raise InputError(f"{p.with_suffix('.txt')} is empty")
        items.append(TrainItem(caption, sized(Image.open(p).convert("RGB"), size), [], extract_glyph_texts(caption)))
    return items


def encode_folder(pipe, items: list[TrainItem]) -> list[dict]:
    """Latents and codes (target + preview) of every image, with the model's own VAE and tokenizer."""
    return [{**encode_codes(pipe, it), "latent": encode_latents(pipe, [it.image])[0], "ref_latents": []}
            for it in items]


def wrap_module(module: torch.nn.Module, rank: int, alpha: float, dropout: float, target_modules):
    """PEFT-wrap `module` in place: its base weights frozen, LoRA layers injected into `target_modules` (so the
    module itself now runs with the adapters); returns the PeftModel (for save_pretrained and disable_adapter)."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=dropout, target_modules=list(target_modules))
    return get_peft_model(module.requires_grad_(False), config)


def add_adapters(pipe, cfg: LoraTrainConfig) -> dict:
    """PEFT-wrap the targets in place (their base modules then run with the adapters); returns the PeftModels."""
    names = {"decoder": cfg.decoder_modules, "planner": cfg.planner_modules}
    return {target: wrap_module(getattr(pipe, PIPE_ATTR[target]), cfg.rank, cfg.alpha, cfg.dropout, names[target])
            for target in cfg.targets}


def save_adapters(run: Run, wrapped: dict) -> None:
    if run.main:
        for target, peft_model in wrapped.items():
            peft_model.save_pretrained(run.out / ADAPTERS_DIR / target)
    run.accelerator.wait_for_everyone()


def save_ema_adapters(run: Run, wrapped: dict, ema, trained) -> None:
    with with_ema_weights(ema, trained.parameters()):
        save_adapters(run, wrapped)


def demo_folder(path: str | Path, count: int, size: int, seed: int = 0) -> Path:
    """A stand-in for a user's folder: `count` validation designs of the world with their prompts as captions."""
    from glmimage.data import World, WorldConfig

    root = Path(path)
    root.mkdir(parents=True, exist_ok=True)
    world = World(WorldConfig(size=size, seed=seed, split="validation"))
    for i in range(count):
        sample = world.sample(i)
        sample.image.save(root / f"{sample.key}.png")
        (root / f"{sample.key}.txt").write_text(sample.prompt)
    return root


@torch.no_grad()
def evaluate(run: Run, pipe, items: list[TrainItem]) -> dict:
    """Generate from the first captions with the adapted model; OCR word accuracy of those with quoted text."""
    from glmimage.engine import Engine
    from glmimage.models.load import LoadedModel
    from glmimage.models.presets import get_preset
    from glmimage.training.metrics import ocr_word_accuracy, save_grid

    cfg, preset = run.cfg, get_preset(run.cfg.preset)
    engine = Engine(LoadedModel(pipe, "lora", preset.limits, preset.default_steps, preset.default_guidance))
    chosen = items[: cfg.eval_samples]
    images = [engine.generate(it.prompt, width=it.image.width, height=it.image.height, steps=cfg.eval_steps,
                              guidance=cfg.eval_guidance, seed=0).images[0] for it in chosen]
    save_grid([[it.image for it in chosen], images], run.out / "samples.png", ["training image", "generated"])
    metrics = {}
    if cfg.eval_ocr:
        metrics["ocr_word_accuracy"] = ocr_word_accuracy(images, [it.texts for it in chosen])
    return metrics


def train(cfg: LoraTrainConfig) -> Path:
    run = start_run("lora", cfg)
    pipe = load_pipeline(cfg, BASE_DTYPES[cfg.base_dtype])
    items = read_folder(cfg.data_dir, cfg.image_size)
    for frozen in (pipe.vae, pipe.text_encoder, pipe.transformer, pipe.vision_language_encoder):
        frozen.requires_grad_(False).eval()
    encoded = encode_folder(pipe, items)
    torch.manual_seed(derived_seed(cfg.seed, "lora-adapters"))  # the same adapters in every process and run
    wrapped = add_adapters(pipe, cfg)
    targets = [t for t in TARGETS if t in cfg.targets]
    trained = torch.nn.ModuleList([getattr(pipe, PIPE_ATTR[t]) for t in targets])
    opt, sched = make_optimizer(run, trained.parameters())
    ema = make_ema(run, trained)
    *prepared, opt = run.accelerator.prepare(*[m.train() for m in trained], opt)
    models = dict(zip(targets, prepared))
    transformer, planner = models.get("decoder"), models.get("planner")
    freeze_tokenizer(pipe.vision_language_encoder)
    resume(run)
    pad_id = pipe.vision_language_encoder.config.text_config.pad_token_id
    for step, gen in train_steps(run):
        batch = [encoded[dataset_index(p, len(encoded), cfg.seed)] for p in run.positions(step)]
        loss, parts = torch.zeros((), device=run.device), {}
        if "decoder" in cfg.targets:
            dec_loss, dec = decoder_step_loss(transformer, pipe.text_encoder, pipe.tokenizer, batch, cfg, gen,
                                              pipe.scheduler.config)
            loss, parts["loss_decoder"] = loss + dec_loss, dec["loss"]
        if "planner" in cfg.targets:
            sequences = collate([build_sequence(pipe.vision_language_encoder, pipe.processor, it) for it in batch],
                                pad_id)
            plan_loss, pl = planner_loss(planner, sequences, run.device)
            loss, parts["loss_planner"] = loss + cfg.planner_weight * plan_loss, pl["loss"]
        parts["loss"] = loss.item()
        parts["grad_norm"] = optimizer_step(run, loss, opt, sched, trained.parameters(), ema)
        finish_step(run, step + 1, parts, lambda: save_ema_adapters(run, wrapped, ema, trained))
    trained.eval()
    with with_ema_weights(ema, trained.parameters()):
        save_adapters(run, wrapped)
        metrics = evaluate(run, pipe, items) if run.main else {}
        if cfg.merge:
            for peft_model in wrapped.values():
                peft_model.merge_and_unload()  # in place: the pipeline's modules now hold the merged weights
            export_model(run, pipe)
    record_metrics(run, metrics)
    return run.out / ADAPTERS_DIR


CONFIG = LoraTrainConfig  # what `glmimage train lora` loads the YAML into


def main(argv: list[str] | None = None) -> int:
    return stage_cli("lora", CONFIG, train, argv)


if __name__ == "__main__":
    sys.exit(main())
