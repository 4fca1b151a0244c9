"""CVTG-2K word accuracy / NED and the Flow-GRPO OCR reward, on cases worked out by hand."""

from __future__ import annotations

import pytest

from glmimage.evaluation.text_metrics import (
    cvtg_prompt_words,
    flow_grpo_ocr_reward,
    mean_ocr_reward,
    normalized_edit_similarity,
    score_texts,
    word_accuracy,
    word_similarity,
    words_of,
)


def test_cvtg_ground_truth_words_come_from_single_quotes():
    prompt = "A sign that says 'Open Daily' next to a board reading 'FRESH bread' and \"not this\""
    assert cvtg_prompt_words(prompt) == ["open", "daily", "fresh", "bread"]


def test_word_accuracy_is_exact_membership():
    ocr = words_of(["BIG SALE", "today only"])
    assert word_accuracy(["big", "sale"], ocr) == 1.0
    assert word_accuracy(["big", "sales", "now"], ocr) == pytest.approx(1 / 3)
    assert word_accuracy(["big"], []) == 0.0


def test_ned_uses_the_closest_ocr_word():
    # "sale" vs "sole": distance 1 over max length 4 -> 0.75; "bread" vs nothing closer than "bead" (1/5) -> 0.8
    assert word_similarity("sale", ["sole", "xx"]) == pytest.approx(0.75)
    assert word_similarity("bread", ["bead", "sale"]) == pytest.approx(0.8)
    assert word_similarity("abc", []) == 0.0
    # normalised by the longer of the two words
    assert word_similarity("ab", ["abcd"]) == pytest.approx(0.5)
    assert normalized_edit_similarity(["sale", "bread"], ["sole", "bead"]) == pytest.approx((0.75 + 0.8) / 2)


def test_score_texts_reports_per_word():
    s = score_texts(["SUMMER SALE", "$4.99"], ["SUMMER SALE", "$4.90"])
    assert s.gt_words == ("summer", "sale", "$4.99")
    assert s.correct == (True, True, False)
    assert s.word_accuracy == pytest.approx(2 / 3)
    assert s.ned == pytest.approx((1 + 1 + 0.8) / 3)


def test_flow_grpo_reward():
    assert flow_grpo_ocr_reward("Big Sale", ["Welcome to the BIGSALE", "today"]) == 1.0  # contained
    assert flow_grpo_ocr_reward("sale", ["sole"]) == pytest.approx(0.75)  # one substitution
    assert flow_grpo_ocr_reward("sale", []) == 0.0  # nothing read: distance capped at len(target)
    assert flow_grpo_ocr_reward("sale", ["a very long unrelated sentence"]) == 0.0
    assert mean_ocr_reward(["sale", "zzzz"], ["SALE"]) == pytest.approx(0.5)


def test_empty_ground_truth_is_rejected():
    with pytest.raises(ValueError):
        word_accuracy([], ["x"])
    with pytest.raises(ValueError):
        flow_grpo_ocr_reward("  ", ["x"])
    with pytest.raises(ValueError):
        score_texts([""], ["x"])
