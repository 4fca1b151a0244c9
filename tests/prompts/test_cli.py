"""The `glmimage brief` and `glmimage batch` commands (src/glmimage/cli/brief_cmd.py, batch_cmd.py)."""

import json
from pathlib import Path

import yaml

from glmimage.cli.main import main

EXAMPLES = Path(__file__).parents[2] / "examples"
KIT = str(EXAMPLES / "brand" / "acme.yaml")


def test_brief_compile_prints_the_prompt_and_details(capsys):
    assert main(["brief", "compile", str(EXAMPLES / "briefs" / "cold_brew_poster.yaml"), "--brand", KIT,
                 "--model", "nano"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("A striking poster for the launch of Acme\u2019s new cold brew coffee.")
    assert "texts: ['COLD BREW', 'Acme Coffee, since 1987']  size: 224x320  mode: text-to-image" in err


def test_brief_compile_json_with_template_and_warnings(capsys):
    assert main(["brief", "compile", str(EXAMPLES / "briefs" / "launch_from_template.yaml"), "--brand", KIT,
                 "--library", str(EXAMPLES / "prompt_library"), "--model", "tiny", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["template"] == "launch-poster@2" and data["glyph_texts"] == ["NOW POURING", "2 for 1 on Fridays"]
    assert (data["width"], data["height"]) == (128, 224) and data["mode"] == "text-to-image"


def test_brief_errors_are_one_line_and_exit_2(capsys, tmp_path):
    brief = tmp_path / "b.yaml"
    brief.write_text("subject: free coffee\n")
    assert main(["brief", "compile", str(brief), "--brand", KIT]) == 2
    err = capsys.readouterr().err
    assert err.strip().count("\n") == 0 and "glmimage: error: prompt uses words forbidden by brand" in err


def test_brief_plan_writes_a_brief_that_compiles(capsys, tmp_path):
    out = tmp_path / "planned.yaml"
    assert main(["brief", "plan", 'a square instagram post for Acme saying "HELLO"', "--out", str(out)]) == 0
    spec = yaml.safe_load(out.read_text())
    assert spec["role"] == "social post" and spec["aspect"] == "square" and spec["layout"][0]["text"] == "HELLO"
    assert main(["brief", "compile", str(out), "--brand", KIT]) == 0
    assert '"HELLO"' in capsys.readouterr().out


def test_brief_render_and_qa(capsys):
    assert main(["brief", "render", "launch-poster@1", "--library", str(EXAMPLES / "prompt_library"),
                 "--var", "product=tea", "--var", "headline=HI"]) == 0
    assert capsys.readouterr().out.strip() == (
        'A striking poster for tea. At the top, a large bold headline reading "HI".')
    logo = str(EXAMPLES / "brand" / "acme_logo.png")
    assert main(["brief", "qa", logo, "--brand", KIT, "--ocr-text", "ACME"]) == 0
    assert capsys.readouterr().out.startswith("PASS")
    assert main(["brief", "qa", logo, "--brand", KIT, "--ocr-text", "Free coffee", "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["forbidden_found"] == ["free"]


def test_batch_run_and_resume(capsys, tmp_path, tiny_dir):
    batch = tmp_path / "b.jsonl"
    batch.write_text(json.dumps({"id": "p", "brief": str(EXAMPLES / "briefs" / "cold_brew_photo.yaml"),
                                 "variants": 2, "steps": 2}) + "\n")
    args = ["batch", "run", str(batch), "--out", str(tmp_path / "out"), "--model", str(tiny_dir), "--brand", KIT,
            "--no-progress"]
    assert main(args) == 0
    assert "1 briefs: 2 images made, 0 already done, 1 plans" in capsys.readouterr().out
    assert main(args) == 0
    assert "0 images made, 2 already done, 0 plans" in capsys.readouterr().out
    assert (tmp_path / "out" / "contact_sheet.png").is_file()
    # Policy errors surface as one line, exit 2, before any image is made.
    batch.write_text(json.dumps({"id": "q", "prompt": "Acme tea", "steps": 99}) + "\n")
    assert main([*args[:3], "--out", str(tmp_path / "o2"), "--model", str(tiny_dir)]) == 2
    assert "steps=99 is out of bounds: policy 'default' allows [1, 50]" in capsys.readouterr().err
    assert not (tmp_path / "o2" / "q").exists()
