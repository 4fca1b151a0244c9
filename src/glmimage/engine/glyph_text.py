"""Glyph text: the quoted text of a prompt, which the glyph encoder spells for the decoder (model behaviour).

Extraction matches the reference pipeline (`GlmImagePipeline.get_glyph_texts`): single quotes, straight double
quotes, curly double quotes and corner brackets, collected in that order (each pattern scans the whole prompt).
Torch-free: the prompts layer (writing prompts whose quotes are what the engine will read) imports it too.
"""

from __future__ import annotations

import re

# Same patterns and order as diffusers' GlmImagePipeline.get_glyph_texts (diffusers 0.42.1).
GLYPH_PATTERNS = (
    re.compile(r"'([^']*)'"),
    re.compile(r"\u201c([^\u201c\u201d]*)\u201d"),
    re.compile(r'"([^"]*)"'),
    re.compile(r"「([^「」]*)」"),
)


def extract_glyph_texts(prompt: str) -> list[str]:
    """The texts the prompt asks to render, in the reference pipeline's order."""
    texts: list[str] = []
    for pattern in GLYPH_PATTERNS:
        texts.extend(pattern.findall(prompt))
    return texts


def glyph_spans(prompt: str) -> list[tuple[int, int, str]]:
    """(start, end, text) of every quoted span the reference would extract, in the order they appear in the
    prompt (extract_glyph_texts keeps the reference's order: by delimiter kind first)."""
    spans = [(m.start(), m.end(), m.group(1)) for pattern in GLYPH_PATTERNS for m in pattern.finditer(prompt)]
    return sorted(spans)
