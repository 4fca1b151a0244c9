"""The chain VAE -> tokenizer -> planner / decoder -> LoRA at tiny scale: every stage resumes exactly, writes a
complete model directory that the engine and diffusers load, and touches only its own component."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from glmimage.training import decoder, glyph, lora, planner, tokenizer, vae

STEPS, SAVE_AT = 4, 2
CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "train"


def weights(folder: Path) -> dict[str, torch.Tensor]:
    out = {}
    for f in sorted(folder.glob("*.safetensors")):
        out.update(load_file(f))
    assert out, f"no weights in {folder}"
    return out


def assert_same(a: Path, b: Path) -> None:
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    different = [k for k in wa if not torch.equal(wa[k], wb[k])]
    assert not different, f"{len(different)} tensors differ, e.g. {different[:3]}"


def assert_changed(a: Path, b: Path) -> None:
    wa, wb = weights(a), weights(b)
    assert any(not torch.equal(wa[k], wb[k]) for k in wa)


def train_and_resume(stage_config, stage: str, train, **overrides) -> tuple[Path, Path]:
    """STEPS uninterrupted steps (checkpoints at SAVE_AT and STEPS), and a second run that continues from a copy
    of the SAVE_AT checkpoint to STEPS."""
    full = stage_config(stage, f"{stage}-full", steps=STEPS, save_every=SAVE_AT, **overrides)
    train(full)
    resumed = stage_config(stage, f"{stage}-resumed", steps=STEPS, save_every=SAVE_AT, resume=True, **overrides)
    checkpoint = f"checkpoints/step-{SAVE_AT:08d}"
    shutil.copytree(Path(full.out) / checkpoint, Path(resumed.out) / checkpoint)
    train(resumed)
    # the second run really continued: it logged only the steps after the checkpoint
    logged = {int(line.split(",")[0]) for line in (Path(resumed.out) / "log.csv").read_text().splitlines()[1:]}
    assert logged == set(range(SAVE_AT + 1, STEPS + 1))
    return Path(full.out), Path(resumed.out)


@pytest.fixture(scope="module")
def vae_runs(stage_config):
    return train_and_resume(stage_config, "vae", vae.train)


@pytest.fixture(scope="module")
def tokenizer_runs(stage_config, vae_runs):
    return train_and_resume(stage_config, "tokenizer", tokenizer.train, init=str(vae_runs[0] / "model"))


@pytest.fixture(scope="module")
def planner_runs(stage_config, tokenizer_runs):
    return train_and_resume(stage_config, "planner", planner.train, init=str(tokenizer_runs[0] / "model"))


@pytest.fixture(scope="module")
def decoder_runs(stage_config, tokenizer_runs):
    return train_and_resume(stage_config, "decoder", decoder.train, init=str(tokenizer_runs[0] / "model"))


def test_vae_resumes_exactly_and_writes_latent_statistics(vae_runs, tiny_dir):
    full, resumed = vae_runs
    assert_same(full / "model" / "vae", resumed / "model" / "vae")
    assert_changed(tiny_dir / "vae", full / "model" / "vae")
    config = json.loads((full / "model" / "vae" / "config.json").read_text())
    assert len(config["latents_mean"]) == 16 and config["latents_mean"] != [0.0] * 16
    assert all(s > 0 for s in config["latents_std"]) and config["latents_std"] != [1.0] * 16
    # the other components are the preset's fresh weights (init: null builds them with the same seed)
    assert_same(tiny_dir / "transformer", full / "model" / "transformer")
    metrics = json.loads((full / "metrics.json").read_text())
    assert metrics["psnr"] > 0
    assert (full / "loss.png").stat().st_size > 0 and (full / "reconstructions.png").is_file()


def test_vae_with_frozen_encoder_keeps_the_latent_space(stage_config, vae_runs):
    start = vae_runs[0] / "model"
    cfg = stage_config("vae", "vae-decoder-only", steps=2, save_every=2, init=str(start), train_encoder=False)
    out = Path(vae.train(cfg))
    before, after = weights(start / "vae"), weights(out / "vae")
    encoder_side = [k for k in before if k.startswith(("encoder.", "quant_conv."))]
    decoder_side = [k for k in before if k.startswith(("decoder.", "post_quant_conv."))]
    assert encoder_side and decoder_side
    assert all(torch.equal(before[k], after[k]) for k in encoder_side)
    assert any(not torch.equal(before[k], after[k]) for k in decoder_side)
    config = lambda d: json.loads((d / "vae" / "config.json").read_text())  # noqa: E731
    assert config(out)["latents_mean"] == config(start)["latents_mean"]
    assert config(out)["latents_std"] == config(start)["latents_std"]


def test_tokenizer_resumes_exactly_and_reports_codebook(tokenizer_runs, vae_runs):
    full, resumed = tokenizer_runs
    assert_same(full / "model" / "vision_language_encoder", resumed / "model" / "vision_language_encoder")
    assert_changed(vae_runs[0] / "model" / "vision_language_encoder", full / "model" / "vision_language_encoder")
    assert_same(vae_runs[0] / "model" / "vae", full / "model" / "vae")
    metrics = json.loads((full / "metrics.json").read_text())
    assert 0 < metrics["codebook_usage"] <= 1 and metrics["perplexity"] >= 1
    assert "psnr_from_tokens" in metrics and (full / "aux_head.safetensors").is_file()
    history = json.loads((full / "model" / "glmimage.json").read_text())["training"]
    assert [r["stage"] for r in history] == ["vae", "tokenizer"] and history[-1]["metrics"] == metrics


def test_semantic_tokenizer_resumes_exactly_and_reports_its_code_probe(stage_config, tokenizer_runs, vae_runs,
                                                                        script):
    """The per-cell shape/colour loss joins the trained loss (logged apart; the plain run's latent MSE is the same at
    step 1), training still resumes exactly, and the report carries the code probe."""
    from glmimage.training.data import make_world

    full, resumed = train_and_resume(stage_config, "tokenizer", tokenizer.train, init=str(vae_runs[0] / "model"),
                                     semantic_weight=1.0, object_label_weight=10.0, semantic_codebook=True,
                                     probe_samples=12)
    assert_same(full / "model" / "vision_language_encoder", resumed / "model" / "vision_language_encoder")
    rows = [line.split(",") for line in (full / "log.csv").read_text().splitlines()[1:]]
    first = {name: float(value) for step, name, value, _ in rows if step == "1"}
    plain = {name: float(value) for step, name, value, _ in
             (line.split(",") for line in (tokenizer_runs[0] / "log.csv").read_text().splitlines()[1:]) if step == "1"}
    # equal whatever ran before in the process (latent caches built or read, other stages): the heads are seeded,
    # not left to the global RNG (before that was fixed this failed in the full file and passed alone)
    assert first["recon"] == pytest.approx(plain["recon"], rel=1e-5)
    assert first["shape_ce"] > 0 and first["colour_ce"] > 0
    assert first["loss"] == pytest.approx(first["recon"] + first["vq"] + first["shape_ce"] + first["colour_ce"],
                                          rel=1e-4)
    metrics = json.loads((full / "metrics.json").read_text())
    for name in ("class", "colour"):
        assert 0 <= metrics[f"probe_{name}_accuracy"] <= 1 and 0 <= metrics[f"probe_{name}_baseline"] <= 1
    world = make_world(tokenizer.TokenizerTrainConfig(image_size=128), "validation")
    assert metrics["probe_objects"] == sum(len(world.sample(i).objects) for i in range(12)) > 0
    for stage in ("vit", "prequant", "quantized"):
        assert 0 <= metrics[f"probe_class_linear_{stage}"] <= 1
    assert "probe_class_accuracy" not in json.loads((tokenizer_runs[0] / "metrics.json").read_text())
    # scripts/tokenizer_probe.py: the same probe of the exported directory
    cfg = stage_config("tokenizer", "tokenizer-probe", probe_samples=12)
    probe = script("tokenizer_probe").model_tokenizer_probe(full / "model", cfg)
    assert probe and probe == pytest.approx({name: metrics[name] for name in probe}, rel=1e-4)
    # --characters: which letter fills each text cell of word cards
    cfg = stage_config("tokenizer", "tokenizer-char-probe", probe_samples=8, world_kinds=["word_card"])
    chars = script("tokenizer_probe").model_tokenizer_probe(full / "model", cfg, characters=True)
    assert chars["probe_char_cells"] >= 8 and 0 <= chars["probe_char_accuracy"] <= chars["probe_char_accuracy_caseless"]
    assert all(0 <= chars[f"probe_char_linear_{stage}"] <= 1 for stage in ("vit", "prequant", "quantized"))


def test_planner_resumes_exactly_and_keeps_the_tokenizer(planner_runs, tokenizer_runs, stage_config, script):
    full, resumed = planner_runs
    assert_same(full / "model" / "vision_language_encoder", resumed / "model" / "vision_language_encoder")
    before = weights(tokenizer_runs[0] / "model" / "vision_language_encoder")
    after = weights(full / "model" / "vision_language_encoder")
    tower = [k for k in before if ".visual." in k or ".vqmodel." in k]
    assert tower and all(torch.equal(before[k], after[k]) for k in tower)
    assert any(not torch.equal(before[k], after[k]) for k in before if "language_model" in k)
    metrics = json.loads((full / "metrics.json").read_text())
    assert {"val_loss_t2i", "val_loss_edit", "val_token_accuracy_t2i", "val_kept_cell_accuracy_edit",
            "val_changed_cell_accuracy_edit", "val_kept_cell_share_edit"} <= metrics.keys()
    # scripts/planner_report.py measures the exported directory as the run measured its weights
    report = script("planner_report").model_planner_report(full / "model", stage_config("planner", "planner-report"))
    assert report == pytest.approx({name: metrics[name] for name in report}, rel=1e-4)


def test_decoder_resumes_exactly_and_its_model_generates(decoder_runs, tokenizer_runs):
    from diffusers import GlmImagePipeline

    from glmimage.engine import Engine

    full, resumed = decoder_runs
    for part in ("transformer", "text_encoder"):
        assert_same(full / "model" / part, resumed / "model" / part)
        assert_changed(tokenizer_runs[0] / "model" / part, full / "model" / part)
    assert_same(tokenizer_runs[0] / "model" / "vision_language_encoder", full / "model" / "vision_language_encoder")
    engine = Engine.from_pretrained(str(full / "model"))
    result = engine.generate('a poster "SALE"', width=128, height=128, steps=2, seed=0)
    assert result.images[0].size == (128, 128)
    assert isinstance(GlmImagePipeline.from_pretrained(full / "model"), GlmImagePipeline)


def test_decoder_logs_the_held_out_loss_of_the_weights_it_exports(stage_config, decoder_runs, script, capsys):
    """At each save point the EMA weights' velocity MSE on validation designs is logged; the final one is in
    metrics.json and is what the exported directory measures on its own (same designs, same fixed draws), with
    scripts/decoder_heldout_report.py."""
    full = decoder_runs[0]
    rows = [line.split(",") for line in (full / "log.csv").read_text().splitlines()[1:]]
    heldout = {int(step): float(value) for step, name, value, _ in rows if name == "loss_heldout"}
    assert sorted(heldout) == [SAVE_AT, STEPS] and all(v > 0 for v in heldout.values())
    metrics = json.loads((full / "metrics.json").read_text())
    assert metrics["heldout_velocity_mse"] == pytest.approx(heldout[STEPS], rel=1e-5)
    cfg = stage_config("decoder", "decoder-heldout")
    assert cfg.heldout_samples > 0
    heldout_script = script("decoder_heldout_report")
    report = heldout_script.model_heldout_report(full / "model", cfg)
    names = {f"heldout_{key}{suffix}" for suffix, *_ in decoder.HELDOUT_CONDITIONS
             for key in ("velocity_mse", "text_velocity_mse")}
    assert report.keys() == names <= metrics.keys()
    for name, value in report.items():
        assert value == pytest.approx(metrics[name], rel=1e-4), name
    # fixed draws: the same numbers twice (here from the script's command line, same tiny config)
    capsys.readouterr()
    assert heldout_script.main([str(full / "model"), "--config", str(CONFIGS / "decoder-tiny.yaml")]) == 0
    assert json.loads(capsys.readouterr().out) == {"model": str(full / "model"), **report}
    # the conditions really are dropped: the letters' error moves without glyphs and without the plan
    with_all = report["heldout_text_velocity_mse"]
    assert report["heldout_text_velocity_mse_no_glyphs"] != pytest.approx(with_all, rel=1e-6)
    assert report["heldout_text_velocity_mse_no_plan"] != pytest.approx(with_all, rel=1e-6)


def test_text_weighted_decoder_loss_changes_the_loss_and_nothing_else(stage_config, decoder_runs, tokenizer_runs):
    """Same data, noise and weights at step 1: the unweighted velocity MSE is the plain run's, the trained loss is
    not (text cells count 4x), and training still resumes exactly."""
    full, resumed = train_and_resume(stage_config, "decoder", decoder.train, text_loss_weight=4.0,
                                     init=str(tokenizer_runs[0] / "model"))
    assert_same(full / "model" / "transformer", resumed / "model" / "transformer")

    def first_row(run: Path) -> dict:  # log.csv rows: step,name,value,time
        rows = [line.split(",") for line in (run / "log.csv").read_text().splitlines()[1:]]
        return {name: float(value) for step, name, value, _ in rows if step == "1"}

    plain, weighted = first_row(decoder_runs[0]), first_row(full)
    assert weighted["velocity_mse"] == pytest.approx(plain["velocity_mse"], rel=1e-5)
    assert weighted["loss"] != pytest.approx(plain["loss"], rel=1e-3)
    assert_changed(decoder_runs[0] / "model" / "transformer", full / "model" / "transformer")

def test_decoder_with_the_binding_loss_on_word_cards_resumes_exactly_and_logs_it(stage_config, tokenizer_runs):
    """The glyph binding loss trains through the stage (resuming exactly), is logged with its accuracy and the
    step's throughput, and leaves a model directory the reference pipeline loads with its own processor."""
    from diffusers import GlmImagePipeline
    from diffusers.models.transformers.transformer_glm_image import GlmImageAttnProcessor

    full, resumed = train_and_resume(stage_config, "decoder", decoder.train, binding_loss_weight=0.5,
                                     world_kinds=("word_card", "poster"), init=str(tokenizer_runs[0] / "model"))
    assert_same(full / "model" / "transformer", resumed / "model" / "transformer")
    rows = [line.split(",") for line in (full / "log.csv").read_text().splitlines()[1:]]
    names = {name for _, name, _, _ in rows}
    assert {"binding_loss", "binding_accuracy", "samples_per_s"} <= names
    assert all(float(v) > 0 for _, name, v, _ in rows if name in ("binding_loss", "samples_per_s"))
    pipe = GlmImagePipeline.from_pretrained(full / "model")
    assert all(isinstance(b.attn1.processor, GlmImageAttnProcessor) for b in pipe.transformer.transformer_blocks)


