"""A lean sampling loop for the planner: the same model calls and the same sampling as
`GenerationMixin.generate(do_sample=True)`, without its per-token machinery.

`generate` spends a large share of each token on generic bookkeeping (input preparation, stopping criteria,
cache bookkeeping, output containers). Here each step is: one forward with the KV cache, the processors in the
order `generate` applies them (our code mask first, then temperature, top-k, top-p), softmax, multinomial.
Tokens equal `generate`'s for the same seed (tested); the library path stays available as `planner="library"`.

`CompiledDecodeStep` (opt-in, `EngineOptions(compile=True)`): the decoding steps run the library's language model
and head under `torch.compile` with a static KV cache (fixed shapes: one graph serves every token); the prefill and
the 3-D positions stay the library's. Same tokens within float tolerance (tested). When every processor reads only
the scores (codes mask, temperature, top-k, top-p; a progress tick runs beside), the processors, softmax and the draw
run inside the same graph, so a token is one call (no Python sampling between tokens).

Decoding one token is a chain of one-row matmuls that read every weight once: bound by memory, not arithmetic. Two
things the compiled step does about it, both leaving every value as it was:
- on CPUs the linear weights are stored transposed ((in, out) contiguous, same shape and values): a one-row product
  then reads each weight row in order, about twice as fast on cold weights.
- dynamo checks its guards (which compiled graph fits these inputs) on the first token of each plan only: the other
  tokens pass the same cache, shapes and dtypes, and checking them was a fifth of the step (`unguarded`, entered
  once per plan: entering it per token cost more than the rest of the Python loop).
Measurements: docs/experiments/speed.md.
"""

from __future__ import annotations

import contextlib
from typing import Any

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


# Static caches are sized in multiples of this, so prompts of similar length share one graph. Every token attends over
# the whole cache (masked past its position): 128 rather than 256 gives the bench prompt's nano plan 384 slots
# instead of 512, ~5% faster a plan (docs/experiments/speed.md).
CACHE_BUCKET = 128


