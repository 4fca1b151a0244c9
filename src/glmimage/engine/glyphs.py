"""Glyph embeddings: the quoted text of each prompt spelled by the ByT5-style encoder.

Per prompt this computes exactly what `GlmImagePipeline._get_glyph_embeds` computes (same tokens, same odd/even
padding rule, same gather of the valid positions), so single prompts agree with the reference. For a batch it also
returns a boolean mask of the real tokens, which the masked attention uses; the reference pads with zeros that the
decoder then attends to.
"""

from __future__ import annotations

import torch


def glyph_token_rows(texts: list[str], tokenizer, max_sequence_length: int = 2048) -> list[list[int]]:
    """The token rows of one prompt's glyph texts ([""] when it quotes nothing), as the reference builds them: one
    pad before every text when the number of texts is even (sic: the length of the list, not of a text)."""
    input_ids = tokenizer(texts or [""], max_length=max_sequence_length, truncation=True).input_ids
    return [[tokenizer.pad_token_id] * ((len(input_ids) + 1) % 2) + ids for ids in input_ids]


@torch.no_grad()
def encode_glyph_text(texts: list[str], tokenizer, text_encoder, max_sequence_length: int = 2048) -> torch.Tensor:
    """(1, L, D) embeddings of the glyph texts of one prompt; [""] when the prompt quotes nothing."""
    device = text_encoder.device
    input_ids = glyph_token_rows(texts, tokenizer, max_sequence_length)
    max_len = max(len(ids) for ids in input_ids)
    mask = torch.tensor([[1] * len(ids) + [0] * (max_len - len(ids)) for ids in input_ids], device=device)
    ids = torch.tensor([ids + [tokenizer.pad_token_id] * (max_len - len(ids)) for ids in input_ids], device=device)
    hidden = text_encoder(ids, attention_mask=mask).last_hidden_state
    return hidden[mask.bool()].unsqueeze(0)


def pad_batch(embeds: list[torch.Tensor], multiple_of: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-pad (1, L_i, D) embeddings to (B, L, D) and return the (B, L) bool mask of real tokens. L is the longest
    L_i rounded up to `multiple_of` (compiled graphs are made per shape: buckets keep their number small)."""
    max_len = -(-max(e.shape[1] for e in embeds) // multiple_of) * multiple_of
    dim, device, dtype = embeds[0].shape[2], embeds[0].device, embeds[0].dtype
    out = torch.zeros(len(embeds), max_len, dim, device=device, dtype=dtype)
    mask = torch.zeros(len(embeds), max_len, dtype=torch.bool, device=device)
    for i, e in enumerate(embeds):
        n = e.shape[1]
        out[i, max_len - n :] = e[0]
        mask[i, max_len - n :] = True
    return out, mask
