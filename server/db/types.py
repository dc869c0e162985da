"""Column types that behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timezone
from enum import Enum
from typing import Any, Generic, TypeVar

from sqlalchemy import DateTime, String
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

E = TypeVar("E", bound=Enum)


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every backend.

    SQLite has no time zones and hands back naive values; PostgreSQL's
    ``timestamptz`` returns the session's zone. Both are normalised to UTC so the
    rest of the code only ever sees aware UTC datetimes, and naive input is
    refused instead of being silently taken as local time.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value.isoformat()} cannot be stored; give it a UTC timezone")
        value = value.astimezone(timezone.utc)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


class EnumText(TypeDecorator[E], Generic[E]):
    """An enumeration stored as its values' plain strings (``VARCHAR(length)``), read back as members.

    The column is an ordinary string column, so the schema (and every migration) is the same
    as a ``String(length)`` and adding a member needs no migration; the code only ever sees
    members. Binding takes a member or its value; anything else is refused before it is written:

    >>> from server.cases.states import CaseState
    >>> column = EnumText(CaseState, 24)
    >>> column.process_bind_param(CaseState.closed, None), column.process_bind_param("new", None)
    ('closed', 'new')
    >>> column.process_result_value("rejected", None)
    <CaseState.rejected: 'rejected'>
    >>> column.process_bind_param("open", None)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: 'open' is not a CaseState (one of: new, confirmed, rejected, ...)
    """

    impl = String
    cache_ok = True

    def __init__(self, enum: type[E], length: int) -> None:
        super().__init__(length)
        self.enum = enum

    @property
    def python_type(self) -> type[E]:
        return self.enum

    def process_bind_param(self, value: E | str | None, dialect: Dialect | None) -> str | None:
        if value is None:
            return None
        try:
            member = self.enum(value)
        except ValueError:
            known = ", ".join(str(m.value) for m in self.enum)
            raise ValueError(f"{value!r} is not a {self.enum.__name__} (one of: {known})") from None
        return str(member.value)

    def process_result_value(self, value: str | None, dialect: Dialect | None) -> E | None:
        return None if value is None else self.enum(value)
