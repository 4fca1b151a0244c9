"""A design as data (background, panels, texts, shapes, subjects) and its renderer.

Layouts build a `Design`; edits change one and render it again, so the target of an edit differs from its source
only where the edit says. Rendering returns the ground truth measured on the pixels actually drawn (ink boxes of
the texts), never the boxes the layout intended.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from PIL import Image, ImageDraw

from glmimage.data.fonts import load_font, text_size
from glmimage.data.palette import colour
from glmimage.data.sample import Box, ObjectItem, SubjectItem, TextItem, cell_of
from glmimage.data.shapes import draw_shape
from glmimage.data.subjects import Subject, draw_subject

# How a prompt says where something is, by the third of the image that holds it.
POSITION_PHRASES = {
    "top-left": "in the top-left corner",
    "top-center": "at the top",
    "top-right": "in the top-right corner",
    "middle-left": "on the left",
    "middle-center": "in the center",
    "middle-right": "on the right",
    "bottom-left": "in the bottom-left corner",
    "bottom-center": "at the bottom",
    "bottom-right": "in the bottom-right corner",
}


@dataclass
class Panel:
    box: Box
    colour: str
    radius: int = 0
    phrase: str | None = None  # sentence for the prompt, may use {colour}


@dataclass
class Text:
    text: str
    style: str
    size: int
    x: float  # anchor: left edge ('left') or centre ('center') of the line, vertical middle
    y: float
    colour: str
    role: str
    max_w: float
    align: str = "center"
    min_size: int = 12
    phrase: str | None = None  # may use {text}, {colour}, {style}, {position}


@dataclass
class Shape:
    cls: str
    colour: str
    box: Box
    role: str = "object"
    phrase: str | None = "a {colour} {cls} {position}"


@dataclass
class SubjectEl:
    subject: Subject
    box: Box
    phrase: str | None = "the {name} {position}"


Element = Panel | Text | Shape | SubjectEl


@dataclass
class Design:
    kind: str
    width: int
    height: int
    background: str
    theme: str
    elements: list[Element] = field(default_factory=list)
    opening: str = ""  # first sentence of the prompt, may use {background}
    closing: str = ""  # style words
    layout: dict[str, Any] = field(default_factory=dict)


@dataclass
class Rendered:
    image: Image.Image
    texts: list[TextItem]
    objects: list[ObjectItem]
    subjects: list[SubjectItem]


def _fit_font(draw: ImageDraw.ImageDraw, el: Text):
    size = el.size
    while True:
        font = load_font(el.style, size)
        x0, _, x1, _ = draw.textbbox((0, 0), el.text, font=font)
        if x1 - x0 <= el.max_w or size <= el.min_size:
            return font, size
        size -= 1


def render_design(design: Design) -> Rendered:
    image = Image.new("RGB", (design.width, design.height), colour(design.background).rgb)
    draw = ImageDraw.Draw(image)
    texts, objects, subjects = [], [], []
    for el in design.elements:
        if isinstance(el, Panel):
            rgb = colour(el.colour).rgb
            x0, y0, x1, y1 = el.box
            if el.radius > 0:
                draw.rounded_rectangle([x0, y0, x1 - 1, y1 - 1], radius=el.radius, fill=rgb)
            else:
                draw.rectangle([x0, y0, x1 - 1, y1 - 1], fill=rgb)
        elif isinstance(el, Text):
            font, size = _fit_font(draw, el)
            anchor = "mm" if el.align == "center" else "lm"
            draw.text((el.x, el.y), el.text, font=font, fill=colour(el.colour).rgb, anchor=anchor)
            box = tuple(int(v) for v in draw.textbbox((el.x, el.y), el.text, font=font, anchor=anchor))
            texts.append(TextItem(el.text, box, el.colour, el.style, size, el.role, char_boxes(el, font, box)))
        elif isinstance(el, Shape):
            draw_shape(image, el.cls, el.box, colour(el.colour).rgb)
            objects.append(ObjectItem(el.cls, el.colour, el.box, cell_of(el.box, design.width, design.height), el.role))
        elif isinstance(el, SubjectEl):
            draw_subject(image, el.subject, el.box)
            subjects.append(SubjectItem(el.subject, el.box, cell_of(el.box, design.width, design.height)))
        else:
            raise TypeError(f"unknown design element {type(el).__name__}")
    return Rendered(image, texts, objects, subjects)


def char_boxes(el: Text, font, ink: Box) -> tuple[Box, ...]:
    """Each character's advance span (kerning included: prefix lengths) across the line's ink height: where the
    decoder should draw it, for training signals that bind image cells to characters."""
    origin = el.x - (font.getlength(el.text) / 2 if el.align == "center" else 0)
    edges = [origin + font.getlength(el.text[:i]) for i in range(len(el.text) + 1)]
    return tuple((round(edges[i]), ink[1], round(edges[i + 1]), ink[3]) for i in range(len(el.text)))


def _position(box: Box, design: Design) -> str:
    return POSITION_PHRASES[cell_of(box, design.width, design.height)]


def describe(design: Design) -> str:
    """The GLM-style prompt: layout words, every text in double quotes, colours, positions, style words."""
    parts = [design.opening.format(background=design.background)] if design.opening else []
    for el in design.elements:
        if el.phrase is None:
            continue
        if isinstance(el, Panel):
            parts.append(el.phrase.format(colour=el.colour))
        elif isinstance(el, Text):
            parts.append(el.phrase.format(text=el.text, colour=el.colour, style=el.style,
                                          position=_position(el_box(el), design)))
        elif isinstance(el, Shape):
            parts.append(el.phrase.format(colour=el.colour, cls=el.cls, position=_position(el.box, design)))
        elif isinstance(el, SubjectEl):
            parts.append(el.phrase.format(name=el.subject.name, position=_position(el.box, design)))
    if design.closing:
        parts.append(design.closing)
    # A phrase starting with "+" continues the previous sentence ("a white button" + "reading ...").
    sentences: list[str] = []
    for p in (p.strip() for p in parts):
        if p.startswith("+") and sentences:
            sentences[-1] += (", " if sentences[-1].count('"') else " ") + p[1:]
        elif p:
            sentences.append(p.lstrip("+"))
    text = " ".join(s[0].upper() + s[1:] + ("" if s.endswith(".") else ".") for s in sentences)
    return _ARTICLE.sub(lambda m: m.group(1) + "n " + m.group(2), text)


_ARTICLE = re.compile(r"\b([Aa]) ([aeiou])")


def el_box(el: Text) -> Box:
    """Box of a text element from its anchor and ink width (for position words)."""
    w = min(text_size(el.text, el.style, el.size)[0], el.max_w)
    half = el.size / 2
    x0 = el.x - w / 2 if el.align == "center" else el.x
    return (int(x0), int(el.y - half), int(x0 + w), int(el.y + half))
