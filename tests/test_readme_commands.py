"""The README's main job, `make demo`, writes an image with the default model (quotes in the prompt included)."""

import os
import subprocess
from pathlib import Path

import pytest

from glmimage.defaults import DEFAULT_MODEL
from glmimage.io import read_png_metadata

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow  # installs if needed, then generates with the shipped model in a fresh process
def test_make_demo_writes_a_png_with_its_metadata(tmp_path):
    out = tmp_path / "demo.png"
    prompt = 'A banner "GRAND OPENING" and \'today\''
    env = {**os.environ, "PROMPT": prompt, "OUT": str(out)}
    proc = subprocess.run(["make", "-s", "demo", "PROMPT=" + prompt, "OUT=" + str(out)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    meta = read_png_metadata(out)
    assert meta["prompt"] == prompt and meta["model_id"] == DEFAULT_MODEL
    assert meta["glyph_texts"] == ["today", "GRAND OPENING"]
