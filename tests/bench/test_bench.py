import torch

from glmimage.bench.compare import BenchConfig, markdown, run_bench
from glmimage.bench.measure import StageTimer, count_flops


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
