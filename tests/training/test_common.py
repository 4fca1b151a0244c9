"""Shared training set-up: configs, data positions, logs, checkpoints guard."""

from __future__ import annotations

import dataclasses
import importlib
from pathlib import Path

import pytest
import yaml

from glmimage.cli.train_cmd import STAGES
from glmimage.errors import InputError
from glmimage.training import common
from glmimage.training.data import dataset_index, is_edit_position, stream_slot
from glmimage.training.vae import VaeTrainConfig

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "train"


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_every_config_file_loads_and_spells_out_every_value(path):
    stage = max((s for s in STAGES if path.name.startswith(f"{s}-")), key=len)  # grpo-decoder-nano: grpo-decoder
    config_cls = importlib.import_module(STAGES[stage]).CONFIG
    cfg = common.load_config(config_cls, path)
    written = yaml.safe_load(path.read_text())
    assert set(written) == {f.name for f in dataclasses.fields(config_cls)} - {"resume"}  # resume: a CLI flag
    # short runs write into the work tree; runs meant to go on for days keep their checkpoints outside it
    assert cfg.out.startswith("runs/") or cfg.out.startswith(str(Path.home() / "glmimage-runs"))


def test_nano_configs_chain_each_stage_to_the_previous_output():
    out = {s: common.load_config(importlib.import_module(m).CONFIG, CONFIGS / f"{s}-nano.yaml").out
           for s, m in STAGES.items()}
    # planner and decoder both start from the tokenizer's directory and train side by side (ship joins them)
    chain = {"tokenizer": "vae", "planner": "tokenizer", "glyph": "tokenizer", "decoder": "tokenizer",
             "lora": "decoder"}
    assert common.load_config(importlib.import_module(STAGES["vae"]).CONFIG, CONFIGS / "vae-nano.yaml").init is None
    for stage, previous in chain.items():
        cfg = common.load_config(importlib.import_module(STAGES[stage]).CONFIG, CONFIGS / f"{stage}-nano.yaml")
        assert cfg.init == f"{out[previous]}/model" and cfg.preset == "nano"
    # reinforcement learning starts from a complete model (planner and decoder both trained): the shipped one
    for stage in ("grpo-planner", "grpo-decoder"):
        cfg = common.load_config(importlib.import_module(STAGES[stage]).CONFIG, CONFIGS / f"{stage}-nano.yaml")
        assert cfg.init == "src/glmimage/weights/nano" and cfg.preset == "nano"


def test_config_errors_name_the_key_and_what_is_valid():
    with pytest.raises(InputError, match="unknown config keys \\['stepz'\\]"):
        common.load_config(VaeTrainConfig, overrides={"stepz": 3})
    with pytest.raises(InputError, match="image_size must be a multiple of 32"):
        common.load_config(VaeTrainConfig, overrides={"image_size": 100})
    with pytest.raises(InputError, match="crop_size"):
        common.load_config(VaeTrainConfig, overrides={"crop_size": 12})
    assert common.parse_overrides(["steps=20", "init=null", "adam_betas=[0.9, 0.95]"]) == {
        "steps": 20, "init": None, "adam_betas": [0.9, 0.95]}
    with pytest.raises(InputError, match="key=value"):
        common.parse_overrides(["steps"])


def test_exponent_floats_without_a_dot_are_numbers():
    # YAML 1.1 reads `5e-4` as the string '5e-4'; float fields take it as the number
    cfg = common.load_config(VaeTrainConfig, overrides=common.parse_overrides(["lr=5e-4", "kl_weight=1e-6"]))
    assert cfg.lr == 5e-4 and cfg.kl_weight == 1e-6
    with pytest.raises(InputError, match="lr must be a number, got 'fast'"):
        common.load_config(VaeTrainConfig, overrides={"lr": "fast"})


def test_stream_interleaves_dense_sequences_and_processes_read_disjoint_positions():
    slots = [stream_slot(p, 0.25) for p in range(400)]
    edits = [o for k, o in slots if k == "edit"]
    t2i = [o for k, o in slots if k == "t2i"]
    assert edits == list(range(100)) and t2i == list(range(300))
    assert sum(is_edit_position(p, 0.25) for p in range(400)) == 100
    order = [dataset_index(o, 10, seed=1) for o in range(30)]
    assert all(sorted(order[i : i + 10]) == list(range(10)) for i in (0, 10, 20))  # every epoch a permutation
    assert order[:10] != order[10:20] and order == [dataset_index(o, 10, seed=1) for o in range(30)]
    runs = [common.Run("x", VaeTrainConfig(batch_size=3), _FakeAccelerator(r, 2), Path(".")) for r in (0, 1)]
    seen = [p for step in range(4) for run in runs for p in run.positions(step)]
    assert sorted(seen) == list(range(24))


class _FakeAccelerator:
    def __init__(self, rank: int, size: int):
        self.process_index, self.num_processes, self.is_main_process = rank, size, rank == 0


def test_log_is_truncated_on_resume_and_plotted(tmp_path):
    log = tmp_path / "log.csv"
    for step in range(1, 6):
        common.append_log(log, step, {"loss": 1.0 / step, "grad_norm": 0.5})
    common.truncate_log(log, 3)
    assert sorted({s for s, _, _ in common.read_log(log)}) == [1, 2, 3]
    common.plot_losses(log, tmp_path / "loss.png")
    assert (tmp_path / "loss.png").stat().st_size > 1000


def test_a_run_refuses_to_overwrite_checkpoints_without_resume(tmp_path):
    (tmp_path / "checkpoints" / "step-00000002").mkdir(parents=True)
    (tmp_path / "checkpoints" / "step-00000002" / common.STATE_FILE).write_text("{}")
    with pytest.raises(InputError, match="--resume"):
        common.start_run("vae", VaeTrainConfig(out=str(tmp_path)))


def test_same_step_same_randomness():
    a, b = common.seed_step(0, 7, 1), common.seed_step(0, 7, 1)
    import torch

    assert torch.equal(torch.rand(3, generator=a), torch.rand(3, generator=b))
    assert not torch.equal(torch.rand(3, generator=common.seed_step(0, 7, 0)),
                           torch.rand(3, generator=common.seed_step(0, 7, 1)))


def test_common_re_exports_the_names_of_the_set_up_modules():
    """`common` is thin: every name it has is the very object of one of the modules split by concern."""
    from glmimage.training import checkpoints, config, export, logs, optim, run

    modules = (config, run, optim, logs, checkpoints, export)
    assert set(common.__all__) == {n for n in vars(common) if not n.startswith("_") and n != "annotations"}
    for name in common.__all__:
        assert any(getattr(m, name, None) is getattr(common, name) for m in modules), name
