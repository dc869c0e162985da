"""``/viewing``: which case each open console shows, so dispatchers see who else is on a case."""

from __future__ import annotations

from pydantic import BaseModel, Field


class Viewing(BaseModel):
    """A console page's heartbeat: the case it shows now (none: the queue alone)."""

    tab: str = Field(
        min_length=8,
        max_length=64,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="A random id the page makes once: two tabs of one person are two viewers.",
    )
    case_id: int | None = Field(default=None, ge=1, description="The case the page shows; null for none.")


class CaseViewers(BaseModel):
    case_id: int
    usernames: list[str] = Field(description="Who else has it open, sorted; never the caller.")


class ViewingAnswer(BaseModel):
    cases: list[CaseViewers] = Field(description="Every case someone else has open now.")
    fresh_s: int = Field(description="A page not heard from this long is no longer counted.")
