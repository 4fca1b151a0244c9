"""Figures the lettering targets are read from: word accuracy by text height, the largest text, the background
colour; and the VAE gate (the ground truth through a model's VAE)."""

from __future__ import annotations

from PIL import Image

from glmimage.data import World, WorldConfig
from glmimage.evaluation import baselines
from glmimage.evaluation.t2i import evaluate_t2i, height_bucket, summarize_t2i


def test_height_buckets():
    assert [height_bucket(h) for h in (8, 16, 23, 24, 31, 32, 90)] == ["<16", "16-24", "16-24", "24-32", "24-32",
                                                                      ">=32", ">=32"]


def test_ground_truth_reads_in_every_bucket_and_a_blank_image_in_none():
    samples = [World(WorldConfig(split="test")).sample(i) for i in range(4)]
    samples += [World(WorldConfig(split="test", kinds=("word_card",))).sample(i) for i in range(4)]
    truth = evaluate_t2i(samples, baselines.ground_truth, progress=False)[1]
    assert truth["largest_text_right"] == 1.0 and truth["background_right"] == 1.0
    buckets = truth["word_accuracy_by_height"]
    assert ">=32" in buckets and sum(b["words"] for b in buckets.values()) == truth["words"]
    assert all(b["word_accuracy"] > 0.9 for name, b in buckets.items() if name != "<16")

    def blank(sample):
        return Image.new("RGB", sample.image.size, (255, 0, 255))

    records, summary = evaluate_t2i(samples, blank, progress=False)
    assert summary["largest_text_right"] == 0.0 and summary["background_right"] == 0.0
    assert all(b["word_accuracy"] == 0.0 for b in summary["word_accuracy_by_height"].values())
    assert summarize_t2i(records[4:])["by_kind"].keys() == {"word_card"}


def test_vae_reconstruction_keeps_the_size_and_changes_the_pixels():
    sample = World(WorldConfig(size=128, kinds=("word_card",))).sample(0)
    out = baselines.vae_reconstruction("tiny")(sample)
    assert out.size == sample.image.size and out.tobytes() != sample.image.tobytes()
