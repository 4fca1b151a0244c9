"""Brand kits: the palette, type, voice, words and reference images a team's images must respect.

A kit is applied at three points: to prompts (palette, typography and voice sentences; forbidden and required
words checked), to edits (the kit's reference images join the request), and to QA (forbidden words in the OCR
text, palette distance of the output).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from glmimage.errors import InputError
from glmimage.prompts.colors import color_name, palette_distance, parse_hex, to_hex
from glmimage.prompts.files import load_mapping
from glmimage.prompts.glyph_text import literal

REFERENCE_ROLES = ("logo", "product", "mascot", "style")


@dataclass(frozen=True)
class BrandKit:
    name: str
    palette: tuple[str, ...] = ()  # hex colours, most important first
    typography: tuple[str, ...] = ()  # words describing the type, e.g. "geometric sans-serif", "bold headlines"
    voice: tuple[str, ...] = ()  # phrases describing the tone, e.g. "friendly", "confident"
    required_words: tuple[str, ...] = ()  # each must appear in every prompt (e.g. the brand name)
    forbidden_words: tuple[str, ...] = ()  # none may appear in a prompt or in the rendered text
    references: dict[str, str] = field(default_factory=dict)  # role (logo, product, mascot, style) -> image path
    max_palette_distance: float = 25.0  # QA threshold: mean CIE76 delta E to the nearest palette colour

    def __post_init__(self) -> None:
        if not self.name.strip():
            raise InputError("a brand kit needs a name")
        # Normalise hex spelling once so prompts and reports agree; a bad colour raises here.
        object.__setattr__(self, "palette", tuple(to_hex(parse_hex(c)) for c in self.palette))
        for role in self.references:
            if role not in REFERENCE_ROLES:
                raise InputError(f"brand reference role {role!r} is not one of {list(REFERENCE_ROLES)}")
        clash = {w.lower() for w in self.required_words} & {w.lower() for w in self.forbidden_words}
        if clash:
            raise InputError(f"words both required and forbidden in brand {self.name!r}: {sorted(clash)}")
        if self.max_palette_distance <= 0:
            raise InputError(f"max_palette_distance must be positive, got {self.max_palette_distance}")

    # --- prompts ---------------------------------------------------------------------------------------------
    def palette_phrase(self) -> str:
        return ", ".join(f"{color_name(c)} ({c})" for c in self.palette)

    def phrases(self, include_palette: bool = True) -> list[str]:
        """The sentences the kit adds to a prompt: colours, typography, tone (all literal: no glyph text)."""
        parts = []
        if self.palette and include_palette:
            parts.append(f"Brand colours: {self.palette_phrase()}.")
        if self.typography:
            parts.append(f"Typography: {literal(', '.join(self.typography))}.")
        if self.voice:
            parts.append(f"Tone: {literal(', '.join(self.voice))}.")
        return parts

    def apply_to_prompt(self, prompt: str, include_palette: bool = True) -> str:
        """A prompt (a generation or an edit instruction) with the kit's sentences, checked against its word
        rules. For an edit, add the kit's images with `load_references(["logo"])`."""
        branded = " ".join([prompt.strip(), *self.phrases(include_palette)])
        self.check_prompt(branded)
        return branded

    def check_prompt(self, prompt: str) -> None:
        """Raise InputError if the prompt uses a forbidden word or lacks a required one."""
        found = find_words(prompt, self.forbidden_words)
        if found:
            raise InputError(f"prompt uses words forbidden by brand {self.name!r}: {found}")
        missing = [w for w in self.required_words if not find_words(prompt, [w])]
        if missing:
            raise InputError(f"prompt lacks words required by brand {self.name!r}: {missing}")

    # --- edits -----------------------------------------------------------------------------------------------
    def reference_paths(self, roles: list[str] | tuple[str, ...]) -> list[Path]:
        paths = []
        for role in roles:
            if role not in self.references:
                raise InputError(f"brand {self.name!r} has no {role!r} reference; it has {sorted(self.references)}")
            path = Path(self.references[role])
            if not path.is_file():
                raise InputError(f"brand {self.name!r} {role} reference {str(path)!r} does not exist")
            paths.append(path)
        return paths

    def load_references(self, roles: list[str] | tuple[str, ...]) -> list:
        from PIL import Image

        images = []
        for path in self.reference_paths(roles):
            with Image.open(path) as im:
                images.append(im.convert("RGB"))
        return images

    # --- QA --------------------------------------------------------------------------------------------------
    def qa(self, image, ocr_text: str) -> BrandQAReport:
        """Check a generated image: forbidden words in its OCR text, required words missing, palette distance."""
        distance = palette_distance(image, list(self.palette)) if self.palette else None
        return BrandQAReport(
            forbidden_found=find_words(ocr_text, self.forbidden_words),
            palette_distance=distance,
            max_palette_distance=self.max_palette_distance,
        )


@dataclass(frozen=True)
class BrandQAReport:
    forbidden_found: list[str]
    palette_distance: float | None  # None when the kit has no palette
    max_palette_distance: float

    @property
    def on_palette(self) -> bool:
        return self.palette_distance is None or self.palette_distance <= self.max_palette_distance

    @property
    def passed(self) -> bool:
        return not self.forbidden_found and self.on_palette

    def problems(self) -> list[str]:
        out = [f"forbidden word {w!r} in the rendered text" for w in self.forbidden_found]
        if not self.on_palette:
            out.append(f"colours off-brand: mean delta E {self.palette_distance:.1f} > {self.max_palette_distance}")
        return out


def find_words(text: str, words) -> list[str]:
    """The words (or phrases) that occur in `text` as whole words, case-insensitively, in the given order.
    OCR output often drops or merges spaces, so a phrase also matches with any whitespace between its words."""
    found = []
    for word in words:
        parts = [re.escape(p) for p in word.split()]
        if parts and re.search(r"(?<!\w)" + r"\s*".join(parts) + r"(?!\w)", text, flags=re.IGNORECASE):
            found.append(word)
    return found


def load_brand_kit(path: str | Path) -> BrandKit:
    """Read a kit from YAML or JSON; reference paths are relative to the kit file."""
    path = Path(path)
    data = load_mapping(path)
    known = {"name", "palette", "typography", "voice", "required_words", "forbidden_words", "references",
             "max_palette_distance"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise InputError(f"{path}: unknown brand kit keys {unknown}; known: {sorted(known)}")
    refs = {role: str((path.parent / p).resolve()) for role, p in (data.get("references") or {}).items()}
    return BrandKit(
        name=str(data.get("name", "")),
        palette=tuple(_as_list(data, "palette", path)),
        typography=tuple(_as_list(data, "typography", path)),
        voice=tuple(_as_list(data, "voice", path)),
        required_words=tuple(_as_list(data, "required_words", path)),
        forbidden_words=tuple(_as_list(data, "forbidden_words", path)),
        references=refs,
        max_palette_distance=float(data.get("max_palette_distance", 25.0)),
    )


def _as_list(data: dict, key: str, path: Path) -> list[str]:
    value = data.get(key) or []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InputError(f"{path}: {key!r} must be a list of strings, got {value!r}")
    return value
