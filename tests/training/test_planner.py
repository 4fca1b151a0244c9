"""The planner is trained on exactly what generation computes: teacher-forced logits at every generated position
equal the logits `generate` produces step by step (text-to-image, one reference, several references)."""

from __future__ import annotations

import pytest
import torch
from transformers import LogitsProcessor, LogitsProcessorList

from glmimage.models.build import build_pipeline
from glmimage.models.presets import TINY
from glmimage.training.data import make_world, vq_inputs, world_item
from glmimage.training.encode import encode_codes
from glmimage.training.planner import build_sequence, collate, planner_loss
from glmimage.training.vae import VaeTrainConfig


class ForceTokens(LogitsProcessor):
    """Makes generate emit the given tokens, so its raw logits can be compared with teacher forcing."""

    def __init__(self, tokens: list[int]):
        self.tokens, self.k = tokens, 0

    def __call__(self, input_ids, scores):
        forced = torch.full_like(scores, float("-inf"))
        forced[:, self.tokens[self.k]] = 0
        self.k += 1
        return forced


@pytest.fixture(scope="module")
def pipe():
    return build_pipeline(TINY, seed=3)


@pytest.fixture(scope="module")
def world():
    return make_world(VaeTrainConfig(image_size=128))


def step_by_step_logits(pipe, item, generated: torch.Tensor) -> torch.Tensor:
    """Raw logits of `generate` while it is forced to emit `generated` (the engine's inputs and call)."""
    width, height = item.image.size
    content = [{"type": "image", "image": r} for r in item.references] + [{"type": "text", "text": item.prompt}]
    inputs = pipe.processor.apply_chat_template(
        [[{"role": "user", "content": content}]], tokenize=True, return_dict=True, return_tensors="pt",
        processor_kwargs={"padding": False, "target_h": height, "target_w": width})
    out = pipe.vision_language_encoder.generate(
        **inputs, max_new_tokens=len(generated), do_sample=False, output_logits=True, return_dict_in_generate=True,
        logits_processor=LogitsProcessorList([ForceTokens(generated.tolist())]))
    assert torch.equal(out.sequences[0, inputs["input_ids"].shape[1]:], generated)
    return torch.cat(out.logits)


def greedy_tokens(pipe, item, num_new: int) -> torch.Tensor:
    """The planner's greedy continuation of an item's prompt (the engine's inputs)."""
    width, height = item.image.size
    content = [{"type": "image", "image": r} for r in item.references] + [{"type": "text", "text": item.prompt}]
    inputs = pipe.processor.apply_chat_template(
        [[{"role": "user", "content": content}]], tokenize=True, return_dict=True, return_tensors="pt",
        processor_kwargs={"padding": False, "target_h": height, "target_w": width})
    out = pipe.vision_language_encoder.generate(**inputs, max_new_tokens=num_new, min_new_tokens=num_new,
                                                do_sample=False)
    return out[0, inputs["input_ids"].shape[1]:]


@pytest.mark.parametrize("kind,index,num_refs", [("t2i", 0, 0), ("edit", 0, 1), ("edit", 7, 2)])
def test_teacher_forced_logits_equal_step_by_step_decoding(pipe, world, kind, index, num_refs):
    planner = pipe.vision_language_encoder.eval()
    item = world_item(world, kind, index, TINY.limits)
    assert len(item.references) >= num_refs
    seq = build_sequence(planner, pipe.processor, encode_codes(pipe, item))
    generated = seq.labels[seq.prefill_len - 1 :]
    with torch.no_grad():
        logits = planner(input_ids=seq.input_ids[None], position_ids=seq.position_ids[:, None]).logits[0]
        naive = planner(input_ids=seq.input_ids[None]).logits[0]  # 1-D positions: what a plain LM recipe would do
    teacher = logits[seq.prefill_len - 1 :]
    stepwise = step_by_step_logits(pipe, item, generated)
    assert teacher.shape == stepwise.shape == (len(generated), planner.config.text_config.vision_vocab_size)
    assert torch.allclose(teacher, stepwise, atol=1e-4, rtol=0)
    assert (naive[seq.prefill_len - 1 :] - stepwise).abs().max() > 1e-3  # the check can tell positions apart
    if kind == "t2i":
        assert seq.preview_len == 256 and len(generated) == 256 + 16  # 16x16 preview, then the 4x4 target


