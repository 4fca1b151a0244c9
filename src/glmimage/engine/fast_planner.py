"""A lean sampling loop for the planner: the same model calls and the same sampling as
`GenerationMixin.generate(do_sample=True)`, without its per-token machinery.

`generate` spends a large share of each token on generic bookkeeping (input preparation, stopping criteria,
cache bookkeeping, output containers). Here each step is: one forward with the KV cache, the processors in the
order `generate` applies them (our code mask first, then temperature, top-k, top-p), softmax, multinomial.
Tokens equal `generate`'s for the same seed (tested); the library path stays available as `planner="library"`.
"""

from __future__ import annotations

import torch
from transformers import LogitsProcessorList, TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

# generation_config fields that add processors we don't replicate: if any is active, use generate().
_UNSUPPORTED = ("repetition_penalty", "no_repeat_ngram_size", "bad_words_ids", "min_p", "typical_p",
                "epsilon_cutoff", "eta_cutoff", "top_h", "encoder_repetition_penalty", "sequence_bias",
                "suppress_tokens", "begin_suppress_tokens", "forced_bos_token_id", "forced_eos_token_id",
                "min_new_tokens", "min_length", "renormalize_logits", "guidance_scale")


def supports_fast_sampling(generation_config) -> bool:
    for name in _UNSUPPORTED:
        value = getattr(generation_config, name, None)
        if value in (None, False, 0, 1.0, []):
            continue
        if name == "min_length" and value == 0:
            continue
        return False
    return bool(generation_config.do_sample)


def sampling_processors(generation_config, leading: list) -> LogitsProcessorList:
    """`leading` (our custom processors) then the warpers, in the order generate() builds them."""
    processors = LogitsProcessorList(leading)
    cfg = generation_config
    if cfg.temperature is not None and cfg.temperature != 1.0:
        processors.append(TemperatureLogitsWarper(cfg.temperature))
    if cfg.top_k is not None and cfg.top_k != 0:
        processors.append(TopKLogitsWarper(top_k=cfg.top_k, min_tokens_to_keep=1))
    if cfg.top_p is not None and cfg.top_p < 1.0:
        processors.append(TopPLogitsWarper(top_p=cfg.top_p, min_tokens_to_keep=1))
    return processors


@torch.no_grad()
def sample_tokens(planner, inputs: dict, num_new: int, processors: LogitsProcessorList) -> torch.Tensor:
    """(1, prompt_len + num_new) ids, sampling from the global RNG as generate() does."""
    from transformers import DynamicCache

    input_ids = inputs["input_ids"]
    cache = DynamicCache(config=planner.config.get_text_config())
    out = planner(**inputs, past_key_values=cache, use_cache=True, logits_to_keep=1)
    attention_mask = inputs.get("attention_mask")
    for _ in range(num_new):
        scores = processors(input_ids, out.logits[:, -1].to(copy=True, dtype=torch.float32))
        next_token = torch.multinomial(torch.softmax(scores, dim=-1), num_samples=1)  # (1, 1)
        input_ids = torch.cat([input_ids, next_token], dim=-1)
        if attention_mask is not None:
            attention_mask = torch.cat([attention_mask, attention_mask.new_ones((1, 1))], dim=-1)
        out = planner(input_ids=next_token, attention_mask=attention_mask, past_key_values=cache, use_cache=True,
                      logits_to_keep=1)
    return input_ids
