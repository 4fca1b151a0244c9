"""Image-to-image samples: (references, instruction) -> target, with the region the edit is allowed to change.

Local edits (text replacement, recolour, add, remove, move) change one element of a design and render it again,
so everything outside the mask is pixel-identical. Restyle, identity and composition make a new image whose
success is judged on content (palette, texts, subjects), not on preservation.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter

from glmimage.data.design import Design, Panel, Shape, SubjectEl, Text, describe, el_box, render_design
from glmimage.data.heldout import SplitPicker
from glmimage.data.layouts import KIND_NOUNS, THEMES, Builder, build_subject_scene
from glmimage.data.palette import MIN_OBJECT_SEPARATION, OBJECT_COLOURS, colour, rgb_distance
from glmimage.data.sample import COLS, Box, EditSample, Sample, cell_of
from glmimage.data.subjects import MASCOT_SPECIES, PRODUCT_CONTAINERS, Subject

# Where "move to ..." sends an object, by target cell.
MOVE_PHRASES = {
    "top-left": "the top-left corner", "top-center": "the top", "top-right": "the top-right corner",
    "middle-left": "the left", "middle-center": "the center", "middle-right": "the right",
    "bottom-left": "the bottom-left corner", "bottom-center": "the bottom", "bottom-right": "the bottom-right corner",
}


class EditUnavailable(Exception):
    """This source design offers no valid edit of the requested kind; the world draws another source."""


@dataclass
class EditContext:
    rng: random.Random
    picker: SplitPicker
    split: str
    index: int
    kinds: tuple[str, ...]
    dims: Callable[[str], tuple[int, int]]  # kind -> (width, height)
    build: Callable[[str], Design]  # kind -> a fresh source design

    def source(self, need_objects: bool = False) -> Design:
        kinds = [k for k in self.kinds if k != "dashboard"] if need_objects else list(self.kinds)
        return self.build(self.rng.choice(kinds or list(self.kinds)))

    def words(self, design: Design) -> Builder:
        """A builder over a throw-away design, used for its word and colour helpers."""
        return Builder(design.kind, design.width, design.height, self.rng, self.picker)


def to_sample(design: Design, index: int, split: str) -> Sample:
    r = render_design(design)
    layout = dict(design.layout)
    layout["panels"] = [{"box": list(el.box), "colour": el.colour} for el in design.elements if isinstance(el, Panel)]
    return Sample(index, split, design.kind, r.image, describe(design), r.texts, r.objects, layout, r.subjects)


def change_mask(a: Image.Image, b: Image.Image, boxes: list[Box], grow: int = 2) -> np.ndarray:
    """Pixels that differ between a and b, plus the boxes the edit names, grown by a few pixels."""
    diff = np.any(np.asarray(a, dtype=np.int16) != np.asarray(b, dtype=np.int16), axis=2)
    for x0, y0, x1, y1 in boxes:
        diff[max(0, y0):max(0, y1), max(0, x0):max(0, x1)] = True
    m = Image.fromarray(diff.astype(np.uint8) * 255).filter(ImageFilter.MaxFilter(2 * grow + 1))
    return np.asarray(m) > 0


def _shapes(design: Design, bars: bool = True) -> list[int]:
    return [i for i, el in enumerate(design.elements) if isinstance(el, Shape) and (bars or el.cls != "bar")]


def _surfaces_at(design: Design, box: Box, skip: int | None = None) -> list[str]:
    under, covered = [], False
    for i, el in enumerate(design.elements):
        if i == skip or not isinstance(el, Panel):
            continue
        p = el.box
        if box[0] < p[2] and p[0] < box[2] and box[1] < p[3] and p[1] < box[3]:
            under.append(el.colour)
            covered |= p[0] <= box[0] and p[1] <= box[1] and p[2] >= box[2] and p[3] >= box[3]
    return under if covered else [design.background, *under]


def _colours_near(design: Design, box: Box, skip: int) -> list[str]:
    """Colours an object in `box` must stand apart from: what it sits on, all text, all other objects."""
    names = _surfaces_at(design, box)
    for i, el in enumerate(design.elements):
        if i != skip and isinstance(el, (Text, Shape)):
            names.append(el.colour)
    return names


def _far_from(name: str, others: list[str]) -> bool:
    return all(rgb_distance(colour(name).rgb, colour(o).rgb) >= MIN_OBJECT_SEPARATION for o in others)


def _render_pair(src: Design, tgt: Design) -> tuple[Image.Image, Image.Image]:
    return render_design(src).image, render_design(tgt).image


# -- local edits ---------------------------------------------------------------------------------------------
def text_replace(ctx: EditContext):
    src = ctx.source()
    texts = [i for i, el in enumerate(src.elements) if isinstance(el, Text) and el.role in
             ("title", "subtitle", "product", "price", "caption", "footer", "step", "button", "value")]
    if not texts:
        raise EditUnavailable("no replaceable text")
    i = ctx.rng.choice(texts)
    old: Text = src.elements[i]
    w = ctx.words(src)
    if old.role == "price":
        new = w.price()
    elif old.role == "value":
        new = w.metric_value()
    elif old.role == "footer" and any(ch.isdigit() for ch in old.text):
        new = w.date() if not old.text.startswith("$") else w.price()
    elif old.text.isupper():
        new = w.title_words(max_words=len(old.text.split()))
    else:
        new = w.phrase()
    if new == old.text:
        raise EditUnavailable("same text drawn")
    tgt = copy.deepcopy(src)
    tgt.elements[i].text = new
    instruction = f'Replace the text "{old.text}" with "{new}"'
    return src, tgt, instruction, {"op": "text_replace", "old": old.text, "new": new, "role": old.role}, []


def _pick_shape(ctx: EditContext, bars: bool = True):
    """A source design with objects and one of its shapes, chosen by the edit's generator."""
    src = ctx.source(need_objects=True)
    idx = _shapes(src, bars=bars)
    if not idx:
        raise EditUnavailable("no object")
    i = ctx.rng.choice(idx)
    el: Shape = src.elements[i]
    return src, i, el