def test_batch_loss_ignores_padding_and_prefill(pipe, world):
    planner = pipe.vision_language_encoder.eval()
    items = [encode_codes(pipe, world_item(world, k, i, TINY.limits)) for k, i in (("t2i", 1), ("edit", 2))]
    seqs = [build_sequence(planner, pipe.processor, it) for it in items]
    batch = collate(seqs, pad_id=planner.config.text_config.pad_token_id)
    assert int((batch["labels"] != -100).sum()) == sum(s.input_ids.numel() - s.prefill_len + 1 for s in seqs)
    with torch.no_grad():
        together, _ = planner_loss(planner, batch, "cpu")
        alone = [planner_loss(planner, collate([s], 0), "cpu")[0] for s in seqs]
    weights = torch.tensor([float((s.labels != -100).sum()) for s in seqs])
    assert torch.allclose(together, (torch.stack(alone) * weights).sum() / weights.sum(), atol=1e-5)


def test_vq_inputs_match_the_processor_at_valid_sizes(pipe, world):
    image = world.sample(5).image  # 128x128 -> the processor halves it: 64x64, a 4x4 grid of 16-pixel patches
    ours, grid = vq_inputs(pipe.processor.image_processor, [image], (4, 4))
    theirs = pipe.processor.image_processor(images=[image], return_tensors="pt")
    assert torch.equal(grid, theirs["image_grid_thw"]) and torch.equal(ours, theirs["pixel_values"])


def test_tokenizer_stages_code_as_the_library_does(pipe, world):
    """The tokenizer's one-pass stages (training forward, probes) give the codes of the library's path (vq_codes)."""
    from types import SimpleNamespace

    from glmimage.training.data import vq_codes
    from glmimage.training.tokenizer import tokenizer_stages

    planner = pipe.vision_language_encoder.eval()
    images = [world.sample(i).image for i in range(4)]
    pixel_values, grid = vq_inputs(pipe.processor.image_processor, images, (4, 4))
    parts = SimpleNamespace(visual=planner.model.visual, quant_conv=planner.model.vqmodel.quant_conv,
                            quantize=planner.model.vqmodel.quantize)
    with torch.no_grad():
        codes = tokenizer_stages(parts, pixel_values, grid)[4].view(len(images), -1)
    assert torch.equal(codes, vq_codes(planner, pipe.processor.image_processor, images, (4, 4)))


def test_edit_cell_accuracy_splits_the_token_accuracy_into_kept_and_changed_cells(pipe, world):
    from glmimage.training.planner import edit_cell_accuracy

    planner = pipe.vision_language_encoder.eval()
    item = encode_codes(pipe, world_item(world, "edit", 0, TINY.limits))
    ref = item["ref_codes"][0]
    assert ref.numel() == item["codes"].numel()

    def loss_path_accuracy(it):
        batch = collate([build_sequence(planner, pipe.processor, it)], planner.config.text_config.pad_token_id)
        return planner_loss(planner, batch, planner.device)[1]["token_accuracy"]

    # the planner's own greedy plan: teacher-forced, every cell's top-1 is right (logits and labels aligned)
    edit = world_item(world, "edit", 0, TINY.limits)
    greedy = greedy_tokens(pipe, edit, ref.numel())
    report = edit_cell_accuracy(planner, pipe.processor, [{**item, "codes": greedy}])
    assert [report[k] for k in ("kept_cell_accuracy", "changed_cell_accuracy")
            if report[k] is not None] in ([1.0], [1.0, 1.0])

    copied = {**item, "codes": ref.clone()}  # an edit that keeps every cell
    report = edit_cell_accuracy(planner, pipe.processor, [copied])
    assert report["kept_cell_share"] == 1.0 and report["changed_cell_accuracy"] is None
    assert report["kept_cell_accuracy"] == pytest.approx(loss_path_accuracy(copied))

    half = ref.clone()
    half[::2] = (half[::2] + 1) % planner.config.vq_config.num_embeddings  # every other cell changed
    mixed = {**item, "codes": half}
    report = edit_cell_accuracy(planner, pipe.processor, [mixed])
    kept = (half == ref).float().mean().item()
    assert report["kept_cell_share"] == pytest.approx(kept) and 0 < kept < 1
    overall = kept * report["kept_cell_accuracy"] + (1 - kept) * report["changed_cell_accuracy"]
    assert overall == pytest.approx(loss_path_accuracy(mixed))
