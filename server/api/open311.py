"""Open311 GeoReport v2, read-only: cases as service requests for a city's hotline systems.

Routes (JSON only; GeoReport's XML variants are not served):

* ``GET /open311/v2/services.json``: the four violation types as services.
* ``GET /open311/v2/requests.json``: cases as service requests. Filters, as in
  the spec: ``service_request_id`` (comma list; other filters are then
  ignored), ``service_code`` (comma list), ``status`` (``open`` / ``closed``,
  comma list), ``start_date`` / ``end_date`` (on ``requested_datetime``,
  W3C/ISO 8601). Without dates the last 90 days are returned; never more
  than 1,000 requests, newest first.
* ``GET /open311/v2/requests/<id>.json``: one request (a one-element list, as the spec says).

Mapping of our data to GeoReport fields:

====================  =========================================================
GeoReport field       StreetWatch source
====================  =========================================================
service_code          case ``violation_type`` (see :data:`SERVICES` for names)
service_request_id    case ``id`` (as a string)
status                ``open`` for new, confirmed, dispatched, possibly_resolved;
                      ``closed`` for rejected, resolved, closed
status_notes          the workflow state in words (``OPEN_STATES`` / ``CLOSED_STATES``)
requested_datetime    case ``opened_at``
updated_datetime      case ``updated_at``
expected_datetime     case ``sla_due_at``
agency_responsible    case ``assigned_team`` (set by a dispatch)
description           case ``title``, how many reports and devices back it, the box's
                      truck load answer, and what a reviewer recorded (e.g. a sign's
                      ``mounting: protruding (reviewed)``; a reviewer's load replaces the box's)
service_notice        a note when every report so far is a detector *candidate*
lat / long            case position (centre of its events)
media_url             the full-frame evidence of the case's best-scoring event
address, zipcode      null: the server does no reverse geocoding
====================  =========================================================

Access: a viewer-or-higher token, sent as ``Authorization: Bearer`` or, as
GeoReport clients do, as the ``api_key`` query parameter. Errors are GeoReport
error lists: ``[{"code": 404, "description": "..."}]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel, Field
from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from server.api.deps import (
    SessionDep,
    as_utc,
    bearer_scheme,
    check_role,
    noted_use,
    principal_for_token,
    utcnow,
)
from server.api.links import EvidenceLinks
from server.auth import Principal, Role
from server.db.models import Case, CaseReview, CaseState, Event
from streetwatch.events import ViolationType

PREFIX = "/open311/v2"
DEFAULT_DAYS = 90
MAX_REQUESTS = 1000


@dataclass(frozen=True)
class ServiceInfo:
    name: str
    description: str
    group: str
    keywords: str


SERVICES: dict[ViolationType, ServiceInfo] = {
    ViolationType.street_vending: ServiceInfo(
        "Street vending",
        "Stalls, carts, tricycles or goods spread out on sidewalks and roadsides.",
        "Street order",
        "vending,stall,cart,hawker,sidewalk",
    ),
    ViolationType.garbage_overflow: ServiceInfo(
        "Garbage overflow",
        "Overflowing bins, bags or piles of garbage outside bins, dumped waste.",
        "Sanitation",
        "garbage,trash,bin,overflow,dumping,litter",
    ),
    ViolationType.illegal_signboard: ServiceInfo(
        "Illegal signboard",
        "Free-standing sidewalk signs, banners on trees and poles, damaged or hanging shop signs.",
        "Street order",
        "signboard,sign,banner,a-frame,advertising",
    ),
    ViolationType.unsealed_truck: ServiceInfo(
        "Unsealed construction-waste truck",
        "Dump or construction-waste trucks whose load is not covered or sealed.",
        "Traffic and transport",
        "truck,dump truck,construction waste,uncovered load",
    ),
}

#: Our workflow states that GeoReport calls ``open``, with the note shown for each.
OPEN_STATES: dict[CaseState, str] = {
    CaseState.new: "Reported by patrol cameras; awaiting review.",
    CaseState.confirmed: "Confirmed by a dispatcher.",
    CaseState.dispatched: "A team has been dispatched.",
    CaseState.possibly_resolved: "A patrol passed by and no longer saw it; awaiting confirmation.",
}
#: Our workflow states that GeoReport calls ``closed``.
CLOSED_STATES: dict[CaseState, str] = {
    CaseState.rejected: "Rejected on review (not a violation).",
    CaseState.resolved: "Resolved.",
    CaseState.closed: "Closed.",
}
#: What Open311 publishes: a sighting waiting for a second pass (or expired waiting) is no
#: request until it becomes a case.
PUBLISHED_STATES = sorted({*OPEN_STATES, *CLOSED_STATES})


REQUESTS_HELP = (
    "Cases as GeoReport v2 service requests, newest first, at most 1,000; the last 90 days unless "
    "start_date / end_date are given. service_request_id = case id; service_code = violation type; "
    "status open = " + ", ".join(OPEN_STATES) + "; status closed = " + ", ".join(CLOSED_STATES) + "; "
    "agency_responsible = the team a dispatch assigned; expected_datetime = the SLA due time; "
    "media_url = the best evidence frame (needs a viewer token)."
)


def georeport_status(state: CaseState) -> str:
    """``open`` or ``closed`` for one of our case states."""
    if state in OPEN_STATES:
        return "open"
    if state in CLOSED_STATES:
        return "closed"
    raise ValueError(f"case state {state!r} has no Open311 mapping")


class Service(BaseModel):
    service_code: str
    service_name: str
    description: str
    metadata: bool = Field(description="Always false: no extra attributes are asked for.")
    type: str = Field(description="realtime: requests are created by the system as it detects them.")
    keywords: str
    group: str


class ServiceRequest(BaseModel):
    service_request_id: str
    status: str = Field(description="open / closed.")
    status_notes: str
    service_name: str
    service_code: str
    description: str
    agency_responsible: str | None
    service_notice: str | None
    requested_datetime: datetime
    updated_datetime: datetime
    expected_datetime: datetime | None
    address: str | None
    address_id: str | None
    zipcode: str | None
    lat: float | None
    long: float | None
    media_url: str | None


def open311_caller(
    request: Request,
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
    api_key: Annotated[
        str | None, Query(description="A viewer token, for clients that cannot send headers.")
    ] = None,
) -> Principal:
    token = credentials.credentials if credentials else api_key
    return check_role(noted_use(request, principal_for_token(session, token)), Role.viewer)


CallerDep = Annotated[Principal, Depends(open311_caller)]


def build_router() -> APIRouter:
    router = APIRouter(prefix=PREFIX, tags=["open311"])

    @router.get("/services.json", response_model=list[Service], summary="Open311 service list")
    def services(_caller: CallerDep) -> list[Service]:
        return [
            Service(
                service_code=code.value,
                service_name=info.name,
                description=info.description,
                metadata=False,
                type="realtime",
                keywords=info.keywords,
                group=info.group,
            )
            for code, info in SERVICES.items()
        ]

    @router.get(
        "/requests.json",
        response_model=list[ServiceRequest],
        summary="Open311 service requests",
        description=REQUESTS_HELP,
    )
    def requests(
        request: Request,
        session: SessionDep,
        _caller: CallerDep,
        service_request_id: Annotated[str | None, Query(description="Comma-separated case ids.")] = None,
        service_code: Annotated[str | None, Query(description="Comma-separated service codes.")] = None,
        status_: Annotated[str | None, Query(alias="status", description="open, closed or both.")] = None,
        start_date: Annotated[datetime | None, Query(description="requested_datetime >= this.")] = None,
        end_date: Annotated[datetime | None, Query(description="requested_datetime <= this.")] = None,
    ) -> list[ServiceRequest]:
        conditions: list[ColumnElement[bool]] = [Case.state.in_(PUBLISHED_STATES)]
        if service_request_id:
            conditions.append(Case.id.in_(_parse_ids(service_request_id)))
        else:
            if service_code:
                conditions.append(Case.violation_type.in_(_parse_codes(service_code)))
            if status_:
                conditions.append(Case.state.in_(_parse_statuses(status_)))
            start, end = as_utc(start_date), as_utc(end_date)
            if start is None and end is None:
                start = utcnow() - timedelta(days=DEFAULT_DAYS)
            if start is not None:
                conditions.append(Case.opened_at >= start)
            if end is not None:
                conditions.append(Case.opened_at <= end)
        rows = session.scalars(
            select(Case)
            .where(*conditions)
            .order_by(Case.opened_at.desc(), Case.id.desc())
            .limit(MAX_REQUESTS)
        ).all()
        return _to_requests(session, list(rows), EvidenceLinks(request))

    @router.get(
        "/requests/{service_request_id}.json",
        response_model=list[ServiceRequest],
        summary="One Open311 service request",
    )
    def request_detail(
        request: Request, session: SessionDep, _caller: CallerDep, service_request_id: str
    ) -> list[ServiceRequest]:
        ids = _parse_ids(service_request_id)
        case = session.get(Case, ids[0]) if len(ids) == 1 else None
        if case is None or case.state not in PUBLISHED_STATES:
            raise HTTPException(
                status.HTTP_404_NOT_FOUND, detail=f"no service request {service_request_id!r}"
            )
        return _to_requests(session, [case], EvidenceLinks(request))

    return router


def _to_requests(session: Session, cases: list[Case], links: EvidenceLinks) -> list[ServiceRequest]:
    media, attributes = _best_frames(session, [c.id for c in cases])
    reviewed = _reviewed_attributes(session, [c.id for c in cases])
    out = []
    for case in cases:
        info = _SERVICE_BY_CODE.get(case.violation_type)
        said = reviewed.get(case.id, {})
        box_note = "" if "load" in said else _load_note(attributes.get(case.id))
        out.append(
            ServiceRequest(
                service_request_id=str(case.id),
                status=georeport_status(case.state),
                status_notes={**OPEN_STATES, **CLOSED_STATES}[case.state],
                service_name=info.name if info else case.violation_type,
                service_code=case.violation_type,
                description=f"{case.title} ({_counted(case.event_count, 'report')} from "
                f"{_counted(case.device_count, 'device')})" + box_note + _review_note(said),
                agency_responsible=case.assigned_team,
                service_notice=(
                    "Raised by a generic detector class; pending a dispatcher's review."
                    if case.candidate
                    else None
                ),
                requested_datetime=case.opened_at,
                updated_datetime=case.updated_at,
                expected_datetime=case.sla_due_at,
                address=None,
                address_id=None,
                zipcode=None,
                lat=case.lat,
                long=case.lon,
                media_url=links.maybe(media.get(case.id)),
            )
        )
    return out


def _best_frames(session: Session, case_ids: list[int]) -> tuple[dict[int, str], dict[int, dict[str, Any]]]:
    """For each case, the frame SHA-256 of its highest-scoring event that kept evidence, and the
    box's second-stage answer (a truck's load) of the highest-scoring such event that has one."""
    best: dict[int, tuple[float, str]] = {}
    answers: dict[int, tuple[float, dict[str, Any]]] = {}
    if not case_ids:
        return {}, {}
    rows = session.execute(
        select(Event.case_id, Event.score, Event.frame_sha256, Event.attributes).where(
            Event.case_id.in_(case_ids), Event.frame_sha256.is_not(None)
        )
    )
    for case_id, score, sha, attributes in rows:
        if case_id is None:
            continue
        if sha and (case_id not in best or score > best[case_id][0]):
            best[case_id] = (score, sha)
        if attributes and (case_id not in answers or score > answers[case_id][0]):
            answers[case_id] = (score, attributes)
    return (
        {case_id: sha for case_id, (_score, sha) in best.items()},
        {case_id: found for case_id, (_score, found) in answers.items()},
    )


def _reviewed_attributes(session: Session, case_ids: list[int]) -> dict[int, dict[str, str]]:
    """For each case a reviewer annotated, the attribute values recorded (name -> value)."""
    if not case_ids:
        return {}
    found: dict[int, dict[str, str]] = {}
    rows = session.execute(
        select(CaseReview.case_id, CaseReview.attributes).where(CaseReview.case_id.in_(case_ids))
    )
    for case_id, attributes in rows:
        values = {
            name: entry["value"]
            for name, entry in (attributes or {}).items()
            if isinstance(entry, dict) and isinstance(entry.get("value"), str)
        }
        if values:
            found[case_id] = values
    return found


def _review_note(values: dict[str, str]) -> str:
    """'; mounting: protruding (reviewed)' per attribute a reviewer recorded, in name order: what
    a field crew should know before it goes out."""
    return "".join(
        f"; {name}: {value.replace('_', ' ')} (reviewed)" for name, value in sorted(values.items())
    )


def _counted(n: int, noun: str) -> str:
    """``1 report``, ``2 reports``: the description is read by people in the city's own system."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _load_note(attributes: dict[str, Any] | None) -> str:
    """'; load: uncovered (0.91)' (or 'unsure (covered at 0.46)') for a truck case whose box
    classified the load, else ''."""
    if not attributes or not attributes.get("load"):
        return ""
    score = attributes.get("load_score")
    shown = f" ({score:.2f})" if isinstance(score, (int, float)) else ""
    leaning = attributes.get("load_likeliest")
    if leaning and isinstance(score, (int, float)):
        shown = f" ({leaning.replace('_', ' ')} at {score:.2f})"
    return f"; load: {attributes['load']}{shown}"


_CODES = {v.value for v in ViolationType}
_SERVICE_BY_CODE = {code.value: info for code, info in SERVICES.items()}


def _bad_request(message: str) -> HTTPException:
    return HTTPException(status.HTTP_400_BAD_REQUEST, detail=message)


def _parse_ids(raw: str) -> list[int]:
    try:
        ids = [int(part) for part in raw.split(",") if part.strip()]
    except ValueError:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, detail=f"service_request_id must be numeric case ids, got {raw!r}"
        ) from None
    if not ids:
        raise _bad_request("service_request_id is empty")
    return ids


def _parse_codes(raw: str) -> list[str]:
    codes = [part.strip() for part in raw.split(",") if part.strip()]
    unknown = [c for c in codes if c not in _CODES]
    if unknown:
        raise _bad_request(f"unknown service_code {', '.join(unknown)}; services.json lists the valid ones")
    return codes


def _parse_statuses(raw: str) -> list[CaseState]:
    states: list[CaseState] = []
    for part in (p.strip() for p in raw.split(",")):
        if part == "open":
            states.extend(OPEN_STATES)
        elif part == "closed":
            states.extend(CLOSED_STATES)
        elif part:
            raise _bad_request(f"status must be open or closed, got {part!r}")
    return states