class CompiledDecodeStep:
    """One decoding step of a planner (embed -> language model with a static cache -> head), compiled once."""

    def __init__(self, planner):
        self.planner = planner
        if planner.device.type == "cpu":  # measured on CPUs only; GPU matmul libraries take either layout
            store_linear_weights_transposed([planner.model.language_model, planner.lm_head])
        use_packed_gqa_attention(planner)
        # Not frozen: weights stay graph inputs. Frozen for real (engine/inductor.py), this graph failed at run time
        # (an index past the static cache in the cache update), so the planner keeps the unfrozen graph it always ran.
        self.step = torch.compile(self._step, dynamic=False, options={"cpp_wrapper": True})
        self._sampling_steps: dict[tuple, object] = {}  # score processors' settings -> compiled step + draw

    def __call__(self, token: torch.Tensor, position_ids: torch.Tensor, cache):
        return self.step(token, position_ids, cache)

    def sampling_step(self, score_processors: list):
        """A compiled step that also applies `score_processors` (pure functions of the scores, see `split_processors`)
        and draws the next token, (B, 1), as `torch.multinomial` does on the global RNG: inductor's `fallback_random`
        calls the library's own random op, so the draws are generate()'s. One graph per distinct processor settings."""
        key = tuple((type(p).__qualname__, tuple(sorted(vars(p).items()))) for p in score_processors)
        if key not in self._sampling_steps:
            chain = list(score_processors)  # the first processors seen with these settings stand for all alike

            def step_and_draw(token, position_ids, cache):
                scores = self._step(token, position_ids, cache).float()
                for processor in chain:
                    scores = processor(None, scores)
                return draw_one(torch.softmax(scores, dim=-1))

            # apply_gumbel_max_trick would rewrite argmax(p / q) as argmax(logits - log q): equal in exact arithmetic,
            # not in floats, so it is off
            options: dict[str, Any] = {"cpp_wrapper": True, "fallback_random": True, "apply_gumbel_max_trick": False}
            compiled = torch.compile(step_and_draw, dynamic=False, options=options)
            self._sampling_steps[key] = compiled
        return self._sampling_steps[key]

    def _step(self, token: torch.Tensor, position_ids: torch.Tensor, cache) -> torch.Tensor:
        language_model = self.planner.model.language_model
        hidden = language_model(inputs_embeds=language_model.embed_tokens(token), position_ids=position_ids,
                                past_key_values=cache, use_cache=True).last_hidden_state
        return self.planner.lm_head(hidden[:, -1])

    def new_cache(self, length: int):
        from transformers import StaticCache

        size = -(-length // CACHE_BUCKET) * CACHE_BUCKET
        return StaticCache(config=self.planner.config.get_text_config(), max_cache_len=size)

    def decode_positions(self, prompt_len: int, num_new: int, batch: int = 1) -> torch.Tensor:
        """(num_new, 3, B, 1) positions of the generated tokens, as the library's decode branch computes them after
        the prefill (the grid positions of the image tokens it prepared, else counting on from the prompt)."""
        model = self.planner.model
        if model._cached_decode_position_ids is not None:
            if model._prefill_len != prompt_len:
                raise RuntimeError("planner prefill length does not match the prompt")
            positions = model._cached_decode_position_ids[:, :, :num_new]  # (B, 3, N)
        else:
            positions = (torch.arange(num_new, device=self.planner.device) + prompt_len).view(1, 1, -1)
            positions = positions.repeat(batch, 3, 1)
        if positions.shape[-1] < num_new:
            raise RuntimeError(f"the library prepared {positions.shape[-1]} decode positions, {num_new} needed")
        return positions.permute(2, 1, 0).unsqueeze(-1).contiguous()


def draw_one(probs: torch.Tensor) -> torch.Tensor:
    """(B, 1) ids: `torch.multinomial(probs, 1)`'s own one-sample path (argmax of p / q with q ~ Exp(1) drawn from the
    global generator: the same draws, tested equal), without its input checks, which were most of its cost."""
    return torch.argmax(probs / torch.empty_like(probs).exponential_(), dim=-1, keepdim=True)


def unguarded():
    """Dynamo runs the graph that the last guarded call chose without checking its guards again: for the tokens of a
    plan after its first, which pass the same cache object, shapes and dtypes (checking them was a fifth of a step).
    Entering this stance costs more than a token's Python loop, so a plan enters it once, after its first call.
    The stance is process-wide: one plan at a time per process (the engine's lock serialises its own calls)."""
    return torch.compiler.set_stance("default", skip_guard_eval_unsafe=True)


# Warpers that read nothing but the scores; our own processors say so with `scores_only` or `tick_only` (a progress
# tick: reads nothing, changes nothing).
_SCORES_ONLY = (TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper)


def split_processors(processors) -> tuple[list, list] | None:
    """(processors that only transform the scores, progress ticks), or None when any processor reads more (such as
    the ids so far): then sampling stays in Python."""
    scores, ticks = [], []
    for processor in processors:
        if isinstance(processor, _SCORES_ONLY) or getattr(processor, "scores_only", False):
            scores.append(processor)
        elif getattr(processor, "tick_only", False):
            ticks.append(processor)
        else:
            return None
    return scores, ticks


PACKED_SDPA = "glmimage_packed_sdpa"


def packed_gqa_sdpa(module, query, key, value, attention_mask, dropout: float = 0.0, scaling=None, **kwargs):
    """transformers' SDPA attention, except that a one-token query always runs packed per key/value head (the
    library's `pack_gqa`: (B, heads, 1, d) -> (B, kv_heads, groups, d), no copy of the keys/values). The library packs
    only outside torch.compile; inside it repeats each layer's whole static cache to every query head, every token.
    Eager planners pack already, so plans stay the same (tested); the compiled nano plan is ~10% faster for it
    (docs/experiments/speed.md)."""
    from transformers.integrations.sdpa_attention import pack_gqa, sdpa_attention_forward

    groups = getattr(module, "num_key_value_groups", 1)
    shared_mask = attention_mask is None or attention_mask.shape[1] == 1  # one mask for all heads
    if query.shape[2] != 1 or groups == 1 or not shared_mask or kwargs.get("position_bias") is not None:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      **kwargs)
    batch, heads, _, dim = query.shape
    out = torch.nn.functional.scaled_dot_product_attention(pack_gqa(query, groups), key, value,
                                                           attn_mask=attention_mask, dropout_p=dropout, scale=scaling)
    return out.reshape(out.shape[0], heads, 1, dim).transpose(1, 2).contiguous(), None


