"""Stage 2: the semantic-VQ tokenizer (the ViT `model.visual` + `model.vqmodel` of GlmImageForConditionalGeneration).

The codes must be predictive of the image, so the encoder and codebook are trained through an auxiliary head (not
shipped) that predicts the normalised VAE latents of the image from the quantized features alone, plus the
library's VQ loss (codebook + commitment terms of GlmImageVQVAEVectorQuantizer). Codes that no image used during
`reinit_every` steps are re-initialised to encoder outputs of the current batch. Images enter at the processor's
geometry (grid = side/32). Optionally (`semantic_weight` > 0) a second head predicts each cell's ground-truth shape
and colour labels (`training/semantics.py`) from the quantized features, so the codes must tell a star from a circle,
which a latent MSE dominated by colour barely asks (`semantic_codebook`: through the chosen code vectors too).
Reported: codebook usage and perplexity on validation images, how well the image is reconstructed from its tokens
alone (head -> VAE decoder) next to a flat-colour baseline, and the probes (`probe_samples` designs per split): object
class and colour from the codes of the cells each object covers, and the class by linear read-outs of the ViT
features, the pre-quantization z and the quantized vectors (where the shape is lost).

    glmimage train tokenizer --config configs/train/tokenizer-nano.yaml   # init: the VAE stage's model dir
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from glmimage.engine.decoder import vae_stats
from glmimage.engine.planner import target_grids
from glmimage.errors import InputError
from glmimage.models.presets import get_preset
from glmimage.training.checkpoints import resume
from glmimage.training.config import DataConfig, stage_cli
from glmimage.training.data import dataset_index, make_world, vq_codes, vq_inputs
from glmimage.training.encode import latent_set
from glmimage.training.export import export_model, load_pipeline, record_metrics
from glmimage.training.metrics import codebook_stats, psnr, save_grid, to_uint8
from glmimage.training.optim import make_optimizer, optimizer_step
from glmimage.training.run import Run, derived_seed, finish_step, start_run, train_steps
from glmimage.training.semantics import (
    COLOUR_LABELS,
    SHAPE_LABELS,
    cell_labels,
    character_features,
    character_probe,
    character_rows,
    code_probe,
    linear_probe,
    object_features,
    object_rows,
)

PLANNER_FACTOR = 32  # pixels per planner grid cell (the processor halves the image, then 16-pixel patches)


@dataclass
class TokenizerTrainConfig(DataConfig):
    """num_samples: train images whose VAE latents are cached as targets (0 = encode every batch)."""

    head_channels: int = 64  # width of the auxiliary latent head
    recon_weight: float = 1.0
    vq_weight: float = 1.0
    reinit_every: int = 0  # steps between dead-code re-initialisations; 0 = off
    semantic_weight: float = 0.0  # weight of the per-cell shape + colour cross-entropy; 0 = no semantic head
    object_label_weight: float = 1.0  # cells of an object count this many times in it (objects cover ~14% of cells)
    semantic_codebook: bool = False  # the semantic loss also moves the chosen code vectors (not only the encoder)
    probe_samples: int = 0  # designs per split (train, validation) of the code probe in the report; 0 = no probe

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.ema_decay:
            raise InputError("the tokenizer stage trains without EMA (dead-code re-initialisation edits the "
                             "codebook in place): set ema_decay: 0")
        if self.edit_fraction:
            raise InputError("the tokenizer trains on text-to-image samples only: set edit_fraction: 0")
        if self.reinit_every < 0 or self.head_channels < 1:
            raise InputError("reinit_every must be >= 0 and head_channels >= 1")
        if self.semantic_weight < 0 or self.probe_samples < 0 or self.object_label_weight <= 0:
            raise InputError("semantic_weight and probe_samples must be >= 0, object_label_weight > 0")


class LatentHead(torch.nn.Module):
    """Quantized features at 1/32 -> VAE latents at 1/vae_scale (nearest 2x upsamplings + 3x3 convs)."""

    def __init__(self, code_dim: int, latent_channels: int, channels: int, upsamplings: int):
        super().__init__()
        layers = [torch.nn.Conv2d(code_dim, channels, 3, padding=1), torch.nn.GELU()]
        for _ in range(upsamplings):
            layers += [torch.nn.Upsample(scale_factor=2, mode="nearest"),
                       torch.nn.Conv2d(channels, channels, 3, padding=1), torch.nn.GELU()]
        layers.append(torch.nn.Conv2d(channels, latent_channels, 3, padding=1))
        self.net = torch.nn.Sequential(*layers)

    def forward(self, quantized: torch.Tensor) -> torch.Tensor:
        return self.net(quantized)


class LabelHead(torch.nn.Module):
    """Quantized features -> per-cell logits of the shape labels and the colour labels (a 1x1 conv: what one code
    says about its own cell)."""

    def __init__(self, code_dim: int):
        super().__init__()
        self.net = torch.nn.Conv2d(code_dim, len(SHAPE_LABELS) + len(COLOUR_LABELS), 1)

    def forward(self, quantized: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.net(quantized)
        return logits[:, : len(SHAPE_LABELS)], logits[:, len(SHAPE_LABELS) :]


class SemanticTokenizer(torch.nn.Module):
    """ViT -> quant_conv -> L2-normalised nearest code (the library's modules, the library's arithmetic), and the
    auxiliary heads, in one forward so DDP sees every trained parameter."""

    def __init__(self, planner, head: LatentHead, label_head: LabelHead | None = None, semantic_codebook: bool = False):
        super().__init__()
        self.semantic_codebook = semantic_codebook
        self.visual = planner.model.visual
        self.quant_conv = planner.model.vqmodel.quant_conv
        self.quantize = planner.model.vqmodel.quantize
        self.head = head
        self.label_head = label_head

    def forward(self, pixel_values: torch.Tensor, grid_thw: torch.Tensor):
        _, z, quantized, vq_loss, codes = tokenizer_stages(self, pixel_values, grid_thw)
        labels = None
        if self.label_head is not None:
            labels = [self.label_head(quantized)]  # straight-through: its gradient reaches the encoder only
            if self.semantic_codebook:  # the same logits from the code vectors themselves: it reaches the codebook
                batch, _, h, w = z.shape
                chosen = F.normalize(self.quantize.embedding.weight, dim=-1)[codes].view(batch, h, w, -1)
                labels.append(self.label_head(chosen.permute(0, 3, 1, 2)))
        return self.head(quantized), vq_loss, codes.view(len(grid_thw), -1), z, labels


def tokenizer_stages(parts, pixel_values: torch.Tensor, grid_thw: torch.Tensor):
    """ViT features and pre-quantization z (B, C, h, w), quantized vectors, VQ loss and codes; `parts` holds
    `visual`, `quant_conv` and `quantize` (a SemanticTokenizer, or the planner's `model.visual` / `model.vqmodel`)."""
    batch, (_, h, w) = len(grid_thw), grid_thw[0].tolist()
    features = parts.visual(pixel_values, grid_thw=grid_thw).pooler_output  # (B*h*w, C), images in order
    features = features.view(batch, h, w, -1).permute(0, 3, 1, 2)  # (B, C, h, w) as get_image_features
    z = parts.quant_conv(features)  # (B, D, h, w)
    quantized, vq_loss, codes = parts.quantize(z)
    return features, z, quantized, vq_loss, codes


class CodeUsage:
    """Hits per code since the last re-initialisation, summed over processes (saved with the checkpoint)."""

    def __init__(self, size: int):
        self.counts = torch.zeros(size, dtype=torch.float64)

    def state_dict(self) -> dict:
        return {"counts": self.counts}

    def load_state_dict(self, state: dict) -> None:
        self.counts = state["counts"].clone()


def reinit_dead_codes(run: Run, model: SemanticTokenizer, z: torch.Tensor, usage: CodeUsage, opt,
                      step: int) -> int:
    """Unused codes take L2-normalised encoder outputs drawn from the whole (gathered) batch; every process draws
    the same ones, so replicas stay identical. Adam's moments of those rows restart from zero."""
    dead = (usage.counts == 0).nonzero().view(-1)
    usage.counts.zero_()
    if not len(dead):
        return 0
    pool = run.accelerator.gather(z.detach().permute(0, 2, 3, 1).reshape(-1, z.shape[1])).cpu()
    gen = torch.Generator().manual_seed(derived_seed(run.cfg.seed, "reinit", step))
    picks = pool[torch.randint(0, len(pool), (len(dead),), generator=gen)]
    weight = model.quantize.embedding.weight
    with torch.no_grad():
        weight[dead.to(weight.device)] = F.normalize(picks, dim=-1).to(weight)
    for moment in getattr(opt, "optimizer", opt).state.get(weight, {}).values():
        if torch.is_tensor(moment) and moment.shape == weight.shape:
            moment[dead.to(moment.device)] = 0
    return len(dead)


def tokenizer_loss(model, samples: list, target: torch.Tensor, image_processor, cfg, device):
    images = [s.image for s in samples]
    grid = (images[0].height // PLANNER_FACTOR, images[0].width // PLANNER_FACTOR)
    pixel_values, grid_thw = vq_inputs(image_processor, images, grid)
    pred, vq_loss, codes, z, labels = model(pixel_values.to(device), grid_thw.to(device))
    recon = F.mse_loss(pred, target)
    loss = cfg.recon_weight * recon + cfg.vq_weight * vq_loss
    parts = {"recon": recon.item(), "vq": vq_loss.item()}
    if labels is not None:
        shape_true, colour_true = (torch.stack(t).to(device) for t in zip(*(cell_labels(s, grid) for s in samples)))
        w = cfg.object_label_weight  # class weights: none and text 1, every object class and colour w
        shape_w = label_weights(len(SHAPE_LABELS), 2, w, device)
        colour_w = label_weights(len(COLOUR_LABELS), 1, w, device)
        shape_ce = sum(F.cross_entropy(shape, shape_true, weight=shape_w) for shape, _ in labels) / len(labels)
        colour_ce = sum(F.cross_entropy(colour, colour_true, weight=colour_w) for _, colour in labels) / len(labels)
        loss = loss + cfg.semantic_weight * (shape_ce + colour_ce)
        parts.update(shape_ce=shape_ce.item(), colour_ce=colour_ce.item())
    return loss, codes, z, {"loss": loss.item(), **parts}


def label_weights(size: int, plain: int, weight: float, device) -> torch.Tensor:
    """Cross-entropy class weights: the first `plain` labels (none, text) 1, the rest `weight`."""
    out = torch.full((size,), float(weight), device=device)
    out[:plain] = 1.0
    return out


@torch.no_grad()
def evaluate(run: Run, pipe, head: LatentHead) -> dict:
    """Codebook usage and perplexity on validation images (library tokenization path), and PSNR of the images
    rebuilt from their tokens alone (codebook vectors -> head -> VAE decoder)."""
    cfg, planner, vae = run.cfg, pipe.vision_language_encoder, pipe.vae
    samples = [make_world(cfg, "validation").sample(i) for i in range(cfg.eval_samples)]
    images = [s.image for s in samples]
    grid, _ = target_grids(images[0].height, images[0].width)
    codes = vq_codes(planner, pipe.processor.image_processor, images, grid)
    metrics = codebook_stats(codes, planner.config.vq_config.num_embeddings)
    codebook = F.normalize(planner.model.vqmodel.quantize.embedding.weight, dim=-1)
    features = codebook[codes.to(codebook.device)].view(len(images), *grid, -1).permute(0, 3, 1, 2)
    mean, std = vae_stats(vae, vae.device, vae.dtype)
    rebuilt = to_uint8(vae.decode(head(features) * std + mean).sample)
    flat = [Image.new("RGB", img.size, tuple(int(c) for c in np.asarray(img).reshape(-1, 3).mean(0))) for img in images]
    metrics["psnr_from_tokens"] = sum(psnr(a, b) for a, b in zip(images, rebuilt)) / len(images)
    metrics["psnr_flat_colour_baseline"] = sum(psnr(a, b) for a, b in zip(images, flat)) / len(images)
    save_grid([images, rebuilt], run.out / "token_reconstructions.png", ["original", "from tokens"])
    if cfg.probe_samples:
        metrics.update(tokenizer_probe(planner, pipe.processor.image_processor, cfg))
    return metrics


def probe_splits(planner, image_processor, cfg, rows_of, features_of) -> tuple[dict, dict]:
    """One pass of the tokenizer over the first `probe_samples` train and validation designs: per split, the probe's
    rows (`rows_of(samples, codes, grid)`) and the features of the same rows at each stage (`features_of(samples,
    features)` for the ViT features, the pre-quantization z and the quantized vectors)."""
    parts = SimpleNamespace(visual=planner.model.visual, quant_conv=planner.model.vqmodel.quant_conv,
                            quantize=planner.model.vqmodel.quantize)
    rows, stages = {}, {}
    for split in ("train", "validation"):
        samples = [make_world(cfg, split).sample(i) for i in range(cfg.probe_samples)]
        grid, _ = target_grids(samples[0].height, samples[0].width)
        codes: list[torch.Tensor] = []
        features: dict[str, list[torch.Tensor]] = {"vit": [], "prequant": [], "quantized": []}
        for i in range(0, len(samples), 16):  # one pass per batch: its codes equal vq_codes' (tested)
            batch = samples[i : i + 16]
            pixel_values, grid_thw = vq_inputs(image_processor, [s.image for s in batch], grid)
            vit, z, quantized, _, batch_codes = tokenizer_stages(parts, pixel_values.to(planner.device),
                                                                 grid_thw.to(planner.device))
            codes.append(batch_codes.view(len(batch), -1).cpu())
            for name, value in zip(features, (vit, z, quantized)):
                features[name].append(features_of(batch, value.float().cpu()))
        rows[split] = rows_of(samples, torch.cat(codes), grid)
        stages[split] = {name: torch.cat(value) for name, value in features.items()}
    return rows, stages


def linear_read_outs(rows: dict, stages: dict, prefix: str) -> dict[str, float]:
    """`{prefix}_{stage}`: validation accuracy of a linear probe of each row's label (its last field) per stage."""
    labels = {split: [row[-1] for row in rows[split]] for split in rows}
    return {f"{prefix}_{name}": linear_probe(stages["train"][name], labels["train"], stages["validation"][name],
                                             labels["validation"]) for name in stages["train"]}


@torch.no_grad()
def tokenizer_probe(planner, image_processor, cfg) -> dict[str, float]:
    """The code probe (`semantics.code_probe`) on the first `probe_samples` train and validation designs, and where
    shape is lost: linear probes of the object's class from the ViT features, the pre-quantization z and the
    quantized vectors (`probe_class_linear_{vit,prequant,quantized}`)."""
    rows, stages = probe_splits(planner, image_processor, cfg, object_rows, object_features)
    class_rows = {split: [row[:2] for row in rows[split]] for split in rows}  # (codes, class)
    linear = linear_read_outs(class_rows, stages, "probe_class_linear")
    return {**code_probe(rows["train"], rows["validation"]), **linear}


@torch.no_grad()
def tokenizer_character_probe(planner, image_processor, cfg) -> dict[str, float]:
    """Route 2's premise (a plan that says which letter fills each cell): on the first `probe_samples` train and
    validation designs of the config's world (word cards: large letters, about one per cell), how well a cell's code
    tells its character (`semantics.character_probe`), and linear read-outs of the character from the ViT features,
    the pre-quantization z and the quantized vectors (`probe_char_linear_*`: where letter identity is lost)."""
    rows, stages = probe_splits(planner, image_processor, cfg, character_rows, character_features)
    linear = linear_read_outs(rows, stages, "probe_char_linear")
    return {**character_probe(rows["train"], rows["validation"]), **linear}


def export(run: Run, pipe, head: LatentHead) -> Path:
    if run.main:
        from safetensors.torch import save_file

        save_file(head.state_dict(), run.out / "aux_head.safetensors")  # for evaluation; not part of the model
    return export_model(run, pipe)


def train(cfg: TokenizerTrainConfig) -> Path:
    run = start_run("tokenizer", cfg)
    pipe = load_pipeline(cfg)
    planner, world = pipe.vision_language_encoder, make_world(cfg)
    latents = latent_set(run, pipe, "t2i", cfg.num_samples, get_preset(cfg.preset).limits)
    upsamplings = int(math.log2(PLANNER_FACTOR // pipe.vae_scale_factor))
    # the heads start alike in every process and in every run, whether or not the latent cache was built just now
    torch.manual_seed(derived_seed(cfg.seed, "tokenizer-heads"))
    head = LatentHead(planner.config.vq_config.embed_dim, pipe.vae.config.latent_channels, cfg.head_channels,
                      upsamplings)
    label_head = LabelHead(planner.config.vq_config.embed_dim) if cfg.semantic_weight else None
    model = SemanticTokenizer(planner, head, label_head, cfg.semantic_codebook).train()
    usage = CodeUsage(planner.config.vq_config.num_embeddings)
    run.accelerator.register_for_checkpointing(usage)
    opt, sched = make_optimizer(run, model.parameters())
    model, opt = run.accelerator.prepare(model, opt)
    resume(run)
    for step, _ in train_steps(run):
        indices = [dataset_index(p, cfg.num_samples, cfg.seed) for p in run.positions(step)]
        samples = [world.sample(i) for i in indices]
        target = torch.stack([latents[i]["latent"] for i in indices]).to(run.device)
        loss, codes, z, parts = tokenizer_loss(model, samples, target, pipe.processor.image_processor, cfg, run.device)
        parts["grad_norm"] = optimizer_step(run, loss, opt, sched, model.parameters())
        hits = torch.bincount(codes.view(-1), minlength=len(usage.counts)).to(run.device, torch.float64)
        usage.counts += run.accelerator.reduce(hits, reduction="sum").cpu()
        parts.update({f"batch_{k}": v for k, v in codebook_stats(codes, len(usage.counts)).items()})
        if cfg.reinit_every and (step + 1) % cfg.reinit_every == 0:
            parts["reinit_codes"] = reinit_dead_codes(run, run.accelerator.unwrap_model(model), z, usage, opt, step)
        finish_step(run, step + 1, parts, lambda: export(run, pipe, head))
    model.eval()
    path = export(run, pipe, head)
    record_metrics(run, evaluate(run, pipe, head) if run.main else {})
    return path


CONFIG = TokenizerTrainConfig  # what `glmimage train tokenizer` loads the YAML into


def main(argv: list[str] | None = None) -> int:
    return stage_cli("tokenizer", CONFIG, train, argv)


if __name__ == "__main__":
    sys.exit(main())
