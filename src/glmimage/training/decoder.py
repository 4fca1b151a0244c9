"""Stage 4: the decoder (GlmImageTransformer2DModel) and the glyph encoder (T5EncoderModel over bytes) by flow matching.

What the engine's sampler (FlowMatchEulerDiscreteScheduler, engine/decoder.py) expects, step for step:
- x_t = (1 - s) x0 + s * noise, the model predicts the velocity noise - x0 (the shipped model stays
  velocity-parametrised; `loss_space: x0` only changes the loss to ||x_t - s*v_hat - x0||^2, i.e. a s^2 weighting);
- u ~ U[1/T, 1] plays the role of the sampler's unshifted timestep t/T; the noise level is the resolution-shifted
  s = mu / (mu + 1/u - 1) with mu = calculate_shift(image tokens), and the model sees timestep u*T - 1 (the sampler
  passes t - 1 with its unshifted integer t);
- x0 are VAE latents normalised by latents_mean/std; the prior is the tokenizer's target codes upsampled 2x; for
  CFG the prior is dropped (prior_token_drop, together with the references, as the unguided branch runs) with
  probability `prior_drop` and the glyph texts are replaced by "" with probability `glyph_drop`;
- image-to-image: reference latents pass through the DiT at timestep 0 with their own prior codes, writing every
  layer's keys/values to the cache (`write_reference_cache` arithmetic, with gradients when `reference_grad`), and the
  target attends to them through the engine's masked attention processor.
The glyph encoder is trained with the DiT (its embeddings get the decoder's gradient) unless `train_glyph_encoder`
is off. Reported: OCR word accuracy of images decoded from the ground-truth codes of validation samples, and at
every save point the held-out velocity MSE (`loss_heldout`) of the EMA weights on `heldout_samples` validation
designs (fixed noise and noise levels, no drops): the training loss of a cached set keeps falling as the model learns
its designs, this one says whether it learns designs it has not seen.

    glmimage train decoder --config configs/train/decoder-nano.yaml   # init: the tokenizer (or planner) model dir
"""

from __future__ import annotations

import dataclasses
import functools
import sys
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from diffusers.models.transformers.transformer_glm_image import GlmImageKVCache

from glmimage.engine.attention import install_masked_attention
from glmimage.engine.decoder import reference_pass, resolution_shift
from glmimage.engine.glyph_text import extract_glyph_texts
from glmimage.engine.glyphs import glyph_token_rows, pad_batch
from glmimage.engine.plan import upsample_tokens
from glmimage.engine.planner import target_grids
from glmimage.errors import InputError
from glmimage.training.binding import binding_processor, glyph_targets, install_binding_attention
from glmimage.training.checkpoints import resume
from glmimage.training.config import DataConfig, stage_cli
from glmimage.training.data import text_mask
from glmimage.training.encode import StreamData
from glmimage.training.export import export_model, load_pipeline, record_metrics
from glmimage.training.logs import log_scalars
from glmimage.training.optim import make_ema, make_optimizer, optimizer_step, with_ema_weights
from glmimage.training.run import Run, derived_seed, finish_step, start_run, train_steps

LOSS_SPACES = ("velocity", "x0")
GLYPH_MAX_TOKENS = 2048  # the engine's (and the reference pipeline's) max_sequence_length


@dataclass
class DecoderTrainConfig(DataConfig):
    prior_drop: float = 0.1  # CFG: share of rows trained without the plan (and without references)
    glyph_drop: float = 0.1  # CFG: share of rows trained with the glyph embedding of ""
    loss_space: str = "velocity"
    train_glyph_encoder: bool = True
    reference_grad: bool = True  # gradients through the reference pass; False = no-grad cached keys/values
    eval_steps: int = 4  # sampler steps for the final evaluation
    eval_guidance: float = 1.5
    text_loss_weight: float = 1.0  # loss weight of latent cells under the prompt's rendered texts (1 = plain MSE)
    heldout_samples: int = 0  # validation designs of the held-out velocity MSE at each save point (0 = off)
    binding_loss_weight: float = 0.0  # glyph binding (training/binding.py): weight of its cross-entropy; 0 = off
    binding_heads: int = 1  # heads per layer whose glyph attention the binding loss supervises

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.heldout_samples < 0:
            raise InputError(f"heldout_samples must be >= 0, got {self.heldout_samples}")
        if not (0 <= self.prior_drop <= 1 and 0 <= self.glyph_drop <= 1):
            raise InputError("prior_drop and glyph_drop must be in [0, 1]")
        if self.loss_space not in LOSS_SPACES:
            raise InputError(f"loss_space must be one of {LOSS_SPACES}, got {self.loss_space!r}")
        if self.binding_loss_weight < 0 or self.binding_heads < 1:
            raise InputError("binding_loss_weight must be >= 0 and binding_heads >= 1")
        if self.text_loss_weight < 1:
            raise InputError(f"text_loss_weight must be >= 1, got {self.text_loss_weight}")
        if self.eval_steps < 1 or self.eval_guidance < 0:
            raise InputError("eval_steps must be >= 1 and eval_guidance >= 0")


