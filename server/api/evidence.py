"""``/evidence/{sha256}``: the evidence images, by content address."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, Request, Response, status

from server.api.deps import SessionDep, ViewerDep
from server.db.models import Evidence
from server.evidence_store import EvidenceStore
from streetwatch.errors import StorageError

log = logging.getLogger(__name__)

router = APIRouter(prefix="/evidence", tags=["evidence"])

SHA256_PATTERN = r"^[0-9a-f]{64}$"

#: Sent with every image: the bytes came from a box, so a browser must never sniff them into
#: something else (HTML, script), and opened on their own they may run and load nothing.
IMAGE_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; sandbox",
}


@router.get(
    "/{sha256}",
    response_class=Response,
    summary="An evidence image",
    responses={
        200: {"content": {"image/jpeg": {}, "image/png": {}}, "description": "The image bytes."},
        404: {"description": "No image with that SHA-256 was received."},
    },
)
def get_evidence(
    request: Request,
    session: SessionDep,
    _caller: ViewerDep,
    sha256: Annotated[str, Path(pattern=SHA256_PATTERN, description="Lowercase hex SHA-256 of the image.")],
) -> Response:
    row = session.get(Evidence, sha256)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no evidence image with sha256 {sha256}")
    # Content-addressed: the bytes behind a URL never change, so clients may cache them for good.
    headers = {
        **IMAGE_HEADERS,
        "Cache-Control": "private, max-age=31536000, immutable",
        "ETag": f'"{sha256}"',
    }
    if f'"{sha256}"' in request.headers.get("if-none-match", ""):
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    return Response(content=_read(request, row), media_type=row.content_type, headers=headers)


@router.get(
    "/{sha256}/thumbnail",
    response_class=Response,
    summary="A small JPEG of an evidence image, for lists",
    responses={
        200: {"content": {"image/jpeg": {}}, "description": "The image, longer side at most size pixels."},
        404: {"description": "No image with that SHA-256 was received."},
    },
)
def get_thumbnail(
    request: Request,
    session: SessionDep,
    _caller: ViewerDep,
    sha256: Annotated[str, Path(pattern=SHA256_PATTERN, description="Lowercase hex SHA-256 of the image.")],
    size: Annotated[int, Query(ge=32, le=640, description="Longer side in pixels (never enlarged).")] = 160,
) -> Response:
    row = session.get(Evidence, sha256)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no evidence image with sha256 {sha256}")
    etag = f'"{sha256}-{size}"'
    headers = {**IMAGE_HEADERS, "Cache-Control": "private, max-age=31536000, immutable", "ETag": etag}
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    return Response(
        content=thumbnail(_read(request, row), size, sha256), media_type="image/jpeg", headers=headers
    )


def thumbnail(data: bytes, size: int, name: str) -> bytes:
    """``data`` as a JPEG whose longer side is at most ``size`` pixels."""
    import cv2
    import numpy as np

    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        log.error("evidence %s is stored but does not decode as an image", name)
        raise HTTPException(
            status.HTTP_500_INTERNAL_SERVER_ERROR,
            detail=f"evidence {name} does not decode as an image on the server; see the server log",
        )
    height, width = image.shape[:2]
    scale = min(1.0, size / max(height, width))
    if scale < 1.0:
        new_size = (max(1, round(width * scale)), max(1, round(height * scale)))
        image = cv2.resize(image, new_size, interpolation=cv2.INTER_AREA)
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 80])
    if not ok:  # pragma: no cover - OpenCV encodes any decoded image
        raise HTTPException(
            status.HTTP_500_INTERNAL_SERVER_ERROR, detail=f"cannot encode a thumbnail of {name}"
        )
    return bytes(encoded.tobytes())


def _read(request: Request, row: Evidence) -> bytes:
    store: EvidenceStore = request.app.state.evidence_store
    try:
        return store.read(row.path)
    except (StorageError, ValueError) as exc:
        # Listed in the database but missing or corrupt on disk: the server's fault, not the client's.
        log.error("evidence %s is listed but unreadable: %s", row.sha256, exc)
        raise HTTPException(
            status.HTTP_500_INTERNAL_SERVER_ERROR,
            detail=f"evidence {row.sha256} is listed but cannot be read on the server; see the server log",
        ) from None
