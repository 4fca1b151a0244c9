"""The last step of the recipe: a trained model directory -> the weights shipped in the repo.

Casts the four heavy components to bf16 (or fp16), writes the official layout into `src/glmimage/weights/<name>`
(what `load_model(name)` reads), keeps the training history in glmimage.json, and refuses to write more than the
size budget. The directory is replaced atomically: a failed ship leaves the previous weights in place.
When the planner and decoder stages ran side by side (both from the tokenizer's directory), `--planner` takes the
planner (vision_language_encoder) from the planner stage's directory; its frozen VQ tokenizer must be the same.
Likewise `--vae` takes the VAE of an encoder-frozen VAE run (`vae-decoder-nano.yaml`) run beside the decoder.

    glmimage train ship --model runs/nano/decoder/model [--planner runs/nano/planner/model] --name nano \
        [--top-p 1.0] [--edit-top-p 0.75] [--edit-copy-bias 4] [--edit-keep]

`--top-p` sets the planner's generation config (read by diffusers' pipeline and by ours alike); `--edit-top-p` and
`--edit-copy-bias` write glmimage.json's "edit_sampling", `--edit-keep` its "edit_keep" (KeepConfig defaults),
which only our engine applies, to edits.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import torch

from glmimage.errors import InputError
from glmimage.models.build import read_meta, write_model_dir
from glmimage.models.load import HEAVY_COMPONENTS, WEIGHTS_DIR, load_component, load_model_dir
from glmimage.models.presets import PRESETS

SHIP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
MAX_SHIPPED_BYTES = 40_000_000  # the repo's budget for one shipped model (issue 4: at most 40 MB in all)


def weight_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*.safetensors"))


def take_planner(pipe, planner_dir: Path) -> list[dict]:
    """Put the planner of `planner_dir` into `pipe`; its VQ tokenizer must equal the one the decoder was trained on."""
    planner = load_component(planner_dir, "vision_language_encoder", torch.float32)
    ours, theirs = pipe.vision_language_encoder.model, planner.model
    for part in ("visual", "vqmodel"):
        a, b = getattr(ours, part).state_dict(), getattr(theirs, part).state_dict()
        if any(not torch.equal(a[k], b[k]) for k in a):
            raise InputError(f"{planner_dir} has another VQ tokenizer ({part}) than the decoder's model: its codes "
                             "would not be the ones the decoder was trained on")
    pipe.vision_language_encoder = planner
    pipe.register_modules(vision_language_encoder=planner)
    return read_meta(planner_dir).get("training", [])


def take_vae(pipe, vae_dir: Path) -> list[dict]:
    """Put the VAE of `vae_dir` into `pipe`; only its decoder side may differ (an encoder-frozen VAE run), so the
    latents and their statistics, which the DiT was trained on, stay the same."""
    vae = load_component(vae_dir, "vae", torch.float32)
    ours, theirs = pipe.vae, vae
    for part in ("encoder", "quant_conv"):  # quant_conv is None in VAEs configured without it
        a, b = [m.state_dict() if m is not None else {} for m in (getattr(ours, part), getattr(theirs, part))]
        if a.keys() != b.keys() or any(not torch.equal(a[k], b[k]) for k in a):
            raise InputError(f"{vae_dir} has another VAE encoder ({part}) than the decoder's model: its latents "
                             "would not be the ones the DiT was trained on")
    for key in ("latents_mean", "latents_std"):
        if list(ours.config[key]) != list(theirs.config[key]):
            raise InputError(f"{vae_dir} has other {key} than the decoder's model")
    pipe.vae = vae
    pipe.register_modules(vae=vae)
    return read_meta(vae_dir).get("training", [])


def ship(model_dir: str | Path, name: str, dtype: str = "bf16", dest_root: str | Path = WEIGHTS_DIR,
         max_bytes: int = MAX_SHIPPED_BYTES, planner_dir: str | Path | None = None, top_p: float | None = None,
         edit_top_p: float | None = None, vae_dir: str | Path | None = None, edit_copy_bias: float | None = None,
         edit_keep: bool | None = None) -> Path:
    """`edit_keep`: True writes KeepConfig's defaults as the model's setting, False removes it, None keeps the
    source's."""
    if name not in PRESETS or name == "tiny":
        raise InputError(f"ship names a preset with shipped weights ({', '.join(p for p in PRESETS if p != 'tiny')}),"
                         f" got {name!r}")
    if dtype not in SHIP_DTYPES:
        raise InputError(f"dtype must be one of {sorted(SHIP_DTYPES)}, got {dtype!r}")
    for label, value in (("top_p", top_p), ("edit_top_p", edit_top_p)):
        if value is not None and not 0.0 < value <= 1.0:
            raise InputError(f"{label} must be in (0, 1], got {value}")
    if edit_copy_bias is not None and edit_copy_bias < 0:
        raise InputError(f"edit_copy_bias must be >= 0, got {edit_copy_bias}")
    model_dir = Path(model_dir)
    loaded = load_model_dir(model_dir)
    meta = read_meta(model_dir)
    extra = {k: v for k, v in meta.items() if k not in ("format", "preset", "limits", "default_steps",
                                                         "default_guidance")}
    for source, take in ((planner_dir, take_planner), (vae_dir, take_vae)):
        if source is not None:
            history = take(loaded.pipe, Path(source))
            seen = extra.get("training", [])
            extra["training"] = seen + [record for record in history if record not in seen]
    if top_p is not None:
        loaded.pipe.vision_language_encoder.generation_config.top_p = top_p
    if edit_top_p is not None:
        extra["edit_sampling"] = {**extra.get("edit_sampling", {}), "top_p": edit_top_p}
    if edit_copy_bias is not None:
        extra["edit_sampling"] = {**extra.get("edit_sampling", {}), "copy_bias": edit_copy_bias}
    if edit_keep is not None:
        extra.pop("edit_keep", None)
        if edit_keep:
            extra["edit_keep"] = {}  # KeepConfig's defaults
    for component in HEAVY_COMPONENTS:
        getattr(loaded.pipe, component).to(SHIP_DTYPES[dtype])
    extra["shipped"] = {"from": str(model_dir), "planner_from": str(planner_dir) if planner_dir else None,
                        "vae_from": str(vae_dir) if vae_dir else None, "dtype": dtype}
    dest = Path(dest_root) / name
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    write_model_dir(loaded.pipe, tmp, PRESETS[name], extra_meta=extra)
    size = weight_bytes(tmp)
    if size > max_bytes:
        shutil.rmtree(tmp)
        raise InputError(f"{model_dir} is {size / 1e6:.1f} MB in {dtype}, over the {max_bytes / 1e6:.0f} MB budget")
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    return dest
