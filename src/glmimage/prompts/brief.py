"""Creative briefs: a structured description of one image, compiled into a GLM-style prompt.

GLM-Image follows prompts written as one descriptive paragraph: what the image is, where each region sits and
what it says (quoted text is rendered), the style and the colours (model card examples). A brief holds those
parts as fields; `compile_brief` writes the paragraph, keeps every free-text field literal so only the intended
texts are quoted, and reports the texts, the size and any fit warnings.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from glmimage.defaults import check_reference_count
from glmimage.engine.glyph_text import extract_glyph_texts
from glmimage.errors import InputError
from glmimage.models.sizes import LimitsLike, resolve_size
from glmimage.prompts.brand import BrandKit
from glmimage.prompts.colors import color_name, parse_hex, to_hex
from glmimage.prompts.files import load_mapping
from glmimage.prompts.glyph_text import FitWarning, fit_warnings, literal, quote_glyph
from glmimage.prompts.library import PromptLibrary, parse_ref

# role -> (opening with {subject}, default style). The openings follow the wording of the model card's examples.
ROLES: dict[str, tuple[str, str]] = {
    "poster": ("A striking poster for {subject}", "bold typography, strong composition"),
    "product photo": ("A professional studio product photograph of {subject}",
                      "soft studio lighting, clean background, sharp focus"),
    "infographic": ("A clean, information-dense infographic about {subject}",
                    "flat vector icons, clear visual hierarchy, generous spacing"),
    "slide": ("A presentation slide about {subject}", "minimal layout, large readable text"),
    "banner": ("A wide web banner for {subject}", "simple background, one clear focal point"),
    "social post": ("A social media post about {subject}", "eye-catching, mobile-friendly layout"),
    "menu": ("A restaurant menu for {subject}", "elegant layout, neatly aligned items and prices"),
    "illustration": ("An illustration of {subject}", "detailed, cohesive colours"),
    "card": ("A greeting card for {subject}", "warm, decorative design"),
}


def _role_key(role: str) -> str:
    key = " ".join(role.lower().replace("-", " ").replace("_", " ").split())
    if key not in ROLES:
        raise InputError(f"unknown role {role!r}; choose one of {sorted(ROLES)}")
    return key


@dataclass(frozen=True)
class Region:
    """One area of the layout: where it is, what it shows, and optionally the exact text it carries."""

    position: str  # "top", "bottom left", "center"...
    content: str = ""  # what the region shows, e.g. "a bold headline"
    text: str | None = None  # exact text to render there

    def __post_init__(self) -> None:
        if not self.position.strip():
            raise InputError("a layout region needs a position such as 'top' or 'bottom left'")
        if not self.content.strip() and not self.text:
            raise InputError(f"layout region {self.position!r} needs content or text")


@dataclass(frozen=True)
class Brief:
    """A creative brief, and also what a planner hook produces from a one-line request (`VisualSpec`)."""

    subject: str
    role: str = "poster"
    layout: tuple[Region, ...] = ()
    style: str = ""
    palette: tuple[str, ...] = ()
    texts: tuple[str, ...] = ()  # texts to render that belong to no region
    aspect: str | None = None  # preset name ("slide") or ratio ("16:9")
    width: int | None = None
    height: int | None = None
    references: tuple[str, ...] = ()  # image paths: a brief with references is an edit
    brand_references: tuple[str, ...] = ()  # roles from the brand kit to add as references ("logo")
    template: str | None = None  # "name" or "name@version" in a prompt library; replaces the composed body
    variables: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.subject, str) or not self.subject.strip():
            raise InputError("a brief needs a subject")
        _role_key(self.role)
        object.__setattr__(self, "palette", tuple(to_hex(parse_hex(c)) for c in self.palette))
        for t in self.texts:
            if not isinstance(t, str) or not t.strip():
                raise InputError(f"texts must be non-empty strings, got {t!r}")
        if self.template is not None:
            parse_ref(self.template)
        if not isinstance(self.variables, dict):
            raise InputError(f"brief variables must be a mapping, got {type(self.variables).__name__}")

    @property
    def glyph_texts(self) -> list[str]:
        """The texts to render, in prompt order (regions first, then the loose texts)."""
        return [r.text for r in self.layout if r.text] + list(self.texts)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["layout"] = [{k: v for k, v in r.items() if v not in (None, "")} for r in data["layout"]]
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in data.items() if v not in (None, (), [], {}, "")}


def brief_from_dict(data: dict, base_dir: Path | None = None) -> Brief:
    """Build a Brief from parsed YAML/JSON. Reference paths are taken relative to `base_dir`."""
    if not isinstance(data, dict):
        raise InputError(f"a brief must be a mapping, got {type(data).__name__}")
    known = {f for f in Brief.__dataclass_fields__}
    unknown = sorted(set(data) - known)
    if unknown:
        raise InputError(f"unknown brief keys {unknown}; known: {sorted(known)}")
    layout = []
    for i, region in enumerate(data.get("layout") or []):
        if not isinstance(region, dict) or "position" not in region:
            raise InputError(f"layout[{i}] must be a mapping with 'position' (and 'content' and/or 'text')")
        extra = set(region) - {"position", "content", "text"}
        if extra:
            raise InputError(f"layout[{i}] has unknown keys {sorted(extra)}; use position, content, text")
        layout.append(Region(position=str(region["position"]), content=str(region.get("content") or ""),
                             text=None if region.get("text") is None else str(region["text"])))
    refs = data.get("references") or []
    if base_dir is not None:
        refs = [str((base_dir / r).resolve()) for r in refs]
    kwargs = {k: v for k, v in data.items() if k not in ("layout", "references")}
    for key in ("palette", "texts", "brand_references"):
        if key in kwargs:
            value = kwargs[key]
            kwargs[key] = tuple([value] if isinstance(value, str) else value or ())
    for key in ("width", "height"):
        if kwargs.get(key) is not None and not isinstance(kwargs[key], int):
            raise InputError(f"brief {key} must be an integer, got {kwargs[key]!r}")
    try:
        return Brief(layout=tuple(layout), references=tuple(refs), **kwargs)
    except TypeError as exc:
        raise InputError(f"bad brief: {exc}") from None


def load_brief(path: str | Path) -> Brief:
    path = Path(path)
    return brief_from_dict(load_mapping(path), base_dir=path.parent)


@dataclass(frozen=True)
class CompiledPrompt:
    prompt: str
    glyph_texts: list[str]
    width: int | None
    height: int | None
    references: list[str]  # image paths (the brief's, then the brand's)
    warnings: list[FitWarning]
    template: str | None = None  # "name@version" when a library template wrote the body

    @property
    def mode(self) -> str:
        return "image-to-image" if self.references else "text-to-image"


def _sentence(text: str) -> str:
    text = text.strip()
    return text if text.endswith((".", "!", "?")) else text + "."


_PREPOSITIONS = {"at", "in", "on", "along", "across", "above", "below", "under", "behind", "beside", "near",
                 "around", "inside", "over", "between"}


def _region_phrase(region: Region) -> str:
    where = literal(region.position.strip())
    if where.split()[0].lower() not in _PREPOSITIONS:
        where = f"at the {where}"
    what = literal(region.content.strip())
    if region.text:
        what = f"{what} reading {quote_glyph(region.text)}" if what else f"the text {quote_glyph(region.text)}"
    return f"{where}, {what}"


def compose_body(brief: Brief) -> str:
    """The brief's own paragraph: opening, layout, loose texts, style, palette."""
    opening, default_style = ROLES[_role_key(brief.role)]
    parts = [_sentence(opening.format(subject=literal(brief.subject.strip())))]
    if brief.layout:
        layout = "; ".join(_region_phrase(r) for r in brief.layout)
        parts.append(_sentence(layout[0].upper() + layout[1:]))
    if brief.texts:
        parts.append(_sentence("It also shows the text " + ", ".join(quote_glyph(t) for t in brief.texts)))
    parts.append(_sentence("Style: " + literal(brief.style.strip() or default_style)))
    if brief.palette:
        parts.append(_sentence("Colour palette: " + ", ".join(f"{color_name(c)} ({c})" for c in brief.palette)))
    return " ".join(parts)


