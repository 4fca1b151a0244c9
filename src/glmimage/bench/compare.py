"""`glmimage bench`: our engine and diffusers' GlmImagePipeline side by side, same weights, seed and settings.

Both run in this process, one after the other for each batch size, with the same peak-memory sampler, and their
outputs compared. Stage times: the reference's from hooks on its modules (planner = the AR module's forward calls,
decoder = the DiT's, VAE = the VAE decoder's), ours from the engine's own stage clock, which also counts the sampling
loop and glue (hooks cannot see into compiled graphs): the comparison of stages leans towards the reference. The
physical limit has two floors per stage: its FLOPs at the machine's measured matmul speed, and its linear products
alone at their real shapes (the planner's one-row decoding products only read weights: memory, not arithmetic, bounds
them); from the tighter of each, the best ratio to the reference an exact engine could reach on this machine.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from diffusers import GlmImagePipeline

from glmimage.bench.measure import (
    PeakMemory,
    StageTimer,
    count_flops,
    linear_calls,
    linear_chain_seconds,
    peak_matmul_flops,
    timed,
)
from glmimage.engine import Engine
from glmimage.engine.options import EngineOptions, torch_threads
from glmimage.engine.planner import target_grids
from glmimage.models.build import build_pipeline, write_model_dir
from glmimage.models.load import load_model, shipped_weights
from glmimage.models.presets import PRESETS


@dataclass(frozen=True)
class BenchConfig:
    model: str = "nano"
    prompt: str = 'A poster titled "SUMMER SALE" with a price tag "$9.99"'
    width: int = 256
    height: int = 256
    steps: int = 30
    guidance: float = 1.5
    seed: int = 0
    batch_sizes: tuple[int, ...] = (1, 4, 8)
    num_threads: int | None = None  # applied to both sides
    repeats: int = 3  # each measurement keeps its fastest run: the least disturbed by other load
    quality_samples: int = 0  # > 0: score exact and each approximation with glmimage eval on this many test designs
    compile: bool = True  # our engine with EngineOptions(compile=True) (exact); the eager engine gets its own row
    distinct_prompts: int = 8  # also time one call with this many different prompts (0: skip)
    approximations: dict = field(default_factory=lambda: {
        "bf16": {"decoder_dtype": "bfloat16"},
        "half-steps": {"steps_factor": 0.5},
        "step-cache": {"step_cache_threshold": 0.05},  # never compiled: its hooks choose blocks per forward
        "all": {"decoder_dtype": "bfloat16", "steps_factor": 0.5},  # with compile; the step cache bought ~2%
    })

    def __post_init__(self) -> None:
        if not self.batch_sizes or min(self.batch_sizes) < 1:
            raise ValueError("batch_sizes must be positive")
        if self.repeats < 1:
            raise ValueError("repeats must be >= 1")
        if self.quality_samples < 0:
            raise ValueError("quality_samples must be >= 0")


def model_directory(name: str, workdir: Path) -> Path:
    """A directory both sides load: shipped weights, a directory, or a freshly built random preset."""
    if Path(name).is_dir():
        return Path(name)
    shipped = shipped_weights(name)
    if shipped is not None:
        return shipped
    # Random weights measure speed only. The planner's head covers just the codes: a random head over the
    # official-style wider vocabulary makes the reference sample image start/end ids as plan codes and crash in
    # the DiT's prior embedding (the early-end defect our sampler masks).
    preset = PRESETS[name]
    preset = replace(preset, planner=replace(preset.planner, vision_vocab_size=None))
    path = workdir / name
    write_model_dir(build_pipeline(preset, seed=0), path, preset)
    return path


def _stages(pipe) -> dict:
    return {"planner": pipe.vision_language_encoder, "decoder": pipe.transformer, "vae": pipe.vae.decoder}


def _fastest(run, repeats: int):
    return min((run() for _ in range(repeats)), key=lambda r: r[3])


def _fastest_interleaved(runs: dict, repeats: int) -> dict:
    """Each run's fastest of `repeats`, taken in rounds (a, b, c, a, b, c, ...): load from other processes that
    comes and goes then falls on every engine alike, not on whichever happened to run during it."""
    results = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            results[name].append(run())
    return {name: min(rs, key=lambda r: r[3]) for name, rs in results.items()}


def _run_reference(pipe, cfg: BenchConfig, batch: int):
    generators = [torch.Generator().manual_seed(cfg.seed + i) for i in range(batch)]
    with StageTimer(_stages(pipe)) as stages, PeakMemory() as memory, timed() as wall:
        images = pipe(cfg.prompt, height=cfg.height, width=cfg.width, num_inference_steps=cfg.steps,
                      guidance_scale=cfg.guidance, generator=generators, num_images_per_prompt=batch,
                      output_type="np").images
    return np.asarray(images), stages.seconds, memory.peak_bytes, wall["seconds"]


def _run_ours(engine: Engine, cfg: BenchConfig, batch: int, steps: int):
    """Stage times from the engine's own clock (wall time of each stage, sampling loop and glue included): hooks
    would not see inside compiled graphs. The reference's hooks count its modules' forwards only, which flatters it."""
    with PeakMemory() as memory, timed() as wall:
        result = engine.generate(cfg.prompt, width=cfg.width, height=cfg.height, steps=steps, guidance=cfg.guidance,
                                 seed=cfg.seed, num_images=batch, output_type="np")
    stages = {name: result.timings[name] for name in ("planner", "decoder", "vae")}
    return np.stack(result.images), stages, memory.peak_bytes, wall["seconds"]


DISTINCT_PROMPTS = (
    'A poster titled "SUMMER SALE" with a price tag "$9.99"', 'A banner "OPEN" on a green background',
    'A recipe card titled "LEMON CAKE" with a yellow circle', 'A slide titled "Q3 REPORT" with a blue square',
    'An invitation card "WEDDING" with two red hearts', 'A menu titled "CAFE" with three lines of text',
    'A sign "EXIT" with an arrow', 'A flyer "YOGA CLASS" with a purple circle and "MONDAYS"',
)


def distinct_prompt_rows(reference, ours: Engine, cfg: BenchConfig) -> list[dict]:
    """One call with several different prompts: the reference batches them through one generate() (it takes one
    seed for all: a list of generators stops it), we plan them in one batch with a seed per prompt. Images differ
    by design (seeding), so this times throughput only."""
    prompts = [DISTINCT_PROMPTS[i % len(DISTINCT_PROMPTS)] for i in range(cfg.distinct_prompts)]
    n = len(prompts)

    def run_reference():
        with timed() as wall:
            reference(prompts, height=cfg.height, width=cfg.width, num_inference_steps=cfg.steps,
                      guidance_scale=cfg.guidance, generator=torch.Generator().manual_seed(cfg.seed), output_type="np")
        return wall["seconds"]

    def run_ours():
        with timed() as wall:
            ours.generate(prompts, width=cfg.width, height=cfg.height, steps=cfg.steps, guidance=cfg.guidance,
                          seed=cfg.seed, output_type="np")
        return wall["seconds"]

    run_reference(), run_ours()  # warm-up (new shapes)
    rounds = [(run_reference(), run_ours()) for _ in range(cfg.repeats)]  # interleaved, as in run_bench
    ref_s, our_s = min(r for r, _ in rounds), min(o for _, o in rounds)
    return [{"engine": "reference", "prompts": n, "seconds": ref_s, "latency_per_image": ref_s / n},
            {"engine": "glmimage", "prompts": n, "seconds": our_s, "latency_per_image": our_s / n,
             "speedup_vs_reference": ref_s / our_s}]


def _row(name: str, images, stages, peak, wall, batch, steps, tokens) -> dict:
    return {
        "engine": name, "batch": batch, "seconds": wall, "latency_per_image": wall / batch,
        "images_per_minute": 60 * batch / wall, "planner_seconds": stages["planner"],
        "planner_tokens_per_s": tokens / stages["planner"] if stages["planner"] else None,
        "decoder_seconds": stages["decoder"], "decoder_step_seconds": stages["decoder"] / steps,
        "vae_seconds": stages["vae"], "peak_memory_mb": peak / 2**20,
    }


COLD_FLUSH_MB = 256  # more than any CPU's last-level cache here: the weights come from memory


def planner_decode_calls(planner) -> list[tuple[int, int, int]]:
    """(out, in, rows=1) of every linear layer one decoding token runs: the language model's and the head's."""
    return [(m.out_features, m.in_features, 1) for part in (planner.model.language_model, planner.lm_head)
            for m in part.modules() if isinstance(m, torch.nn.Linear)]


def physical_limit(engine: Engine, cfg: BenchConfig, tokens: int) -> dict:
    """Two floors per stage. FLOPs: the stage's FLOPs at the measured matmul ceiling. Products: its linear layers
    alone at their real shapes on the library's kernel (the planner's `tokens - 1` decoding forwards each reading
    its weights once; the DiT's forwards of one image). A stage can't beat the larger of its two floors."""
    plan = engine.plan(cfg.prompt, cfg.width, cfg.height, seed=cfg.seed)
    planner_flops = count_flops(lambda: engine.plan(cfg.prompt, cfg.width, cfg.height, seed=cfg.seed))
    one_step = count_flops(lambda: engine.decode(plan, seed=cfg.seed, steps=1, guidance=cfg.guidance))
    latent = torch.zeros(1, engine.pipe.vae.config.latent_channels, cfg.height // 8, cfg.width // 8)
    vae_flops = count_flops(lambda: engine.pipe.vae.decode(latent))
    decoder_step_flops = one_step - vae_flops
    peak = peak_matmul_flops(torch.float32)
    flops = {"planner": planner_flops, "decoder": decoder_step_flops * cfg.steps, "vae": vae_flops}
    flop_seconds = {k: v / peak for k, v in flops.items()}

    token_calls = planner_decode_calls(engine.pipe.vision_language_encoder)
    dit_calls = linear_calls(engine.pipe.transformer,
                             lambda: engine.decode(plan, seed=cfg.seed, steps=1, guidance=cfg.guidance))
    # floor with the weights hot in cache; beside it, the same read from memory (what a thrashed cache gives)
    cold_planner = (tokens - 1) * linear_chain_seconds(token_calls, transposed=True, repeats=20, flush_mb=COLD_FLUSH_MB)
    products = {"planner": (tokens - 1) * linear_chain_seconds(token_calls, transposed=True, repeats=20),
                "decoder": cfg.steps * linear_chain_seconds(dit_calls), "vae": 0.0}  # VAE: convolutions
    return {"peak_matmul_gflops": peak / 1e9, "gflops_per_image": {k: v / 1e9 for k, v in flops.items()},
            "flop_seconds": flop_seconds, "product_seconds": products,
            "planner_weight_mb": sum(o * i for o, i, _ in token_calls) * 4 / 2**20,
            "planner_decode_forwards": tokens - 1, "planner_products_from_memory_seconds": cold_planner,
            "ideal_seconds": {k: max(flop_seconds[k], products[k]) for k in flops}}


def quality(engine: Engine, cfg: BenchConfig, steps: int) -> dict:
    """glmimage eval's text-to-image figures on the first `quality_samples` test designs (held-out words)."""
    from glmimage.data import World, WorldConfig
    from glmimage.evaluation.engine_render import EngineRenderer, SamplingConfig
    from glmimage.evaluation.t2i import evaluate_t2i

    world = World(WorldConfig(size=max(128, cfg.width), split="test"))
    samples = [world.sample(i) for i in range(cfg.quality_samples)]
    renderer = EngineRenderer(engine, SamplingConfig(steps=steps, guidance=cfg.guidance, seed=cfg.seed))
    _, summary = evaluate_t2i(samples, renderer, progress=False)
    return {k: summary[k] for k in ("word_accuracy", "ned", "object_correct")}


