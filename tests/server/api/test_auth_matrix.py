"""Every route x every kind of caller: no token, viewer, reviewer, admin, device.

The table must list every route the app serves (checked below), so a new
endpoint cannot ship without its access rule being tested.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi.routing import APIRoute

from tests.server.api.conftest import Api, ingest, jpeg, make_event, store_evidence

CALLERS = (None, "viewer", "reviewer", "admin", "device")

#: Which callers a rank lets through. Written out by hand, not derived from server.auth.
LETS_IN: dict[str, set[str]] = {
    "viewer": {"viewer", "reviewer", "admin"},
    "reviewer": {"reviewer", "admin"},
    "admin": {"admin"},
    "any token": {"viewer", "reviewer", "admin", "device"},
    "device": {"device"},
}


@dataclass(frozen=True)
class Route:
    method: str
    template: str  # formatted with the seeded ids
    needs: str  # a key of LETS_IN, or "public"
    ok: int = 200
    body: dict[str, Any] | None = None


ROUTES = (
    Route("GET", "/api/v1/devices", "viewer"),
    Route("GET", "/api/v1/devices/{device_id}", "viewer"),
    Route("GET", "/api/v1/events", "viewer"),
    Route("GET", "/api/v1/events/{event_id}", "viewer"),
    Route("GET", "/api/v1/cases", "viewer"),
    Route("GET", "/api/v1/cases/{case_id}", "viewer"),
    Route("GET", "/api/v1/cases/{case_id}/package", "viewer"),
    # dispatched -> dispatched (re-assign) is allowed, so every permitted caller can repeat it.
    Route("POST", "/api/v1/cases/{case_id}/actions", "reviewer", body={"action": "dispatch", "team": "east"}),
    Route("GET", "/api/v1/labels", "viewer"),
    Route("GET", "/api/v1/cases/counts", "viewer"),
    # A note changes no state, so every permitted caller can repeat it; an unknown id is a 404 row.
    Route(
        "POST",
        "/api/v1/cases/bulk-actions",
        "reviewer",
        body={"action": "note", "reason": "checked", "case_ids": [1, 999999]},
    ),
    Route("GET", "/api/v1/review-options", "viewer"),
    # A console's heartbeat: each caller's own row (person and tab), so every caller can repeat it.
    Route("POST", "/api/v1/viewing", "viewer", body={"tab": "matrix-tab", "case_id": None}),
    Route("GET", "/api/v1/evidence/{sha256}/thumbnail", "viewer"),
    Route("GET", "/api/v1/stats/precision", "viewer"),
    Route("GET", "/api/v1/stats/signs", "viewer"),
    Route("GET", "/api/v1/stats/labels", "viewer"),
    Route("GET", "/api/v1/cases/export", "viewer"),
    Route("GET", "/api/v1/stats/throughput", "viewer"),
    Route("GET", "/api/v1/stats/open-cases", "viewer"),
    Route("GET", "/api/v1/stats/recurrences", "viewer"),
    Route("GET", "/api/v1/evidence/{sha256}", "viewer"),
    Route("GET", "/api/v1/users", "admin"),
    Route("POST", "/api/v1/users", "admin", ok=201, body={"username": "new-user", "role": "viewer"}),
    Route("GET", "/api/v1/users/me", "any token"),
    # A change that changes nothing (the viewer stays a viewer), so every admin call may repeat it.
    Route("PATCH", "/api/v1/users/{user_id}", "admin", body={"role": "viewer"}),
    Route("GET", "/api/v1/teams", "viewer"),
    Route("GET", "/api/v1/teams?include_inactive=true", "admin"),
    # Made once (only the admin gets through); the PATCH below changes the seeded team.
    Route("POST", "/api/v1/teams", "admin", ok=201, body={"name": "new-team"}),
    Route("PATCH", "/api/v1/teams/{team_id}", "admin", body={"description": "wards 1-4"}),
    Route("POST", "/api/v1/auth/token", "public", ok=401, body={"username": "nobody", "password": "wrong"}),
    Route("GET", "/open311/v2/services.json", "viewer"),
    Route("GET", "/open311/v2/requests.json", "viewer"),
    Route("GET", "/open311/v2/requests/{case_id}.json", "viewer"),
    Route("GET", "/metrics", "viewer"),
    Route("GET", "/healthz", "public"),
    Route("GET", "/", "public"),  # the console page, after its redirect
    # Another name than /auth/token's: both share one sign-in throttle per user name.
    Route("POST", "/api/v1/session", "public", ok=401, body={"username": "nobody-2", "password": "wrong"}),
    Route("GET", "/api/v1/session", "public"),  # 200 with user null for nobody
    Route("DELETE", "/api/v1/session", "public", ok=204),
    Route("GET", "/api/v1/live/cases?timeout=0", "viewer"),
    Route("GET", "/api/v1/console/config", "viewer"),
    Route("GET", "/api/v1/fleet", "viewer"),
    Route("GET", "/api/v1/fleet/rollouts/{rollout_id}", "viewer", ok=404),
    # Not signed in this registry: an admin is let in and told so.
    Route(
        "POST", "/api/v1/fleet/rollouts", "admin", ok=409, body={"name": "x", "version": "1", "percent": 10}
    ),
    Route("POST", "/api/v1/fleet/rollouts/{rollout_id}/halt", "admin", ok=404),
    Route("POST", "/api/v1/fleet/rollouts/{rollout_id}/resume", "admin", ok=404),
    Route("PUT", "/api/v1/fleet/devices/{device_id}/group", "admin", body={"group": "north"}),
    # Only a box's own token is let in; this command names no box.
    Route("GET", "/api/v1/fleet/downloads/{command_id}", "device", ok=404),
    # A box reports its own link; the matrix's device token is another user's: 403 even for it.
    Route("PUT", "/api/v1/fleet/devices/{device_id}/link", "device", ok=403, body={"problem": None}),
    Route("GET", "/api/v1/signs", "viewer"),
    Route("POST", "/api/v1/signs", "reviewer", ok=201, body={"lat": 21.03, "lon": 105.85}),
    Route("GET", "/api/v1/signs/zones", "viewer"),
    Route("POST", "/api/v1/signs/import", "reviewer", body={"format": "csv", "text": "permit_id,lat,lon\n"}),
    # No such register entry: who is let in gets a 404, the others 401/403.
    Route("GET", "/api/v1/signs/{sign_id}", "viewer", ok=404),
    Route("DELETE", "/api/v1/signs/{sign_id}", "reviewer", ok=404),
    Route("PATCH", "/api/v1/signs/{sign_id}", "reviewer", ok=404, body={"permit_id": "SB-1"}),
    Route("GET", "/openapi.json", "public"),
    Route("GET", "/docs", "public"),
)


def expected_status(route: Route, caller: str | None) -> int:
    if route.needs == "public":
        return route.ok
    if caller is None:
        return 401
    return route.ok if caller in LETS_IN[route.needs] else 403


def _seed(api: Api) -> dict[str, str]:
    frame, crop = jpeg(1), jpeg(2)
    sha = store_evidence(api, frame)
    store_evidence(api, crop)
    (outcome,) = ingest(api, make_event(evidence=(frame, crop)))
    return {
        "device_id": "box-1",
        "event_id": str(outcome.event_id),
        "case_id": str(outcome.case_id),
        "rollout_id": "999999",  # no rollout: who is let in gets a 404, the others 401/403
        "command_id": "no-such-command",
        "sign_id": "999999",
        "sha256": sha,
        # The team the dispatch route names: defined, so dispatch to it passes the register.
        "team_id": str(api.post("/api/v1/teams", role="admin", json={"name": "east"}).json()["id"]),
        "user_id": str(api.get("/api/v1/users/me", role="viewer").json()["id"]),
    }


def test_every_route_answers_each_caller_as_its_role_allows(api: Api) -> None:
    ids = _seed(api)
    mismatches = []
    for route in ROUTES:
        path = route.template.format(**ids)
        for caller in CALLERS:
            response = api.client.request(route.method, path, headers=api.headers(caller), json=route.body)
            want = expected_status(route, caller)
            if response.status_code != want:
                mismatches.append(
                    f"{route.method} {path} as {caller or 'no token'}: {response.status_code} (want {want}) "
                    f"{response.text[:120]}"
                )
            if response.status_code == 401:
                assert response.headers.get("www-authenticate") == "Bearer", path
            if response.status_code in (401, 403) and not path.startswith("/open311"):
                assert response.json()["detail"], f"{path}: an auth error must say what is wrong"
    assert not mismatches, "\n".join(mismatches)


def test_the_table_covers_every_route_the_app_serves(api: Api) -> None:
    served = {
        (method, route.path)
        for route in api.client.app.routes  # type: ignore[attr-defined]
        for method in (
            route.methods if isinstance(route, APIRoute) else getattr(route, "methods", None) or ()
        )
        if method != "HEAD"
    }
    # Routers included into others are not listed in app.routes by every FastAPI version: the
    # OpenAPI paths name every documented route whatever the nesting.
    schema = api.client.app.openapi()  # type: ignore[attr-defined]
    served |= {
        (method.upper(), path) for path, operations in schema["paths"].items() for method in operations
    }
    tested = {(r.method, _as_route_path(r.template)) for r in ROUTES}
    missing = served - tested
    assert not missing, f"routes without an access test: {sorted(missing)}"
    # The table names only what is served: a removed route must leave it too.
    stale = tested - served
    assert not stale, f"the table tests routes the app does not serve: {sorted(stale)}"


def _as_route_path(template: str) -> str:
    # Our templates use the same placeholder names as the routes, except open311's request id.
    path = template.split("?")[0]
    return path.replace("/requests/{case_id}.json", "/requests/{service_request_id}.json")


def test_unknown_revoked_and_disabled_tokens_are_refused(api: Api) -> None:
    from sqlalchemy import update

    from server.db.models import ApiToken, User

    assert api.get("/api/v1/cases", role="viewer").status_code == 200
    bogus = api.client.get("/api/v1/cases", headers={"Authorization": "Bearer swt_not-a-real-token"})
    assert bogus.status_code == 401
    basic = api.client.get("/api/v1/cases", headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert basic.status_code == 401
    assert "Authorization: Bearer" in basic.json()["detail"]

    with api.sessions.begin() as session:
        session.execute(update(User).where(User.username == "viewer-1").values(disabled=True))
    assert api.get("/api/v1/cases", role="viewer").status_code == 401

    with api.sessions.begin() as session:
        session.execute(update(ApiToken).values(revoked=True))
    assert api.get("/api/v1/cases", role="admin").status_code == 401


def test_device_token_is_told_why_it_is_refused(api: Api) -> None:
    response = api.get("/api/v1/cases", role="device")
    assert response.status_code == 403
    assert "device" in response.json()["detail"]
    viewer = api.post("/api/v1/cases/1/actions", role="viewer", json={"action": "confirm"})
    assert viewer.status_code == 403
    assert "reviewer" in viewer.json()["detail"]
