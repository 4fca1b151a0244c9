import random

import pytest
from diffusers import GlmImagePipeline

from glmimage.errors import InputError
from glmimage.prompts.glyph_text import (
    LITERAL_QUOTES,
    GlyphFit,
    extract_glyph_texts,
    fit_warnings,
    glyph_spans,
    literal,
    protect_apostrophes,
    quote_glyph,
    resolve_escapes,
)


def reference(prompt: str) -> list[str]:
    return GlmImagePipeline.get_glyph_texts(None, prompt)[0]  # the method does not use self


ALPHABET = list("ab '\"“”「」\\,.") + ["SALE", "Joe's"]


def random_text(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(ALPHABET) for _ in range(n))


def test_extraction_still_matches_the_reference_on_random_prompts():
    rng = random.Random(0)
    for _ in range(300):
        prompt = random_text(rng, rng.randint(0, 30))
        assert extract_glyph_texts(prompt) == reference(prompt)


def test_literal_text_adds_no_glyph_text_and_quote_glyph_adds_exactly_one():
    rng = random.Random(1)
    for _ in range(200):
        free = [random_text(rng, rng.randint(0, 15)) for _ in range(3)]
        texts = [random_text(rng, rng.randint(1, 10)) + "x" for _ in range(2)]
        prompt = literal(free[0]) + quote_glyph(texts[0]) + literal(free[1]) + quote_glyph(texts[1]) + literal(free[2])
        assert reference(prompt) == [literal(t) for t in texts]
        assert reference(literal(free[0] + free[1])) == []


def test_literal_uses_look_alikes_and_leaves_other_text_alone():
    assert literal("Joe's \"best\" 「tea」") == "Joe\u2019s \u2033best\u2033 \uff62tea\uff63"
    assert literal("plain text, 50% off!") == "plain text, 50% off!"
    assert set(LITERAL_QUOTES.values()).isdisjoint(LITERAL_QUOTES)


def test_quote_glyph_refuses_blank_text():
    with pytest.raises(InputError, match="glyph text"):
        quote_glyph("   ")


def test_escapes_write_literal_quotes_in_hand_written_prompts():
    prompt = r'A sign for Joe\'s diner that says "OPEN" and a \"quoted\" word, and a backslash \\'
    resolved = resolve_escapes(prompt)
    assert extract_glyph_texts(resolved) == ["OPEN"]
    assert "Joe\u2019s" in resolved and "\u2033quoted\u2033" in resolved and resolved.endswith("backslash \\")
    # Without the escape the apostrophe pairs with nothing here, but two of them swallow text:
    assert extract_glyph_texts("Joe's and Ann's \"OPEN\"") == ["s and Ann", "OPEN"]
    assert extract_glyph_texts(protect_apostrophes("Joe's and Ann's \"OPEN\"")) == ["OPEN"]


def test_glyph_spans_follow_prompt_order_unlike_the_reference_order():
    prompt = "first \"B\" then 'A' then 「C」"
    assert extract_glyph_texts(prompt) == ["A", "B", "C"]
    spans = glyph_spans(prompt)
    assert [t for _, _, t in spans] == ["B", "A", "C"]
    assert all(prompt[s + 1:e - 1] == t for s, e, t in spans)


def test_fit_warnings_for_long_words_and_too_much_text():
    assert fit_warnings(["SALE", "50% OFF"], 256, 256) == []
    long_word = fit_warnings(["SUPERCALIFRAGILISTIC"], 128, 512)
    assert len(long_word) == 1 and "'SUPERCALIFRAGILISTIC'" in long_word[0].message and "128 px" in long_word[0].message
    crowded = fit_warnings(["word " * 60], 256, 256)
    assert any(w.text == "" and "240 characters" in w.message for w in crowded)
    # A larger image takes the same text without complaint; a larger minimum glyph makes it complain again.
    assert fit_warnings(["word " * 60], 1024, 1024) == []
    assert fit_warnings(["SALE"], 64, 64, GlyphFit(min_glyph_height=32)) != []


def test_glyph_fit_validates():
    with pytest.raises(ValueError):
        GlyphFit(max_text_area=0)
