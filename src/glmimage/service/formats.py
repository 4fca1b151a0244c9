"""How finished images are sent: OpenAI's `output_format` (png, jpeg, webp) with `output_compression`, and the
`background` it asks for. Outputs are stored once as PNG (with their metadata); other formats are encoded from
them when sent, the same way for `b64_json` and for `url` responses (`/v1/assets/{hash}?format=&compression=`)."""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image

from glmimage.service.errors import ApiError

FORMATS = {"png": ("PNG", "image/png"), "jpeg": ("JPEG", "image/jpeg"), "webp": ("WEBP", "image/webp")}
DEFAULT_COMPRESSION = 100  # OpenAI's default: the encoder's highest quality


@dataclass(frozen=True)
class OutputOptions:
    """What a response is asked to carry besides the images themselves."""

    format: str = "png"
    compression: int | None = None  # jpeg/webp: the encoder's quality, 0-100 (100: best, largest)
    background: str | None = None  # "auto" or "opaque" (transparent is refused: the model makes no alpha)
    quality: str | None = None  # as asked; the policy turned it into steps

    @property
    def mime(self) -> str:
        return FORMATS[self.format][1]

    def query(self) -> str:
        """The query string of a `url` response in this format ("" for png)."""
        if self.format == "png":
            return ""
        compression = DEFAULT_COMPRESSION if self.compression is None else self.compression
        return f"?format={self.format}&compression={compression}"


PNG = OutputOptions()  # the default: the stored PNG as it is


def output_options(output_format: str | None, compression: int | None, background: str | None = None,
                   quality: str | None = None) -> OutputOptions:
    """Check OpenAI's output parameters: 400 for a transparent background (GLM-Image's images have no alpha
    channel) and for a compression with PNG (lossless: it would change nothing)."""
    fmt = (output_format or "png").lower()
    if fmt not in FORMATS:
        raise ApiError(400, f"output_format {output_format!r} is not one of {list(FORMATS)}", "invalid_value",
                       "output_format")
    if background == "transparent":
        raise ApiError(400, "background 'transparent' is not supported: GLM-Image makes opaque images (no alpha "
                            "channel); use 'opaque' or 'auto'", "unsupported_parameter", "background")
    if compression is not None:
        if fmt == "png":
            raise ApiError(400, "output_compression applies to jpeg and webp; png is lossless", "invalid_value",
                           "output_compression")
        if isinstance(compression, bool) or not 0 <= compression <= 100:
            raise ApiError(400, f"output_compression must be in [0, 100], got {compression!r}", "invalid_value",
                           "output_compression")
    return OutputOptions(fmt, compression, background, quality)


def _encoded(png: bytes, fmt: str, compression: int) -> bytes:
    with Image.open(io.BytesIO(png)) as im:
        buffer = io.BytesIO()
        im.convert("RGB").save(buffer, format=FORMATS[fmt][0], quality=compression)
        return buffer.getvalue()


def encode(png: bytes, options: OutputOptions) -> bytes:
    """A stored PNG in the asked format: the PNG itself (metadata and all), or JPEG/WebP at the asked quality."""
    if options.format == "png":
        return png
    return _encoded(png, options.format, DEFAULT_COMPRESSION if options.compression is None else options.compression)
