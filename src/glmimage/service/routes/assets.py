"""Images by content hash. The hash is the capability: it is unguessable and only handed to those who may see
the generation, so `url` responses work in clients that cannot send a key (an <img> tag, a chat message)."""

from __future__ import annotations

from fastapi import APIRouter, Path, Response

from glmimage.service.deps import SessionDep
from glmimage.service.errors import ERROR_RESPONSES, ApiError
from glmimage.service.tables import Asset

router = APIRouter(prefix="/v1/assets", tags=["assets"], responses=ERROR_RESPONSES)


@router.get("/{asset_hash}", response_class=Response,
            responses={200: {"content": {"image/png": {}, "image/jpeg": {}, "image/webp": {}}}})
def get_asset(session: SessionDep, asset_hash: str = Path(pattern="^[0-9a-f]{64}$")) -> Response:
    asset = session.get(Asset, asset_hash)
    if asset is None:
        raise ApiError(404, f"no asset {asset_hash}", "not_found", "asset_hash")
    # Content-addressed: the bytes behind a hash never change.
    return Response(asset.data, media_type=asset.mime, headers={"Cache-Control": "public, max-age=31536000, immutable"})
