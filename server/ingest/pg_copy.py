"""Bulk insert through PostgreSQL's COPY, for the one table ingest fills fastest (events).

A multi-row INSERT of a few hundred events costs the worker more CPU in building
and parsing the statement than in anything else it does per event; COPY streams
the rows in psycopg's binary-capable C code instead. Same transaction, same
constraints (a duplicate key still fails the whole batch).
"""

from __future__ import annotations

from typing import Any

from psycopg.types.json import Json
from sqlalchemy import JSON, Table
from sqlalchemy.orm import Session


def copy_rows(session: Session, table: Table, rows: list[dict[str, Any]]) -> None:
    """COPY ``rows`` (column name -> value dicts, all with the same keys) into ``table``."""
    if not rows:
        return
    names = list(rows[0])
    json_columns = {c.name for c in table.columns if isinstance(c.type, JSON)}
    quoted = ", ".join(f'"{name}"' for name in names)
    connection = session.connection().connection.driver_connection
    assert connection is not None
    with connection.cursor() as cursor, cursor.copy(f'COPY "{table.name}" ({quoted}) FROM STDIN') as copy:
        for row in rows:
            copy.write_row([Json(row[n]) if n in json_columns else row[n] for n in names])
