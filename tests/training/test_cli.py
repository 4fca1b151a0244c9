"""`glmimage train <stage>`: runs a stage from its YAML, and refuses to overwrite a run without --resume."""

from __future__ import annotations

from pathlib import Path

from glmimage.cli.main import main

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "train" / "vae-tiny.yaml"


def test_train_writes_a_model_and_guards_existing_runs(tmp_path, capsys):
    args = ["train", "vae", "--config", str(CONFIG), "--out", str(tmp_path / "vae"),
            "--set", "steps=1", "--set", "save_every=1", "--set", "eval_samples=1"]
    assert main(args) == 0
    assert Path(capsys.readouterr().out.strip().splitlines()[-1]) == tmp_path / "vae" / "model"
    assert (tmp_path / "vae" / "model" / "vae" / "config.json").is_file()
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--resume" in err[0]
    assert main(args + ["--set", "stepz=3"]) == 2
    assert "unknown config keys ['stepz']" in capsys.readouterr().err
