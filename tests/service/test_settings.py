from pathlib import Path

import pytest

from glmimage.service.settings import Settings


def test_reads_environment_with_types_and_standard_names():
    env = {"GLMIMAGE_MODEL": "tiny", "DATABASE_URL": "postgresql+psycopg://db/x", "GLMIMAGE_QUEUE": "rq",
           "GLMIMAGE_BATCH_WAIT_S": "0.5", "GLMIMAGE_OCR": "false", "GLMIMAGE_DEFAULT_QUOTA_IMAGES": "none",
           "GLMIMAGE_DATA_DIR": "/tmp/x"}
    s = Settings.from_env(env)
    assert (s.model, s.database_url, s.queue, s.batch_wait_s, s.ocr) == ("tiny", "postgresql+psycopg://db/x", "rq",
                                                                          0.5, False)
    assert s.default_quota_images is None and s.data_dir == Path("/tmp/x")
    assert s.resolved_database_url == "postgresql+psycopg://db/x"


def test_default_database_is_sqlite_in_data_dir_and_overrides_win():
    s = Settings.from_env({"GLMIMAGE_QUEUE": "rq"}, queue="local", data_dir="/srv/g")
    assert s.queue == "local"
    assert s.resolved_database_url == "sqlite:////srv/g/glmimage.db"


@pytest.mark.parametrize("env, message", [
    ({"GLMIMAGE_QUEUE": "kafka"}, "queue='kafka'"),
    ({"GLMIMAGE_OCR": "maybe"}, "GLMIMAGE_OCR"),
    ({"GLMIMAGE_MAX_PROMPT_CHARS": "0"}, "max_prompt_chars"),
    ({"GLMIMAGE_MAX_PROMPT_CHARS": "5000"}, "max_prompt_chars must be at most 2000"),  # the engine's limit
    ({"GLMIMAGE_MAX_REFERENCE_IMAGES": "5"}, "max_reference_images must be at most 4"),
    ({"GLMIMAGE_HEARTBEAT_S": "900"}, "heartbeat_s"),
])
def test_bad_values_are_refused_with_the_name(env, message):
    with pytest.raises(ValueError, match=message):
        Settings.from_env({"GLMIMAGE_MODEL": "tiny", **env})


def test_engine_device_and_dtype_follow_settings():
    import torch

    from glmimage.service.services import load_engine

    engine = load_engine(Settings(model="tiny", device="auto"))  # no GPU on the CI machine: cpu, float32
    assert engine.device == torch.device("cpu") and engine.dtype == torch.float32
    assert not engine.options.compile
    assert load_engine(Settings.from_env({"GLMIMAGE_MODEL": "tiny", "GLMIMAGE_COMPILE": "true"})).options.compile
    with pytest.raises(ValueError, match="dtype='half'"):
        Settings(model="tiny", dtype="half")