def recolour(ctx: EditContext):
    src, i, el = _pick_shape(ctx)
    avoid = _colours_near(src, el.box, skip=i) + [el.colour]
    options = [c.name for c in OBJECT_COLOURS if _far_from(c.name, avoid)]
    if not options:
        raise EditUnavailable("no colour fits")
    new = ctx.rng.choice(options)
    tgt = copy.deepcopy(src)
    tgt.elements[i].colour = new
    instruction = ctx.rng.choice(("Change the {old} {cls} to {new}", "Make the {old} {cls} {new}")).format(
        old=el.colour, cls=el.cls, new=new)
    edit = {"op": "recolour", "cls": el.cls, "old": el.colour, "new": new, "box": list(el.box)}
    return src, tgt, instruction, edit, [el.box]


def remove(ctx: EditContext):
    src, i, el = _pick_shape(ctx)
    tgt = copy.deepcopy(src)
    del tgt.elements[i]
    edit = {"op": "remove", "cls": el.cls, "colour": el.colour, "box": list(el.box)}
    return src, tgt, f"Remove the {el.colour} {el.cls}", edit, [el.box]


def add(ctx: EditContext):
    # The inverse of remove: the full design is the target, the design without one object the source.
    full, partial, _, edit, boxes = remove(ctx)
    el_box = tuple(edit["box"])
    cell = cell_of(el_box, full.width, full.height)
    instruction = f"Add a {edit['colour']} {edit['cls']} in {MOVE_PHRASES[cell]}"
    return partial, full, instruction, {"op": "add", "cls": edit["cls"], "colour": edit["colour"],
                                        "box": edit["box"]}, boxes


def _occupied(design: Design, skip: int) -> list[Box]:
    boxes = []
    for i, el in enumerate(design.elements):
        if i == skip:
            continue
        if isinstance(el, Text):
            boxes.append(el_box(el))
        elif isinstance(el, (Shape, SubjectEl)) or (isinstance(el, Panel) and el.phrase is not None):
            boxes.append(el.box)  # named panels are layout; a price tag's hole (no phrase) is not
    return boxes


