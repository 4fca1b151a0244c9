"""Image files: PNGs that carry their own generation record in text chunks."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image, PngImagePlugin

METADATA_KEY = "glmimage"


def save_png(image: Image.Image, path: str | Path, metadata: dict) -> Path:
    """Write `image` with `metadata` as a JSON text chunk plus readable prompt/seed/model chunks."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    info = PngImagePlugin.PngInfo()
    info.add_itxt(METADATA_KEY, json.dumps(metadata, sort_keys=True))
    for key in ("prompt", "seed", "model_id", "steps", "guidance", "plan_hash"):
        if key in metadata:
            info.add_itxt(key, str(metadata[key]))
    image.save(path, pnginfo=info)
    return path


def read_png_metadata(path: str | Path) -> dict:
    with Image.open(path) as image:
        return json.loads(image.text[METADATA_KEY])
