"""Stage 3: the AR planner (the GLM text decoder and lm_head of GlmImageForConditionalGeneration), teacher-forced.

Each example is exactly the sequence generation sees: the processor's chat template for the prompt (with reference
images expanded to their VQ codes for image-to-image), `<sop>H W<eop>[<sop>h w<eop>]<bos>`, then the generated part
(text-to-image: preview codes then target codes; image-to-image: target codes). Positions are the library's: the
prefill from `get_rope_index`, the generated part from the decode positions it caches for `generate`
(`_cached_decode_position_ids`), so teacher-forced logits equal step-by-step decoding logits (tested).
Cross-entropy on generated positions only. The vision encoder and VQ stay frozen (trained in stage 2).

    glmimage train planner --config configs/train/planner-nano.yaml   # init: the tokenizer stage's model dir
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image

from glmimage.models.presets import get_preset
from glmimage.training.checkpoints import resume
from glmimage.training.config import DataConfig, stage_cli
from glmimage.training.data import make_world, world_item
from glmimage.training.encode import StreamData, encode_codes
from glmimage.training.export import export_model, export_with_ema, load_pipeline, record_metrics
from glmimage.training.optim import make_ema, make_optimizer, optimizer_step, with_ema_weights
from glmimage.training.run import Run, finish_step, start_run, train_steps

IGNORE = -100


@dataclass
class PlannerTrainConfig(DataConfig):
    """The shared run and data fields are all the planner needs: its recipe has no knobs of its own."""


@dataclass
class PlannerSequence:
    input_ids: torch.Tensor  # (T,) prefill + generated[:-1]
    position_ids: torch.Tensor  # (3, T)
    labels: torch.Tensor  # (T,) the next token at generated positions, IGNORE elsewhere
    prefill_len: int
    preview_len: int  # generated tokens that belong to the preview grid (0 for image-to-image)


def prefill_inputs(processor, prompt: str, width: int, height: int, reference_sizes: list) -> dict:
    """The processor's prefill for a prompt, as the engine builds it. References only need their sizes here:
    their grids fix the token layout, their codes are filled in by the caller."""
    content = [{"type": "image", "image": Image.new("RGB", tuple(size))} for size in reference_sizes]
    content.append({"type": "text", "text": prompt})
    return processor.apply_chat_template(
        [[{"role": "user", "content": content}]], tokenize=True, return_dict=True, return_tensors="pt",
        processor_kwargs={"padding": False, "target_h": height, "target_w": width},
    )


def build_sequence(planner, processor, item: dict) -> PlannerSequence:
    """The teacher-forced sequence of one encoded item (see `encode.encode_codes`)."""
    width, height = item["size"]
    refs = item.get("ref_sizes", [])
    inputs = prefill_inputs(processor, item["prompt"], width, height, refs)
    ids = inputs["input_ids"][0]
    if refs:
        placeholders = ids == planner.config.image_token_id
        ref_codes = torch.cat(item["ref_codes"]).to(ids)
        if int(placeholders.sum()) != ref_codes.numel():
            raise ValueError(f"{int(placeholders.sum())} image placeholders for {ref_codes.numel()} reference codes")
        ids = ids.masked_scatter(placeholders, ref_codes)
    generated = item["codes"] if refs else torch.cat([item["preview"], item["codes"]])
    model = planner.model
    prefill_pos, _ = model.get_rope_index(ids[None], image_grid_thw=inputs["image_grid_thw"],
                                          images_per_sample=inputs["images_per_sample"],
                                          attention_mask=inputs["attention_mask"])
    decode_pos = model._cached_decode_position_ids[0]  # (3, n + 1): what generate uses for token k of the output
    n, length = generated.numel(), ids.numel()
    input_ids = torch.cat([ids, generated[:-1].to(ids)])
    position_ids = torch.cat([prefill_pos[:, 0], decode_pos[:, : n - 1].to(prefill_pos)], dim=1)
    labels = torch.full_like(input_ids, IGNORE)
    labels[length - 1 :] = generated.to(ids)
    return PlannerSequence(input_ids, position_ids, labels, length, 0 if refs else item["preview"].numel())


def collate(sequences: list[PlannerSequence], pad_id: int) -> dict:
    """Right-padded batch (causal attention: padding after the sequence changes nothing before it)."""
    longest = max(s.input_ids.numel() for s in sequences)
    batch = len(sequences)
    input_ids = torch.full((batch, longest), pad_id, dtype=torch.long)
    labels = torch.full((batch, longest), IGNORE, dtype=torch.long)
    attention_mask = torch.zeros((batch, longest), dtype=torch.long)
    position_ids = torch.zeros((3, batch, longest), dtype=torch.long)
    for i, s in enumerate(sequences):
        n = s.input_ids.numel()
        input_ids[i, :n], labels[i, :n], attention_mask[i, :n] = s.input_ids, s.labels, 1
        position_ids[:, i, :n] = s.position_ids
    return {"input_ids": input_ids, "labels": labels, "attention_mask": attention_mask, "position_ids": position_ids}


def planner_logits(model, batch: dict, device) -> torch.Tensor:
    """(B, T, V): logits[:, j] predicts input j+1; labels are already aligned to "the token after j"."""
    return model(input_ids=batch["input_ids"].to(device), attention_mask=batch["attention_mask"].to(device),
                 position_ids=batch["position_ids"].to(device)).logits


def planner_loss(model, batch: dict, device, logits: torch.Tensor | None = None) -> tuple[torch.Tensor, dict]:
    """Cross-entropy and top-1 accuracy on generated positions; `logits`: already computed for this batch."""
    labels = batch["labels"].to(device)
    logits = planner_logits(model, batch, device) if logits is None else logits
    loss = F.cross_entropy(logits.float().flatten(0, 1), labels.flatten(), ignore_index=IGNORE)
    valid = labels != IGNORE
    accuracy = (logits.argmax(-1)[valid] == labels[valid]).float().mean()
    return loss, {"loss": loss.item(), "token_accuracy": accuracy.item()}


def freeze_tokenizer(planner) -> None:
    """Stage 2 owns the vision encoder and VQ: frozen here (and excluded from DDP's gradient sync)."""
    planner.model.visual.requires_grad_(False).eval()
    planner.model.vqmodel.requires_grad_(False).eval()


@torch.no_grad()
def edit_cell_accuracy(planner, processor, items: list[dict], batch: dict | None = None,
                       logits: torch.Tensor | None = None) -> dict:
    """Teacher-forced top-1 accuracy of edit plans, split by cell. Kept cells: the target's code equals the first
    reference's code at the same cell (what the edit leaves alone, where copying is right); changed cells: the rest.
    Edits whose first reference has another grid count as all changed. `batch`/`logits`: the items' collated batch
    and its logits, when already computed."""
    if batch is None:
        batch = collate([build_sequence(planner, processor, it) for it in items],
                        planner.config.text_config.pad_token_id)
    if logits is None:
        logits = planner_logits(planner, batch, planner.device)
    correct, total = {"kept": 0, "changed": 0}, {"kept": 0, "changed": 0}
    for item, row, labels in zip(items, logits, batch["labels"]):
        generated = labels != IGNORE
        right = row[generated.to(row.device)].argmax(-1).cpu() == labels[generated]
        codes, ref = item["codes"].view(-1), item["ref_codes"][0].view(-1)
        kept = codes == ref if ref.numel() == codes.numel() else torch.zeros_like(codes, dtype=torch.bool)
        for name, cells in (("kept", kept), ("changed", ~kept)):
            correct[name] += int(right[cells].sum())
            total[name] += int(cells.sum())
    out = {f"{name}_cell_accuracy": correct[name] / total[name] if total[name] else None for name in total}
    out["kept_cell_share"] = total["kept"] / max(1, total["kept"] + total["changed"])
    return out


@torch.no_grad()
def validation_report(pipe, cfg) -> dict:
    """Teacher-forced loss and top-1 accuracy on validation samples (text-to-image and image-to-image); for edits also
    the accuracy on kept and changed cells (`edit_cell_accuracy`), from the same forward."""
    planner, processor = pipe.vision_language_encoder, pipe.processor
    world, limits = make_world(cfg, "validation"), get_preset(cfg.preset).limits
    metrics = {}
    kinds = ["t2i"] + (["edit"] if cfg.edit_fraction > 0 else [])
    for kind in kinds:
        items = [encode_codes(pipe, world_item(world, kind, i, limits)) for i in range(cfg.eval_samples)]
        batch = collate([build_sequence(planner, processor, it) for it in items],
                        planner.config.text_config.pad_token_id)
        logits = planner_logits(planner, batch, planner.device)
        _, parts = planner_loss(planner, batch, planner.device, logits)
        metrics[f"val_loss_{kind}"], metrics[f"val_token_accuracy_{kind}"] = parts["loss"], parts["token_accuracy"]
        if kind == "edit":
            cells = edit_cell_accuracy(planner, processor, items, batch, logits)
            metrics.update({f"val_{k}_edit": v for k, v in cells.items()})
    metrics["chance_accuracy"] = 1 / planner.config.vq_config.num_embeddings
    return metrics


def evaluate(run: Run, pipe) -> dict:
    return validation_report(pipe, run.cfg)


def train(cfg: PlannerTrainConfig) -> Path:
    run = start_run("planner", cfg)
    pipe = load_pipeline(cfg)
    planner, processor = pipe.vision_language_encoder, pipe.processor
    freeze_tokenizer(planner)
    data = StreamData(run, pipe)
    opt, sched = make_optimizer(run, planner.parameters())
    ema = make_ema(run, planner)
    model, opt = run.accelerator.prepare(planner.train(), opt)
    freeze_tokenizer(planner)
    resume(run)
    pad_id = planner.config.text_config.pad_token_id
    for step, _ in train_steps(run):
        items = [data.item(p) for p in run.positions(step)]
        batch = collate([build_sequence(planner, processor, it) for it in items], pad_id)
        loss, parts = planner_loss(model, batch, run.device)
        parts["grad_norm"] = optimizer_step(run, loss, opt, sched, planner.parameters(), ema)
        finish_step(run, step + 1, parts, lambda: export_with_ema(run, pipe, ema, planner))
    planner.eval()
    with with_ema_weights(ema, planner.parameters()):
        path = export_model(run, pipe)
        record_metrics(run, evaluate(run, pipe) if run.main else {})
    return path


CONFIG = PlannerTrainConfig  # what `glmimage train planner` loads the YAML into


def main(argv: list[str] | None = None) -> int:
    return stage_cli("planner", CONFIG, train, argv)


if __name__ == "__main__":
    sys.exit(main())
