"""The same recipe under `accelerate launch` with two CPU processes: the decoder stage (text-to-image and edit
batches, two DDP modules) trains, checkpoints every process's state, and resumes under one process."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

from glmimage.training import common, decoder

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "train" / "decoder-tiny.yaml"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_train_checkpoint_and_resume_with_one(tiny_dir, tmp_path):
    out, cache = tmp_path / "run", tmp_path / "cache"
    overrides = ["steps=2", "save_every=2", "eval_samples=1", "eval_ocr=false", f"cache_dir={cache}"]
    accelerate = Path(sys.executable).parent / "accelerate"
    # accelerate's --cpu launcher starts a single process; the torchrun launcher (--multi_gpu) starts N, and
    # Accelerator(cpu=True) joins them in a gloo group on a machine without GPUs.
    cmd = [str(accelerate), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
           "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(free_port()),
           "-m", "glmimage.training.decoder", "--config", str(CONFIG), "--init", str(tiny_dir), "--out", str(out)]
    for item in overrides:
        cmd += ["--set", item]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    done = subprocess.run(cmd, check=False, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]

    checkpoint = common.latest_checkpoint(out)
    state = json.loads((checkpoint / common.STATE_FILE).read_text())
    assert state["step"] == 2 and state["world_size"] == 2 and state["data_position"] == 2 * 2 * 2
    assert {p.name for p in checkpoint.glob("random_states_*.pkl")} == {"random_states_0.pkl", "random_states_1.pkl"}
    assert (out / "model" / "model_index.json").is_file()

    # one process continues the stream where the two stopped
    cfg = common.load_config(decoder.CONFIG, CONFIG, {
        "out": str(out), "init": str(tiny_dir), "steps": 3, "save_every": 3, "resume": True, "eval_samples": 1,
        "eval_ocr": False, "cache_dir": str(cache)})
    decoder.train(cfg)
    state = json.loads((common.latest_checkpoint(out) / common.STATE_FILE).read_text())
    assert state["step"] == 3 and state["world_size"] == 1 and state["data_position"] == 8 + 2
