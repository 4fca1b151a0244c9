"""Text-rendering metrics as pure functions: CVTG-2K word accuracy and NED, and the Flow-GRPO OCR reward.

Definitions, as the field uses them (CVTG-2K benchmark; Flow-GRPO's OCR reward):
- CVTG-2K: ground-truth words = the quoted texts, lower-cased, split on spaces; the OCR gives a word list
  (its lines lower-cased and split on spaces). Word accuracy = ground-truth words found exactly in the OCR
  list / ground-truth words. NED = mean over ground-truth words of 1 - Levenshtein(gt, closest OCR word) /
  max(len(gt), len(that word)); a word with no OCR word at all scores 0.
- Flow-GRPO OCR reward: target = quoted text, recognised = all OCR lines joined; both lower-cased with spaces
  removed; distance = 0 if the target is contained in the recognised text, else Levenshtein(recognised,
  target) capped at len(target); reward = 1 - distance / len(target).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from Levenshtein import distance as levenshtein

_SINGLE_QUOTED = re.compile(r"'(.*?)'")


def cvtg_prompt_words(prompt: str) -> list[str]:
    """Ground-truth words of a CVTG-2K style prompt: the single-quoted texts, lower-cased, split on spaces."""
    return [w for text in _SINGLE_QUOTED.findall(prompt) for w in text.lower().split()]


def words_of(texts: list[str]) -> list[str]:
    """Lower-cased words of a list of texts (ground-truth texts or OCR lines)."""
    return [w for text in texts for w in text.lower().split()]


def word_accuracy(gt_words: list[str], ocr_words: list[str]) -> float:
    """Share of ground-truth words that occur exactly in the OCR word list (CVTG-2K)."""
    if not gt_words:
        raise ValueError("word accuracy needs at least one ground-truth word")
    found = set(ocr_words)
    return sum(w in found for w in gt_words) / len(gt_words)


def word_similarity(gt: str, ocr_words: list[str]) -> float:
    """1 - normalised edit distance to the closest OCR word (0 when the OCR found nothing)."""
    best = 0.0
    for w in ocr_words:
        best = max(best, 1.0 - levenshtein(gt, w) / max(len(gt), len(w), 1))
        if best == 1.0:
            break
    return best


def normalized_edit_similarity(gt_words: list[str], ocr_words: list[str]) -> float:
    """CVTG-2K NED: mean over ground-truth words of word_similarity."""
    if not gt_words:
        raise ValueError("NED needs at least one ground-truth word")
    return sum(word_similarity(w, ocr_words) for w in gt_words) / len(gt_words)


@dataclass(frozen=True)
class TextScore:
    gt_words: tuple[str, ...]
    ocr_words: tuple[str, ...]
    correct: tuple[bool, ...]  # per ground-truth word
    similarity: tuple[float, ...]  # per ground-truth word

    @property
    def word_accuracy(self) -> float:
        return sum(self.correct) / len(self.correct)

    @property
    def ned(self) -> float:
        return sum(self.similarity) / len(self.similarity)


def score_texts(gt_texts: list[str], ocr_lines: list[str]) -> TextScore:
    """Per-word CVTG-2K scores of one image: the texts it should show against the lines the OCR read."""
    gt, ocr = words_of(gt_texts), words_of(ocr_lines)
    if not gt:
        raise ValueError("score_texts needs at least one ground-truth word")
    found = set(ocr)
    return TextScore(tuple(gt), tuple(ocr), tuple(w in found for w in gt), tuple(word_similarity(w, ocr) for w in gt))


def flow_grpo_ocr_reward(target: str, ocr_lines: list[str]) -> float:
    """Flow-GRPO's OCR reward for one quoted target text, in [0, 1]."""
    want = target.replace(" ", "").lower()
    if not want:
        raise ValueError("the OCR reward needs a non-empty target text")
    seen = "".join(ocr_lines).replace(" ", "").lower()
    dist = 0 if want in seen else min(levenshtein(seen, want), len(want))
    return 1.0 - dist / len(want)


def mean_ocr_reward(targets: list[str], ocr_lines: list[str]) -> float:
    """The Flow-GRPO reward averaged over several quoted texts of one prompt."""
    targets = [t for t in targets if t.strip()]
    if not targets:
        raise ValueError("mean_ocr_reward needs at least one non-empty target")
    return sum(flow_grpo_ocr_reward(t, ocr_lines) for t in targets) / len(targets)
