"""``/signs``: the signboard register (``server.signs``): known signs that open no case.

=========================  ========  ==========================================================
GET    /signs              viewer    entries, newest first; ``permit_id``, ``source``
GET    /signs/zones        viewer    the no-sign zones (``signs.no_sign_zones``), for maps
GET    /signs/{id}         viewer    one entry with its latest sightings
POST   /signs              reviewer  add one: place, permit, and optionally the sign's crop as
                                     an evidence SHA-256 the server holds (its fingerprint)
PATCH  /signs/{id}         reviewer  its permit, validity, description or place (a permit renewed,
                                     a place corrected)
POST   /signs/import       reviewer  a permit list (CSV or GeoJSON text, as ``streetwatch signs
                                     import`` reads it) and the photos it names; ``dry_run``
                                     counts, changes nothing (up to ``api.max_upload_bytes``)
DELETE /signs/{id}         reviewer  remove one; its sightings stay, without the link
=========================  ========  ==========================================================

A signboard case rejected with reason ``permitted`` registers its sign by itself
(``server.api.reviews``); these endpoints are for what a review does not cover.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Query, Request, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select

from server.api.deps import ReviewerDep, SessionDep, ViewerDep, utcnow
from server.api.query import DEFAULT_LIMIT, MAX_DB_INT, MAX_LIMIT
from server.api.schemas.common import Page
from server.db.models import Evidence, Sign, SignSighting
from server.evidence_store import EvidenceStore
from server.settings import ServerSettings
from server.signs.permits import SentPhotos, import_permit_text
from server.signs.service import SignError, SignIn, add_sign, move_sign, remove_sign, views
from server.signs.since import open_cases_near, reach_of
from streetwatch.errors import ConfigError

router = APIRouter(prefix="/signs", tags=["signs"])
_ID = Path(ge=1, le=MAX_DB_INT, description="The register entry's id.")


class SignPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    lat: float
    lon: float
    permit_id: str | None = Field(description="The permit's id, when known.")
    valid_until: datetime | None = Field(description="When the permit runs out (None: no end known).")
    source: str = Field(description="review (a case marked permitted), import (a permit list) or api.")
    description: str
    case_id: int | None = Field(description="The case it was registered from.")
    crop_sha256: str | None = Field(description="The crop it was registered with (GET /evidence/{sha256}).")
    views: int = Field(description="Fingerprinted views; 0: no photo yet, the next sighting gives one.")
    created_by: str
    created_at: datetime
    last_seen_at: datetime | None
    sighting_count: int
    superseded_by: int | None = Field(
        description="The later entry that took this one's place (a case about it marked permitted): "
        "kept as history, it decides no sighting."
    )
    superseded_at: datetime | None


class SightingPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    event_id: Any
    device_id: str
    outcome: str = Field(description="attached / new / changed / expired / pending / unverified / restricted")
    case_id: int | None
    distance_m: float | None
    similarity: float | None
    zone_name: str | None = Field(description="restricted: the no-sign zone it was decided in.")
    at: datetime


class SignDetail(SignPublic):
    sightings: list[SightingPublic] = Field(description="The latest 50 sightings decided against it.")


class SignCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    permit_id: str | None = Field(default=None, max_length=64)
    valid_until: datetime | None = None
    description: str = Field(default="", max_length=500)
    crop_sha256: str | None = Field(
        default=None, pattern=r"^[0-9a-f]{64}$", description="An evidence image of the sign alone."
    )


class SignUpdate(BaseModel):
    """Only the fields given change; ``null`` clears ``permit_id`` or ``valid_until``."""

    model_config = ConfigDict(extra="forbid")

    permit_id: str | None = Field(default=None, max_length=64)
    valid_until: datetime | None = Field(
        default=None, description="A renewed permit's new end; null: no end."
    )
    description: str | None = Field(default=None, max_length=500)
    lat: float | None = Field(default=None, ge=-90, le=90, description="With lon: a corrected place.")
    lon: float | None = Field(default=None, ge=-180, le=180)


def _public(sign: Sign) -> dict[str, Any]:
    values = {c: getattr(sign, c) for c in SignPublic.model_fields if c != "views"}
    return {**values, "views": len(views(sign))}


@router.get("", response_model=Page[SignPublic], summary="List register entries (viewer)")
def list_signs(
    session: SessionDep,
    _caller: ViewerDep,
    permit_id: Annotated[str | None, Query(max_length=64, description="Only this permit.")] = None,
    source: Annotated[str | None, Query(max_length=16, description="review / import / api")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size.")] = DEFAULT_LIMIT,
    offset: Annotated[int, Query(ge=0, le=MAX_DB_INT, description="Rows to skip.")] = 0,
) -> Page[SignPublic]:
    conditions = []
    if permit_id is not None:
        conditions.append(Sign.permit_id == permit_id)
    if source is not None:
        conditions.append(Sign.source == source)
    total = session.scalar(select(func.count()).select_from(Sign).where(*conditions)) or 0
    rows = session.scalars(
        select(Sign).where(*conditions).order_by(Sign.id.desc()).limit(limit).offset(offset)
    ).all()
    items = [SignPublic.model_validate(_public(s)) for s in rows]
    return Page[SignPublic](items=items, total=total, limit=limit, offset=offset)


class ZonePublic(BaseModel):
    name: str
    reason: str
    polygons: list[list[list[tuple[float, float]]]] = Field(
        description="GeoJSON MultiPolygon coordinates: polygons of rings of [longitude, latitude]."
    )


class ZoneList(BaseModel):
    items: list[ZonePublic]
    read_at: datetime | None = Field(description="When the zones in force were read; null: no zone file.")
    problem: str | None = Field(
        description="Why the zone file's latest change is not in force (the zones read before are); "
        "null when it is."
    )


@router.get("/zones", response_model=ZoneList, summary="The no-sign zones the server reads (viewer)")
def list_zones(request: Request, _caller: ViewerDep) -> ZoneList:
    settings: ServerSettings = request.app.state.settings
    items = [
        ZonePublic(name=zone.name, reason=zone.reason, polygons=[[list(r) for r in p] for p in zone.polygons])
        for zone in settings.signs.zones
    ]
    source = settings.signs.zone_file
    if source is None:
        return ZoneList(items=items, read_at=None, problem=None)
    return ZoneList(items=items, read_at=source.read_at, problem=source.problem)


@router.get("/{sign_id}", response_model=SignDetail, summary="One register entry and its sightings (viewer)")
def get_sign(session: SessionDep, _caller: ViewerDep, sign_id: Annotated[int, _ID]) -> SignDetail:
    sign = session.get(Sign, sign_id)
    if sign is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no register entry {sign_id}")
    sightings = session.scalars(
        select(SignSighting).where(SignSighting.sign_id == sign_id).order_by(SignSighting.id.desc()).limit(50)
    ).all()
    return SignDetail.model_validate(
        {**_public(sign), "sightings": [SightingPublic.model_validate(s) for s in sightings]}
    )


@router.post(
    "",
    response_model=SignPublic,
    status_code=status.HTTP_201_CREATED,
    summary="Add a register entry (reviewer)",
    responses={422: {"description": "No such evidence image, or it is not a picture."}},
)
def create_sign(request: Request, body: SignCreate, session: SessionDep, caller: ReviewerDep) -> SignPublic:
    crops: list[bytes] = []
    if body.crop_sha256 is not None:
        row = session.get(Evidence, body.crop_sha256)
        store: EvidenceStore = request.app.state.evidence_store
        try:
            if row is None:
                raise OSError("not held by the server")
            crops.append(store.read(row.path))
        except OSError as exc:
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT, detail=f"evidence {body.crop_sha256}: {exc}"
            ) from None
    try:
        sign = add_sign(
            session,
            SignIn(
                lat=body.lat,
                lon=body.lon,
                permit_id=body.permit_id,
                valid_until=body.valid_until,
                description=body.description,
                source="api",
            ),
            caller.username,
            utcnow(),
            crops=crops,
        )
    except SignError as exc:
        session.rollback()
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=str(exc)) from None
    session.commit()
    return SignPublic.model_validate(_public(sign))


class PermitImport(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: Literal["csv", "geojson"] = Field(
        description="csv: a header row with permit_id, lat, lon and optionally valid_until, description; "
        "geojson: a FeatureCollection of Points with those properties."
    )
    text: str = Field(description="The list itself.")
    photos: dict[str, str] = Field(
        default_factory=dict,
        description="The photos its rows name (JPEG or PNG), base64, by file name: a row's photo matches "
        "a name here, or its last path part does. The whole body is at most api.max_upload_bytes.",
    )
    dry_run: bool = Field(
        default=False, description="Check the list and count what it would change; change nothing."
    )


class PermitImportReport(BaseModel):
    added: int = Field(description="Entries added (or that would be, on a dry run).")
    updated: int = Field(description="Entries of the same permit ids updated.")
    errors: list[str] = Field(description="Rows skipped, each with its row number and why.")
    notes: list[str] = Field(
        description="Rows imported without the photo they name (none was sent), and photos sent that no "
        "row names."
    )
    open_cases: list[int] = Field(
        default_factory=list,
        description="Open signboard cases within the register's reach of a permit the list adds or "
        "updates: opened before the permit was known, they may show the permitted sign (reject them "
        "as permitted if so). Nothing is decided for them.",
    )
    dry_run: bool


@router.post(
    "/import",
    response_model=PermitImportReport,
    summary="Import a permit list (reviewer)",
    responses={
        413: {"description": "The list and its photos are larger than api.max_upload_bytes."},
        422: {
            "description": "The list as a whole cannot be read (not CSV / GeoJSON, no header), or a photo "
            "is not base64."
        },
    },
)
def import_permit_list(
    body: PermitImport, session: SessionDep, caller: ReviewerDep, request: Request
) -> PermitImportReport:
    """Wrong rows are skipped and listed; the others are imported. Importing the same list again
    updates the entries of its permit ids instead of adding them twice. A row's photo becomes the
    entry's look (its fingerprint) and is kept with the evidence, so the console shows it."""
    photos = SentPhotos(_decoded(body.photos)) if body.photos else None
    try:
        report = import_permit_text(
            session,
            body.text,
            body.format,
            name="the permit list",
            photos=photos,
            # A dry run reads and fingerprints the photos but keeps none of them.
            store=None if body.dry_run else request.app.state.evidence_store,
            actor=caller.username,
            now=utcnow(),
        )
    except ConfigError as exc:
        session.rollback()
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=str(exc)) from None
    signs = request.app.state.settings.signs
    covered = open_cases_near(session, report.places, reach_of(signs.max_distance_m, signs.max_accuracy_m))
    if body.dry_run:
        session.rollback()
    else:
        session.commit()
    unused = photos.unused() if photos is not None else []
    return PermitImportReport(
        added=report.added,
        updated=report.updated,
        errors=report.errors,
        notes=report.notes + [f"photo {name!r} was sent but no row names it" for name in unused],
        open_cases=covered,
        dry_run=body.dry_run,
    )


