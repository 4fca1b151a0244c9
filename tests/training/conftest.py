"""Tiny training runs shared by the training tests: each stage's config from configs/train/<stage>-tiny.yaml,
with outputs under pytest's temporary directory; the experiment scripts (scripts/*.py) as modules."""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
from pathlib import Path

import pytest

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "train"
SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


@pytest.fixture(scope="session")
def stage_config(tmp_path_factory):
    """stage_config(stage, name, **overrides): the stage's tiny config, writing under a fresh temp dir."""
    from glmimage.cli.train_cmd import STAGES
    from glmimage.training.common import load_config

    cache = tmp_path_factory.mktemp("cache")

    def make(stage: str, name: str, **overrides):
        config_cls = importlib.import_module(STAGES[stage]).CONFIG
        values = {"out": str(tmp_path_factory.mktemp(name)), "eval_samples": 1, "eval_ocr": False}
        if "cache_dir" in {f.name for f in dataclasses.fields(config_cls)}:
            values["cache_dir"] = str(cache)
        values.update(overrides)
        return load_config(config_cls, CONFIGS / f"{stage}-tiny.yaml", values)

    return make


@pytest.fixture(scope="session")
def script():
    """script(name): scripts/<name>.py loaded as a module (the experiment tools that sit beside the library)."""

    def load(name: str):
        spec = importlib.util.spec_from_file_location(f"glmimage_scripts_{name}", SCRIPTS / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load