def move(ctx: EditContext):
    src, i, el = _pick_shape(ctx, bars=False)
    W, H = src.width, src.height
    side_w, side_h = el.box[2] - el.box[0], el.box[3] - el.box[1]
    here = cell_of(el.box, W, H)
    occupied = _occupied(src, skip=i)
    cells = [f"{r}-{c}" for r in ("top", "middle", "bottom") for c in COLS if f"{r}-{c}" != here]
    ctx.rng.shuffle(cells)
    for cell in cells:
        r, c = ("top", "middle", "bottom").index(cell.split("-")[0]), COLS.index(cell.split("-")[1])
        cx, cy = (c + 0.5) * W / 3, (r + 0.5) * H / 3
        box = (round(cx - side_w / 2), round(cy - side_h / 2), round(cx - side_w / 2) + side_w,
               round(cy - side_h / 2) + side_h)
        pad = 3
        if any(box[0] - pad < o[2] and o[0] < box[2] + pad and box[1] - pad < o[3] and o[1] < box[3] + pad
               for o in occupied):
            continue
        if not _far_from(el.colour, _colours_near(src, box, skip=i)):
            continue
        tgt = copy.deepcopy(src)
        tgt.elements[i].box = box
        instruction = f"Move the {el.colour} {el.cls} to {MOVE_PHRASES[cell]}"
        edit = {"op": "move", "cls": el.cls, "colour": el.colour, "from": list(el.box), "box": list(box), "cell": cell}
        return src, tgt, instruction, edit, [el.box, box]
    raise EditUnavailable("no free cell to move to")


# -- whole-image edits ---------------------------------------------------------------------------------------
def restyle(ctx: EditContext):
    src = ctx.source()
    theme = THEMES[ctx.rng.choice(sorted(t for t in THEMES if t != src.theme))]
    bg = ctx.rng.choice([c for c in theme.backgrounds if c != src.background])
    b = Builder(src.kind, src.width, src.height, ctx.rng, ctx.picker, theme=theme, background=bg)
    b.design.opening, b.design.layout = src.opening, dict(src.layout)
    recoloured: dict[str, str] = {src.background: bg}  # panels that shared a colour keep sharing one
    for el in src.elements:
        if isinstance(el, Panel):
            name = b.panel(el.box, name=recoloured.get(el.colour), radius=el.radius / b.u, phrase=el.phrase)
            recoloured.setdefault(el.colour, name)
        elif isinstance(el, Text):
            new = copy.deepcopy(el)
            new.colour = b.text_colour(el_box(el))
            b.design.elements.append(new)
            b.text_colours.append(new.colour)
    for el in src.elements:  # objects keep their colours; the new palette must still let them stand out
        if isinstance(el, Shape):
            if not _far_from(el.colour, b.surfaces(el.box) + b.text_colours):
                raise EditUnavailable("an object would vanish in the new palette")
            b.design.elements.append(copy.deepcopy(el))
        elif isinstance(el, SubjectEl):
            b.design.elements.append(copy.deepcopy(el))
    tgt = b.design
    tgt.layout.update({"theme": theme.name, "background": bg})
    instruction = (f"Restyle the {KIND_NOUNS[src.kind]} in a {theme.name} theme with a {bg} background, "
                   "keeping every text and object")
    return src, tgt, instruction, {"op": "restyle", "theme": theme.name, "background": bg}, None


def _random_subject(rng: random.Random) -> Subject:
    kind = rng.choice(("mascot", "product"))
    form = rng.choice(MASCOT_SPECIES if kind == "mascot" else PRODUCT_CONTAINERS)
    names = [c.name for c in OBJECT_COLOURS if c.name not in ("white", "black")]
    body = rng.choice(names)
    accent = rng.choice([n for n in names if rgb_distance(colour(n).rgb, colour(body).rgb) >= MIN_OBJECT_SEPARATION])
    detail = rng.choice([n for n in names if n not in (body, accent)])
    return Subject(kind, form, body, accent, detail)