def test_decoder_with_evaluation_off_trains_and_reports_no_decodes(stage_config, tokenizer_runs):
    cfg = stage_config("decoder", "decoder-no-eval", steps=1, save_every=1, init=str(tokenizer_runs[0] / "model"),
                       eval_samples=0)
    decoder.train(cfg)
    run = Path(cfg.out)
    assert (run / "model" / "model_index.json").is_file() and not (run / "samples.png").exists()
    assert "ocr_word_accuracy" not in json.loads((run / "metrics.json").read_text())


def test_glyph_alignment_resumes_exactly_and_changes_only_the_glyph_encoder(stage_config, tiny_dir):
    full, resumed = train_and_resume(stage_config, "glyph", glyph.train, init=str(tiny_dir))
    assert_same(full / "model" / "text_encoder", resumed / "model" / "text_encoder")
    assert_changed(tiny_dir / "text_encoder", full / "model" / "text_encoder")
    for part in ("transformer", "vae", "vision_language_encoder"):
        assert_same(tiny_dir / part, full / "model" / part)
    metrics = json.loads((full / "metrics.json").read_text())
    assert 0 <= metrics["retrieval_top1"] <= 1 and 0 <= metrics["variant_accuracy"] <= 1
    assert metrics["eval_strings"] == 2 and (full / "strings.png").is_file()  # eval_samples: 1 word + its variant

    probe = stage_config("glyph", "glyph-probe", steps=2, save_every=2, init=str(tiny_dir), train_text_encoder=False)
    glyph.train(probe)
    assert_same(tiny_dir / "text_encoder", Path(probe.out) / "model" / "text_encoder")  # the baseline: heads only