def glyph_embeddings(tokenizer, text_encoder, texts: list[list[str]], device) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, L, D) left-padded glyph embeddings and their (B, L) mask, with gradients: per sample what
    `engine.glyphs.encode_glyph_text` computes (same ids, same odd/even pad rule), all texts in one encoder call."""
    rows, owners = [], []
    for i, sample_texts in enumerate(texts):
        sample_rows = glyph_token_rows(sample_texts, tokenizer, GLYPH_MAX_TOKENS)
        rows += sample_rows
        owners += [i] * len(sample_rows)
    longest = max(len(r) for r in rows)
    mask = torch.tensor([[1] * len(r) + [0] * (longest - len(r)) for r in rows], device=device)
    ids = torch.tensor([r + [tokenizer.pad_token_id] * (longest - len(r)) for r in rows], device=device)
    hidden = text_encoder(input_ids=ids, attention_mask=mask).last_hidden_state  # (R, longest, D)
    owners_t = torch.tensor(owners, device=device)
    per_sample = [hidden[owners_t == i][mask[owners_t == i].bool()].unsqueeze(0) for i in range(len(texts))]
    return pad_batch(per_sample)


def shifted_sigmas(u: torch.Tensor, image_seq_len: int, scheduler_config) -> torch.Tensor:
    """The sampler's noise level for unshifted time u: linear time shift with the resolution-dependent mu."""
    mu = resolution_shift(scheduler_config, image_seq_len)
    return mu / (mu + (1 / u - 1))


def reference_cache(transformer, items: list[dict], grad: bool) -> GlmImageKVCache:
    """Write each row's references (reference j of every row in one batch) to a fresh cache at timestep 0."""
    transformer = unwrap(transformer)
    batch = len(items)
    device, dtype = transformer.device, transformer.dtype
    cache = GlmImageKVCache(num_layers=transformer.config.num_layers)
    cache.set_mode("write")
    with torch.set_grad_enabled(grad and torch.is_grad_enabled()):
        for j in range(len(items[0]["ref_latents"])):
            latents = torch.stack([it["ref_latents"][j] for it in items]).to(device, dtype)
            prior = torch.stack([upsample_tokens(it["ref_codes"][j], *it["ref_grids"][j]) for it in items]).to(device)
            width, height = items[0]["ref_sizes"][j]
            size = torch.tensor([[height, width]] * batch, device=device, dtype=dtype)
            reference_pass(transformer, latents, prior, size, cache)
    cache.set_mode("read")
    return cache


