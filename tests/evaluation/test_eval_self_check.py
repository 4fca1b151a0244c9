"""The harness proves itself: the world's own renders score at the top, noise and shuffled pairs at the bottom.
One sample of every design kind and every edit kind; the bounds are the ones docs/data_and_eval.md reports."""

from __future__ import annotations

import pytest

from glmimage.data import EDIT_KINDS, KINDS, World, WorldConfig
from glmimage.evaluation import baselines
from glmimage.evaluation.editing import evaluate_edits
from glmimage.evaluation.t2i import evaluate_t2i

WORLD = World(WorldConfig(split="test"))


@pytest.fixture(scope="module")
def samples():
    return [WORLD.sample(i) for i in range(len(KINDS))]


@pytest.fixture(scope="module")
def edit_samples():
    return [WORLD.edit_sample(i) for i in range(len(EDIT_KINDS))]


def test_ground_truth_scores_the_maximum(samples, edit_samples):
    _, t2i = evaluate_t2i(samples, baselines.ground_truth, progress=False)
    assert t2i["word_accuracy"] >= 0.97 and t2i["ned"] >= 0.98 and t2i["ocr_reward"] >= 0.97
    assert t2i["object_correct"] == 1.0
    records, edits = evaluate_edits(edit_samples, baselines.ground_truth_edit, progress=False)
    assert edits["success"] == 1.0, [(r.kind, r.details) for r in records if not r.success]
    assert edits["psnr_outside"] == 100.0 and edits["ssim_outside"] >= 0.99
    assert edits["subject_similarity"] >= 0.7


def test_noise_scores_nothing(samples, edit_samples):
    # noise is slow to OCR (many false line candidates): a subset of kinds suffices
    _, t2i = evaluate_t2i(samples[:3], baselines.noise(), progress=False)
    assert t2i["word_accuracy"] == 0.0 and t2i["ocr_reward"] <= 0.05 and t2i["object_present"] == 0.0
    _, edits = evaluate_edits(edit_samples[::2], baselines.noise_edit(), progress=False)
    assert edits["success"] == 0.0 and edits["ssim_outside"] < 0.1 and edits["subject_similarity"] < 0.15


def test_shuffled_pairs_score_near_zero(samples, edit_samples):
    _, t2i = evaluate_t2i(samples, baselines.shuffled(samples), progress=False)
    assert t2i["word_accuracy"] <= 0.1 and t2i["object_correct"] <= 0.1
    _, edits = evaluate_edits(edit_samples, baselines.shuffled_edit(edit_samples), progress=False)
    assert edits["success"] <= 0.15