def test_a_stage_keeps_the_init_models_run_settings(stage_config, tiny_dir, tmp_path):
    """A run from a shipped model keeps how that model runs (its edit sampling and keep), beside the training
    history."""
    from glmimage.models.load import load_model_dir

    init = tmp_path / "init"
    shutil.copytree(tiny_dir, init)
    meta = json.loads((init / "glmimage.json").read_text())
    meta["edit_sampling"] = {"top_p": 0.75, "copy_bias": 4.0}
    meta["edit_keep"] = {"grow": 2}
    meta["training"] = [{"stage": "earlier", "steps": 1, "out": "x", "metrics": {}}]
    (init / "glmimage.json").write_text(json.dumps(meta))
    cfg = stage_config("glyph", "glyph-settings", steps=1, save_every=1, init=str(init), train_text_encoder=False)
    out = Path(glyph.train(cfg))
    written = json.loads((out / "glmimage.json").read_text())
    assert written["edit_sampling"] == {"top_p": 0.75, "copy_bias": 4.0} and written["edit_keep"] == {"grow": 2}
    assert [r["stage"] for r in written["training"]] == ["earlier", "glyph"]
    assert load_model_dir(out).edit_sampling == {"top_p": 0.75, "copy_bias": 4.0}


def test_lora_adapters_change_outputs_and_load_back(stage_config, decoder_runs, tmp_path):
    from peft import PeftModel

    from glmimage.models.load import load_model_dir

    folder = lora.demo_folder(tmp_path / "brand", count=3, size=128)
    init = decoder_runs[0] / "model"
    full, resumed = train_and_resume(stage_config, "lora", lora.train, init=str(init), data_dir=str(folder))
    for target in ("decoder", "planner"):
        assert_same(full / "adapters" / target, resumed / "adapters" / target)

    def decoder_output(transformer):
        gen = torch.Generator().manual_seed(0)
        x = torch.randn(1, 16, 16, 16, generator=gen)
        with torch.no_grad():
            return transformer(hidden_states=x, encoder_hidden_states=torch.randn(1, 3, 32, generator=gen),
                               prior_token_id=torch.randint(0, 64, (1, 64), generator=gen),
                               prior_token_drop=torch.zeros(1, 64, dtype=torch.bool), timestep=torch.tensor([500.0]),
                               target_size=torch.tensor([[128.0, 128.0]]), crop_coords=torch.zeros(1, 2),
                               return_dict=False)[0]

    base = load_model_dir(init).pipe.transformer
    base_out = decoder_output(base)
    adapted = PeftModel.from_pretrained(base, full / "adapters" / "decoder")
    adapted_out = decoder_output(adapted)
    assert not torch.allclose(base_out, adapted_out)  # training moved the adapters off their zero init
    merged = load_model_dir(full / "model").pipe.transformer  # merge: true in the tiny config
    assert torch.allclose(decoder_output(merged), adapted_out, atol=1e-5)
    pipe = load_model_dir(init).pipe
    lora.apply_adapters(pipe, full / "adapters")
    assert torch.allclose(decoder_output(pipe.transformer), adapted_out, atol=1e-5)
