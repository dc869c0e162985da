"""``/stats``: what a supervisor watches (filled in below)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/stats", tags=["stats"])
