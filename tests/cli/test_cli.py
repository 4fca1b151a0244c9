import json
import subprocess
import sys

import pytest
from PIL import Image

from glmimage.cli.main import main
from glmimage.io import read_png_metadata


def test_generate_writes_pngs_with_their_metadata(tiny_dir, tmp_path, capsys):
    out = tmp_path / "img.png"
    rc = main(["generate", 'a poster "SALE"', "--model", str(tiny_dir), "--size", "96x64", "--steps", "2",
               "--seed", "3", "-n", "2", "--out", str(out), "--json", "--no-progress"])
    assert rc == 0
    report = json.loads(capsys.readouterr().out)
    paths = [r["path"] for r in report["images"]]
    assert paths == [str(tmp_path / "img_0.png"), str(tmp_path / "img_1.png")]
    meta = read_png_metadata(paths[1])
    assert meta["prompt"] == 'a poster "SALE"' and meta["seed"] == 4 and meta["steps"] == 2
    assert meta["model_id"] == str(tiny_dir) and Image.open(paths[1]).size == (96, 64)
    assert set(report["timings"]) >= {"planner", "decoder", "vae"}


def test_edit_and_info(tiny_dir, tmp_path, capsys):
    ref = tmp_path / "ref.png"
    Image.new("RGB", (64, 64), "red").save(ref)
    out = tmp_path / "edit.png"
    assert main(["edit", "make it blue", "--image", str(ref), "--image", str(ref), "--model", str(tiny_dir),
                 "--steps", "1", "--out", str(out), "--no-progress"]) == 0
    assert read_png_metadata(out)["num_references"] == 2
    capsys.readouterr()
    assert main(["info", "--model", str(tiny_dir), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["classes"]["decoder"] == "GlmImageTransformer2DModel" and info["parameters"]["total"] > 0


def test_memory_modes_give_the_same_picture(tiny_dir, tmp_path):
    import numpy as np

    pictures = []
    for mode in ("kept", "offload", "sequential"):
        out = tmp_path / f"{mode}.png"
        assert main(["generate", 'a tag "$5"', "--model", str(tiny_dir), "--steps", "2", "--seed", "1",
                     "--memory", mode, "--out", str(out), "--no-progress"]) == 0
        pictures.append(np.asarray(Image.open(out)).astype(int))
    assert all(np.abs(p - pictures[0]).max() <= 1 for p in pictures[1:])  # uint8 rounding of 1e-7 differences


@pytest.mark.parametrize("args,message", [
    (["generate", ""], "prompt is empty"),
    (["generate", "x", "--size", "100x64"], "use a multiple of 32 in [128, 512]"),
    (["generate", "x", "--size", "4096x4096"], "out of bounds: policy 'default' allows [64, 2048]"),
    (["generate", "x", "--size", "1024x1024"], "use a multiple of 32 in [128, 512]"),
    (["generate", "x", "--steps", "500"], "steps=500 is out of bounds"),
    (["generate", "x", "--model", "/no/such/model"], "model directory not found"),
    (["generate", "x", "--out", "picture.jpg"], "must end in .png"),
    (["edit", "x", "--image", "/no/such.png"], "file not found"),
])
def test_bad_input_is_one_line_and_exit_2(args, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main([*args, "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("glmimage: error:") and message in err[-1]


def test_a_real_process_exits_2_without_a_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "glmimage.cli.main", "generate", "x", "--size", "100x64"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120, check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == ("glmimage: error: width=100 is not a valid size: "
                                                    "use a multiple of 32 in [128, 512]")
    assert "Traceback" not in proc.stderr


def test_corrupt_and_too_many_references(tmp_path, tiny_dir, capsys):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    assert main(["edit", "x", "--image", str(bad), "--model", str(tiny_dir)]) == 2
    assert "not a readable image" in capsys.readouterr().err
    ok = tmp_path / "ok.png"
    Image.new("RGB", (64, 64)).save(ok)
    assert main(["edit", "x", *[arg for _ in range(5) for arg in ("--image", str(ok))], "--model", str(tiny_dir)]) == 2
    assert "1 to 4 reference images" in capsys.readouterr().err


def test_lora_adapters_change_the_image(tiny_dir, tmp_path, capsys):
    from peft import LoraConfig, get_peft_model

    from glmimage.engine import Engine

    transformer = Engine.from_pretrained(str(tiny_dir)).pipe.transformer
    config = LoraConfig(r=2, target_modules=["to_q", "to_k", "to_v"], init_lora_weights=False)
    get_peft_model(transformer, config).save_pretrained(tmp_path / "adapters" / "decoder")
    args = ["generate", 'a tag "$5"', "--model", str(tiny_dir), "--steps", "2", "--seed", "1", "--no-progress"]
    assert main([*args, "--out", str(tmp_path / "base.png")]) == 0
    assert main([*args, "--out", str(tmp_path / "lora.png"), "--lora", str(tmp_path / "adapters")]) == 0
    base, tuned = Image.open(tmp_path / "base.png"), Image.open(tmp_path / "lora.png")
    assert base.tobytes() != tuned.tobytes()
    assert main([*args, "--out", str(tmp_path / "x.png"), "--lora", str(tmp_path / "none")]) == 2
    assert "no adapters under" in capsys.readouterr().err
