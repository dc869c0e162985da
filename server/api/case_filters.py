"""The case filters the queue, its counts and bulk actions share, as one typed value and SQL.

``GET /cases`` and ``GET /cases/counts`` read them from the query string (a pydantic query model);
``POST /cases/bulk-actions`` takes the same fields as JSON. One definition, so "reject everything the
queue shows" acts on exactly what the queue showed.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import ColumnElement, and_, exists, not_

from server.api.deps import as_utc
from server.api.query import DEVICE_HELP, QueryError, bbox_clause, device_clause, parse_bbox
from server.cases.states import HELD_STATES
from server.cases.workflow import OPEN_STATES
from server.db.models import Case, CaseReview, CaseState
from streetwatch.events import ViolationType
from streetwatch.taxonomy import Taxonomy

_OPEN = sorted(OPEN_STATES)
#: ``name:value`` of a review attribute, both as classes.yaml spells them.
ATTRIBUTE_PATTERN = r"^[a-z][a-z0-9_]*:[a-z][a-z0-9_]*$"


class CaseFilter(BaseModel):
    """The filters, read from the query string by FastAPI (``Annotated[CaseFilter, Query()]``)."""

    # Other query parameters (sort, limit, cursor) sit beside the filters: ignore, do not refuse.
    model_config = ConfigDict(frozen=True, extra="ignore")

    state: tuple[CaseState, ...] = Field(
        default=(),
        description="Only these states (repeat the parameter for several). Left out: every state but "
        "awaiting_recurrence and expired (patrol sightings that wait for a second pass, or waited in vain).",
    )
    violation_type: ViolationType | None = Field(default=None, description="Only this violation type.")
    priority: int | None = Field(default=None, ge=1, le=5, description="Only this priority (1..5).")
    candidate: bool | None = Field(
        default=None, description="true: only candidates (generic-class detections); false: none."
    )
    device_id: str | None = Field(default=None, max_length=65, description=DEVICE_HELP)
    assigned_team: str | None = Field(default=None, max_length=64, description="Only cases dispatched to it.")
    since: datetime | None = Field(
        default=None, description="Seen at or after this time: last_event_at >= since."
    )
    until: datetime | None = Field(default=None, description="Seen before this time: first_event_at < until.")
    bbox: str | None = Field(default=None, description="minlon,minlat,maxlon,maxlat (WGS 84).")
    overdue: bool | None = Field(
        default=None, description="true: open and past the SLA due time; false: not overdue."
    )
    attribute: str | None = Field(
        default=None,
        max_length=129,
        pattern=ATTRIBUTE_PATTERN,
        description="name:value of an attribute a reviewer recorded (review_attributes in "
        "datasets/classes.yaml), e.g. mounting:protruding or load:uncovered.",
    )

    def check_attribute(self, taxonomy: Taxonomy) -> None:
        """A name or value no violation type defines is a :class:`QueryError`, not an empty list."""
        if self.attribute is None:
            return
        name, value = self.attribute.split(":")
        defined = {
            a.name: [v.value for v in a.values]
            for attributes in taxonomy.review_attributes.values()
            for a in attributes
        }
        if name not in defined:
            raise QueryError(
                "attribute",
                f"no violation type has an attribute {name!r}; known: {', '.join(sorted(defined))}",
            )
        if value not in defined[name]:
            raise QueryError("attribute", f"{name} {value!r} is not one of {', '.join(defined[name])}")

    def conditions(self, now: datetime) -> list[ColumnElement[bool]]:
        """SQL conditions (AND) for these filters; ``now`` decides what is overdue."""
        conditions: list[ColumnElement[bool]] = []
        if self.state:
            conditions.append(Case.state.in_(self.state))
        else:  # sightings are not a dispatcher's cases: listed only when a filter names them
            conditions.append(Case.state.not_in(sorted(HELD_STATES)))
        if self.violation_type is not None:
            conditions.append(Case.violation_type == self.violation_type.value)
        if self.priority is not None:
            conditions.append(Case.priority == self.priority)
        if self.candidate is not None:
            conditions.append(Case.candidate.is_(self.candidate))
        if self.device_id is not None:
            conditions.append(device_clause(self.device_id, Case.device_id))
        if self.assigned_team is not None:
            conditions.append(Case.assigned_team == self.assigned_team)
        start, end = as_utc(self.since), as_utc(self.until)
        if start is not None:
            conditions.append(Case.last_event_at >= start)
        if end is not None:
            conditions.append(Case.first_event_at < end)
        box = parse_bbox(self.bbox)
        if box is not None:
            conditions.append(bbox_clause(box, Case.lat, Case.lon))
        if self.overdue is not None:
            late = overdue_clause(now)
            conditions.append(late if self.overdue else not_(late))
        if self.attribute is not None:
            name, value = self.attribute.split(":")
            recorded = CaseReview.attributes[(name, "value")].as_string() == value
            conditions.append(exists().where(CaseReview.case_id == Case.id, recorded))
        return conditions


def overdue_clause(now: datetime) -> ColumnElement[bool]:
    """Open and past the SLA due time (a case without an SLA is never overdue)."""
    return and_(Case.sla_due_at.is_not(None), Case.sla_due_at < now, Case.state.in_(_OPEN))


def is_overdue(case: Case, now: datetime) -> bool:
    return case.sla_due_at is not None and case.sla_due_at < now and case.state in _OPEN
