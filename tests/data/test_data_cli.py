"""`glmimage data preview | export | bench`."""

from __future__ import annotations

import json

from PIL import Image

from glmimage.cli.main import main


def test_preview_writes_a_sheet_with_every_kind_and_edit(tmp_path):
    out = tmp_path / "preview.png"
    assert main(["data", "preview", "--out", str(out), "--per-kind", "1", "--split", "test"]) == 0
    sheet = Image.open(out)
    # 7 kinds two to a row (4 rows) + 8 edit rows, each 192 + captions high
    assert sheet.height > 11 * 192 and sheet.width >= 5 * 192


def test_export_and_bench_print_json(tmp_path, capsys):
    assert main(["data", "export", "--split", "test", "--n", "3", "--out", str(tmp_path), "--no-progress"]) == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed["count"] == 3 and (tmp_path / printed["shards"][0]).is_file()
    assert main(["data", "bench", "--n", "3"]) == 0
    assert json.loads(capsys.readouterr().out)["samples_per_second"] > 0


def test_bad_arguments_are_one_line_errors(tmp_path, capsys):
    assert main(["data", "export", "--n", "0", "--out", str(tmp_path)]) == 2
    assert main(["data", "preview", "--size", "100", "--out", str(tmp_path / "p.png")]) == 2
    err = capsys.readouterr().err
    assert "n must be >= 1" in err and "size must be a multiple of 32" in err
