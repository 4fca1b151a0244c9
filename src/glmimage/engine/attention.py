"""Attention for the DiT with correct masks: padded glyph tokens and per-row reference visibility.

diffusers' `GlmImageAttnProcessor` turns the boolean padding mask into float 0/1, which SDPA *adds* as a bias, so
padded glyph tokens are not masked (diffusers issue #13587); and its reference cache is shared by every row, so the
guided and unguided passes cannot run in one batch. This processor keeps the library's computation step for step
(same projections, QK norm, RoPE, SDPA call) and changes only what the keys may see:

- `attention_mask` (B, text_len) bool: True = real glyph token;
- `reference_rows` (B,) long: which cached sample's reference keys/values each row reads (cache in "read" mode);
- `reference_visible` (B,) bool: rows that attend to their references (the unguided rows of CFG do not, as in the
  reference pipeline, which runs them with the cache in "skip" mode).
Pass None for either when nothing is hidden: then no mask reaches SDPA and results equal the library's.
"""

from __future__ import annotations

import torch
from diffusers.models.attention_dispatch import dispatch_attention_fn
from diffusers.models.embeddings import apply_rotary_emb
from diffusers.models.transformers.transformer_glm_image import GlmImageLayerKVCache


class GlmImageMaskedAttnProcessor:
    def __call__(
        self,
        attn,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        image_rotary_emb: tuple[torch.Tensor, torch.Tensor] | None = None,
        kv_cache: GlmImageLayerKVCache | None = None,
        reference_rows: torch.Tensor | None = None,
        reference_visible: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        dtype = encoder_hidden_states.dtype
        batch_size, text_len, _ = encoder_hidden_states.shape
        image_len = hidden_states.shape[1]
        hidden_states = torch.cat([encoder_hidden_states, hidden_states], dim=1)

        # 1. QKV projections (B, T, heads, head_dim)
        query = attn.to_q(hidden_states).unflatten(2, (attn.heads, -1))
        key = attn.to_k(hidden_states).unflatten(2, (attn.heads, -1))
        value = attn.to_v(hidden_states).unflatten(2, (attn.heads, -1))

        # 2. QK normalization
        if attn.norm_q is not None:
            query = attn.norm_q(query).to(dtype=dtype)
        if attn.norm_k is not None:
            key = attn.norm_k(key).to(dtype=dtype)

        # 3. RoPE on the image stream only
        if image_rotary_emb is not None:
            query[:, text_len:] = apply_rotary_emb(query[:, text_len:], image_rotary_emb, sequence_dim=1,
                                                   use_real_unbind_dim=-2)
            key[:, text_len:] = apply_rotary_emb(key[:, text_len:], image_rotary_emb, sequence_dim=1,
                                                 use_real_unbind_dim=-2)

        # 4. Reference keys/values: written once at t=0, read by the rows that see them
        ref_len = 0
        if kv_cache is not None and kv_cache.mode == "write":
            kv_cache.store(key, value)
        elif kv_cache is not None and kv_cache.mode == "read" and kv_cache.k_caches:
            cached_k, cached_v = torch.cat(kv_cache.k_caches), torch.cat(kv_cache.v_caches)  # (S, R, heads, hd)
            rows = reference_rows if reference_rows is not None else torch.zeros(batch_size, dtype=torch.long)
            ref_len = cached_k.shape[1]
            key = torch.cat([cached_k[rows.to(cached_k.device)], key], dim=1)
            value = torch.cat([cached_v[rows.to(cached_v.device)], value], dim=1)

        # 5. Boolean key mask (B, 1, 1, K): SDPA treats bool as "may attend", float as an additive bias
        # Callers pass masks only when something is hidden (decided once per batch, so no host sync per layer).
        mask = None
        if attention_mask is not None or (ref_len and reference_visible is not None):
            device = query.device
            parts = []
            if ref_len:
                visible = (reference_visible if reference_visible is not None
                           else torch.ones(batch_size, dtype=torch.bool))
                parts.append(visible.to(device=device, dtype=torch.bool)[:, None].expand(batch_size, ref_len))
            text_mask = attention_mask if attention_mask is not None else torch.ones(batch_size, text_len)
            parts.append(text_mask.to(device=device, dtype=torch.bool))
            parts.append(torch.ones(batch_size, image_len, dtype=torch.bool, device=device))
            mask = torch.cat(parts, dim=1)[:, None, None, :]

        hidden_states = dispatch_attention_fn(
            query, key, value, attn_mask=mask, dropout_p=0.0, is_causal=False,
            backend=getattr(self, "_attention_backend", None), parallel_config=getattr(self, "_parallel_config", None),
        )
        hidden_states = hidden_states.flatten(2, 3).to(query.dtype)

        # 6. Output projection
        hidden_states = attn.to_out[0](hidden_states)
        hidden_states = attn.to_out[1](hidden_states)
        encoder_hidden_states, hidden_states = hidden_states.split([text_len, image_len], dim=1)
        return hidden_states, encoder_hidden_states


def install_masked_attention(transformer) -> None:
    """Replace every block's attention processor with the masked one (weights untouched)."""
    processor = GlmImageMaskedAttnProcessor()
    for block in transformer.transformer_blocks:
        block.attn1.set_processor(processor)
