"""Stage 1: the VAE (AutoencoderKL, 16 latent channels, 8x).

Loss on random crops of world images: L1 (+ optional MSE) reconstruction, a small KL, and an optional L1 on image
gradients that keeps glyph edges sharp. After training (and at every checkpoint) the per-channel mean/std of the
latents (posterior mode, as the engine encodes references) are written into the VAE config as `latents_mean` /
`latents_std`, which the engine and GlmImagePipeline use to normalise. Reported: PSNR of reconstructions and the
OCR word accuracy of reconstructions next to that of the originals.

    glmimage train vae --config configs/train/vae-nano.yaml
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import torch

from glmimage.errors import InputError
from glmimage.training.checkpoints import resume
from glmimage.training.config import RunConfig, stage_cli
from glmimage.training.data import make_world, vae_pixels
from glmimage.training.export import export_model, load_pipeline, record_metrics
from glmimage.training.metrics import ocr_word_accuracy, psnr, save_grid, to_uint8
from glmimage.training.optim import make_ema, make_optimizer, optimizer_step, with_ema_weights
from glmimage.training.run import Run, finish_step, start_run, train_steps


@dataclass
class VaeTrainConfig(RunConfig):
    crop_size: int = 64  # random square crops of the world images (the VAE is convolutional)
    l1_weight: float = 1.0
    mse_weight: float = 0.0
    kl_weight: float = 1e-6  # per latent element
    edge_weight: float = 0.0  # L1 between image gradients of reconstruction and original
    stats_samples: int = 8  # images whose latents give latents_mean / latents_std
    # false: only the decoder (and post_quant_conv) trains, so the latents, their statistics and every model trained
    # on them stay valid; the way to sharpen a shipped model's reconstructions without retraining its DiT
    train_encoder: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.crop_size % 8 or not 8 <= self.crop_size <= self.image_size:
            raise InputError(f"crop_size must be a multiple of 8 in [8, image_size={self.image_size}], "
                             f"got {self.crop_size}")
        if min(self.l1_weight, self.mse_weight, self.kl_weight, self.edge_weight) < 0:
            raise InputError("loss weights must be >= 0")
        if self.stats_samples < 1:
            raise InputError(f"stats_samples must be >= 1, got {self.stats_samples}")


class VaeWithPosterior(torch.nn.Module):
    """encode -> sample -> decode in one forward (so DDP sees it), returning the posterior for the KL."""

    def __init__(self, vae):
        super().__init__()
        self.vae = vae

    def forward(self, x: torch.Tensor, generator: torch.Generator):
        posterior = self.vae.encode(x).latent_dist
        recon = self.vae.decode(posterior.sample(generator=generator)).sample
        return recon, posterior


def image_gradients(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return x[..., :, 1:] - x[..., :, :-1], x[..., 1:, :] - x[..., :-1, :]


def vae_loss(model, x: torch.Tensor, gen: torch.Generator, cfg: VaeTrainConfig) -> tuple[torch.Tensor, dict]:
    recon, posterior = model(x, gen)
    l1 = (recon - x).abs().mean()
    mse = ((recon - x) ** 2).mean()
    kl = posterior.kl().mean() / posterior.mean[0].numel()
    (rx, ry), (tx, ty) = image_gradients(recon), image_gradients(x)
    edge = ((rx - tx).abs().mean() + (ry - ty).abs().mean()) / 2
    loss = cfg.l1_weight * l1 + cfg.mse_weight * mse + cfg.kl_weight * kl + cfg.edge_weight * edge
    return loss, {"loss": loss.item(), "l1": l1.item(), "mse": mse.item(), "kl": kl.item(), "edge": edge.item()}


def crop_batch(pipe, world, positions: list[int], crop: int, gen: torch.Generator) -> torch.Tensor:
    """Random crops (positions from the step's generator) of the world images at these stream positions."""
    x = vae_pixels(pipe, [world.sample(p).image for p in positions])
    h, w = x.shape[-2:]
    tops = torch.randint(0, h - crop + 1, (len(positions),), generator=gen).tolist()
    lefts = torch.randint(0, w - crop + 1, (len(positions),), generator=gen).tolist()
    return torch.stack([x[i, :, t : t + crop, left : left + crop] for i, (t, left) in enumerate(zip(tops, lefts))])


@torch.no_grad()
def latent_stats(pipe, world, n: int) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of the posterior modes of n world images."""
    vae = pipe.vae
    latents = torch.cat([vae.encode(vae_pixels(pipe, [world.sample(i).image]).to(vae.device)).latent_dist.mode()
                         for i in range(n)])
    flat = latents.transpose(0, 1).reshape(latents.shape[1], -1)
    return flat.mean(1).tolist(), flat.std(1).clamp_min(1e-6).tolist()


@torch.no_grad()
def evaluate(run: Run, pipe) -> dict:
    """PSNR and OCR word accuracy of full-size reconstructions of validation images; a PNG of both rows."""
    cfg, vae = run.cfg, pipe.vae
    world = make_world(cfg, "validation")
    samples = [world.sample(i) for i in range(cfg.eval_samples)]
    originals = [s.image for s in samples]
    recon = [to_uint8(vae.decode(vae.encode(vae_pixels(pipe, [img]).to(vae.device)).latent_dist.mode()).sample)[0]
             for img in originals]
    metrics = {"psnr": sum(psnr(a, b) for a, b in zip(originals, recon)) / len(recon)}
    if cfg.eval_ocr:
        texts = [[t.text for t in s.texts] for s in samples]
        metrics["ocr_word_accuracy_recon"] = ocr_word_accuracy(recon, texts)
        metrics["ocr_word_accuracy_original"] = ocr_word_accuracy(originals, texts)
    save_grid([originals, recon], run.out / "reconstructions.png", ["original", "reconstruction"])
    return metrics


def freeze_encoder(vae) -> None:
    """The encoder side (encoder, quant_conv) keeps its weights: the latent space does not move."""
    for module in (vae.encoder, vae.quant_conv):
        if module is not None:
            module.requires_grad_(False)


def export(run: Run, pipe, ema):
    """Write the model directory with fresh latent statistics (kept as they are when the encoder is frozen) and the
    EMA weights when EMA is on."""
    with with_ema_weights(ema, pipe.vae.parameters()):
        if run.main and run.cfg.train_encoder:
            mean, std = latent_stats(pipe, make_world(run.cfg), run.cfg.stats_samples)
            pipe.vae.register_to_config(latents_mean=mean, latents_std=std)
        return export_model(run, pipe)


def train(cfg: VaeTrainConfig):
    run = start_run("vae", cfg)
    pipe = load_pipeline(cfg)
    world = make_world(cfg)
    if not cfg.train_encoder:
        freeze_encoder(pipe.vae)
    model = VaeWithPosterior(pipe.vae.train())
    opt, sched = make_optimizer(run, model.parameters())
    ema = make_ema(run, model)
    model, opt = run.accelerator.prepare(model, opt)
    resume(run)
    for step, gen in train_steps(run):
        x = crop_batch(pipe, world, run.positions(step), cfg.crop_size, gen).to(run.device)
        loss, parts = vae_loss(model, x, gen, cfg)
        parts["grad_norm"] = optimizer_step(run, loss, opt, sched, model.parameters(), ema)
        finish_step(run, step + 1, parts, lambda: export(run, pipe, ema))
    pipe.vae.eval()
    path = export(run, pipe, ema)
    with with_ema_weights(ema, pipe.vae.parameters()):
        record_metrics(run, evaluate(run, pipe) if run.main else {})
    return path


CONFIG = VaeTrainConfig  # what `glmimage train vae` loads the YAML into


def main(argv: list[str] | None = None) -> int:
    return stage_cli("vae", CONFIG, train, argv)


if __name__ == "__main__":
    sys.exit(main())
