"""The official format is the contract: what we write loads in diffusers; the official layout loads in glmimage."""

import json
import shutil

import pytest
import torch
from diffusers import GlmImagePipeline

from glmimage.engine import Engine
from glmimage.errors import ModelLoadError
from glmimage.models.load import COMPONENTS, load_model


def test_written_directory_has_every_component_and_loads_in_diffusers(tiny_dir):
    index = json.loads((tiny_dir / "model_index.json").read_text())
    assert index["_class_name"] == "GlmImagePipeline"
    for name in COMPONENTS:
        assert (tiny_dir / name).is_dir(), name
    pipe = GlmImagePipeline.from_pretrained(tiny_dir)
    assert type(pipe.vision_language_encoder).__name__ == "GlmImageForConditionalGeneration"
    assert type(pipe.text_encoder).__name__ == "T5EncoderModel"
    assert type(pipe.transformer).__name__ == "GlmImageTransformer2DModel"
    assert type(pipe.processor.image_processor).__name__ == "GlmImageImageProcessorPil"


def _official_like(tiny_dir, tmp_path):
    """Our tiny model re-laid as the zai-org/GLM-Image directory is: bf16 weights, `transformers` library names in
    model_index.json, no glmimage metadata file."""
    path = tmp_path / "official_layout"
    pipe = GlmImagePipeline.from_pretrained(tiny_dir, dtype=torch.bfloat16)
    pipe.save_pretrained(path)
    index = json.loads((path / "model_index.json").read_text())
    index["processor"] = ["transformers", "GlmImageProcessor"]
    index["vision_language_encoder"] = ["transformers", "GlmImageForConditionalGeneration"]
    (path / "model_index.json").write_text(json.dumps(index))
    assert not (path / "glmimage.json").exists()
    return path


def test_official_layout_directory_loads_and_generates(tiny_dir, tmp_path):
    path = _official_like(tiny_dir, tmp_path)
    engine = Engine.from_pretrained(str(path), dtype=torch.bfloat16)
    assert engine.dtype == torch.bfloat16
    # limits come from the processor's pixel bounds when our metadata is absent
    size = engine.pipe.processor.image_processor.size
    assert engine.limits.max_side == int(size["longest_edge"] ** 0.5) // 32 * 32
    result = engine.generate('a card "OK"', width=64, height=64, steps=1, seed=0)
    assert result.images[0].size == (64, 64)


def test_missing_and_corrupt_directories_raise_clear_errors(tiny_dir, tmp_path):
    with pytest.raises(ModelLoadError, match="not found"):
        load_model(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelLoadError, match="no model_index.json"):
        load_model(tmp_path / "empty")
    broken = tmp_path / "broken"
    shutil.copytree(tiny_dir, broken)
    shutil.rmtree(broken / "vae")
    with pytest.raises(ModelLoadError, match="lacks components: vae"):
        load_model(broken)
    corrupt = tmp_path / "corrupt"
    shutil.copytree(tiny_dir, corrupt)
    (corrupt / "transformer" / "diffusion_pytorch_model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ModelLoadError, match="could not load"):
        load_model(corrupt)
    with pytest.raises(ModelLoadError, match="official model is not shipped"):
        load_model("official")