def _scene(ctx: EditContext, subjects: list[Subject], cols: list[str]) -> Design:
    W, H = ctx.dims("poster")
    theme = THEMES[ctx.rng.choice(sorted(THEMES))]
    bodies = [colour(s.body).rgb for s in subjects]
    bgs = [c for c in theme.backgrounds
           if all(rgb_distance(colour(c).rgb, rgb) >= MIN_OBJECT_SEPARATION for rgb in bodies)]
    if not bgs:
        raise EditUnavailable("no background fits the subjects")
    b = Builder("poster", W, H, ctx.rng, ctx.picker, theme=theme, background=ctx.rng.choice(bgs))
    build_subject_scene(b, subjects, cols)
    b.design.layout.update({"kind": "poster", "variant": "subjects", "theme": theme.name,
                            "background": b.design.background})
    return b.design


def _portrait(s: Subject, size: int = 256) -> tuple[Image.Image, Box]:
    """A reference photo of one subject alone on a light background."""
    from glmimage.data.subjects import draw_subject, subject_box

    img = Image.new("RGB", (size, size), colour("light gray").rgb if s.body != "gray" else colour("cream").rgb)
    box = subject_box(s, size / 2, size / 2, 0.62 * size)
    draw_subject(img, s, box)
    return img, box


def identity(ctx: EditContext):
    s = _random_subject(ctx.rng)
    first = _scene(ctx, [s], ["center"])
    second = _scene(ctx, [s], ["center"])
    ref_box = next(el.box for el in first.elements if isinstance(el, SubjectEl))
    title = next(el.text for el in second.elements if isinstance(el, Text) and el.role == "title")
    instruction = (f'Show the {s.name} from the image on a new poster with a {second.background} background '
                   f'and the title "{title}"')
    edit = {"op": "identity", "subjects": [s.name], "ref_boxes": [list(ref_box)]}
    return first, second, instruction, edit, None


def compose(ctx: EditContext):
    n = ctx.rng.choice((2, 3))
    subjects: list[Subject] = []
    while len(subjects) < n:
        s = _random_subject(ctx.rng)
        if all(s.body != t.body and s.form != t.form for t in subjects):
            subjects.append(s)
    cols = ["left", "right"] if n == 2 else ["left", "center", "right"]
    tgt = _scene(ctx, subjects, cols)
    refs, ref_boxes = zip(*(_portrait(s) for s in subjects))
    title = next(el.text for el in tgt.elements if isinstance(el, Text) and el.role == "title")
    where = {"left": "on the left", "center": "in the middle", "right": "on the right"}
    parts = [f"the {s.name} from image {k + 1} {where[c]}" for k, (s, c) in enumerate(zip(subjects, cols))]
    instruction = (f'Make a poster with a {tgt.background} background titled "{title}" showing '
                   + ", ".join(parts[:-1]) + f" and {parts[-1]}")
    edit = {"op": "compose", "subjects": [s.name for s in subjects], "ref_boxes": [list(b) for b in ref_boxes]}
    return list(refs), tgt, instruction, edit, None


EDIT_BUILDERS = {
    "text_replace": text_replace, "recolour": recolour, "add": add, "remove": remove, "move": move,
    "restyle": restyle, "identity": identity, "compose": compose,
}


def build_edit(kind: str, ctx: EditContext, attempts: int = 30) -> EditSample:
    builder = EDIT_BUILDERS[kind]
    for _ in range(attempts):
        try:
            src, tgt_design, instruction, edit, boxes = builder(ctx)
        except EditUnavailable:
            continue
        target = to_sample(tgt_design, ctx.index, ctx.split)
        if isinstance(src, list):  # composition: references are portraits
            refs = src
        else:
            refs = [render_design(src).image]
        local = boxes is not None
        if local:
            mask = change_mask(refs[0], target.image, [tuple(b) for b in boxes])
        else:
            mask = np.ones((target.height, target.width), dtype=bool)
        edit["local"] = local
        return EditSample(ctx.index, ctx.split, kind, refs, instruction, target, mask, edit)
    raise RuntimeError(f"could not build a {kind!r} edit in {attempts} attempts (index {ctx.index})")
