"""Glyph binding: the targets point each image token inside a character's box at that character's glyph token, the
training processor leaves the forward unchanged, and its loss can teach a tiny DiT to bind."""

from __future__ import annotations

import pytest
import torch

from glmimage.engine.attention import install_masked_attention
from glmimage.models.build import build_pipeline
from glmimage.models.presets import TINY
from glmimage.training.binding import (
    IGNORE,
    binding_processor,
    char_positions,
    glyph_rows,
    glyph_targets,
    install_binding_attention,
)
from glmimage.training.decoder import DecoderTrainConfig, decoder_step_loss, glyph_embeddings


@pytest.fixture(scope="module")
def pipe():
    return build_pipeline(TINY, seed=3)


def test_character_positions_follow_the_glyph_sequence(pipe):
    tok = pipe.tokenizer
    for texts in (["SALE"], ["AB", "CDE"], ["one", "two", "x"]):
        sequence = [t for row in glyph_rows(tok, texts) for t in row]
        for text, positions in zip(texts, char_positions(tok, texts)):
            assert [sequence[p] for p in positions] == [tok(c, add_special_tokens=False).input_ids[0] for c in text]


def test_targets_mark_the_tokens_inside_each_character(pipe):
    tok = pipe.tokenizer
    item = {"texts": ["HI"], "char_boxes": [[[32, 16, 64, 48], [64, 16, 96, 48]]]}
    glyph_len = 6  # left padding: the row's own 3 tokens (H, I, </s>) end the sequence
    targets = glyph_targets(tok, [["HI"]], [item], glyph_len, (8, 8), 16).view(8, 8)
    h, i = glyph_len - 3, glyph_len - 2
    assert targets[1:3, 2:4].eq(h).all() and targets[1:3, 4:6].eq(i).all()
    assert (targets != IGNORE).sum() == 8
    dropped = glyph_targets(tok, [[]], [item], glyph_len, (8, 8), 16)
    assert dropped.eq(IGNORE).all()  # rows whose glyphs were dropped bind nothing


def test_the_training_processor_computes_the_same_forward(pipe):
    transformer = pipe.transformer
    gen = torch.Generator().manual_seed(0)
    latents = torch.randn(2, 16, 16, 16, generator=gen)
    text, mask = glyph_embeddings(pipe.tokenizer, pipe.text_encoder, [["AB"], ["CDEF", "G"]], "cpu")
    prior = torch.randint(0, 16, (2, 64), generator=gen)
    kwargs = dict(hidden_states=latents, encoder_hidden_states=text, prior_token_id=prior,
                  prior_token_drop=torch.zeros_like(prior, dtype=torch.bool), timestep=torch.tensor([500.0, 20.0]),
                  target_size=torch.tensor([[128.0, 128.0]] * 2), crop_coords=torch.zeros(2, 2),
                  attention_mask=mask, return_dict=False)
    with torch.no_grad():
        install_masked_attention(transformer)
        plain = transformer(**kwargs)[0]
        processor = install_binding_attention(transformer, heads=1)
        targets = torch.full((2, 64), IGNORE)
        targets[:, 10] = text.shape[1] - 2
        bound = transformer(**kwargs, attention_kwargs={"glyph_targets": targets})[0]
    assert torch.equal(plain, bound)
    assert len(processor.records) == transformer.config.num_layers
    assert all(torch.isfinite(loss) for loss, _ in processor.records)


def test_the_binding_loss_teaches_a_tiny_dit_which_glyph_to_read(pipe):
    """With the binding loss weighted to dominate, 40 steps move the tiny DiT's glyph attention from chance towards
    the right characters."""
    from glmimage.training.data import make_world, world_item
    from glmimage.training.encode import encode_codes, encode_latents

    cfg = DecoderTrainConfig(preset="tiny", image_size=128, world_kinds=("word_card",), glyph_drop=0.0,
                             prior_drop=0.0, binding_loss_weight=10.0, binding_heads=2)
    world = make_world(cfg)
    items = []
    for i in range(4):
        item = world_item(world, "t2i", i)
        items.append({**encode_codes(pipe, item), "latent": encode_latents(pipe, [item.image])[0]})
    install_binding_attention(pipe.transformer, cfg.binding_heads)
    assert binding_processor(pipe.transformer) is not None
    params = [p for m in (pipe.transformer, pipe.text_encoder) for p in m.parameters()]
    opt = torch.optim.Adam(params, lr=3e-3)
    history = []
    for step in range(40):
        loss, parts = decoder_step_loss(pipe.transformer, pipe.text_encoder, pipe.tokenizer, items, cfg,
                                        torch.Generator().manual_seed(step), pipe.scheduler.config)
        opt.zero_grad()
        loss.backward()
        opt.step()
        history.append((parts["binding_loss"], parts["binding_accuracy"]))
    first, last = history[0], history[-1]
    assert last[0] < 0.6 * first[0], history
    assert last[1] > first[1] + 0.3, history
