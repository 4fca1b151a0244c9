"""Word cards: one large quoted word, prompts phrased many ways (some phrasings only in held-out splits), and the
renderer's per-character boxes."""

from __future__ import annotations

import pytest

from glmimage.data import World, WorldConfig
from glmimage.data.layouts import KINDS, WORD_CARD_PHRASINGS, word_card_phrasings
from glmimage.data.vocabulary import all_words
from glmimage.errors import InputError
from glmimage.prompts.glyph_text import extract_glyph_texts


def cards(split: str, n: int = 40):
    world = World(WorldConfig(kinds=("word_card",), split=split))
    return [world.sample(i) for i in range(n)]


def test_the_default_mix_is_unchanged_and_word_cards_are_asked_for():
    assert "word_card" not in KINDS  # sample i of the default world stays what it was
    assert World(WorldConfig()).sample(0).kind == "poster"
    assert World(WorldConfig(kinds=("word_card",))).sample(3).kind == "word_card"
    with pytest.raises(InputError):
        WorldConfig(kinds=("word_cards",))


def test_word_cards_quote_one_large_text_that_the_prompt_names():
    for sample in cards("train"):
        assert len(sample.texts) == 1
        text = sample.texts[0]
        assert extract_glyph_texts(sample.prompt) == [text.text]
        assert text.box[3] - text.box[1] >= 24, (sample.prompt, text.box)  # display type at 256 px
        assert sample.layout["background"] in sample.prompt


def test_held_out_phrasings_are_never_trained_on():
    train, test = set(word_card_phrasings("train")), set(word_card_phrasings("test"))
    assert train and test and not train & test
    assert train | set(word_card_phrasings("validation")) | test <= set(WORD_CARD_PHRASINGS)
    assert {s.layout["phrasing"] for s in cards("test")} <= test
    assert len({s.layout["phrasing"] for s in cards("train", 60)}) >= 8  # real variety, not one template


def test_made_up_words_only_in_training():
    vocabulary = {w.lower() for w in all_words()}
    train_words = {s.texts[0].text.lower() for s in cards("train", 60)}
    test_words = {w for s in cards("test") for w in s.texts[0].text.lower().split()}
    assert train_words - vocabulary  # pseudo-words teach letters beyond the vocabulary
    assert test_words <= vocabulary


def test_character_boxes_tile_the_text_in_order():
    for sample in cards("train", 12) + [World(WorldConfig()).sample(i) for i in range(7)]:
        for text in sample.texts:
            boxes = text.char_boxes
            assert len(boxes) == len(text.text)
            for left, right in zip(boxes, boxes[1:]):
                assert left[2] == right[0]  # advance spans touch, left to right
            ink_x0, _, ink_x1, _ = text.box
            assert abs(boxes[0][0] - ink_x0) <= 0.15 * text.size and abs(boxes[-1][2] - ink_x1) <= 0.15 * text.size
            assert all(b[1] == text.box[1] and b[3] == text.box[3] for b in boxes)
