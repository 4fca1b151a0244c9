"""`glmimage eval` on ground truth and on a model directory: results.json, summary.md and grids."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from glmimage.cli.main import main


def test_ground_truth_run_writes_every_output(tmp_path, capsys):
    out = tmp_path / "gt"
    assert main(["eval", "--ground-truth", "--n", "2", "--edits", "1", "--out", str(out), "--no-progress"]) == 0
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["word_accuracy"] == 1.0 and line["edit_success"] == 1.0
    results = json.loads((out / "results.json").read_text())
    assert results["meta"]["renderer"] == "ground-truth"
    assert len(results["t2i"]["samples"]) == 2 and len(results["edits"]["samples"]) == 1
    first = results["t2i"]["samples"][0]
    assert first["words"] and first["ocr_lines"] and "objects" in first
    summary = (out / "summary.md").read_text()
    assert "| all | 2 | 1.000 | 1.000" in summary
    grid = Image.open(out / "grid.png").convert("RGB")
    assert grid.width > 256 and Image.open(out / "edit_grid.png").height > 100
    assert grid.crop((4, 4, 260, 260)).getextrema() != ((255, 255), (255, 255), (255, 255))  # the output is drawn


def test_model_directory_is_evaluated(tmp_path, capsys):
    from glmimage.models.build import build_pipeline, write_model_dir
    from glmimage.models.presets import get_preset

    preset = get_preset("tiny")
    model_dir = write_model_dir(build_pipeline(preset), tmp_path / "tiny_model", preset)
    out = tmp_path / "model_eval"
    assert main(["eval", "--model", str(model_dir), "--n", "1", "--edits", "1", "--steps", "2", "--out", str(out),
                 "--no-progress"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["meta"]["steps"] == 2
    sample = results["t2i"]["samples"][0]
    assert 0.0 <= sample["word_accuracy"] <= 1.0 and sample["render_seconds"] > 0
    assert results["edits"]["samples"][0]["psnr_outside"] is not None  # edit 0 is a local text replacement


def test_bad_arguments(tmp_path, capsys):
    assert main(["eval", "--ground-truth", "--n", "0", "--out", str(tmp_path)]) == 2
    assert main(["eval", "--shuffled", "--n", "1", "--edits", "0", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "--n must be >= 1" in err and "--shuffled needs" in err


def test_ground_truth_plans_are_recorded(tmp_path, tiny_dir, capsys):
    out = tmp_path / "decoder_alone"
    assert main(["eval", "--model", str(tiny_dir), "--plans", "ground-truth", "--n", "1", "--edits", "0",
                 "--steps", "1", "--out", str(out), "--no-progress"]) == 0
    assert json.loads((out / "results.json").read_text())["meta"]["plans"] == "ground-truth"
    assert "plans: `ground-truth`" in (out / "summary.md").read_text()
    with pytest.raises(SystemExit) as exited:
        main(["eval", "--model", str(tiny_dir), "--plans", "oracle", "--out", str(out)])
    assert exited.value.code == 2 and "invalid choice: 'oracle'" in capsys.readouterr().err


def test_tesseract_reads_the_word_cards_ground_truth(tmp_path, capsys):
    out = tmp_path / "tess"
    assert main(["eval", "--ground-truth", "--kinds", "word_card", "--split", "test", "--n", "4", "--edits", "0",
                 "--ocr", "tesseract", "--out", str(out), "--no-progress"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["meta"]["ocr"] == "tesseract"
    assert results["t2i"]["summary"]["word_accuracy"] == 1.0
