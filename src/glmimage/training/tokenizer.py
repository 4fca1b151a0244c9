"""Stage 2: the semantic-VQ tokenizer (the ViT `model.visual` + `model.vqmodel` of GlmImageForConditionalGeneration).

The codes must be predictive of the image, so the encoder and codebook are trained through an auxiliary head (not
shipped) that predicts the normalised VAE latents of the image from the quantized features alone, plus the
library's VQ loss (codebook + commitment terms of GlmImageVQVAEVectorQuantizer). Codes that no image used during
`reinit_every` steps are re-initialised to encoder outputs of the current batch. Images enter at the processor's
geometry (grid = side/32). Reported: codebook usage and perplexity on validation images, and how well the image is
reconstructed from its tokens alone (head -> VAE decoder), next to a flat-colour baseline.

    glmimage train tokenizer --config configs/train/tokenizer-nano.yaml   # init: the VAE stage's model dir
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from glmimage.engine.decoder import vae_stats
from glmimage.engine.planner import target_grids
from glmimage.errors import InputError
from glmimage.models.presets import get_preset
from glmimage.training import common
from glmimage.training.data import dataset_index, make_world, vq_codes, vq_inputs
from glmimage.training.encode import latent_set
from glmimage.training.metrics import codebook_stats, psnr, save_grid, to_uint8

PLANNER_FACTOR = 32  # pixels per planner grid cell (the processor halves the image, then 16-pixel patches)


@dataclass
class TokenizerTrainConfig(common.DataConfig):
    """num_samples: train images whose VAE latents are cached as targets (0 = encode every batch)."""

    head_channels: int = 64  # width of the auxiliary latent head
    recon_weight: float = 1.0
    vq_weight: float = 1.0
    reinit_every: int = 0  # steps between dead-code re-initialisations; 0 = off

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.ema_decay:
            raise InputError("the tokenizer stage trains without EMA (dead-code re-initialisation edits the "
                             "codebook in place): set ema_decay: 0")
        if self.edit_fraction:
            raise InputError("the tokenizer trains on text-to-image samples only: set edit_fraction: 0")
        if self.reinit_every < 0 or self.head_channels < 1:
            raise InputError("reinit_every must be >= 0 and head_channels >= 1")


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


class SemanticTokenizer(torch.nn.Module):
    """ViT -> quant_conv -> L2-normalised nearest code (the library's modules, the library's arithmetic), and the
    auxiliary head, in one forward so DDP sees every trained parameter."""

    def __init__(self, planner, head: LatentHead):
        super().__init__()
        self.visual = planner.model.visual
        self.quant_conv = planner.model.vqmodel.quant_conv
        self.quantize = planner.model.vqmodel.quantize
        self.head = head

    def forward(self, pixel_values: torch.Tensor, grid_thw: torch.Tensor):
        batch, (_, h, w) = len(grid_thw), grid_thw[0].tolist()
        features = self.visual(pixel_values, grid_thw=grid_thw).pooler_output  # (B*h*w, C), images in order
        features = features.view(batch, h, w, -1).permute(0, 3, 1, 2)  # (B, C, h, w) as get_image_features
        z = self.quant_conv(features)  # (B, D, h, w)
        quantized, vq_loss, codes = self.quantize(z)
        return self.head(quantized), vq_loss, codes.view(batch, h * w), z


class CodeUsage:
    """Hits per code since the last re-initialisation, summed over processes (saved with the checkpoint)."""

    def __init__(self, size: int):
        self.counts = torch.zeros(size, dtype=torch.float64)

    def state_dict(self) -> dict:
        return {"counts": self.counts}

    def load_state_dict(self, state: dict) -> None:
        self.counts = state["counts"].clone()


def reinit_dead_codes(run: common.Run, model: SemanticTokenizer, z: torch.Tensor, usage: CodeUsage, opt,
                      step: int) -> int:
    """Unused codes take L2-normalised encoder outputs drawn from the whole (gathered) batch; every process draws
    the same ones, so replicas stay identical. Adam's moments of those rows restart from zero."""
    dead = (usage.counts == 0).nonzero().view(-1)
    usage.counts.zero_()
    if not len(dead):
        return 0
    pool = run.accelerator.gather(z.detach().permute(0, 2, 3, 1).reshape(-1, z.shape[1])).cpu()
    gen = torch.Generator().manual_seed(common.derived_seed(run.cfg.seed, "reinit", step))
    picks = pool[torch.randint(0, len(pool), (len(dead),), generator=gen)]
    weight = model.quantize.embedding.weight
    with torch.no_grad():
        weight[dead.to(weight.device)] = F.normalize(picks, dim=-1).to(weight)
    for moment in getattr(opt, "optimizer", opt).state.get(weight, {}).values():
        if torch.is_tensor(moment) and moment.shape == weight.shape:
            moment[dead.to(moment.device)] = 0
    return len(dead)