MEMORY_MODES = {"kept": (False, False), "offload": (False, True), "sequential": (True, False)}  # (sequential, offload)


def _memory_of_mode(path: str, mode: str, prompt: str, width: int, height: int, seed: int) -> float:
    """In a fresh process: peak resident MB above the imported libraries while loading and making one image."""
    sequential, offload = MEMORY_MODES[mode]
    with PeakMemory() as memory:
        engine = Engine(load_model(path, sequential=sequential), offload=offload)
        engine.generate(prompt, width=width, height=height, steps=2, seed=seed)
    return memory.peak_bytes / 2**20


def measure_memory_modes(path: Path, cfg: BenchConfig) -> dict:
    """Peak resident memory of loading the model and making one image: all components kept, offloaded (host memory
    holds them all; on a GPU only the running stage is on the device), loaded per stage (sequential). Each mode runs
    in its own fresh process: in this one, memory freed by earlier work is reused without showing in the RSS (a
    mode measured after the others read 0 MB)."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")  # fork would copy this process's heap and thread pools
    with context.Pool(1, maxtasksperchild=1) as pool:
        return {mode: pool.apply(_memory_of_mode, (str(path), mode, cfg.prompt, cfg.width, cfg.height, cfg.seed))
                for mode in MEMORY_MODES}


def official_weight_memory() -> dict:
    """bf16 weight memory of the official model (computed from its configuration, not measured): everything
    resident vs the largest stage when components are loaded per stage."""
    from glmimage.models.params import parameter_counts

    c = parameter_counts(PRESETS["official"])
    gb = 2 / 1e9
    stages = {"planner": c["planner"], "decoder": c["glyph_encoder"] + c["decoder"] + c["vae"], "vae": c["vae"]}
    # offload keeps everything in host memory and the largest stage on the GPU; sequential keeps only that stage
    return {"kept": c["total"] * gb, "sequential": max(stages.values()) * gb, "offload_gpu": max(stages.values()) * gb,
            "stages": {k: v * gb for k, v in stages.items()}}


def limit_ratios(limit: dict, ours: dict, reference: dict) -> dict:
    """Our stage times against their floors, and what the floors allow against the reference's latency (both at the
    smallest batch benched)."""
    stage_seconds = {stage: ours[f"{stage}_seconds"] for stage in ("planner", "decoder", "vae")}
    floors, ref, latency = limit["ideal_seconds"], reference["latency_per_image"], ours["latency_per_image"]
    # what 2x would ask of the decoder, everything else (planner, VAE, glue) as it runs now; > 1: out of reach
    decoder_budget = ref / 2 - (latency - stage_seconds["decoder"])
    return {
        "stage_seconds": stage_seconds,
        "fraction_of_limit": {k: floors[k] / v for k, v in stage_seconds.items()},
        # the best exact ratio: every stage at its floor, nothing else (an optimistic bound)
        "exact_bound_speedup": ref / sum(floors.values()),
        # where the lever is: one stage at its floor, the rest (glue included) as it runs now
        "speedup_with_stage_at_floor": {k: ref / (latency - v + floors[k]) for k, v in stage_seconds.items()},
        "decoder_fraction_needed_for_2x": floors["decoder"] / decoder_budget if decoder_budget > 0 else None,
    }


def run_bench(cfg: BenchConfig, out_dir: Path, progress=print) -> dict:
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp, torch_threads(cfg.num_threads):
        path = model_directory(cfg.model, Path(tmp))
        # float32 on both sides, as our engine loads: shipped bf16 weights would otherwise load as mixed dtypes
        reference = GlmImagePipeline.from_pretrained(path, dtype=torch.float32)
        reference.set_progress_bar_config(disable=True)
        ours = Engine(load_model(path), options=EngineOptions(compile=cfg.compile))
        eager = Engine(load_model(path)) if cfg.compile else None
        (h, w), (ph, pw) = target_grids(cfg.height, cfg.width)
        tokens = h * w + ph * pw + 1

        rows, agreement = [], {}
        for batch in cfg.batch_sizes:
            # Warm-up at each batch size: first calls pay one-off allocation, lazy initialisation and (compiled
            # engine) compilation of the new shapes. What compiling costs is reported apart.
            progress(f"batch {batch}: warm-up" + (" and compilation" if cfg.compile else ""))
            _run_reference(reference, cfg, batch)
            with timed() as compile_wall:
                _run_ours(ours, cfg, batch, cfg.steps)
            if eager is not None:
                _run_ours(eager, cfg, batch, cfg.steps)
            progress(f"batch {batch}: reference, glmimage (exact)" + (", glmimage eager" if eager else "")
                     + f", {cfg.repeats} rounds")
            runs = {"reference": lambda b=batch: _run_reference(reference, cfg, b),
                    "glmimage": lambda b=batch: _run_ours(ours, cfg, b, cfg.steps)}
            if eager is not None:
                runs["glmimage[eager]"] = lambda b=batch: _run_ours(eager, cfg, b, cfg.steps)
            fastest = _fastest_interleaved(runs, cfg.repeats)
            for name, (images, *stats) in fastest.items():
                rows.append(_row(name, images, *stats, batch, cfg.steps, tokens))
                if name == "glmimage":
                    rows[-1]["first_call_seconds"] = compile_wall["seconds"]
            agreement[batch] = float(np.abs(fastest["glmimage"][0] - fastest["reference"][0]).max())

        distinct = []
        if cfg.distinct_prompts:
            progress(f"{cfg.distinct_prompts} different prompts in one call")
            distinct = distinct_prompt_rows(reference, ours, cfg)

        approx_rows = []
        for name, spec in cfg.approximations.items():
            spec = dict(spec)
            steps = max(1, round(cfg.steps * spec.pop("steps_factor", 1.0)))
            spec.setdefault("compile", cfg.compile and spec.get("step_cache_threshold") is None)
            engine = Engine(load_model(path), options=EngineOptions(**spec))
            progress(f"approximation {name}")
            _run_ours(engine, cfg, 1, steps)  # warm-up
            images, *stats = _fastest(lambda e=engine, n=steps: _run_ours(e, cfg, 1, n), cfg.repeats)
            row = _row(f"glmimage[{name}]", images, *stats, 1, steps, tokens)
            row["max_abs_diff_vs_exact"] = float(np.abs(images - _run_ours(ours, cfg, 1, cfg.steps)[0]).max())
            if cfg.quality_samples:
                row["quality"] = quality(engine, cfg, steps)
            approx_rows.append(row)
        exact_quality = quality(ours, cfg, cfg.steps) if cfg.quality_samples else None

        limit = physical_limit(eager or ours, cfg, tokens)  # FLOPs are counted op by op: eagerly
        memory_modes = measure_memory_modes(path, cfg)

    ref_by_batch = {r["batch"]: r for r in rows if r["engine"] == "reference"}
    for r in rows + approx_rows:
        base = ref_by_batch[r["batch"]]
        r["speedup_vs_reference"] = base["latency_per_image"] / r["latency_per_image"]
        r["memory_ratio_vs_reference"] = (r["peak_memory_mb"] / base["peak_memory_mb"]
                                          if base["peak_memory_mb"] else None)
    ours_b1 = next(r for r in rows if r["engine"] == "glmimage" and r["batch"] == min(cfg.batch_sizes))
    limit.update(limit_ratios(limit, ours_b1, ref_by_batch[ours_b1["batch"]]))
    report = {"config": asdict(cfg), "threads": cfg.num_threads or torch.get_num_threads(), "rows": rows,
              "approximations": approx_rows, "max_abs_diff_vs_reference": agreement, "physical_limit": limit,
              "memory_modes": memory_modes, "distinct_prompts": distinct,
              "official_weight_memory_gb": official_weight_memory(),
              "exact_quality": exact_quality}
    (out_dir / "bench.json").write_text(json.dumps(report, indent=2))
    (out_dir / "bench.md").write_text(markdown(report))
    return report


def _num(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _points(exact, approx) -> str:
    return "n/a" if exact is None or approx is None else f"{100 * (exact - approx):+.1f}"


def physical_limit_text(lim: dict) -> str:
    products, stage, speed = lim["product_seconds"], lim["stage_seconds"], lim["fraction_of_limit"]
    flops = ", ".join(f"{k} {v:.2f} GFLOP ({lim['flop_seconds'][k] / stage[k]:.1%} of the ceiling)"
                      for k, v in lim["gflops_per_image"].items())
    memory_bound = ("; reading its weights, not its arithmetic, sets this floor"
                    if products["planner"] > lim["flop_seconds"]["planner"] else "")
    need = lim["decoder_fraction_needed_for_2x"]
    return " ".join([
        f"Physical limit: measured matmul ceiling {lim['peak_matmul_gflops']:.0f} GFLOP/s; per image {flops}.",
        "Products alone (the linear layers at their real shapes on the library's kernel, everything else free): the",
        f"planner's {lim['planner_decode_forwards']} decoding forwards each read {lim['planner_weight_mb']:.1f} MB of",
        f"weights, {products['planner']:.2f} s a plan with them in cache,",
        f"{lim['planner_products_from_memory_seconds']:.2f} s from memory (it takes {stage['planner']:.2f} s,",
        f"{speed['planner']:.0%} of its tighter floor's speed{memory_bound});",
        f"the decoder's {products['decoder']:.2f} s an image (it takes {stage['decoder']:.2f} s,",
        f"{speed['decoder']:.0%} of its tighter floor's speed).",
        f"Every stage at its tighter floor: {sum(lim['ideal_seconds'].values()):.2f} s/image, at best",
        f"{lim['exact_bound_speedup']:.2f}x the reference at identical outputs.",
        "One stage at its floor, the rest as it runs now: "
        + ", ".join(f"{k} {v:.2f}x" for k, v in lim["speedup_with_stage_at_floor"].items()) + ".",
        f"2x needs the decoder at {need:.0%} of its tighter floor's speed with the other stages as they run now."
        if need is not None else "2x needs the decoder at less than no time: the other stages alone take half the "
        "reference's."])


def markdown(report: dict) -> str:
    cfg = report["config"]
    title = (f"# glmimage bench: {cfg['model']} {cfg['width']}x{cfg['height']}, {cfg['steps']} steps, "
             f"guidance {cfg['guidance']}, {report['threads']} thread(s), fastest of {cfg['repeats']} runs")
    lines = [title, "",
             "| engine | batch | s/image | images/min | planner tok/s | decoder s/step | VAE s | peak MB | speed-up |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in report["rows"] + report["approximations"]:
        lines.append(f"| {r['engine']} | {r['batch']} | {r['latency_per_image']:.2f} | {r['images_per_minute']:.1f} | "
                     f"{r['planner_tokens_per_s']:.0f} | {r['decoder_step_seconds']:.3f} | {r['vae_seconds']:.2f} | "
                     f"{r['peak_memory_mb']:.0f} | {r['speedup_vs_reference']:.2f}x |")
    lines += ["", "Max abs difference to the reference (exact mode, float pixels): "
              + ", ".join(f"batch {b}: {d:.1e}" for b, d in report["max_abs_diff_vs_reference"].items())]
    if cfg.get("compile"):
        lines += ["", "glmimage runs compiled (`EngineOptions(compile=True)`); its first call at each batch size, "
                  "which compiles the new shapes, took " + ", ".join(
                      f"{r['first_call_seconds']:.0f} s (batch {r['batch']})" for r in report["rows"]
                      if "first_call_seconds" in r) + "; glmimage[eager] is the engine without compiling."]
    if report.get("distinct_prompts"):
        ref, ours = report["distinct_prompts"]
        lines += ["", f"{ref['prompts']} different prompts in one call (throughput only; the reference takes one seed "
                  f"for all, we seed each prompt): reference {ref['latency_per_image']:.2f} s/image, glmimage "
                  f"{ours['latency_per_image']:.2f} s/image ({ours['speedup_vs_reference']:.2f}x)."]
    lines += ["", physical_limit_text(report["physical_limit"])]
    if report.get("exact_quality"):
        base = report["exact_quality"]
        lines += ["", f"Quality (glmimage eval, {cfg['quality_samples']} test designs; exact: word accuracy "
                  f"{_num(base['word_accuracy'])}, NED {_num(base['ned'])}, objects {_num(base['object_correct'])}). "
                  "Cost of each approximation, in points of word accuracy / NED: "
                  + ", ".join(f"{r['engine']} {_points(base['word_accuracy'], r['quality']['word_accuracy'])} / "
                              f"{_points(base['ned'], r['quality']['ned'])}"
                              for r in report["approximations"])]
    mem = report["memory_modes"]
    off = report["official_weight_memory_gb"]
    memory = (f"Memory (host, peak resident): load + one image, all components kept {mem['kept']:.0f} MB, offloaded "
              f"{mem['offload']:.0f} MB, loaded per stage (sequential) {mem['sequential']:.0f} MB. Official model "
              f"bf16 weights on the device (computed): kept {off['kept']:.1f} GB, offload {off['offload_gpu']:.1f} GB "
              f"(largest stage; all {off['kept']:.1f} GB in host memory), sequential {off['sequential']:.1f} GB.")
    lines += ["", memory]
    return "\n".join(lines) + "\n"
