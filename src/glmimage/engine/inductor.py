"""torch.compile settings for the engine's graphs (inductor on CPUs).

Freezing (weights become constants of the graph: linear weights prepacked for MKL, biases and activations fused into
the kernel after each product) is read by *dynamo* when it traces, to decide whether parameters enter the graph as
constants or as inputs. `torch.compile(..., options={"freezing": True})` sets it only later, for inductor, so with
torch 2.13 that option alone leaves every weight a graph input and nothing is frozen (`tests/engine/test_compile.py`
shows both). `compile_frozen` sets the flag around every call, so tracing sees it too.

`cpp.use_decompose_tanh`: tanh as 2 / (1 + exp(-2x)) - 1 instead of Sleef's tanh. The DiT's feed-forward is
tanh-GELU over 512 x 1024 values per layer, and Sleef's tanh was a large share of each layer: freezing and the
decomposed tanh together made nano's DiT forward ~15% faster. The two formulas differ by float rounding only (a few
1e-8 absolute; the images stay within 1e-5 of eager).

`cpp_wrapper`: the graph's ~150 kernel and library calls are made from generated C++ rather than Python: nano's
30-step decode ~4% faster, for more compiling. Measurements: docs/experiments/speed.md.
"""

from __future__ import annotations

from typing import Any

import torch

FROZEN_OPTIONS: dict[str, Any] = {"freezing": True, "cpp.use_decompose_tanh": True, "cpp_wrapper": True}


def compile_frozen(fn):
    """`torch.compile(fn)` (static shapes) with inductor's freezing really on. Call the result under `torch.no_grad()`:
    freezing applies to inference graphs only."""
    compiled = torch.compile(fn, dynamic=False, options=FROZEN_OPTIONS)

    def call(*args, **kwargs):
        with torch._inductor.config.patch(freezing=True):
            return compiled(*args, **kwargs)

    return call
