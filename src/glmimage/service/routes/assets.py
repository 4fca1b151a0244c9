"""Images by content hash. The hash is the capability: it is unguessable and only handed to those who may see
the generation, so `url` responses work in clients that cannot send a key (an <img> tag, a chat message)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Path, Query, Response

from glmimage.service.deps import SessionDep
from glmimage.service.errors import ERROR_RESPONSES, ApiError
from glmimage.service.formats import encode, output_options
from glmimage.service.tables import Asset

router = APIRouter(prefix="/v1/assets", tags=["assets"], responses=ERROR_RESPONSES)


@router.get("/{asset_hash}", response_class=Response,
            responses={200: {"content": {"image/png": {}, "image/jpeg": {}, "image/webp": {}}}})
def get_asset(session: SessionDep, asset_hash: str = Path(pattern="^[0-9a-f]{64}$"),
              format: Literal["png", "jpeg", "webp"] | None = Query(None, description=(
                  "Re-encode a PNG asset (what `url` responses with `output_format` jpeg or webp point to).")),
              compression: int | None = Query(None, ge=0, le=100, description="jpeg/webp quality, 0-100.")
              ) -> Response:
    asset = session.get(Asset, asset_hash)
    if asset is None:
        raise ApiError(404, f"no asset {asset_hash}", "not_found", "asset_hash")
    data, mime = asset.data, asset.mime
    if format is not None and format != "png":
        if asset.mime != "image/png":
            raise ApiError(400, f"asset {asset_hash} is {asset.mime}; only PNG outputs are re-encoded", "invalid_value",
                           "format")
        options = output_options(format, compression)
        data, mime = encode(asset.data, options), options.mime
    # Content-addressed: the bytes behind a hash (and a format) never change.
    return Response(data, media_type=mime, headers={"Cache-Control": "public, max-age=31536000, immutable"})