def use_packed_gqa_attention(planner) -> None:
    """Register `packed_gqa_sdpa` (masks as for "sdpa") and make it the planner's language model's attention."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    text_config = planner.config.get_text_config()
    if text_config._attn_implementation != "sdpa":
        return  # eager or flash attention: leave the model's choice alone
    AttentionInterface.register(PACKED_SDPA, packed_gqa_sdpa)
    AttentionMaskInterface.register(PACKED_SDPA, sdpa_mask)
    text_config._attn_implementation = PACKED_SDPA


def store_linear_weights_transposed(modules: list[torch.nn.Module]) -> None:
    """Keep every nn.Linear weight's shape and values but store it as the transpose of an (in, out) contiguous
    tensor, the layout a one-row `x @ weight.T` reads fastest."""
    for module in modules:
        for layer in module.modules():
            if isinstance(layer, torch.nn.Linear) and layer.weight.is_contiguous():
                layer.weight.data = layer.weight.data.t().contiguous().t()


def _draw(probs: torch.Tensor, generators: list[torch.Generator] | None) -> torch.Tensor:
    """(B, 1) ids: from the global RNG (generate()'s way, one row), or row i from generators[i], which draws what
    the global RNG seeded alike would draw for that row alone."""
    if generators is None:
        return torch.multinomial(probs, num_samples=1)
    rows = [torch.multinomial(probs[i : i + 1], num_samples=1, generator=g) for i, g in enumerate(generators)]
    return torch.cat(rows)


@torch.no_grad()
def sample_tokens(planner, inputs: dict, num_new: int, processors: LogitsProcessorList,
                  compiled: CompiledDecodeStep | None = None,
                  generators: list[torch.Generator] | None = None) -> torch.Tensor:
    """(B, prompt_len + num_new) ids. One prompt samples from the global RNG as generate() does; a left-padded batch
    of prompts needs `generators`, one per row, so that each row draws what it would draw alone."""
    from transformers import DynamicCache

    input_ids = inputs["input_ids"]
    batch, prompt_len = input_ids.shape
    if batch > 1 and (generators is None or len(generators) != batch):
        raise ValueError("a batch of prompts needs one generator per prompt")
    attention_mask = inputs.get("attention_mask")
    if compiled is not None and attention_mask is not None and not bool(attention_mask.all()):
        raise ValueError("the compiled step serves unpadded prompts (it passes no padding mask)")
    if compiled is None:
        cache = DynamicCache(config=planner.config.get_text_config())
    else:
        cache = compiled.new_cache(prompt_len + num_new)
    logits = planner(**inputs, past_key_values=cache, use_cache=True, logits_to_keep=1).logits[:, -1]
    positions = compiled.decode_positions(prompt_len, num_new, batch) if compiled is not None else None
    split = split_processors(processors) if compiled is not None and generators is None else None
    with contextlib.ExitStack() as after_first_call:  # holds `unguarded()` from a plan's second compiled call on
        if split is not None:  # the first token from the prefill's logits as below, every later one inside the graph
            assert compiled is not None and positions is not None  # split is only set for a compiled step
            step_and_draw, ticks = compiled.sampling_step(split[0]), split[1]
            scores = processors(input_ids, logits.to(copy=True, dtype=torch.float32))
            tokens = [_draw(torch.softmax(scores, dim=-1), None)]
            for i in range(1, num_new):
                tokens.append(step_and_draw(tokens[-1], positions[i - 1], cache))
                if i == 1:
                    after_first_call.enter_context(unguarded())
                for tick in ticks:
                    tick(None, None)
            return torch.cat([input_ids, *tokens], dim=-1)
        for i in range(num_new):
            scores = processors(input_ids, logits.to(copy=True, dtype=torch.float32))
            next_token = _draw(torch.softmax(scores, dim=-1), generators)  # (B, 1)
            input_ids = torch.cat([input_ids, next_token], dim=-1)
            if i == num_new - 1:
                break  # the last token needs no forward
            if compiled is not None and positions is not None:  # positions are set exactly when compiled is
                logits = compiled(next_token, positions[i], cache)
                if i == 0:
                    after_first_call.enter_context(unguarded())
                continue
            if attention_mask is not None:
                attention_mask = torch.cat([attention_mask, attention_mask.new_ones((batch, 1))], dim=-1)
            logits = planner(input_ids=next_token, attention_mask=attention_mask, past_key_values=cache,
                             use_cache=True, logits_to_keep=1).logits[:, -1]
        return input_ids
