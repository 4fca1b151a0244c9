"""docs/img/nano_edit_keep.png: the first five local test edits of `glmimage eval` (same seeds), edited by the shipped
nano without the edit settings, with them (as shipped), and with a stronger copy bias; PSNR outside the change under
each. Run from the repository root (2 min on one thread):

    OMP_NUM_THREADS=1 python docs/img/nano_edit_keep.py
"""

from PIL import Image, ImageDraw

from glmimage.data.world import World
from glmimage.engine import Engine
from glmimage.evaluation.editing import score_edit

SIDE, PAD, TEXT = 160, 6, 30
COLUMNS = [("source", None), ("no settings", {"keep": False, "copy_bias": 0.0}),
           ("shipped: copy_bias 5 + keep", {}), ("copy_bias 6 + keep", {"copy_bias": 6.0}), ("asked for", None)]

engine = Engine.from_pretrained("nano")
edits = [es for es in World().with_split("test").edit_samples(0, 40) if es.local][:5]
canvas = Image.new("RGB", (len(COLUMNS) * (SIDE + PAD), 16 + len(edits) * (SIDE + 2 * TEXT)), "white")
draw = ImageDraw.Draw(canvas)
for j, (name, _) in enumerate(COLUMNS):
    draw.text((j * (SIDE + PAD), 2), name, fill="black")
for i, es in enumerate(edits):
    y = 16 + i * (SIDE + 2 * TEXT)
    for j, (name, settings) in enumerate(COLUMNS):
        if settings is None:
            image, caption = (es.refs[0] if name == "source" else es.target.image), ""
        else:
            image = engine.edit(es.instruction, images=es.refs, width=es.target.width, height=es.target.height,
                                seed=es.index, **settings).images[0]
            caption = f"PSNR outside {score_edit(es, image).psnr_outside:.1f} dB"
        canvas.paste(image.convert("RGB").resize((SIDE, SIDE)), (j * (SIDE + PAD), y))
        draw.text((j * (SIDE + PAD), y + SIDE + 14), caption, fill="black")
    draw.text((0, y + SIDE + 2), es.instruction, fill="black")
canvas.save("docs/img/nano_edit_keep.png")