def flow_loss(transformer, text_encoder, tokenizer, items: list[dict], cfg, gen: torch.Generator,
              scheduler_config) -> tuple[torch.Tensor, dict]:
    """Flow-matching loss of one group of items with the same target size and the same reference sizes."""
    base = unwrap(transformer)
    device, dtype, patch = base.device, base.dtype, base.config.patch_size
    batch = len(items)
    width, height = items[0]["size"]
    x0 = torch.stack([it["latent"] for it in items]).to(device, dtype)  # (B, C, H/8, W/8)
    grid, _ = target_grids(height, width)  # the planner's 1/32 grid; upsampled 2x it is the DiT's 1/16 grid
    prior = torch.stack([upsample_tokens(it["codes"], *grid) for it in items]).to(device)  # (B, H/16 * W/16)
    drop_prior = torch.rand(batch, generator=gen) < cfg.prior_drop
    drop_glyph = torch.rand(batch, generator=gen) < cfg.glyph_drop
    texts = [[] if drop else extract_glyph_texts(it["prompt"]) for it, drop in zip(items, drop_glyph.tolist())]
    text, glyph_mask = glyph_embeddings(tokenizer, text_encoder, texts, device)

    noise = torch.randn(x0.shape, generator=gen).to(device, dtype)
    t_min = 1 / scheduler_config["num_train_timesteps"]
    u = t_min + (1 - t_min) * torch.rand(batch, generator=gen)  # the sampler's t / T, before the shift
    sigma = shifted_sigmas(u, (x0.shape[-2] // patch) * (x0.shape[-1] // patch), scheduler_config)
    s = sigma.view(-1, 1, 1, 1).to(device, dtype)
    x_t = (1 - s) * x0 + s * noise

    attention_kwargs, cache = {}, None
    if items[0].get("ref_latents"):
        cache = reference_cache(transformer, items, cfg.reference_grad)
        attention_kwargs = {"reference_rows": torch.arange(batch), "reference_visible": ~drop_prior}
    binder = binding_processor(base) if getattr(cfg, "binding_loss_weight", 0) > 0 else None  # LoRA: none
    if binder is not None:
        dit_grid = (x0.shape[-2] // patch, x0.shape[-1] // patch)
        attention_kwargs["glyph_targets"] = glyph_targets(tokenizer, texts, items, text.shape[1], dit_grid,
                                                          height // dit_grid[0])
        binder.records.clear()
    pixel_size = torch.tensor([[height, width]] * batch, device=device, dtype=dtype)
    pred = transformer(
        hidden_states=x_t, encoder_hidden_states=text.to(dtype), prior_token_id=prior,
        prior_token_drop=drop_prior.to(device)[:, None].expand_as(prior).clone(),
        timestep=(u * scheduler_config["num_train_timesteps"] - 1).to(device), target_size=pixel_size,
        crop_coords=torch.zeros(batch, 2, device=device, dtype=dtype),
        attention_mask=None if bool(glyph_mask.all()) else glyph_mask, attention_kwargs=attention_kwargs or None,
        kv_caches=cache, return_dict=False,
    )[0].float()
    velocity = (noise - x0).float()
    if cfg.loss_space == "velocity":
        error = (pred - velocity) ** 2
    else:
        error = (x_t.float() - s.float() * pred - x0.float()) ** 2
    # the cells under the texts, once: for the weighted loss and the letters' share of the error (user folders have
    # no boxes)
    on_text = text_cells(items, width // x0.shape[-1], device) if any(it.get("text_boxes") for it in items) else None
    loss = weighted_mean(error, text_weights(on_text, cfg.text_loss_weight))
    parts = {"velocity_mse": F.mse_loss(pred, velocity).item()}
    if binder is not None and binder.records:
        binding = torch.stack([r[0] for r in binder.records]).mean()
        loss = loss + cfg.binding_loss_weight * binding
        parts["binding_loss"] = binding.item()
        parts["binding_accuracy"] = torch.stack([r[1] for r in binder.records]).mean().item()
        binder.records.clear()
    if on_text is not None:
        on_text = on_text.expand_as(pred)
        parts["text_sq_error"] = ((pred.detach() - velocity) ** 2 * on_text).sum().item()
        parts["text_values"] = on_text.sum().item()
    return loss, parts


def text_cells(items: list[dict], cell: int, device) -> torch.Tensor:
    """(B, 1, h, w) float mask of the latent cells (`cell` pixels wide) under each item's text boxes."""
    return torch.stack([text_mask(it["text_boxes"], *it["size"], cell) for it in items]).to(device)[:, None].float()


def text_weights(on_text: torch.Tensor | None, weight: float) -> torch.Tensor | None:
    """Loss weights from a `text_cells` mask: `weight` under the texts, 1 elsewhere; None when weight is 1 (or there
    is no text). Text covers a small share of a design, so a plain MSE spends most of the model's gradient on
    backgrounds."""
    if weight == 1 or on_text is None:
        return None
    return 1 + (weight - 1) * on_text


def weighted_mean(error: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    """Mean of a (B, C, h, w) error map under per-cell weights (normalised, so the loss keeps the MSE's scale)."""
    if weights is None:
        return error.mean()
    weights = weights.expand_as(error)
    return (error * weights).sum() / weights.sum()


def unwrap(module):
    return getattr(module, "module", module)


def signature(item: dict) -> tuple:
    return (tuple(item["latent"].shape), tuple(tuple(r.shape) for r in item.get("ref_latents", [])))


def decoder_step_loss(transformer, text_encoder, tokenizer, items: list[dict], cfg, gen, scheduler_config):
    """Items grouped by shape signature (one forward per group); the loss is the batch mean over items."""
    groups: dict[tuple, list[dict]] = {}
    for item in items:
        groups.setdefault(signature(item), []).append(item)
    total, parts, text_sq_error, text_values = 0.0, {"velocity_mse": 0.0}, 0.0, 0.0
    for group in groups.values():
        loss, p = flow_loss(transformer, text_encoder, tokenizer, group, cfg, gen, scheduler_config)
        total = total + loss * len(group) / len(items)
        parts["velocity_mse"] += p["velocity_mse"] * len(group) / len(items)
        for key in ("binding_loss", "binding_accuracy"):  # groups without texts have none
            if key in p:
                parts[key] = parts.get(key, 0.0) + p[key] * len(group) / len(items)
        text_sq_error, text_values = text_sq_error + p.get("text_sq_error", 0.0), text_values + p.get("text_values", 0)
    if text_values:
        parts["text_velocity_mse"] = text_sq_error / text_values  # over the latent cells under the texts
    parts["loss"] = total.item()
    return total, parts


def heldout_items(pipe, cfg) -> list[dict]:
    """The first `heldout_samples` validation designs (words never trained on), encoded as training items."""
    from glmimage.training.data import make_world, world_item
    from glmimage.training.encode import encode_codes, encode_latents

    world = make_world(cfg, "validation")
    items = []
    for i in range(cfg.heldout_samples):
        item = world_item(world, "t2i", i)
        items.append({**encode_codes(pipe, item), "latent": encode_latents(pipe, [item.image])[0]})
    return items


@torch.no_grad()
def heldout_errors(transformer, text_encoder, tokenizer, items: list[dict], cfg, scheduler_config,
                   drop_glyphs: bool = False, drop_prior: bool = False) -> dict[str, float]:
    """Unweighted velocity MSE over `items`, whole ("velocity_mse") and over the cells under their texts
    ("text_velocity_mse"), with the plan and glyphs kept unless dropped (a drop probability of 1 drops every row);
    noise and noise levels come from a fixed seed (not the run's), so two calls (two steps, two runs, with and
    without a condition) compare the same draws."""
    plain = dataclasses.replace(cfg, prior_drop=float(drop_prior), glyph_drop=float(drop_glyphs), text_loss_weight=1.0)
    gen = torch.Generator().manual_seed(derived_seed("heldout"))
    modules = [unwrap(transformer), unwrap(text_encoder)]
    modes = [m.training for m in modules]
    for m in modules:
        m.eval()
    totals = {"velocity_mse": 0.0, "text_velocity_mse": 0.0}
    counts = {"velocity_mse": 0, "text_velocity_mse": 0}
    try:
        for start in range(0, len(items), cfg.batch_size):
            chunk = items[start : start + cfg.batch_size]
            _, parts = decoder_step_loss(modules[0], modules[1], tokenizer, chunk, plain, gen, scheduler_config)
            for key in totals:
                if key in parts:
                    totals[key] += parts[key] * len(chunk)
                    counts[key] += len(chunk)
    finally:
        for m, mode in zip(modules, modes):
            m.train(mode)
    return {key: totals[key] / counts[key] for key in totals if counts[key]}


# The held-out report's conditions: (suffix, drop_glyphs, drop_prior). How much the letters' error grows without the
# glyph embeddings (or the plan) is how much the decoder reads them; one forward pass per condition.
HELDOUT_CONDITIONS = (("", False, False), ("_no_glyphs", True, False), ("_no_plan", False, True))


def heldout_report(transformer, text_encoder, tokenizer, items: list[dict], cfg, scheduler_config) -> dict:
    """heldout_velocity_mse[_no_glyphs|_no_plan] and heldout_text_velocity_mse[...]: the whole image and the letters
    under each condition."""
    report = {}
    for suffix, no_glyphs, no_prior in HELDOUT_CONDITIONS:
        errors = heldout_errors(transformer, text_encoder, tokenizer, items, cfg, scheduler_config,
                                drop_glyphs=no_glyphs, drop_prior=no_prior)
        report.update({f"heldout_{key}{suffix}": value for key, value in errors.items()})
    return report


@torch.no_grad()
def evaluate(run: Run, model_dir: Path) -> dict:
    """Decode validation samples from their ground-truth codes with the engine (loaded from the exported model
    directory), and read them: OCR word accuracy of the decodes next to that of the originals; a PNG of both."""
    from glmimage.engine import Engine, Plan
    from glmimage.training.data import make_world, world_item
    from glmimage.training.encode import encode_codes
    from glmimage.training.metrics import ocr_word_accuracy, save_grid

    cfg = run.cfg
    if cfg.eval_samples <= 0:  # evaluation switched off
        return {}
    engine = Engine.from_pretrained(str(model_dir))
    world = make_world(cfg, "validation")
    items = [world_item(world, "t2i", i) for i in range(cfg.eval_samples)]
    decoded = []
    for item in items:
        codes = encode_codes(engine.pipe, item)
        plan = Plan(prompt=item.prompt, width=item.image.width, height=item.image.height,
                    grid=target_grids(item.image.height, item.image.width)[0], target_tokens=codes["codes"])
        decoded.append(engine.decode(plan, seed=0, steps=cfg.eval_steps, guidance=cfg.eval_guidance).images[0])
    metrics = {}
    if cfg.eval_ocr:
        texts = [item.texts for item in items]
        metrics["ocr_word_accuracy"] = ocr_word_accuracy(decoded, texts)
        metrics["ocr_word_accuracy_original"] = ocr_word_accuracy([it.image for it in items], texts)
    save_grid([[it.image for it in items], decoded], run.out / "samples.png", ["original", "decoded (GT plan)"])
    return metrics


def train(cfg: DecoderTrainConfig) -> Path:
    run = start_run("decoder", cfg)
    pipe = load_pipeline(cfg)
    transformer, text_encoder = pipe.transformer, pipe.text_encoder
    install_masked_attention(transformer)  # correct glyph padding masks and per-row reference visibility
    if cfg.binding_loss_weight > 0:  # the same attention, plus the binding loss's records
        install_binding_attention(transformer, cfg.binding_heads)
    for frozen in (pipe.vae, pipe.vision_language_encoder):
        frozen.requires_grad_(False).eval()
    text_encoder.requires_grad_(cfg.train_glyph_encoder).train(cfg.train_glyph_encoder)
    data = StreamData(run, pipe, latents=True)
    trained = torch.nn.ModuleDict({"transformer": transformer, "text_encoder": text_encoder})
    opt, sched = make_optimizer(run, trained.parameters())
    ema = make_ema(run, trained)
    if cfg.train_glyph_encoder:
        transformer, text_encoder, opt = run.accelerator.prepare(transformer.train(), text_encoder, opt)
    else:
        transformer, opt = run.accelerator.prepare(transformer.train(), opt)
    resume(run)
    scheduler_config = pipe.scheduler.config
    heldout = heldout_items(pipe, cfg)

    def save_point(step: int) -> tuple[Path, dict]:
        """The model directory with the EMA weights and, with held-out designs, their held-out loss (logged; at the
        last step the whole held-out report)."""
        with with_ema_weights(ema, trained.parameters()):
            path = export_model(run, pipe)
            if not heldout:
                return path, {}
            args = (transformer, text_encoder, pipe.tokenizer, heldout, cfg, scheduler_config)
            if step < cfg.steps:
                report = {f"heldout_{k}": v for k, v in heldout_errors(*args).items()}
            else:
                report = heldout_report(*args)
        log_scalars(run, step, {"loss_heldout": report["heldout_velocity_mse"]})
        return path, report

    for step, gen in train_steps(run):
        items = [data.item(p) for p in run.positions(step)]
        loss, parts = decoder_step_loss(transformer, text_encoder, pipe.tokenizer, items, cfg, gen, scheduler_config)
        parts["grad_norm"] = optimizer_step(run, loss, opt, sched, trained.parameters(), ema)
        finish_step(run, step + 1, parts, functools.partial(save_point, step + 1))
    path, metrics = save_point(cfg.steps)
    record_metrics(run, {**metrics, **evaluate(run, path)} if run.main else {})
    return path


CONFIG = DecoderTrainConfig  # what `glmimage train decoder` loads the YAML into


def main(argv: list[str] | None = None) -> int:
    return stage_cli("decoder", CONFIG, train, argv)


if __name__ == "__main__":
    sys.exit(main())
