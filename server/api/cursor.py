"""Opaque keyset cursors for deep paging through events.

``offset`` paging re-reads every skipped row, so page 10,000 of a large events
table is slow; a cursor names the last row of a page by its sort value and
``event_id`` instead, and the next page starts right after it through the index.
The cursor is base64 of JSON ``[sort field, value, event_id]``; clients pass it
back unchanged (``?cursor=...``) with the same filters and sort.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, or_
from sqlalchemy.orm import InstrumentedAttribute

from server.api.query import QueryError, SortKey
from server.db.models import Event


def encode_cursor(key: SortKey, event: Event) -> str:
    value: Any = getattr(event, key.field)
    raw = [key.field, value.isoformat() if isinstance(value, datetime) else value, str(event.event_id)]
    return base64.urlsafe_b64encode(json.dumps(raw).encode()).decode().rstrip("=")


def after_cursor(cursor: str, key: SortKey, column: InstrumentedAttribute[Any]) -> ColumnElement[bool]:
    """SQL condition: rows that come after the cursor's row in ``key``'s order."""
    field, value, last_id = _decode(cursor)
    if field != key.field:
        raise QueryError("cursor", f"was made for sort {field!r}; pass the same sort as the first page")
    try:
        bound = datetime.fromisoformat(value) if isinstance(value, str) else float(value)
        event_id = uuid.UUID(last_id)
    except (TypeError, ValueError):
        raise QueryError("cursor", "is malformed; pass back the next_cursor of a page unchanged") from None
    if key.descending:
        return or_(column < bound, and_(column == bound, Event.event_id < event_id))
    return or_(column > bound, and_(column == bound, Event.event_id > event_id))


def _decode(cursor: str) -> tuple[str, Any, str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        field, value, last_id = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError):
        raise QueryError("cursor", "is malformed; pass back the next_cursor of a page unchanged") from None
    if not isinstance(field, str) or not isinstance(last_id, str):
        raise QueryError("cursor", "is malformed; pass back the next_cursor of a page unchanged")
    return field, value, last_id
