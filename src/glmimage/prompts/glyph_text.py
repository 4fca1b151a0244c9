"""Writing glyph text: quoting a text so that the engine reads exactly it, writing quotes that it does not read,
and whether the quoted texts will fit. Which texts a prompt quotes is the engine's rule
(`glmimage.engine.glyph_text`); `extract_glyph_texts` and `glyph_spans` are re-exported here for the callers
that have always found them in this module (the data world's tests among them).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from glmimage.engine.glyph_text import extract_glyph_texts, glyph_spans
from glmimage.errors import InputError

__all__ = [
    "LITERAL_QUOTES",
    "FitWarning",
    "GlyphFit",
    "extract_glyph_texts",
    "fit_warnings",
    "glyph_spans",
    "literal",
    "protect_apostrophes",
    "quote_glyph",
    "resolve_escapes",
]

# --- Writing quotes that are not glyph text ---------------------------------------------------------------------
# Every delimiter the engine reads (engine.glyph_text.GLYPH_PATTERNS) scans the whole prompt, so one apostrophe
# ("the cat's hat") pairs with the next one and turns everything between into glyph text. A literal quote is
# therefore written with a look-alike character that no pattern matches: the typographic apostrophe U+2019 for ',
# the double prime U+2033 for ", and the fullwidth brackets U+FF62/U+FF63 for 「」. In hand-written prompts, a
# backslash before a delimiter asks for the look-alike.
LITERAL_QUOTES: dict[str, str] = {
    "'": "\u2019",
    '"': "\u2033",
    "\u201c": "\u2033",
    "\u201d": "\u2033",
    "「": "\uff62",
    "」": "\uff63",
}
_ESCAPED = re.compile(r"\\(['\"\u201c\u201d「」\\])")


def literal(text: str) -> str:
    """`text` with every quote delimiter replaced by its look-alike, so it adds no glyph text to a prompt."""
    return "".join(LITERAL_QUOTES.get(ch, ch) for ch in text)


def quote_glyph(text: str) -> str:
    """`text` as one glyph text: straight double quotes around it, quotes inside it made literal.

    extract_glyph_texts(quote_glyph(t)) == [literal(t)] for any t, wherever it sits in a prompt whose other
    parts are literal too.
    """
    if not text.strip():
        raise InputError("a glyph text must contain something besides spaces")
    return f'"{literal(text)}"'


def resolve_escapes(prompt: str) -> str:
    """Turn backslash-escaped delimiters (\\' \\" \\“ \\” \\「 \\」) into literal look-alikes, and \\\\ into \\."""
    return _ESCAPED.sub(lambda m: "\\" if m.group(1) == "\\" else LITERAL_QUOTES[m.group(1)], prompt)


# --- Will the quoted text fit? ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class GlyphFit:
    """What a legible glyph needs. One DiT token covers 16x16 pixels (8x VAE, patch 2), and a glyph smaller than
    one token has no latent cell of its own, so 16 px is the smallest cap height worth asking for."""

    min_glyph_height: int = 16
    glyph_aspect: float = 0.6  # average advance width / height of a sans-serif letter
    max_text_area: float = 0.5  # share of the picture that text may cover and still leave room for the rest

    def __post_init__(self) -> None:
        if self.min_glyph_height < 1 or self.glyph_aspect <= 0 or not 0 < self.max_text_area <= 1:
            raise ValueError(f"invalid GlyphFit {self}")


@dataclass(frozen=True)
class FitWarning:
    text: str  # the glyph text concerned ("" for the prompt as a whole)
    message: str


def fit_warnings(texts: list[str], width: int, height: int, fit: GlyphFit = GlyphFit()) -> list[FitWarning]:
    """Warnings for glyph texts that cannot be rendered legibly at width x height (a heuristic, not a promise)."""
    glyph_w = fit.min_glyph_height * fit.glyph_aspect
    line_h = fit.min_glyph_height * 1.2  # line spacing
    warnings: list[FitWarning] = []
    for text in texts:
        longest = max(text.split(), key=len, default="")
        if len(longest) * glyph_w > width:
            warnings.append(FitWarning(text, (
                f"the word {longest!r} ({len(longest)} characters) needs at least "
                f"{math.ceil(len(longest) * glyph_w)} px "
                f"at the smallest legible glyph ({fit.min_glyph_height} px), wider than the {width} px image"
            )))
    chars = sum(len(t.replace(" ", "")) for t in texts)
    capacity = int(width * height * fit.max_text_area // (glyph_w * line_h))
    if chars > capacity:
        warnings.append(FitWarning("", (
            f"the quoted texts hold {chars} characters; about {capacity} fit legibly on {width}x{height} "
            f"(glyphs >= {fit.min_glyph_height} px over at most {fit.max_text_area:.0%} of the image): "
            f"shorten the texts or choose a larger size"
        )))
    return warnings


_APOSTROPHE = re.compile(r"(?<=\w)'(?=\w)")


def protect_apostrophes(text: str) -> str:
    """Make word-internal apostrophes ("Acme's", "don't") literal, so that free text written by people does not
    open glyph text. A heuristic for requests, not part of the reference's extraction."""
    return _APOSTROPHE.sub(LITERAL_QUOTES["'"], text)
