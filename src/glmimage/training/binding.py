"""Glyph binding: a training-only loss that teaches the DiT which glyph token to draw where.

`GlmImageTransformer2DModel` gives glyph tokens no rotary position: an image token can find "its" character only by
content, and without help the decoder learns that letters go in a text box but not which ones (it reads its glyph
embeddings for a few percent of the letters' error). The renderer knows each character's box, so for every image
token whose centre lies inside a character's box we know the glyph token it should read. This loss is the
cross-entropy of the first `heads` heads' attention, restricted to the sample's glyph keys, against that token
(TokenCompose-style grounding, per character instead of per object). Restricting the softmax to the glyph keys
teaches *which* glyph without dictating *how much* an image token attends to glyphs at all. The inference
processor, the model classes and the format are unchanged: only training installs `BindingAttnProcessor`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers.models.embeddings import apply_rotary_emb

from glmimage.engine.attention import GlmImageMaskedAttnProcessor
from glmimage.engine.glyphs import glyph_token_rows

IGNORE = -1  # image tokens on no character


def glyph_rows(tokenizer, texts: list[str]) -> list[list[int]]:
    """The token rows the engine and `training.decoder.glyph_embeddings` build for one prompt's glyph texts."""
    return glyph_token_rows(texts, tokenizer)


def char_positions(tokenizer, texts: list[str]) -> list[list[int]]:
    """For each glyph text, the index in the prompt's concatenated glyph sequence of each character's first byte."""
    rows, start, out = glyph_rows(tokenizer, texts), 0, []
    lead = (len(rows) + 1) % 2 if texts else 0
    for text, row in zip(texts, rows):
        out.append([start + lead + len(text[:j].encode()) for j in range(len(text))])
        start += len(row)
    return out


def glyph_targets(tokenizer, texts: list[list[str]], items: list[dict], glyph_len: int, grid: tuple[int, int],
                  cell: int) -> torch.Tensor:
    """(B, h*w) index of the glyph token each image token should read (IGNORE elsewhere).

    `texts[b]` are the glyph texts of row b as encoded (empty when its glyphs were dropped), left-padded to
    `glyph_len` tokens in the batch; `items[b]["texts"]` / `["char_boxes"]` the renderer's texts and character boxes;
    image token (r, c) covers pixels [c*cell, (c+1)*cell) x [r*cell, (r+1)*cell) and is bound by its centre."""
    h, w = grid
    out = torch.full((len(items), h * w), IGNORE, dtype=torch.long)
    centres_x = torch.arange(w) * cell + cell / 2
    centres_y = torch.arange(h) * cell + cell / 2
    for b, (row_texts, item) in enumerate(zip(texts, items)):
        if not row_texts:
            continue
        own = sum(len(r) for r in glyph_rows(tokenizer, row_texts))
        offset = glyph_len - own  # left padding of this row
        unused = list(zip(item.get("texts", []), item.get("char_boxes", [])))
        for text, positions in zip(row_texts, char_positions(tokenizer, row_texts)):
            match = next((k for k, (t, _) in enumerate(unused) if t == text), None)
            if match is None:  # a quoted text the renderer did not draw as such
                continue
            _, boxes = unused.pop(match)
            for char, pos, (x0, y0, x1, y1) in zip(text, positions, boxes):
                if char.isspace():
                    continue
                cols = ((centres_x >= x0) & (centres_x < x1)).nonzero().flatten()
                rows = ((centres_y >= y0) & (centres_y < y1)).nonzero().flatten()
                if len(cols) and len(rows):
                    idx = (rows[:, None] * w + cols[None, :]).flatten()
                    out[b, idx] = offset + pos
    return out


class BindingAttnProcessor(GlmImageMaskedAttnProcessor):
    """The engine's masked processor; with `glyph_targets` it also appends each layer's binding loss and accuracy
    to `self.records` (the forward itself is unchanged)."""

    def __init__(self, heads: int = 1):
        self.heads = heads
        self.records: list[tuple[torch.Tensor, torch.Tensor]] = []

    def __call__(self, attn, hidden_states, encoder_hidden_states, attention_mask=None, image_rotary_emb=None,
                 kv_cache=None, reference_rows=None, reference_visible=None, glyph_targets=None):
        if glyph_targets is not None:
            self.records.append(self.binding(attn, hidden_states, encoder_hidden_states, attention_mask,
                                             image_rotary_emb, glyph_targets))
        return super().__call__(attn, hidden_states, encoder_hidden_states, attention_mask, image_rotary_emb,
                                kv_cache, reference_rows, reference_visible)

    def binding(self, attn, hidden_states, encoder_hidden_states, attention_mask, image_rotary_emb, targets):
        """(loss, accuracy) of the first heads' glyph-restricted attention against the targets: the same
        projections, QK norm and RoPE as the attention itself."""
        dtype = encoder_hidden_states.dtype
        query = attn.to_q(hidden_states).unflatten(2, (attn.heads, -1))[:, :, : self.heads]
        key = attn.to_k(encoder_hidden_states).unflatten(2, (attn.heads, -1))[:, :, : self.heads]
        if attn.norm_q is not None:  # RMS norms over head_dim: a subset of heads normalises alike
            query = attn.norm_q(query).to(dtype=dtype)
        if attn.norm_k is not None:
            key = attn.norm_k(key).to(dtype=dtype)
        if image_rotary_emb is not None:
            query = apply_rotary_emb(query, image_rotary_emb, sequence_dim=1, use_real_unbind_dim=-2)
        scores = torch.einsum("bnhd,blhd->bhnl", query.float(), key.float()) * query.shape[-1] ** -0.5
        if attention_mask is not None:
            scores = scores.masked_fill(~attention_mask.bool()[:, None, None, :], float("-inf"))
        targets = targets.to(scores.device)
        valid = targets != IGNORE
        logp = F.log_softmax(scores, dim=-1)  # (B, heads, N, L)
        picked = logp.gather(-1, targets.clamp(min=0)[:, None, :, None].expand(-1, logp.shape[1], -1, 1))[..., 0]
        weight = valid[:, None, :].expand_as(picked).float()
        picked = picked.masked_fill(weight == 0, 0.0)  # untargeted tokens may point at a masked (-inf) key
        loss = -picked.sum() / weight.sum().clamp(min=1)
        hits = (logp.argmax(-1) == targets[:, None, :]).float()
        accuracy = (hits * weight).sum() / weight.sum().clamp(min=1)
        return loss, accuracy.detach()


def install_binding_attention(transformer, heads: int) -> BindingAttnProcessor:
    """Every block's attention through one `BindingAttnProcessor` (weights untouched); returns it."""
    processor = BindingAttnProcessor(heads)
    for block in transformer.transformer_blocks:
        block.attn1.set_processor(processor)
    return processor


def binding_processor(transformer) -> BindingAttnProcessor | None:
    processor = transformer.transformer_blocks[0].attn1.processor
    return processor if isinstance(processor, BindingAttnProcessor) else None
