import pytest
import torch

from glmimage.bench.compare import BenchConfig, markdown, planner_decode_calls, run_bench
from glmimage.bench.measure import StageTimer, count_flops, linear_calls, linear_chain_seconds
from glmimage.engine.planner import target_grids


@pytest.mark.slow  # both engines, compiled too, at two batch sizes
def test_bench_runs_both_engines_and_checks_agreement(tiny_dir, tmp_path):
    cfg = BenchConfig(model=str(tiny_dir), width=128, height=128, steps=2, batch_sizes=(1, 2), repeats=1,
                      approximations={"half-steps": {"steps_factor": 0.5}}, quality_samples=2,
                      distinct_prompts=2)
    report = run_bench(cfg, tmp_path, progress=lambda *_: None)
    engines = [(r["engine"], r["batch"]) for r in report["rows"]]
    assert engines == [("reference", 1), ("glmimage", 1), ("glmimage[eager]", 1),
                       ("reference", 2), ("glmimage", 2), ("glmimage[eager]", 2)]
    # the compiled engine's first call at each batch size compiles: reported apart, not in the timed rows
    assert all(r["first_call_seconds"] > r["seconds"] for r in report["rows"] if r["engine"] == "glmimage")
    assert all(d < 1e-5 for d in report["max_abs_diff_vs_reference"].values())
    for r in report["rows"]:
        assert r["planner_seconds"] > 0 and r["decoder_seconds"] > 0 and r["vae_seconds"] > 0
    assert report["approximations"][0]["engine"] == "glmimage[half-steps]"
    ref, ours = report["distinct_prompts"]
    assert ref["prompts"] == ours["prompts"] == 2 and ours["speedup_vs_reference"] > 0
    # random weights render no readable word: the harness still scores every mode
    assert report["exact_quality"]["word_accuracy"] == 0.0
    assert report["approximations"][0]["quality"]["word_accuracy"] == 0.0
    limit = report["physical_limit"]
    assert limit["gflops_per_image"]["decoder"] > 0 and 0 < limit["fraction_of_limit"]["decoder"] < 1
    # each stage's floor: the tighter of its FLOPs at the ceiling and its linear products alone at their shapes
    (h, w), (ph, pw) = target_grids(128, 128)
    assert limit["planner_decode_forwards"] == h * w + ph * pw
    for stage in ("planner", "decoder", "vae"):
        assert limit["ideal_seconds"][stage] == max(limit["flop_seconds"][stage], limit["product_seconds"][stage])
    assert limit["product_seconds"]["planner"] > 0 and limit["product_seconds"]["decoder"] > 0
    assert limit["planner_products_from_memory_seconds"] > 0
    ref_b1, ours_b1 = report["rows"][0], report["rows"][1]
    assert limit["exact_bound_speedup"] == ref_b1["latency_per_image"] / sum(limit["ideal_seconds"].values())
    assert limit["stage_seconds"]["decoder"] == ours_b1["decoder_seconds"]
    planner_at_floor = ours_b1["latency_per_image"] - ours_b1["planner_seconds"] + limit["ideal_seconds"]["planner"]
    assert limit["speedup_with_stage_at_floor"]["planner"] == ref_b1["latency_per_image"] / planner_at_floor
    assert "at best" in markdown(report)
    modes = report["memory_modes"]
    assert set(modes) == {"kept", "offload", "sequential"}
    # each mode measured in its own process: all of them load weights, so none reads 0
    assert all(mb > 0 for mb in modes.values()), modes
    official = report["official_weight_memory_gb"]
    assert 30 < official["kept"] < 40 and official["sequential"] < official["kept"]
    assert (tmp_path / "bench.md").read_text() == markdown(report)


def test_stage_timer_and_flop_counter():
    layer = torch.nn.Linear(8, 4)
    with StageTimer({"layer": layer}) as timer:
        layer(torch.zeros(2, 8))
        layer(torch.zeros(2, 8))
    assert timer.calls["layer"] == 2 and timer.seconds["layer"] > 0
    assert count_flops(lambda: layer(torch.zeros(2, 8))) == 2 * 2 * 8 * 4


def test_planner_decode_calls_match_the_linears_a_token_runs(tiny_dir):
    from glmimage.models.load import load_model

    planner = load_model(tiny_dir).pipe.vision_language_encoder
    calls = planner_decode_calls(planner)
    layers = planner.config.text_config.num_hidden_layers
    # per layer: q, k, v, o, gate_up, down; then the head, whose rows are the image vocabulary
    assert len(calls) == 6 * layers + 1
    assert calls[-1] == (*planner.lm_head.weight.shape, 1)
    # what the hooks see in one real one-token forward of the language model and head is the same list
    language_model = planner.model.language_model
    token = torch.zeros(1, 1, dtype=torch.long)
    seen = linear_calls(planner, lambda: planner.lm_head(language_model(input_ids=token).last_hidden_state))
    assert seen == calls
    assert 0 < linear_chain_seconds(calls, transposed=True, repeats=2) < 1


def test_linear_calls_record_rows_of_each_product():
    model = torch.nn.Sequential(torch.nn.Linear(8, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    calls = linear_calls(model, lambda: model(torch.zeros(3, 5, 8)))
    assert calls == [(4, 8, 15), (2, 4, 15)]
    assert 0 < linear_chain_seconds(calls, repeats=1) < 1