def compile_brief(
    brief: Brief,
    brand: BrandKit | None = None,
    *,
    limits: LimitsLike | None = None,
    library: PromptLibrary | None = None,
) -> CompiledPrompt:
    """Write the brief as one GLM-style prompt. With `limits` the size is resolved and checked for text fit."""
    # 1. Body: a library template, or the composed paragraph.
    template_ref = None
    if brief.template is not None:
        if library is None:
            raise InputError(f"brief uses template {brief.template!r} but no prompt library was given")
        template = library.get(*parse_ref(brief.template))
        template_ref = template.ref
        fields = {k: v for k, v in brief.to_dict().items() if k not in ("template", "variables")}
        body = template.render({**fields, **brief.variables})
    else:
        body = compose_body(brief)
    # 2. Brand: palette, type and voice sentences; then the brand's word rules over the final prompt.
    parts = [body]
    if brand is not None:
        parts += brand.phrases(include_palette=not brief.palette)  # a brief's own palette narrows the brand's
    references = list(brief.references)
    if brief.brand_references:
        if brand is None:
            raise InputError(f"brief asks for brand references {list(brief.brand_references)} but no brand kit given")
        references += [str(p) for p in brand.reference_paths(brief.brand_references)]
        parts.append(_sentence("Keep the " + " and the ".join(brief.brand_references) + " from the reference images"))
    prompt = " ".join(parts)
    if brand is not None:
        brand.check_prompt(prompt)
    if references:
        check_reference_count(len(references))
    # 3. The texts the pipeline will extract are exactly the brief's (template bodies may quote their own).
    texts = extract_glyph_texts(prompt)
    if template_ref is None and texts != [literal(t) for t in brief.glyph_texts]:
        raise AssertionError(f"compiled prompt quotes {texts}, expected {brief.glyph_texts}")  # a bug, not input
    # 4. Size and fit.
    width = height = None
    warnings: list[FitWarning] = []
    if limits is not None:
        ref_size = None
        if references and brief.width is None and brief.aspect is None:
            from PIL import Image

            with Image.open(references[0]) as im:
                ref_size = im.size
        width, height = resolve_size(limits, width=brief.width, height=brief.height, aspect=brief.aspect,
                                     reference_size=ref_size)
        warnings = fit_warnings(texts, width, height)
    elif brief.width is not None:
        width, height = brief.width, brief.height
    return CompiledPrompt(prompt=prompt, glyph_texts=texts, width=width, height=height, references=references,
                          warnings=warnings, template=template_ref)
