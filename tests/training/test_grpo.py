"""GRPO stages at tiny scale: the decoder's SDE sampler (log-probabilities against torch.distributions, eta = 0 against
the engine's Euler sampler), the objective's pieces, exact resume of both stages, and a colour reward moving a tiny
planner."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from glmimage.training import grpo, grpo_decoder, grpo_planner
from tests.training.test_stages import SAVE_AT, STEPS, assert_changed, assert_same, train_and_resume, weights


@pytest.fixture(scope="module")
def tiny_pipe():
    from glmimage.engine.attention import install_masked_attention
    from glmimage.models.build import build_pipeline
    from glmimage.models.presets import TINY

    pipe = build_pipeline(TINY, seed=0)
    install_masked_attention(pipe.transformer)
    for module in (pipe.transformer, pipe.text_encoder, pipe.vae):
        module.eval()
    return pipe


def log_rows(run: Path) -> list[tuple[int, str, float]]:
    rows = [line.split(",") for line in (run / "log.csv").read_text().splitlines()[1:]]
    return [(int(step), name, float(value)) for step, name, value, _ in rows]


# -- the SDE sampler ----------------------------------------------------------------------------------------
def test_sde_step_log_prob_equals_a_direct_normal_computation():
    gen = torch.Generator().manual_seed(0)
    latents, v = torch.randn(3, 4, 8, 8, generator=gen), torch.randn(3, 4, 8, 8, generator=gen)
    for sigma, sigma_next, sigma_max in ((1.0, 0.8, 0.8), (0.6, 0.3, 0.8), (0.3, 0.0, 0.8)):
        sample, logp, mean, std = grpo_decoder.sde_step(v, latents, sigma, sigma_next, sigma_max, eta=0.7,
                                                        generator=gen)
        assert std > 0 and logp.shape == (3,)
        direct = torch.distributions.Normal(mean, std).log_prob(sample).mean(dim=(1, 2, 3))
        assert torch.allclose(logp, direct, atol=1e-5)
        # scoring a given sample gives the same density, and a sample off the mean has a lower one
        _, again, _, _ = grpo_decoder.sde_step(v, latents, sigma, sigma_next, sigma_max, 0.7, sample=sample)
        assert torch.allclose(again, logp)
        _, off, _, _ = grpo_decoder.sde_step(v, latents, sigma, sigma_next, sigma_max, 0.7, sample=sample + 3 * std)
        assert (off < logp).all()


def test_sde_mean_with_eta_zero_is_the_engines_euler_step(tiny_pipe):
    from glmimage.engine.decoder import flow_timesteps

    scheduler = copy.deepcopy(tiny_pipe.scheduler)
    timesteps = flow_timesteps(scheduler, 5, 64, "cpu")
    sigmas = [float(s) for s in scheduler.sigmas]
    gen = torch.Generator().manual_seed(1)
    latents = torch.randn(2, 16, 16, 16, generator=gen)
    for i, t in enumerate(timesteps):
        v = torch.randn(latents.shape, generator=gen)
        euler = scheduler.step(v, t, latents, return_dict=False)[0]
        sample, logp, mean, std = grpo_decoder.sde_step(v, latents, sigmas[i], sigmas[i + 1], sigmas[1], eta=0.0)
        assert std == 0 and logp is None
        assert torch.allclose(mean, euler, atol=1e-6) and torch.equal(sample, mean)
        latents = euler


def rollout_inputs(pipe, guidance: float):
    gen = torch.Generator().manual_seed(2)
    prompts = ['a card that says "HELLO"', 'a poster "SALE" in red']
    prior = torch.randint(0, 64, (2, 64), generator=gen)
    glyphs, empty = grpo.glyph_inputs(pipe, prompts, torch.float32)
    latents = torch.randn(2, 16, 16, 16, generator=gen)
    kwargs = grpo_decoder.conditions(prior, glyphs, empty, guidance, (128, 128), torch.float32)
    return latents, prior, glyphs, empty, kwargs


@pytest.mark.parametrize("guidance", [1.0, 1.5])
def test_sde_rollout_with_eta_zero_equals_the_engine_sampler(tiny_pipe, guidance):
    """The deterministic sampler the engine runs is the SDE sampler at eta = 0, guided batch and all."""
    from glmimage.engine.decoder import denoise

    latents, prior, glyphs, empty, kwargs = rollout_inputs(tiny_pipe, guidance)
    engine = denoise(tiny_pipe.transformer, copy.deepcopy(tiny_pipe.scheduler), latents.clone(), prior, glyphs,
                     empty, guidance, 3, image_size=(128, 128))
    rollout = grpo_decoder.sde_rollout(tiny_pipe.transformer, copy.deepcopy(tiny_pipe.scheduler), latents, kwargs,
                                       guidance, 3, eta=0.0, generator=None)
    assert len(rollout.latents) == 4 and rollout.sigmas[-1] == 0.0
    assert torch.allclose(rollout.latents[-1], engine, atol=1e-5)


def test_rollout_log_probs_are_what_the_update_recomputes(tiny_pipe):
    """At the first update the weights are the rollout's: every ratio is 1 (to float rounding), nothing is clipped
    by a wide clip, and the KL to an identical reference is 0."""
    cfg = grpo_decoder.DecoderGrpoConfig(eta=0.7, guidance=1.5, clip_range=0.2, kl_weight=0.1)
    latents, _, _, _, kwargs = rollout_inputs(tiny_pipe, cfg.guidance)
    transformer = tiny_pipe.transformer
    rollout = grpo_decoder.sde_rollout(transformer, copy.deepcopy(tiny_pipe.scheduler), latents, kwargs,
                                       cfg.guidance, 3, cfg.eta, torch.Generator().manual_seed(3),
                                       reference=transformer)
    assert all(lp.shape == (2,) for lp in rollout.log_probs)
    parts: dict = {}
    losses = list(grpo_decoder.step_losses(transformer, torch.float32, rollout, kwargs, torch.tensor([1.0, -1.0]),
                                           cfg, parts))
    assert len(losses) == 3 and all(torch.isfinite(loss) for loss in losses)
    assert parts["ratio"] == pytest.approx(1.0, abs=1e-4) and parts["clip_share"] == 0.0
    assert parts["kl"] == pytest.approx(0.0, abs=1e-8)


# -- the objective ------------------------------------------------------------------------------------------
def test_group_advantages_and_clipped_surrogate():
    rewards = torch.tensor([[1.0, 0.0, 0.5], [0.3, 0.3, 0.3]])
    adv = grpo.group_advantages(rewards, 1e-4)
    assert torch.allclose(adv.mean(dim=1), torch.zeros(2), atol=1e-6)
    assert adv[0, 0] > adv[0, 2] > adv[0, 1] and torch.equal(adv[1], torch.zeros(3))  # equal rewards: no signal
    logp_old = torch.zeros(4)
    logp_new = torch.log(torch.tensor([1.5, 1.5, 0.5, 1.0]))
    advantages = torch.tensor([1.0, -1.0, 1.0, 2.0])
    loss, parts = grpo.clipped_surrogate(logp_new, logp_old, advantages, 0.2)
    # min(r A, clip(r) A) per element: 1.2, -1.5, 0.5, 2.0 -> loss = -mean
    assert loss.item() == pytest.approx(-(1.2 - 1.5 + 0.5 + 2.0) / 4)
    assert parts["clip_share"] == 0.75


def test_reward_terms_of_a_ground_truth_design_are_high():
    from glmimage.data import World, WorldConfig

    sample = World(WorldConfig(size=128, seed=0, split="validation")).sample(0)
    terms = grpo.reward_terms(sample.image, sample, ("background", "objects", "quality", "colour"), "red")
    assert terms["quality"] > 0.8 and 0 <= terms["colour"] <= 1
    if "background" in terms:
        assert terms["background"] == 1.0
    assert grpo.combine({"a": 1.0, "b": 0.0}, {"a": 1.0, "b": 3.0, "c": 5.0}) == 0.25


# -- the stages ---------------------------------------------------------------------------------------------
def check_logs(full: Path) -> None:
    rows = log_rows(full)
    names = {name for _, name, _ in rows}
    assert {"reward", "kl", "loss", "grad_norm", "clip_share", "heldout_reward"} <= names
    heldout_steps = sorted(step for step, name, _ in rows if name == "heldout_reward")
    assert heldout_steps == [0, SAVE_AT, STEPS]
    assert (full / "rewards.png").stat().st_size > 0 and (full / "loss.png").is_file()
    metrics = json.loads((full / "metrics.json").read_text())
    assert metrics["heldout_reward"] == pytest.approx(next(v for s, n, v in rows if n == "heldout_reward"
                                                           and s == STEPS))


def test_grpo_decoder_resumes_exactly_and_trains_only_the_dit(stage_config, tiny_dir):
    full, resumed = train_and_resume(stage_config, "grpo-decoder", grpo_decoder.train, init=str(tiny_dir))
    assert_same(full / "model" / "transformer", resumed / "model" / "transformer")
    assert_changed(tiny_dir / "transformer", full / "model" / "transformer")
    for part in ("text_encoder", "vision_language_encoder", "vae"):
        assert_same(tiny_dir / part, full / "model" / part)
    check_logs(full)
    # the reward weighs OCR NED and quality; the held-out figures report the terms it never saw beside them
    names = {name for _, name, _ in log_rows(full)}
    assert {"reward_quality", "heldout_quality", "heldout_colour"} <= names and "reward_colour" not in names


def test_grpo_planner_resumes_exactly_and_trains_only_the_language_model(stage_config, tiny_dir):
    # a random tiny model earns 0 on every evaluation term (no background, object or word right): a little of the
    # colour term gives the groups different rewards, so the weights move
    weights_ = {"background": 1.0, "objects": 1.0, "ned": 1.0, "colour": 0.1}
    full, resumed = train_and_resume(stage_config, "grpo-planner", grpo_planner.train, init=str(tiny_dir),
                                     reward_weights=weights_)
    assert_same(full / "model" / "vision_language_encoder", resumed / "model" / "vision_language_encoder")
    start, after = weights(tiny_dir / "vision_language_encoder"), weights(full / "model" / "vision_language_encoder")
    tower = [k for k in start if ".visual." in k or ".vqmodel." in k]
    assert tower and all(torch.equal(start[k], after[k]) for k in tower)
    assert any(not torch.equal(start[k], after[k]) for k in start if "language_model" in k)
    for part in ("transformer", "text_encoder", "vae"):
        assert_same(tiny_dir / part, full / "model" / part)
    check_logs(full)
    names = {name for _, name, _ in log_rows(full)}
    assert {"reward_background", "reward_colour", "heldout_colour", "heldout_quality"} <= names
    assert "reward_quality" not in names


# -- a reward moves the planner -------------------------------------------------------------------------------
def paint_plans(pipe, transformer, plans, seeds, steps, guidance):
    """Stand-in for the frozen decoder: each plan painted red for its share of even target codes, blue for the rest.
    A random tiny decoder renders nearly the same grey for every plan (colour rewards within a group differed by
    under 0.002), which gives GRPO nothing to rank; this renderer makes the plan decide the colour."""
    from glmimage.data.palette import PALETTE

    rgb = {c.name: c.rgb for c in PALETTE}
    images = []
    for plan in plans:
        codes = torch.as_tensor(plan.target_tokens).flatten()
        red = round((codes % 2 == 0).float().mean().item() * plan.width)
        image = Image.new("RGB", (plan.width, plan.height), rgb["blue"])
        image.paste(rgb["red"], (0, 0, red, plan.height))
        images.append(image)
    return images


def even_code_mass(model_dir: Path, plans: list) -> float:
    """The planner's mean probability of an even code over the generated positions of fixed plans (teacher-forced):
    how much of what it would paint is red."""
    from diffusers import GlmImagePipeline

    from glmimage.training.planner import IGNORE, planner_logits

    pipe = GlmImagePipeline.from_pretrained(model_dir)
    planner = pipe.vision_language_encoder.eval()
    batch = grpo_planner.plan_batch(planner, pipe.processor, plans)
    with torch.no_grad():
        logits = planner_logits(planner, batch, "cpu")[..., :planner.config.vq_config.num_embeddings].float()
    even = torch.softmax(logits, dim=-1)[..., 0::2].sum(dim=-1)
    return even[batch["labels"] != IGNORE].mean().item()


@pytest.mark.parametrize("colour", ["red", "blue"])
def test_a_colour_reward_moves_a_tiny_planner_towards_that_colour(stage_config, tiny_dir, monkeypatch, colour):
    from diffusers import GlmImagePipeline

    from glmimage.training.data import make_world

    monkeypatch.setattr(grpo, "render_plans", paint_plans)
    cfg = stage_config("grpo-planner", f"grpo-colour-{colour}", init=str(tiny_dir), steps=6, save_every=6, lr=2e-3,
                       reward_weights={"colour": 1.0}, reward_colour=colour, kl_weight=0.0, group_size=4,
                       num_samples=0, heldout_samples=0)
    grpo_planner.train(cfg)
    pipe = GlmImagePipeline.from_pretrained(tiny_dir)
    samples = [make_world(cfg, "validation").sample(i) for i in range(4)]
    plans = grpo_planner.sample_plans(pipe.vision_language_encoder.eval(), pipe.processor, samples, 2, [[1, 2]] * 4)
    before, after = even_code_mass(tiny_dir, plans), even_code_mass(Path(cfg.out) / "model", plans)
    assert abs(before - 0.5) < 0.02  # a random planner: even and odd codes alike
    if colour == "red":
        assert after > before + 0.015, (before, after)
    else:
        assert after < before - 0.015, (before, after)


# -- LoRA variants (the official model's recipe) ------------------------------------------------------------------
def adapter_weights(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(folder / "adapter_model.safetensors")


def test_lora_kl_reference_is_the_start_with_adapters_switched_off(tiny_dir, stage_config):
    from diffusers import GlmImagePipeline

    from glmimage.training.data import make_world

    cfg = stage_config("grpo-planner", "grpo-lora-reference", init=str(tiny_dir), lora_rank=4)
    pipe = GlmImagePipeline.from_pretrained(tiny_dir)
    start = grpo.frozen_copy(pipe.vision_language_encoder)
    policy = grpo.make_policy(pipe, cfg, "planner")
    reference = grpo.kl_reference(policy, kl_weight=0.04)
    assert not isinstance(reference, type(start)) and policy.lora
    with torch.no_grad():
        for name, p in policy.module.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)  # trained adapters
    trainable = {n for n, p in policy.module.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    world_sample = make_world(cfg, "validation").sample(0)
    plans = grpo_planner.sample_plans(start, pipe.processor, [world_sample], 2, [[3, 4]])
    batch = grpo_planner.plan_batch(start, pipe.processor, plans)
    with torch.no_grad():
        adapted, valid = grpo_planner.token_log_probs(policy.module, policy.module, batch, "cpu")
        off, _ = grpo_planner.token_log_probs(reference, policy.module, batch, "cpu")
        want, _ = grpo_planner.token_log_probs(start, start, batch, "cpu")
    assert torch.allclose(off[valid], want[valid], atol=1e-5)
    assert (adapted[valid] - want[valid]).abs().max() > 1e-3  # the adapters do change the policy
    with pytest.raises(Exception, match="lora_rank"):
        stage_config("grpo-planner", "grpo-lora-bad", init=str(tiny_dir), merge=True)


@pytest.mark.parametrize("stage", ["grpo-decoder", "grpo-planner"])
def test_lora_grpo_resumes_exactly_trains_only_adapters_and_merges(stage_config, tiny_dir, stage):
    from diffusers import GlmImagePipeline

    from glmimage.models.adapters import PIPE_ATTR, apply_adapters

    train = {"grpo-decoder": grpo_decoder.train, "grpo-planner": grpo_planner.train}[stage]
    target = stage.removeprefix("grpo-")
    overrides: dict = {"init": str(tiny_dir), "lora_rank": 4, "merge": True, "lr": 1e-2}
    if target == "planner":
        overrides["reward_weights"] = {"background": 1.0, "objects": 1.0, "ned": 1.0, "colour": 0.1}
    full, resumed = train_and_resume(stage_config, stage, train, **overrides)
    adapters, again = adapter_weights(full / "adapters" / target), adapter_weights(resumed / "adapters" / target)
    assert adapters.keys() == again.keys() and all(torch.equal(adapters[k], again[k]) for k in adapters)
    assert any(k for k in adapters if "lora_B" in k) and any(adapters[k].abs().max() > 0 for k in adapters
                                                             if "lora_B" in k)  # B starts at zero
    # the merged directory is the start with the saved adapters merged in; everything else is the start
    component = PIPE_ATTR[target]
    merged = weights(full / "model" / component)
    pipe = GlmImagePipeline.from_pretrained(tiny_dir)
    apply_adapters(pipe, full / "adapters")
    expected = getattr(pipe, component).state_dict()
    assert merged.keys() <= expected.keys()
    assert all(torch.allclose(merged[k], expected[k], atol=1e-6) for k in merged)
    assert_changed(tiny_dir / component, full / "model" / component)
    for part in {"transformer", "vision_language_encoder", "text_encoder", "vae"} - {component}:
        assert_same(tiny_dir / part, full / "model" / part)
    check_logs(full)
