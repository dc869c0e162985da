"""``/evidence/{sha256}``: the evidence images, by content address."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Request, Response, status

from server.api.deps import SessionDep, ViewerDep
from server.db.models import Evidence
from server.evidence_store import EvidenceStore
from streetwatch.errors import StorageError

log = logging.getLogger(__name__)

router = APIRouter(prefix="/evidence", tags=["evidence"])

SHA256_PATTERN = r"^[0-9a-f]{64}$"


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
    headers = {"Cache-Control": "private, max-age=31536000, immutable", "ETag": f'"{sha256}"'}
    if f'"{sha256}"' in request.headers.get("if-none-match", ""):
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    store: EvidenceStore = request.app.state.evidence_store
    try:
        data = store.read(row.path)
    except (StorageError, ValueError) as exc:
        # Listed in the database but missing or corrupt on disk: the server's fault, not the client's.
        log.error("evidence %s is listed but unreadable: %s", sha256, exc)
        raise HTTPException(
            status.HTTP_500_INTERNAL_SERVER_ERROR,
            detail=f"evidence {sha256} is listed but cannot be read on the server; see the server log",
        ) from None
    return Response(content=data, media_type=row.content_type, headers=headers)
