"""What the supervisor statistics (``/stats``) answer."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class PrecisionRow(BaseModel):
    violation_type: str
    model_name: str = Field(description="Model of the event that opened the case.")
    model_version: str
    config: str | None = Field(
        default=None,
        description="Name and version of the configuration installed over the air that the box ran "
        "(event schema 6); null for boxes on their own file, or older.",
    )
    reviewed: int = Field(description="Cases whose standing decision was made in the window.")
    confirmed: int
    rejected: int
    excluded: int = Field(description="Rejected as duplicate or bad_image: nothing said about the model.")
    permitted: int = Field(
        default=0,
        description="Rejected as permitted: a real object of the type, only allowed (a registered sign). "
        "Counted in rejected; right for the model.",
    )
    share_confirmed: float | None = Field(
        description="confirmed / (reviewed - excluded): the share that were violations; null when 0."
    )
    share_real: float | None = Field(
        default=None,
        description="(confirmed + permitted) / (reviewed - excluded): the model's precision, the share "
        "where the object is what it raised, allowed or not; null when 0.",
    )
    reject_reasons: dict[str, int] = Field(description="Rejections by reason code (unspecified: none given).")


class PrecisionTotal(BaseModel):
    violation_type: str
    reviewed: int
    confirmed: int
    rejected: int
    excluded: int
    permitted: int = 0
    share_confirmed: float | None
    share_real: float | None = None


class PrecisionAnswer(BaseModel):
    since: datetime | None = Field(
        default=None, description="Decisions made at or after this time (UTC); null: from the start."
    )
    until: datetime | None = Field(
        default=None, description="Decisions made before this time (UTC); null: up to now."
    )
    rows: list[PrecisionRow] = Field(description="Per violation type, model version and configuration.")
    totals: list[PrecisionTotal] = Field(description="Per violation type, all models.")


class ThroughputRow(BaseModel):
    reviewer: str
    bucket_start: datetime = Field(description="Start of the hour or day (UTC).")
    actions: int = Field(description="Everything the reviewer did: decisions, dispatches, notes...")
    confirm: int
    reject: int
    other: int


class ReviewerTotal(BaseModel):
    reviewer: str
    actions: int
    active_buckets: int = Field(description="Hours (or days) with at least one action.")
    per_bucket: float = Field(description="Actions per active hour (or day).")


class ThroughputAnswer(BaseModel):
    bucket: str
    rows: list[ThroughputRow]
    reviewers: list[ReviewerTotal]


class OpenCasesRow(BaseModel):
    violation_type: str
    age: str = Field(description="Age bucket since opening.")
    open: int
    overdue: int = Field(description="Of those, past their SLA due time.")


class OpenCasesAnswer(BaseModel):
    buckets: list[str] = Field(description="Age buckets, youngest first.")
    rows: list[OpenCasesRow]
    total_open: int
    total_overdue: int


class RecurrenceRow(BaseModel):
    violation_type: str
    cell: str = Field(description="Geohash cell (~150 m).")
    bbox: str = Field(
        description="The cell as minlon,minlat,maxlon,maxlat: GET /cases?bbox= lists its cases."
    )
    lat: float | None = Field(description="Mean position of its cases.")
    lon: float | None
    cases: int = Field(description="Cases opened there in the window (merged duplicates not counted).")
    recurrences: int = Field(description="Of those, opened again after an earlier case was closed.")
    open: int = Field(description="Of those, still open.")
    first_opened_at: datetime | None
    last_event_at: datetime | None
    case_ids: list[int] = Field(description="Newest first, at most 20.")


class RecurrencesAnswer(BaseModel):
    rows: list[RecurrenceRow]