def tokenizer_loss(model, images: list[Image.Image], target: torch.Tensor, image_processor, cfg, device):
    grid = (images[0].height // PLANNER_FACTOR, images[0].width // PLANNER_FACTOR)
    pixel_values, grid_thw = vq_inputs(image_processor, images, grid)
    pred, vq_loss, codes, z = model(pixel_values.to(device), grid_thw.to(device))
    recon = F.mse_loss(pred, target)
    loss = cfg.recon_weight * recon + cfg.vq_weight * vq_loss
    return loss, codes, z, {"loss": loss.item(), "recon": recon.item(), "vq": vq_loss.item()}


@torch.no_grad()
def evaluate(run: common.Run, pipe, head: LatentHead) -> dict:
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
    return metrics


def export(run: common.Run, pipe, head: LatentHead) -> Path:
    if run.main:
        from safetensors.torch import save_file

        save_file(head.state_dict(), run.out / "aux_head.safetensors")  # for evaluation; not part of the model
    return common.export_model(run, pipe)


def train(cfg: TokenizerTrainConfig) -> Path:
    run = common.start_run("tokenizer", cfg)
    pipe = common.load_pipeline(cfg)
    planner, world = pipe.vision_language_encoder, make_world(cfg)
    latents = latent_set(run, pipe, "t2i", cfg.num_samples, get_preset(cfg.preset).limits)
    upsamplings = int(math.log2(PLANNER_FACTOR // pipe.vae_scale_factor))
    head = LatentHead(planner.config.vq_config.embed_dim, pipe.vae.config.latent_channels, cfg.head_channels,
                      upsamplings)
    model = SemanticTokenizer(planner, head).train()
    usage = CodeUsage(planner.config.vq_config.num_embeddings)
    run.accelerator.register_for_checkpointing(usage)
    opt, sched = common.make_optimizer(run, model.parameters())
    model, opt = run.accelerator.prepare(model, opt)
    common.resume(run)
    for step, _ in common.train_steps(run):
        indices = [dataset_index(p, cfg.num_samples, cfg.seed) for p in run.positions(step)]
        images = [world.sample(i).image for i in indices]
        target = torch.stack([latents[i]["latent"] for i in indices]).to(run.device)
        loss, codes, z, parts = tokenizer_loss(model, images, target, pipe.processor.image_processor, cfg, run.device)
        parts["grad_norm"] = common.optimizer_step(run, loss, opt, sched, model.parameters())
        hits = torch.bincount(codes.view(-1), minlength=len(usage.counts)).to(run.device, torch.float64)
        usage.counts += run.accelerator.reduce(hits, reduction="sum").cpu()
        parts.update({f"batch_{k}": v for k, v in codebook_stats(codes, len(usage.counts)).items()})
        if cfg.reinit_every and (step + 1) % cfg.reinit_every == 0:
            parts["reinit_codes"] = reinit_dead_codes(run, run.accelerator.unwrap_model(model), z, usage, opt, step)
        common.finish_step(run, step + 1, parts, lambda: export(run, pipe, head))
    model.eval()
    path = export(run, pipe, head)
    common.record_metrics(run, evaluate(run, pipe, head) if run.main else {})
    return path


CONFIG = TokenizerTrainConfig  # what `glmimage train tokenizer` loads the YAML into


def main(argv: list[str] | None = None) -> int:
    return common.stage_cli("tokenizer", CONFIG, train, argv)


if __name__ == "__main__":
    sys.exit(main())
