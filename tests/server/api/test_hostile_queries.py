"""Hostile path, query and body values give 4xx, never 500, on SQLite and PostgreSQL.

The routes and their parameters are read from the app's own OpenAPI document, so a route added
later is swept too. Each value is tried in each parameter of each route (the other path
parameters get a plain valid value), as an admin so no answer stops at a role check.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from typing import Any
from urllib.parse import quote

import pytest

from tests.server.api.conftest import Api, ingest, make_event

HUGE_INTS = [
    "2147483648",  # PostgreSQL integer + 1
    "9223372036854775807",
    "9223372036854775808",  # 2**63: beyond SQLite's and PostgreSQL's bigint
    "-9223372036854775809",
    "340282366920938463463374607431768211456",
    "-1",
    "0",
]
FLOATS = ["1e309", "-1e309", "NaN", "inf", "-0", "1e-400"]
TIMES = [
    "0001-01-01T00:00:00+14:00",  # before year 1 once in UTC
    "9999-12-31T23:59:59-14:00",  # after year 9999 once in UTC
    "0001-01-01T00:00:00",
    "9999-12-31T23:59:59.999999Z",
    "2026-02-30T00:00:00Z",
    "294277-01-01T00:00:00Z",
]
STRINGS = [
    "\x00",
    "box\x00-1",
    "x" * 5000,
    "'; DROP TABLE cases; --",
    "../../etc/passwd",
    "%00",
    "\u202e\ufeff",
    "0,0,1e309,1",
    "nan,0,1,1",
    ",,,,",
]


def _cursor(raw: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(raw).encode()).decode().rstrip("=")


CURSORS = [
    _cursor(["id", 1, 2**70]),
    _cursor(["id", None, 2**63]),
    _cursor(["last_event_at", "0001-01-01T00:00:00+14:00", 1]),
    _cursor(["last_event_at", "9999-12-31T23:59:59-14:00", 1]),
    _cursor(["observed_at", "0001-01-01T00:00:00+14:00", str(uuid.uuid4())]),
    _cursor(["observed_at", "2026-01-01T00:00:00Z", "not-a-uuid"]),
    _cursor(["priority", "2026-01-01T00:00:00Z", 1]),
    _cursor(["score", "2026-01-01T00:00:00Z", str(uuid.uuid4())]),
    _cursor(["priority", 1e308, 1]),
    _cursor(["priority", 2**80, 1]),
    _cursor(["last_event_at", 5, 1]),
    _cursor(["sla_due_at", "x\u0000y", 1]),
    _cursor(["id", [], {}]),
    _cursor([[], [], []]),
    _cursor({"a": 1}),
    base64.urlsafe_b64encode(b"\xff\xfe\x00").decode(),
    "!!!not base64!!!",
]
HOSTILE = HUGE_INTS + FLOATS + TIMES + STRINGS


def hostile_values(parameter: dict[str, Any]) -> list[str]:
    """Every hostile value for every parameter; forged cursors only where a cursor is read."""
    return HOSTILE + (CURSORS if parameter["name"] == "cursor" else [])


#: Values that make a route wait on purpose (a live stream's length), kept short.
BASE_QUERY: dict[str, dict[str, str]] = {"/api/v1/live/cases": {"timeout": "0"}}


def _plain_value(parameter: dict[str, Any]) -> str:
    schema = parameter.get("schema", {})
    if schema.get("format") == "uuid":
        return str(uuid.uuid4())
    if schema.get("type") == "integer":
        return "1"
    if "sha256" in parameter["name"]:
        return "0" * 64
    return "box-1"


def _get_routes(api: Api) -> list[tuple[str, list[dict[str, Any]]]]:
    spec = api.client.app.openapi()  # type: ignore[attr-defined]
    return [(path, ops["get"].get("parameters", [])) for path, ops in spec["paths"].items() if "get" in ops]


@pytest.fixture
def seeded(api: Api) -> Api:
    ingest(api, make_event(), make_event(north_m=500), make_event(violation_type="illegal_signboard"))
    return api


def test_hostile_values_in_every_get_parameter_never_give_a_server_error(seeded: Api) -> None:
    api = seeded
    failures: list[str] = []
    tried = 0
    for path, parameters in _get_routes(api):
        plain = {p["name"]: _plain_value(p) for p in parameters if p["in"] == "path"}
        for parameter in parameters:
            for value in hostile_values(parameter):
                path_values = dict(plain)
                query = dict(BASE_QUERY.get(path, {}))
                if parameter["in"] == "path":
                    if "/" in value or value in ("", "."):
                        continue  # a different URL, not a value of this parameter
                    path_values[parameter["name"]] = value
                else:
                    query[parameter["name"]] = value
                url = _fill(path, path_values)
                tried += 1
                try:
                    response = api.get(url, role="admin", params=query)
                except Exception as exc:  # the test client re-raises what the app did not handle
                    failures.append(f"500 GET {url} {query!r}: {type(exc).__name__}: {str(exc)[:160]}")
                    continue
                if response.status_code >= 500:
                    failures.append(f"{response.status_code} GET {url} {query!r}: {response.text[:160]}")
    assert tried > 1000
    listing = "\n".join(failures[:40])
    assert not failures, f"{len(failures)} of {tried} answers were server errors:\n{listing}"


def _fill(path: str, values: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: quote(values[m.group(1)], safe=""), path)


def test_hostile_values_in_bodies_and_write_paths_never_give_a_server_error(seeded: Api) -> None:
    api = seeded
    failures: list[str] = []
    texts = ["\x00", "a\x00b", "x" * 100_000, "\u202e"]
    bodies: list[tuple[str, object]] = [
        ("/api/v1/cases/1/actions", {"action": "confirm", "reason": t}) for t in texts
    ]
    bodies += [("/api/v1/cases/1/actions", {"action": "dispatch", "team": t}) for t in texts]
    bodies += [("/api/v1/auth/token", {"username": t, "password": t}) for t in texts]
    bodies += [("/api/v1/users", {"username": t, "role": "viewer", "password": t * 8}) for t in texts]
    bodies += [("/api/v1/cases/bulk-actions", {"action": "confirm", "ids": [int(v)]}) for v in HUGE_INTS]
    bodies += [
        (f"/api/v1/cases/{quote(v, safe='')}/actions", {"action": "confirm"}) for v in HUGE_INTS + STRINGS
    ]
    bodies += [("/api/v1/cases/1/actions", {"action": "confirm", "expected_state": v}) for v in STRINGS]
    for path, body in bodies:
        try:
            response = api.post(path, role="admin", json=body)
        except Exception as exc:  # the test client re-raises what the app did not handle
            failures.append(f"500 POST {path} {str(body)[:80]}: {type(exc).__name__}: {str(exc)[:160]}")
            continue
        if response.status_code >= 500:
            failures.append(f"{response.status_code} POST {path} {str(body)[:80]}: {response.text[:160]}")
    assert not failures, "\n".join(failures)
