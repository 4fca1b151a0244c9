"""Reference images for image-to-image: reading them safely and fitting them to a valid size."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from glmimage.errors import InputError
from glmimage.models.presets import SizeLimits
from glmimage.models.sizes import MAX_ASPECT, snap_size

MAX_FILE_BYTES = 32 * 1024 * 1024
MAX_SOURCE_PIXELS = 40_000_000  # refuse decompression bombs before decoding (a 8k x 5k photo still passes)


def load_reference(source, name: str = "reference") -> Image.Image:
    """A PIL RGB image from a path, bytes or PIL image; InputError with the reason otherwise."""
    if isinstance(source, Image.Image):
        image = source
    else:
        if isinstance(source, (str, Path)):
            path = Path(source)
            if not path.is_file():
                raise InputError(f"{name}: file not found: {path}")
            if path.stat().st_size > MAX_FILE_BYTES:
                raise InputError(f"{name}: file is {path.stat().st_size} bytes, the limit is {MAX_FILE_BYTES}")
            data = path.read_bytes()
        elif isinstance(source, (bytes, bytearray)):
            data = bytes(source)
            if len(data) > MAX_FILE_BYTES:
                raise InputError(f"{name}: upload is {len(data)} bytes, the limit is {MAX_FILE_BYTES}")
        else:
            raise InputError(f"{name}: expected a path, bytes or a PIL image, got {type(source).__name__}")
        if not data:
            raise InputError(f"{name}: empty file")
        try:
            image = Image.open(io.BytesIO(data))
        except UnidentifiedImageError:
            raise InputError(f"{name}: not an image (unrecognised format)") from None
        except Image.DecompressionBombError:
            raise InputError(f"{name}: too large (at most {MAX_SOURCE_PIXELS} pixels)") from None
        except (OSError, SyntaxError, ValueError) as exc:
            raise InputError(f"{name}: not a readable image ({exc})") from None
        if image.width * image.height > MAX_SOURCE_PIXELS:
            raise InputError(f"{name}: {image.width}x{image.height} is too large "
                             f"(at most {MAX_SOURCE_PIXELS} pixels)")
        try:
            image.load()
        except (OSError, SyntaxError, ValueError) as exc:
            raise InputError(f"{name}: image data is truncated or corrupt ({exc})") from None
    if image.width < 16 or image.height < 16:
        raise InputError(f"{name}: {image.width}x{image.height} is too small (at least 16x16)")
    aspect = max(image.width, image.height) / min(image.width, image.height)
    if aspect > MAX_ASPECT:
        raise InputError(f"{name}: aspect ratio {aspect:.1f} is above {MAX_ASPECT:.0f}")
    return image.convert("RGB")


def fit_reference(image: Image.Image, limits: SizeLimits) -> Image.Image:
    """Resize to a valid size so the planner's 1/32 grid, upsampled 2x, lines up with the VAE's 1/16 grid."""
    size = snap_size(image.width, image.height, limits)
    return image if image.size == size else image.resize(size, Image.Resampling.BICUBIC)
