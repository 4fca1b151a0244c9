"""Load a model: a preset name, a glmimage model directory, or a directory in the official zai-org/GLM-Image layout.

Directories load through the library (`GlmImagePipeline.from_pretrained`), so whatever loads in diffusers loads here.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import torch
from diffusers import GlmImagePipeline

from glmimage.errors import ModelLoadError
from glmimage.models.build import build_pipeline, read_meta
from glmimage.models.presets import PRESETS, SizeLimits

# Shipped weights live inside the package so `pip install` carries them.
WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
COMPONENTS = ("tokenizer", "processor", "text_encoder", "vision_language_encoder", "vae", "transformer", "scheduler")


HEAVY_COMPONENTS = ("vision_language_encoder", "text_encoder", "transformer", "vae")


@dataclass
class LoadedModel:
    pipe: GlmImagePipeline  # the library's component container (we call its parts, not its __call__)
    model_id: str
    limits: SizeLimits
    default_steps: int
    default_guidance: float
    path: Path | None = None  # the directory, when the model came from one (needed for sequential loading)
    dtype: torch.dtype = torch.float32
    sequential: bool = False  # heavy components are loaded per stage (load_component) instead of kept
    # Planner sampling for edit plans, over the generation config (glmimage.json "edit_sampling", e.g.
    # {"top_p": 0.75, "copy_bias": 5.0}); empty: edits sample as text-to-image does, as in the reference.
    edit_sampling: dict = field(default_factory=dict)
    # Edits keep the reference where their plan leaves it unchanged (glmimage.json "edit_keep": the fields of
    # engine.keep.KeepConfig, {} for its defaults); None: they don't, as in the reference.
    edit_keep: dict | None = None


def load_component(path: Path, name: str, dtype: torch.dtype) -> torch.nn.Module:
    """One heavy component from a model directory, with the library class model_index.json names."""
    from diffusers import AutoencoderKL, GlmImageTransformer2DModel
    from transformers import GlmImageForConditionalGeneration, T5EncoderModel

    classes = {"vision_language_encoder": GlmImageForConditionalGeneration, "text_encoder": T5EncoderModel,
               "transformer": GlmImageTransformer2DModel, "vae": AutoencoderKL}
    try:
        return classes[name].from_pretrained(path / name, dtype=dtype).eval()
    except Exception as exc:
        first_line = str(exc).splitlines()[0][:300]
        raise ModelLoadError(f"could not load {path / name}: {type(exc).__name__}: {first_line}") from exc


def shipped_weights(name: str) -> Path | None:
    path = WEIGHTS_DIR / name
    return path if (path / "model_index.json").is_file() else None


EDIT_SAMPLING_KEYS = ("temperature", "top_p", "top_k", "copy_bias")


def edit_sampling_from_meta(meta: dict) -> dict:
    sampling = dict(meta.get("edit_sampling") or {})
    unknown = sorted(set(sampling) - set(EDIT_SAMPLING_KEYS))
    if unknown:
        raise ModelLoadError(f"glmimage.json edit_sampling: unknown keys {unknown} (known: {list(EDIT_SAMPLING_KEYS)})")
    return sampling


def edit_keep_from_meta(meta: dict) -> dict | None:
    keep = meta.get("edit_keep")
    if keep is not None and not isinstance(keep, dict):
        raise ModelLoadError(f"glmimage.json edit_keep must be an object of KeepConfig fields, got {keep!r}")
    return keep


def _limits_from_dir(meta: dict, pipe: GlmImagePipeline) -> tuple[SizeLimits, int, float]:
    if meta:
        limits = SizeLimits(**meta["limits"])
        return limits, int(meta.get("default_steps", 50)), float(meta.get("default_guidance", 1.5))
    # An official-layout directory without our metadata: the processor's pixel bounds give the side limits
    # (zai-org/GLM-Image: 512^2..2048^2 pixels -> sides 512..2048), sampling defaults from the model card.
    size = pipe.processor.image_processor.size
    min_side = max(32, round(size["shortest_edge"] ** 0.5) // 32 * 32)
    max_side = round(size["longest_edge"] ** 0.5) // 32 * 32
    default = min(max(1024, min_side), max_side)
    limits = SizeLimits(min_side=min_side, max_side=max_side, default_width=default, default_height=default,
                        min_pixels=size["shortest_edge"], max_pixels=size["longest_edge"])
    return limits, 50, 1.5


def load_model_dir(path: str | Path, dtype: torch.dtype = torch.float32, sequential: bool = False) -> LoadedModel:
    """Load a model directory. `sequential=True` loads only the light parts (tokenizers, processor, scheduler);
    the engine then loads each heavy component when its stage runs and frees it after, so peak memory is the
    largest stage rather than the whole model."""
    path = Path(path)
    if not path.is_dir():
        raise ModelLoadError(f"model directory not found: {path}")
    index = path / "model_index.json"
    if not index.is_file():
        raise ModelLoadError(f"{path} is not a model directory (no model_index.json)")
    try:
        declared = json.loads(index.read_text())
    except json.JSONDecodeError as exc:
        raise ModelLoadError(f"{index} is not valid JSON ({exc})") from None
    missing = [c for c in COMPONENTS if c not in declared or not (path / c).is_dir()]
    if missing:
        raise ModelLoadError(f"{path} lacks components: {', '.join(missing)}")
    try:
        # Library loggers are noisy about dtype casts and unused kwargs; our own errors are what users need.
        logging.getLogger("diffusers").setLevel(logging.ERROR)
        skip = {name: None for name in HEAVY_COMPONENTS} if sequential else {}
        pipe = GlmImagePipeline.from_pretrained(path, dtype=dtype, **skip)
    except Exception as exc:  # the library raises many types for corrupt files; name the directory and the cause
        raise ModelLoadError(f"could not load {path}: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}") from exc
    meta = read_meta(path)
    limits, steps, guidance = _limits_from_dir(meta, pipe)
    return LoadedModel(pipe=pipe, model_id=str(path), limits=limits, default_steps=steps, default_guidance=guidance,
                       path=path, dtype=dtype, sequential=sequential, edit_sampling=edit_sampling_from_meta(meta),
                       edit_keep=edit_keep_from_meta(meta))


def load_model(name_or_path: str | Path, dtype: torch.dtype = torch.float32, sequential: bool = False) -> LoadedModel:
    """A preset name ("tiny": random weights built in memory; "nano": the shipped weights) or a directory."""
    name = str(name_or_path)
    if name in PRESETS:
        if name == "official":
            raise ModelLoadError("the official model is not shipped: pass the path of a zai-org/GLM-Image directory")
        shipped = shipped_weights(name)
        if shipped is not None:
            loaded = load_model_dir(shipped, dtype, sequential)
            loaded.model_id = name
            return loaded
        if name != "tiny":
            raise ModelLoadError(f"no shipped weights for preset {name!r} (expected {WEIGHTS_DIR / name})")
        if sequential:
            raise ModelLoadError("sequential loading reads components from a model directory; the tiny preset is "
                                 "built in memory (write it with glmimage.models.build.write_model_dir first)")
        preset = PRESETS[name]
        pipe = build_pipeline(preset, seed=0, dtype=dtype)
        for component in pipe.components.values():  # freshly built modules are in training mode: dropout on
            if isinstance(component, torch.nn.Module):
                component.eval()
        return LoadedModel(pipe=pipe, model_id=name, limits=preset.limits, default_steps=preset.default_steps,
                           default_guidance=preset.default_guidance, dtype=dtype)
    return load_model_dir(name, dtype, sequential)
