"""Layouts: one builder per kind of design (poster, banner, social post, slide, recipe card, price tag, dashboard).

Each builder places texts first and then objects in the thirds of the image the texts left free, so objects never
overlap text and their position words ("top-left", "on the right") are exact.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from glmimage.data.design import Design, Panel, Shape, SubjectEl, Text, el_box
from glmimage.data.fonts import BODY_FONTS, TITLE_FONTS, fit_size, text_size
from glmimage.data.heldout import SplitPicker
from glmimage.data.palette import MIN_TEXT_CONTRAST, RGB, colour, contrast_ratio, rgb_distance
from glmimage.data.sample import COLS, ROWS, Box, cell_of
from glmimage.data.shapes import SHAPE_CLASSES
from glmimage.data.subjects import Subject, subject_box

KINDS = ("poster", "banner", "social", "slide", "recipe", "price_tag", "dashboard")
# Kinds a world may be asked for besides the default mix (which stays as it is, so sample i of a split never changes):
# word cards teach lettering, one large quoted word or two on a plain background.
EXTRA_KINDS = ("word_card",)
ALL_KINDS = KINDS + EXTRA_KINDS

# Width:height choices per kind when the world mixes aspect ratios (the area stays about size^2).
ASPECTS = {
    "poster": ((1, 1), (3, 4), (2, 3)),
    "banner": ((2, 1), (3, 1)),
    "social": ((4, 5), (9, 16)),
    "slide": ((16, 9), (4, 3)),
    "recipe": ((1, 1), (3, 4), (4, 3)),
    "price_tag": ((1, 1), (4, 3)),
    "dashboard": ((4, 3), (16, 9), (1, 1)),
    "word_card": ((1, 1), (4, 3), (3, 4)),
}
KIND_NOUNS = {
    "poster": "poster",
    "banner": "web banner",
    "social": "social media post",
    "slide": "presentation title slide",
    "recipe": "recipe card",
    "price_tag": "price tag",
    "dashboard": "dashboard",
    "word_card": "word card",
}


@dataclass(frozen=True)
class Theme:
    name: str
    backgrounds: tuple[str, ...]
    panels: tuple[str, ...]
    texts: tuple[str, ...]
    style_words: tuple[str, ...]


THEMES = {
    "dark": Theme("dark", ("navy", "charcoal", "forest green", "maroon"), ("charcoal", "navy", "white", "cream"),
                  ("white", "yellow", "cream"), ("dark modern style", "sleek dark theme")),
    "light": Theme("light", ("cream", "light gray", "white"), ("white", "navy", "light gray", "sky blue"),
                   ("black", "navy", "charcoal", "maroon"), ("clean minimalist style", "light flat design")),
    "pastel": Theme("pastel", ("mint", "peach", "lavender", "sky blue"), ("white", "cream", "navy"),
                    ("charcoal", "navy", "black", "maroon"), ("soft pastel style", "friendly pastel palette")),
    "bold": Theme("bold", ("red", "blue", "purple", "teal", "orange", "green"),
                  ("white", "cream", "charcoal", "yellow"),
                  ("white", "black", "yellow"), ("bold flat vector style", "vibrant high-contrast design")),
}

MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
CALLS_TO_ACTION = ("SHOP NOW", "JOIN US", "BUY NOW", "BOOK NOW", "LEARN MORE", "SIGN UP", "ORDER NOW", "TRY IT")
MIN_PANEL_SEPARATION = 60.0


def aspect_word(width: int, height: int) -> str:
    r = width / height
    return ("square" if 0.9 <= r <= 1.1 else "wide" if r >= 1.6 else "landscape" if r > 1
            else "tall" if r <= 0.65 else "portrait")


class Builder:
    """Incrementally builds a Design, keeping track of surfaces and colours so that every text is readable and
    every object stands out from what it sits on."""

    def __init__(self, kind: str, width: int, height: int, rng: random.Random, picker: SplitPicker,
                 theme: Theme | None = None, background: str | None = None):
        self.rng, self.picker, self.W, self.H = rng, picker, width, height
        self.u = (width * height) ** 0.5 / 256  # text scales with the area, so wide banners keep readable text
        self.m = round(14 * self.u)
        self.theme = theme or THEMES[rng.choice(sorted(THEMES))]
        bg = background or rng.choice(self.theme.backgrounds)
        self.design = Design(
            kind, width, height, bg, self.theme.name,
            opening=f"A {aspect_word(width, height)} {KIND_NOUNS[kind]} with a {{background}} background",
            closing=rng.choice(self.theme.style_words),
        )
        self.panels: list[tuple[Box, str]] = []
        self.text_colours: list[str] = []
        self.object_colours: list[str] = []

    # -- words --------------------------------------------------------------------------------------------
    def title_words(self, max_words: int = 2) -> str:
        if max_words >= 2 and self.rng.random() < 0.5:
            return f"{self.picker.word('adjectives')} {self.picker.word('nouns')}".upper()
        return self.picker.word("nouns").upper()

    def phrase(self, max_chars: int = 24) -> str:
        """A short lower-case phrase; narrow regions pass a smaller max_chars instead of cutting words off."""
        r = self.rng.random()
        adj, noun = self.picker.word("adjectives"), self.picker.word("nouns")
        options = [f"{adj} {noun}"]
        if r >= 0.35:
            options.insert(0, f"{adj} {noun} {self.rng.choice(('today', 'daily', 'now', 'for all', 'every day'))}")
        if r >= 0.7:
            options.insert(0, f"{noun} and {self.picker.word('nouns')}")
        return next((p for p in options if len(p) <= max_chars), options[-1])

    def price(self) -> str:
        return f"${self.rng.randint(1, 99)}.{self.rng.choice(('99', '49', '95', '00'))}"

    def date(self) -> str:
        return f"{self.rng.choice(MONTHS)} {self.rng.randint(1, 28)}"

    def metric_value(self) -> str:
        r = self.rng.random()
        if r < 0.4:
            return f"{self.rng.randint(10, 99)}%"
        if r < 0.7:
            return str(self.rng.randint(100, 999))
        return f"{self.rng.randint(1, 9)}.{self.rng.randint(0, 9)}K"

    # -- geometry -----------------------------------------------------------------------------------------
    def rect(self, fx0: float, fy0: float, fx1: float, fy1: float) -> Box:
        return (round(fx0 * self.W), round(fy0 * self.H), round(fx1 * self.W), round(fy1 * self.H))

    def cell_rect(self, cell: str, pad: float = 0.06) -> Box:
        row, col = cell.split("-")
        r, c = ROWS.index(row), COLS.index(col)
        cw, ch = self.W / 3, self.H / 3
        return (round((c + pad) * cw), round((r + pad) * ch), round((c + 1 - pad) * cw), round((r + 1 - pad) * ch))

    def surfaces(self, box: Box) -> list[str]:
        """Colours of everything a box sits on (the background unless a panel covers it whole)."""
        under, covered = [], False
        for pbox, name in self.panels:
            if box[0] < pbox[2] and pbox[0] < box[2] and box[1] < pbox[3] and pbox[1] < box[3]:
                under.append(name)
                covered |= pbox[0] <= box[0] and pbox[1] <= box[1] and pbox[2] >= box[2] and pbox[3] >= box[3]
        return under if covered else [self.design.background, *under]

    # -- elements -----------------------------------------------------------------------------------------
    def panel(self, box: Box, name: str | None = None, radius: float = 8, phrase: str | None = None) -> str:
        if name is None:
            below = [colour(c).rgb for c in self.surfaces(box)]
            options = [c for c in self.theme.panels
                       if all(rgb_distance(colour(c).rgb, b) >= MIN_PANEL_SEPARATION for b in below)]
            name = self.rng.choice(options or ["white" if colour(self.design.background).rgb[0] < 128 else "charcoal"])
        self.design.elements.append(Panel(box, name, round(radius * self.u), phrase))
        self.panels.append((box, name))
        return name

    def text_colour(self, region: Box) -> str:
        below = [colour(c).rgb for c in self.surfaces(region)]
        options = list(self.theme.texts)
        self.rng.shuffle(options)
        for name in options + ["white", "black"]:
            if all(contrast_ratio(colour(name).rgb, b) >= MIN_TEXT_CONTRAST for b in below):
                return name
        return max(("white", "black"), key=lambda n: min(contrast_ratio(colour(n).rgb, b) for b in below))

    def text(self, text: str, region: Box, role: str, style: str | None = None, align: str = "center",
             max_size: int = 40, min_size: int = 14, phrase: str | None = None, fill: str | None = None) -> Text:
        style = style or self.rng.choice(TITLE_FONTS if role == "title" else BODY_FONTS)
        x0, y0, x1, y1 = region
        lo, hi = round(min_size * self.u), round(max_size * self.u)
        # Too long even at the smallest size: drop trailing words rather than overflow into other elements.
        while " " in text and text_size(text, style, lo)[0] > x1 - x0:
            text = text.rsplit(" ", 1)[0]
        size = fit_size(text, style, x1 - x0, y1 - y0, hi, lo)
        name = fill or self.text_colour(region)
        x = (x0 + x1) / 2 if align == "center" else x0
        el = Text(text, style, size, x, (y0 + y1) / 2, name, role, x1 - x0, align, lo, phrase)
        self.design.elements.append(el)
        self.text_colours.append(name)
        return el

    def avoid_colours(self, region: Box) -> list[RGB]:
        names = self.surfaces(region) + self.text_colours + self.object_colours
        return [colour(n).rgb for n in names]

    def shape(self, cell: str, region: Box, classes: tuple[str, ...] = SHAPE_CLASSES,
              size_range: tuple[float, float] = (0.15, 0.21),
              phrase: str | None = "a {colour} {cls} {position}") -> Shape | None:
        """An object somewhere inside `region` (which must lie inside `cell`)."""
        combo = self.picker.combo(cell, classes, self.avoid_colours(region))
        if combo is None:
            return None
        cls, name = combo
        x0, y0, x1, y1 = region
        side = min(round(self.rng.uniform(*size_range) * min(self.W, self.H)), x1 - x0, y1 - y0)
        texts = [el_box(el) for el in self.design.elements if isinstance(el, Text)]
        for _ in range(8):  # a few tries to keep clear of every text
            bx = self.rng.randint(x0, x1 - side)
            by = self.rng.randint(y0, y1 - side)
            box = (bx, by, bx + side, by + side)
            if not any(box[0] < t[2] + 2 and t[0] - 2 < box[2] and box[1] < t[3] + 2 and t[1] - 2 < box[3]
                       for t in texts):
                break
        else:
            return None
        el = Shape(cls, name, box, phrase=phrase)
        self.design.elements.append(el)
        self.object_colours.append(name)
        return el

    def shapes_in(self, free: Box, cells: list[str], count: int, **kw) -> list[Shape]:
        """Up to `count` objects, one per cell, each inside both its cell and the free rectangle."""
        cells = list(cells)
        self.rng.shuffle(cells)
        placed = []
        min_side = 0.12 * min(self.W, self.H)
        for cell in cells:
            if len(placed) == count:
                break
            c = self.cell_rect(cell)
            region = (max(c[0], free[0]), max(c[1], free[1]), min(c[2], free[2]), min(c[3], free[3]))
            if region[2] - region[0] < min_side or region[3] - region[1] < min_side:
                continue
            el = self.shape(cell, region, **kw)
            if el is not None:
                placed.append(el)
        return placed

    def subject(self, subj: Subject, cx: float, cy: float, height: float,
                phrase: str | None = "the {name} {position}") -> SubjectEl:
        el = SubjectEl(subj, subject_box(subj, cx, cy, height), phrase)
        self.design.elements.append(el)
        return el


TITLE_PHRASES = (
    '{position}, the title "{text}" in large {colour} {style} letters',
    'a big {colour} {style} headline "{text}" {position}',
)


# -- the kinds -----------------------------------------------------------------------------------------------
def build_poster(b: Builder) -> None:
    m, W, H = b.m, b.W, b.H
    if b.rng.random() < 0.5:  # title on top, objects below, footer
        b.design.layout["variant"] = "top title"
        b.text(b.title_words(), (m, m, W - m, round(0.22 * H)), "title", max_size=46, min_size=20,
               phrase=b.rng.choice(TITLE_PHRASES))
        b.text(b.phrase(), (m, round(0.23 * H), W - m, round(0.32 * H)), "subtitle", max_size=20,
               phrase='below the title, the subtitle "{text}" in {colour}')
        footer = b.rng.choice((b.price(), b.date(), b.phrase()))
        b.text(footer, (m, round(0.87 * H), W - m, H - m // 2), "footer", max_size=18,
               phrase='a footer "{text}" in {colour} at the bottom')
        free = (m, round(0.36 * H), W - m, round(0.85 * H))
        b.shapes_in(free, [f"{r}-{c}" for r in ("middle", "bottom") for c in COLS], b.rng.randint(1, 3))
    else:  # title on a central panel, objects above and below
        b.design.layout["variant"] = "center panel"
        b.panel(b.rect(0.06, 0.36, 0.94, 0.62), radius=10, phrase="a wide {colour} panel across the middle")
        b.text(b.title_words(), b.rect(0.1, 0.38, 0.9, 0.60), "title", max_size=44, min_size=20,
               phrase='on the panel, the title "{text}" in {colour} {style} letters')
        b.text(b.phrase(), b.rect(0.06, 0.64, 0.94, 0.74), "subtitle", max_size=20,
               phrase='under the panel, the text "{text}" in {colour}')
        top = b.shapes_in((m, m, W - m, round(0.33 * H)), [f"top-{c}" for c in COLS], b.rng.randint(1, 2))
        b.shapes_in((m, round(0.77 * H), W - m, H - m // 2), [f"bottom-{c}" for c in COLS],
                    b.rng.randint(0 if top else 1, 2))


def build_banner(b: Builder) -> None:
    m, W, H = b.m, b.W, b.H
    b.text(b.title_words(), (m, round(0.08 * H), round(0.62 * W), round(0.40 * H)), "title", align="left",
           max_size=44, min_size=18, phrase='{position}, the headline "{text}" in {colour} {style} letters')
    b.text(b.phrase(max_chars=16), (m, round(0.42 * H), round(0.62 * W), round(0.58 * H)), "subtitle", align="left",
           max_size=20,
           phrase='under it, the tagline "{text}" in {colour}')
    cta = b.rng.choice(CALLS_TO_ACTION)
    bw = min(round(0.58 * W), text_size(cta, "bold sans-serif", round(18 * b.u))[0] + 2 * m)
    button = (m, round(0.66 * H), m + bw, round(0.90 * H))
    b.panel(button, radius=6, phrase="a {colour} button")
    b.text(cta, (button[0] + m // 2, button[1], button[2] - m // 2, button[3]), "button", style="bold sans-serif",
           max_size=20, phrase='+reading "{text}" in {colour}')
    free = (round(0.66 * W), m // 2, W - m // 2, H - m // 2)
    b.shapes_in(free, [f"{r}-right" for r in ROWS], b.rng.randint(1, 2), size_range=(0.22, 0.3))


def build_social(b: Builder) -> None:
    m, W, H = b.m, b.W, b.H
    b.text(b.title_words(), (m, m, W - m, round(0.2 * H)), "title", max_size=46, min_size=20,
           phrase=b.rng.choice(TITLE_PHRASES))
    b.text(b.phrase(), (m, round(0.2 * H), W - m, round(0.29 * H)), "subtitle", max_size=20,
           phrase='the subtitle "{text}" in {colour} below it')
    strip = (0, round(0.8 * H), W, H)
    b.panel(strip, radius=0, phrase="a {colour} strip along the bottom")
    b.text(b.rng.choice((b.phrase(), b.date(), b.price())), (m, strip[1], W - m, H), "caption", max_size=20,
           phrase='+with the caption "{text}" in {colour}')
    b.shapes_in((m, round(0.34 * H), W - m, round(0.76 * H)), [f"middle-{c}" for c in COLS], b.rng.randint(1, 3),
                size_range=(0.18, 0.26))


def build_slide(b: Builder) -> None:
    m, W, H = b.m, b.W, b.H
    b.text(b.title_words(), (m, round(0.2 * H), round(0.64 * W), round(0.44 * H)), "title", align="left",
           max_size=42, min_size=18, phrase='a left-aligned title "{text}" in {colour} {style} letters')
    b.panel((m, round(0.47 * H), m + round(0.22 * W), round(0.47 * H) + max(3, round(4 * b.u))), radius=0,
            phrase="a thin {colour} line under the title")
    b.text(b.phrase(max_chars=18), (m, round(0.52 * H), round(0.64 * W), round(0.64 * H)), "subtitle", align="left",
           max_size=20, phrase='the subtitle "{text}" in {colour}')
    b.text(b.date(), (m, round(0.82 * H), round(0.5 * W), H - m // 2), "footer", align="left", max_size=16,
           phrase='the date "{text}" in the bottom-left corner')
    b.shapes_in((round(0.68 * W), m // 2, W - m // 2, H - m // 2), [f"{r}-right" for r in ROWS], b.rng.randint(1, 2),
                size_range=(0.2, 0.28))


def build_recipe(b: Builder) -> None:
    m, W, H = b.m, b.W, b.H
    steps = 3 if W >= 0.9 * H else 2
    b.text(b.picker.word("nouns").upper(), (m, m, W - m, round(0.19 * H)), "title", max_size=44, min_size=20,
           phrase='a recipe card titled "{text}" in {colour} {style} letters at the top')
    b.text(f"{b.picker.word('adjectives')} and {b.picker.word('adjectives')}",
           (m, round(0.2 * H), W - m, round(0.29 * H)),
           "subtitle", max_size=18, phrase='the subtitle "{text}" in {colour}')
    gap = round(12 * b.u)
    top, bottom = round(0.36 * H), H - m
    pw = (W - 2 * m - (steps - 1) * gap) / steps
    b.design.layout["steps"] = steps
    words = {2: "two", 3: "three"}[steps]
    card = None
    for j in range(steps):
        x0 = round(m + j * (pw + gap))
        box = (x0, top, round(x0 + pw), bottom)
        card = b.panel(box, name=card, radius=8,
                       phrase=f"a bottom panel with {words} steps on {{colour}} cards" if j == 0 else None)
        cx = (box[0] + box[2]) / 2
        side = round(min(0.55 * pw, 0.17 * H))
        region = (round(cx - side / 2), round(0.5 * H - side / 2), round(cx + side / 2), round(0.5 * H + side / 2))
        b.shape(_cell(b, region), region, size_range=(1.0, 1.0), phrase=f"step {j + 1} shows a {{colour}} {{cls}}")
        pad = round(7 * b.u)  # keeps words of neighbouring cards apart for the OCR's line detector
        b.text(f"STEP {j + 1}", (box[0] + pad, round(0.64 * H), box[2] - pad, round(0.73 * H)), "step label",
               style="bold sans-serif", max_size=15, min_size=12, phrase='+labelled "{text}"')
        b.text(b.picker.word("verbs").upper(), (box[0] + pad, round(0.76 * H), box[2] - pad, round(0.88 * H)), "step",
               max_size=20, min_size=12, phrase='+with the word "{text}"')


def build_price_tag(b: Builder) -> None:
    m, H = b.m, b.H
    left = b.rng.random() < 0.5
    x0, x1 = (0.06, 0.64) if left else (0.36, 0.94)
    tag = b.rect(x0, 0.08, x1, 0.92)
    b.panel(tag, radius=14, phrase="a {colour} price tag " + ("on the left" if left else "on the right"))
    hole_r = round(6 * b.u)
    hx, hy = (tag[0] + tag[2]) // 2, tag[1] + 3 * hole_r
    b.panel((hx - hole_r, hy - hole_r, hx + hole_r, hy + hole_r), name=b.design.background, radius=hole_r)

    def inner(fy0: float, fy1: float) -> tuple[int, int, int, int]:
        return tag[0] + m // 2, round(fy0 * H), tag[2] - m // 2, round(fy1 * H)

    b.text(b.picker.word("nouns").upper(), inner(0.22, 0.38), "product", max_size=30, min_size=16,
           phrase='+with the product name "{text}" in {colour} {style} letters')
    b.text(b.price(), inner(0.42, 0.64), "price", style=b.rng.choice(("bold sans-serif", "bold serif")), max_size=44,
           min_size=20, phrase='+the price "{text}" in big {colour} digits')
    b.text(b.phrase(max_chars=16), inner(0.68, 0.80), "note", max_size=16, min_size=12, phrase='+and the note "{text}"')
    free = b.rect(0.68, 0.04, 0.96, 0.96) if left else b.rect(0.04, 0.04, 0.32, 0.96)
    col = "right" if left else "left"
    b.shapes_in(free, [f"{r}-{col}" for r in ROWS], b.rng.randint(1, 2), size_range=(0.18, 0.24))


def build_dashboard(b: Builder) -> None:
    m, W, H = b.m, b.W, b.H
    b.text(f"{b.picker.word('labels')} report".upper(), (m, round(0.04 * H), round(0.8 * W), round(0.17 * H)), "title",
           align="left", style="bold sans-serif", max_size=26, min_size=16,
           phrase='a dashboard titled "{text}" in {colour} in the top-left')
    gap = round(12 * b.u)
    cw = (W - 2 * m - 2 * gap) / 3
    card = None
    for j in range(3):
        x0 = round(m + j * (cw + gap))
        box = (x0, round(0.21 * H), round(x0 + cw), round(0.5 * H))
        card = b.panel(box, name=card, radius=6, phrase="three {colour} metric cards in a row" if j == 0 else None)
        label = b.picker.word("labels")
        pad = round(6 * b.u)
        b.text(label, (box[0] + pad, box[1] + round(0.02 * H), box[2] - pad, box[1] + round(0.11 * H)), "label",
               style="sans-serif", max_size=15, min_size=12, phrase='a card labelled "{text}"')
        b.text(b.metric_value(), (box[0] + pad, box[1] + round(0.13 * H), box[2] - pad, box[3] - round(0.02 * H)),
               "value",
               style="bold sans-serif", max_size=28, min_size=14, phrase='+showing "{text}"')
    chart = (m, round(0.55 * H), W - m, H - m // 2)
    b.panel(chart, radius=6, phrase="a {colour} chart panel below with a bar chart")
    b.text(f"{b.picker.word('labels')} per {b.rng.choice(('day', 'week', 'month'))}",
           (chart[0] + gap, chart[1] + 2, chart[0] + round(0.6 * W), chart[1] + round(0.11 * H)), "chart title",
           align="left", style="sans-serif", max_size=15, min_size=12, phrase='+titled "{text}"')
    bars = b.rng.randint(3, 4)
    base, top = chart[3] - gap, chart[1] + round(0.14 * H)
    slot = (chart[2] - chart[0] - 2 * gap) / bars
    for j in range(bars):
        bx0 = round(chart[0] + gap + j * slot + 0.2 * slot)
        bx1 = round(chart[0] + gap + (j + 0.8) * slot)
        h = round(b.rng.uniform(0.4, 1.0) * (base - top))
        region = (bx0, base - h, bx1, base)
        combo = b.picker.combo(_cell(b, region), ("bar",), b.avoid_colours(region))
        if combo is None:
            continue
        b.design.elements.append(Shape("bar", combo[1], region, phrase="+a {colour} bar"))
        b.object_colours.append(combo[1])


def _cell(b: Builder, box: Box) -> str:
    return cell_of(box, b.W, b.H)


def build_subject_scene(b: Builder, subjects: list[Subject], cols: list[str]) -> None:
    """A poster that shows one to three subjects side by side under a title (identity and composition)."""
    m, W, H = b.m, b.W, b.H
    b.text(b.title_words(), (m, m, W - m, round(0.2 * H)), "title", max_size=42, min_size=20,
           phrase=b.rng.choice(TITLE_PHRASES))
    height = (0.44 if len(subjects) == 1 else 0.34 if len(subjects) == 2 else 0.28) * H
    height = min(height, 0.3 * W / max(s.aspect for s in subjects)) if len(subjects) == 3 else height
    for subj, col in zip(subjects, cols):
        cx = {"left": W / 6, "center": W / 2, "right": 5 * W / 6}[col]
        if len(subjects) == 1:
            cx += b.rng.uniform(-0.06, 0.06) * W
        b.subject(subj, cx, 0.53 * H, height)
    b.text(b.phrase(), (m, round(0.82 * H), W - m, H - m // 2), "caption", max_size=20,
           phrase='the caption "{text}" in {colour} at the bottom')


# -- word cards: one text, large, and free phrasing ----------------------------------------------------------
# The prompt language of word cards varies (nouns, verbs, word order, casing, extra description); each phrasing
# belongs to one split (`split_of("phrasing:...")`), so test prompts are phrased in ways training never saw.
WORD_CARD_NOUNS = ("card", "sign", "label", "tile", "poster", "placard", "banner", "badge", "sticker", "note")
WORD_CARD_PHRASINGS = (
    'A {bg} {noun} that reads "{text}" in {fg} letters',
    'A {noun} with the text "{text}" in large {fg} {style} letters on a {bg} background',
    'A simple {bg} {noun} titled "{text}", the letters in {fg}',
    '"{text}" written in bold {fg} letters on a plain {bg} background',
    'A {bg} {noun} saying "{text}" in big {fg} type',
    'Big {fg} text "{text}" on {bg}',
    'The word "{text}" in {fg} {style} letters {place}, {bg} background',
    'A {noun} in {bg} with "{text}" spelled out in {fg}',
    'A clean {bg} {noun}; it says "{text}" in {fg}',
    'Make a {bg} {noun} with the words "{text}" in {fg}',
    'a {fg}-on-{bg} {noun} reading "{text}"',
    'A minimal {noun}: {bg} background, {fg} {style} lettering that says "{text}" {place}',
    'A {bg} {noun} showing the word "{text}" {place} in {fg}',
    'Please draw a {noun} with "{text}" in large {fg} letters, background {bg}',
    'A {bg} background with "{text}" in {fg} {style} letters {place}',
    '{bg} {noun}, text "{text}", {fg} letters',
    'A {noun} that has the text "{text}" printed in {fg} on {bg}',
    'An eye-catching {bg} {noun} with the headline "{text}" in {fg}',
    'A plain {bg} {noun} with "{text}" written across it in {fg} capitals',
    'A {noun} on a {bg} background that spells "{text}" in {fg} {style} type',
    'Large {fg} lettering reading "{text}" on a {bg} {noun}',
    'A {bg} {noun} displaying "{text}" in {fg}',
    'A {noun}, {bg}, with the caption "{text}" in bold {fg} letters {place}',
    'Design a {bg} {noun} with "{text}" as its only text, in {fg}',
)
WORD_CARD_PLACES = {"top": "at the top", "middle": "in the middle", "bottom": "near the bottom"}


def word_card_phrasings(split: str) -> tuple[str, ...]:
    from glmimage.data.vocabulary import split_of

    own = tuple(p for p in WORD_CARD_PHRASINGS if split_of("phrasing:" + p) == split)
    return own or tuple(p for p in WORD_CARD_PHRASINGS if split_of("phrasing:" + p) == "train")


PSEUDO_CONSONANTS, PSEUDO_VOWELS = "BCDFGHJKLMNPRSTVWZ", "AEIOU"


def pseudo_word(rng: random.Random) -> str:
    """A pronounceable made-up word (3-7 letters): training sees letter sequences beyond its few hundred words, so
    the decoder must learn letters, not whole words."""
    n = rng.randint(3, 7)
    start = rng.random() < 0.5
    return "".join(rng.choice(PSEUDO_CONSONANTS if (i % 2 == 0) == start else PSEUDO_VOWELS) for i in range(n))


def word_card_text(b: Builder) -> str:
    """One word (sometimes two), upper case mostly: short enough to stay large. In training, a third are made up."""
    if not b.picker.held_out and b.rng.random() < 0.33:
        word = pseudo_word(b.rng)
    else:
        word = b.picker.word(b.rng.choice(("nouns", "nouns", "adjectives", "verbs")))
    if b.rng.random() < 0.2:
        pair = f"{b.picker.word('adjectives')} {word}"
        word = pair if len(pair) <= 12 else word
    r = b.rng.random()
    return word.upper() if r < 0.7 else word.title() if r < 0.9 else word.lower()


def build_word_card(b: Builder) -> None:
    m, W, H = b.m, b.W, b.H
    place = b.rng.choices(("middle", "top", "bottom"), weights=(3, 1, 1))[0]
    fy = {"top": (0.06, 0.40), "middle": (0.28, 0.72), "bottom": (0.60, 0.94)}[place]
    region = (m, round(fy[0] * H), W - m, round(fy[1] * H))
    phrasing = b.rng.choice(word_card_phrasings(b.picker.split))
    text = word_card_text(b)
    style = b.rng.choice(TITLE_FONTS)
    el = b.text(text, region, "title", style=style, max_size=72, min_size=36)
    el.phrase = phrasing.format(text="{text}", fg="{colour}", bg=b.design.background, style="{style}",
                                noun=b.rng.choice(WORD_CARD_NOUNS), place=WORD_CARD_PLACES[place])
    b.design.opening, b.design.closing = "", b.rng.choice(("", "", *b.theme.style_words))
    b.design.layout["variant"] = place
    b.design.layout["phrasing"] = phrasing
    free_rows = [r for r in ROWS if r != place]
    if b.rng.random() < 0.5:
        top, bottom = {"top": (0.45, 0.96), "middle": (0.02, 0.26), "bottom": (0.04, 0.56)}[place]
        free = (m // 2, round(top * H), W - m // 2, round(bottom * H))
        rows = free_rows if place != "middle" else ["top"]
        b.shapes_in(free, [f"{r}-{c}" for r in rows for c in COLS], b.rng.randint(1, 2), size_range=(0.14, 0.2))


BUILDERS = {
    "poster": build_poster,
    "banner": build_banner,
    "social": build_social,
    "slide": build_slide,
    "recipe": build_recipe,
    "price_tag": build_price_tag,
    "dashboard": build_dashboard,
    "word_card": build_word_card,
}


def build_design(kind: str, width: int, height: int, rng: random.Random, picker: SplitPicker,
                 theme: Theme | None = None) -> Design:
    if kind not in BUILDERS:
        raise ValueError(f"unknown design kind {kind!r}; known: {ALL_KINDS}")
    b = Builder(kind, width, height, rng, picker, theme)
    BUILDERS[kind](b)
    b.design.layout.update({"kind": kind, "theme": b.theme.name, "background": b.design.background})
    return b.design
