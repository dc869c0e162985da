"""One way to page a list: offset or cursor, and the total only when it is asked for.

``COUNT(*)`` over a large table costs as much as reading it, which defeats the point of cursor
paging: a page reached with a cursor does not count unless the client asks (``count=true``);
the first page of a list (and offset pages, which draw a pager) counts by default.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Query
from sqlalchemy import ColumnElement, Select, func
from sqlalchemy.orm import Session

from server.api.query import QueryError

Row = TypeVar("Row")

CountQuery = Annotated[
    bool | None,
    Query(
        description="Count the rows matching the filters into `total`. Default: yes without a cursor, "
        "no with one (counting a large table on every page defeats cursor paging; total is then null)."
    ),
]


@dataclass(frozen=True)
class PageRows(Generic[Row]):
    rows: Sequence[Row]
    total: int | None
    #: The last row when the page is full (the next page starts after it), else None.
    last: Row | None


def paginate(
    session: Session,
    stmt: Select[Any],
    *,
    order: Sequence[Any],
    cursor: str | None,
    after: Callable[[str], ColumnElement[bool]],
    limit: int,
    offset: int,
    count: bool | None,
) -> PageRows[Row]:
    """One page of ``stmt`` (a filtered ``select(Model)``) in ``order``.

    ``after(cursor)`` turns a cursor into the condition "comes after the row it names"; a cursor
    and an offset together are refused. The total counts the filters only (not the cursor).
    """
    if cursor and offset:
        raise QueryError("cursor", "cannot be combined with offset; use one or the other")
    total: int | None = None
    if count if count is not None else not cursor:
        counted = stmt.with_only_columns(func.count(), maintain_column_froms=True).order_by(None)
        total = session.scalar(counted) or 0
    if cursor:
        stmt = stmt.where(after(cursor))
    rows = session.scalars(stmt.order_by(*order).limit(limit).offset(offset)).all()
    return PageRows(rows=rows, total=total, last=rows[-1] if len(rows) == limit else None)
