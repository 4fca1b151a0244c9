"""The glyph-alignment stage's data: strings and one-edit variants that never leak held-out words."""

from __future__ import annotations

import pytest

from glmimage.data.vocabulary import all_words, split_of
from glmimage.errors import InputError
from glmimage.training import common, glyph


@pytest.fixture(scope="module")
def cfg():
    return common.load_config(glyph.GlyphTrainConfig, overrides={"image_height": 32, "image_width": 96})


def edit_distance(a: str, b: str) -> int:
    """Levenshtein with adjacent swaps counted as one edit."""
    d = [[max(i, j) if min(i, j) == 0 else 0 for j in range(len(b) + 1)] for i in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] != b[j - 1]))
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
    return d[-1][-1]


def test_training_strings_hold_no_held_out_word_and_variants_differ_by_one_edit(cfg):
    held = {w for w in all_words() if split_of("word:" + w) != "train"}
    assert held  # the world does hold words back
    items = glyph.pairs(cfg, "train", list(range(400)))
    for text, variant, _ in items:
        assert text != variant and edit_distance(text, variant) == 1, (text, variant)
        for word in (text + " " + variant).lower().split():
            assert word not in held, (text, variant)
    assert any(t.isupper() for t, _, _ in items) and any(t.islower() for t, _, _ in items)
    assert glyph.pairs(cfg, "train", [7]) == glyph.pairs(cfg, "train", [7])  # same on every call and machine


def test_validation_strings_are_validation_words(cfg):
    items = glyph.validation_pairs(cfg, 10)
    assert len(items) == 10
    assert all(split_of("word:" + t.lower()) == "validation" for t, _, _ in items)


def test_a_batch_renders_every_string_and_its_variant(cfg):
    texts, images = glyph.batch(cfg, glyph.pairs(cfg, "train", [0, 1, 2]))
    assert len(texts) == 6 and images.shape == (6, 1, 32, 96)
    assert images.min() >= -1 and images.max() <= 1
    assert all(float(im.max() - im.min()) > 0.5 for im in images)  # ink on background, contrast kept


def test_clip_loss_prefers_matching_pairs():
    import torch

    x = torch.nn.functional.normalize(torch.randn(6, 8), dim=-1)
    matched, _ = glyph.clip_loss(x, x, torch.tensor(10.0))
    shuffled, _ = glyph.clip_loss(x, x.roll(1, 0), torch.tensor(10.0))
    assert matched < shuffled


def test_config_errors(cfg):
    with pytest.raises(InputError, match="multiples of 8"):
        common.load_config(glyph.GlyphTrainConfig, overrides={"image_height": 30})
    with pytest.raises(InputError, match="word_share"):
        common.load_config(glyph.GlyphTrainConfig, overrides={"word_share": 1.5})
