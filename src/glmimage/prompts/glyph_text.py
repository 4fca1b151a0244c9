"""Glyph text: the quoted text of a prompt, which the glyph encoder spells for the decoder.

Extraction matches the reference pipeline (`GlmImagePipeline.get_glyph_texts`): single quotes, straight double
quotes, curly double quotes and corner brackets, collected in that order (each pattern scans the whole prompt).
"""

from __future__ import annotations

import re

# Same patterns and order as diffusers' GlmImagePipeline.get_glyph_texts (diffusers 0.42.1).
_PATTERNS = (
    re.compile(r"'([^']*)'"),
    re.compile(r"\u201c([^\u201c\u201d]*)\u201d"),
    re.compile(r'"([^"]*)"'),
    re.compile(r"「([^「」]*)」"),
)


def extract_glyph_texts(prompt: str) -> list[str]:
    """The texts the prompt asks to render, in the reference pipeline's order."""
    texts: list[str] = []
    for pattern in _PATTERNS:
        texts.extend(pattern.findall(prompt))
    return texts
