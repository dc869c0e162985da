"""``POST /cases/bulk-actions`` (filled in below)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/cases", tags=["reviews"])
