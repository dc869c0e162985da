"""Opaque keyset cursors for deep, stable paging through events and cases.

``offset`` paging re-reads every skipped row, so page 10,000 of a large table is slow, and
rows that arrive while a client pages shift every later page: the same case shows up twice.
A cursor names the last row of a page by its sort value and its id instead, and the next
page starts right after it through the index. The cursor is base64 of JSON
``[sort field, value, id]``; clients pass it back unchanged (``?cursor=...``) with the same
filters and sort. Sort values may be null (a case without an SLA): nulls come last in
either direction, ordered by id.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import ColumnElement, DateTime, Integer, and_, false, literal, or_
from sqlalchemy import case as sql_case
from sqlalchemy.orm import InstrumentedAttribute

from server.api.query import MAX_DB_INT, QueryError, SortKey
from server.cases.workflow import OPEN_STATES
from server.db.models import Case, Event

_MALFORMED = "is malformed; pass back the next_cursor of a page unchanged"


def encode_cursor(key: SortKey, event: Event) -> str:
    return _encode(key, getattr(event, key.field), str(event.event_id))


def after_cursor(cursor: str, key: SortKey, column: InstrumentedAttribute[Any]) -> ColumnElement[bool]:
    """SQL condition: events that come after the cursor's event in ``key``'s order."""
    return _after(cursor, key, column, Event.event_id, uuid.UUID)


def encode_case_cursor(key: SortKey, case: Case) -> str:
    return _encode(key, getattr(case, key.field), case.id)


def after_case_cursor(cursor: str, key: SortKey, column: InstrumentedAttribute[Any]) -> ColumnElement[bool]:
    """SQL condition: cases that come after the cursor's case in ``key``'s order (nulls last)."""
    return _after(cursor, key, column, Case.id, _int_id)


def _int_id(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_DB_INT:
        raise ValueError("not an integer id")
    return value


def _bound(value: Any, column: InstrumentedAttribute[Any]) -> datetime | float | int | None:
    """The cursor's sort value as the column's own type; ValueError for anything else.

    A forged cursor must not reach the database with a value its column cannot hold (a number
    for a time, a time for a number, 2**80 for an INTEGER, a time that leaves year 1..9999).
    """
    if value is None:
        return None
    declared = column.property.columns[0].type
    kind = getattr(declared, "impl", declared)  # a TypeDecorator (UtcDateTime) stores as its impl
    if isinstance(kind, DateTime):
        if not isinstance(value, str):
            raise ValueError("not a time")
        moment = datetime.fromisoformat(value)
        try:
            return moment.astimezone(timezone.utc) if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
        except OverflowError:
            raise ValueError("time out of range") from None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError("not a number")
    if isinstance(kind, Integer):
        if not isinstance(value, int) or abs(value) > MAX_DB_INT:
            raise ValueError("not an integer the column can hold")
        return value
    return float(value)


def _encode(key: SortKey, value: Any, row_id: str | int) -> str:
    raw = [key.field, value.isoformat() if isinstance(value, datetime) else value, row_id]
    return base64.urlsafe_b64encode(json.dumps(raw).encode()).decode().rstrip("=")


def _after(
    cursor: str,
    key: SortKey,
    column: InstrumentedAttribute[Any],
    id_column: InstrumentedAttribute[Any],
    parse_id: Callable[[Any], Any],
) -> ColumnElement[bool]:
    field, value, last_id = _decode(cursor)
    if field != key.field:
        raise QueryError("cursor", f"was made for sort {field!r}; pass the same sort as the first page")
    try:
        row_id = parse_id(last_id)
        bound = _bound(value, column)
    except (TypeError, ValueError):
        raise QueryError("cursor", _MALFORMED) from None
    later_id = id_column < row_id if key.descending else id_column > row_id
    if bound is None:  # inside the trailing nulls: only more nulls, by id
        return and_(column.is_(None), later_id)
    beyond = column < bound if key.descending else column > bound
    # Nulls sort last: after any valued row come all of them (only where the column has any).
    nulls = column.is_(None) if column.property.columns[0].nullable else false()
    return or_(beyond, and_(column == bound, later_id), nulls)


def _decode(cursor: str) -> tuple[str, Any, Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        field, value, last_id = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError):
        raise QueryError("cursor", _MALFORMED) from None
    if not isinstance(field, str) or not isinstance(last_id, str | int):
        raise QueryError("cursor", _MALFORMED)
    return field, value, last_id


#: The queue's default order: most urgent priority first (1 before 5), then the open case due
#: soonest (its SLA: within one priority a truck due in 2 h comes before a pile due tomorrow;
#: overdue first), then newest, then id.
URGENT = "urgent"
#: The due time of a case with none to keep (finished, or no SLA): after every real one.
NOT_DUE = datetime(9999, 12, 31, tzinfo=timezone.utc)


def due_key() -> ColumnElement[datetime]:
    """SQL: the case's SLA due time while it is open, else :data:`NOT_DUE`."""
    open_and_due = and_(Case.state.in_(sorted(OPEN_STATES)), Case.sla_due_at.is_not(None))
    return sql_case((open_and_due, Case.sla_due_at), else_=literal(NOT_DUE, Case.sla_due_at.type))


def case_due(case: Case) -> datetime:
    """:func:`due_key` of one loaded case."""
    if case.state in OPEN_STATES and case.sla_due_at is not None:
        due = case.sla_due_at
        return due if due.tzinfo else due.replace(tzinfo=timezone.utc)
    return NOT_DUE


def encode_urgent_cursor(case: Case) -> str:
    value = [case.priority, case_due(case).isoformat(), case.last_event_at.isoformat()]
    return base64.urlsafe_b64encode(json.dumps([URGENT, value, case.id]).encode()).decode().rstrip("=")


def after_urgent_cursor(cursor: str) -> ColumnElement[bool]:
    """SQL condition: cases after the cursor's case in (priority asc, due asc, last_event_at desc,
    id desc)."""
    field, value, last_id = _decode(cursor)
    if field != URGENT:
        raise QueryError("cursor", f"was made for sort {field!r}; pass the same sort as the first page")
    try:
        if len(value) != 3:
            raise ValueError("an urgent cursor holds priority, due and last seen")
        priority, due = _bound(value[0], Case.priority), _bound(value[1], Case.sla_due_at)
        seen = _bound(value[2], Case.last_event_at)
        row_id = _int_id(last_id)
        if priority is None or due is None or seen is None:
            raise ValueError("null in an urgent cursor")
    except (TypeError, ValueError, IndexError, KeyError):
        raise QueryError("cursor", _MALFORMED) from None
    due_at = due_key()
    same = and_(Case.priority == priority, due_at == due)
    return or_(
        Case.priority > priority,
        and_(Case.priority == priority, due_at > due),
        and_(same, Case.last_event_at < seen),
        and_(same, Case.last_event_at == seen, Case.id < row_id),
    )
