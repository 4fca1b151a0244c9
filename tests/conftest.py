"""Shared fixtures: the tiny random model, written once per test session in the official layout."""

from __future__ import annotations

import os

import pytest
import torch

# Two pytest workers share two cores: one thread each keeps them from fighting.
torch.set_num_threads(1)
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory):
    from glmimage.models.build import build_pipeline, write_model_dir
    from glmimage.models.presets import TINY

    path = tmp_path_factory.mktemp("models") / "tiny"
    write_model_dir(build_pipeline(TINY, seed=0), path, TINY)
    return path


@pytest.fixture(scope="session")
def tiny_engine(tiny_dir):
    from glmimage.engine import Engine

    return Engine.from_pretrained(str(tiny_dir))


@pytest.fixture(scope="session")
def reference_pipe(tiny_dir):
    from diffusers import GlmImagePipeline

    pipe = GlmImagePipeline.from_pretrained(tiny_dir)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def pytest_configure(config):
    """The controller (not an xdist worker) starts throwaway PostgreSQL and Redis unless their URLs are set; the
    workers, spawned after this, inherit the URLs through the environment."""
    if hasattr(config, "workerinput"):
        return
    from tests.throwaway_services import ThrowawayServices

    config._glmimage_services = ThrowawayServices().start()


def pytest_unconfigure(config):
    services = getattr(config, "_glmimage_services", None)
    if services is not None:
        services.stop()
