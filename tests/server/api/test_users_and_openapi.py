"""Users (create, who-am-I, sign in), the OpenAPI document, and JSON errors everywhere."""

from __future__ import annotations

from tests.server.api.conftest import Api


def test_admin_creates_a_user_whose_token_works_once_shown(api: Api) -> None:
    created = api.post(
        "/api/v1/users",
        role="admin",
        json={"username": "dispatcher.li", "role": "reviewer", "password": "s3cret-pw"},
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["user"]["role"] == "reviewer" and body["token"]["token_type"] == "bearer"
    token = body["token"]["token"]
    me = api.client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200 and me.json()["username"] == "dispatcher.li"
    assert "password" not in str(me.json()) and "hash" not in str(me.json())

    duplicate = api.post("/api/v1/users", role="admin", json={"username": "dispatcher.li", "role": "viewer"})
    assert duplicate.status_code == 409 and "exists" in duplicate.json()["detail"]
    bad_role = api.post("/api/v1/users", role="admin", json={"username": "x", "role": "superuser"})
    assert bad_role.status_code == 422
    bad_name = api.post("/api/v1/users", role="admin", json={"username": "../etc", "role": "viewer"})
    assert bad_name.status_code == 422
    listed = api.get("/api/v1/users", role="admin").json()
    assert "dispatcher.li" in [u["username"] for u in listed["items"]] and listed["total"] == 5


def test_sign_in_with_a_password_issues_a_new_token(api: Api) -> None:
    api.post(
        "/api/v1/users", role="admin", json={"username": "ana", "role": "viewer", "password": "long-enough"}
    )
    signed_in = api.client.post("/api/v1/auth/token", json={"username": "ana", "password": "long-enough"})
    assert signed_in.status_code == 201
    token = signed_in.json()["token"]
    assert api.client.get("/api/v1/cases", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    wrong = api.client.post("/api/v1/auth/token", json={"username": "ana", "password": "wrong-one"})
    assert wrong.status_code == 401 and wrong.json()["detail"] == "wrong username or password"
    nobody = api.client.post("/api/v1/auth/token", json={"username": "nobody", "password": "wrong-one"})
    assert nobody.json() == wrong.json()  # the answer does not reveal which names exist
    # A user made without a password (e.g. by `streetwatch user create`) cannot sign in with an empty one.
    empty = api.client.post("/api/v1/auth/token", json={"username": "viewer-1", "password": ""})
    assert empty.status_code == 401


def test_openapi_describes_every_route_and_the_bearer_scheme(api: Api) -> None:
    spec = api.client.get("/openapi.json").json()
    assert spec["info"]["title"] == "StreetWatch"
    for path in (
        "/api/v1/cases",
        "/api/v1/cases/{case_id}/actions",
        "/api/v1/events",
        "/api/v1/devices",
        "/api/v1/evidence/{sha256}",
        "/api/v1/users/me",
        "/open311/v2/requests.json",
        "/metrics",
    ):
        assert path in spec["paths"], path
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    docs = api.client.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()


def test_unknown_paths_and_methods_answer_json(api: Api) -> None:
    missing = api.get("/api/v1/nothing-here")
    assert missing.status_code == 404 and missing.json() == {"detail": "Not Found"}
    wrong_method = api.client.delete("/api/v1/cases", headers=api.headers("admin"))
    assert wrong_method.status_code == 405 and "detail" in wrong_method.json()