def _decoded(photos: dict[str, str]) -> dict[str, bytes]:
    files = {}
    for name, text in photos.items():
        try:
            files[name] = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT, detail=f"photo {name!r} is not base64"
            ) from None
    return files


@router.patch(
    "/{sign_id}",
    response_model=SignPublic,
    summary="Change a register entry's permit, validity, description or place (reviewer)",
    responses={
        404: {"description": "No such entry."},
        422: {"description": "lat without lon, or a null one."},
    },
)
def update_sign(
    session: SessionDep, _caller: ReviewerDep, body: SignUpdate, sign_id: Annotated[int, _ID]
) -> SignPublic:
    sign = session.get(Sign, sign_id)
    if sign is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no register entry {sign_id}")
    given = body.model_fields_set
    if {"lat", "lon"} & given:
        if body.lat is None or body.lon is None:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail="give lat and lon together")
        move_sign(sign, body.lat, body.lon)
    if "permit_id" in given:
        sign.permit_id = body.permit_id
    if "valid_until" in given:
        sign.valid_until = body.valid_until
    if "description" in given:
        sign.description = body.description or ""
    session.commit()
    return SignPublic.model_validate(_public(sign))


@router.delete(
    "/{sign_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Remove a register entry (reviewer)",
    responses={404: {"description": "No such entry."}},
)
def delete_sign(session: SessionDep, _caller: ReviewerDep, sign_id: Annotated[int, _ID]) -> None:
    try:
        remove_sign(session, sign_id)
    except SignError as exc:
        session.rollback()
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=str(exc)) from None
    session.commit()
