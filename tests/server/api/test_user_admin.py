"""An admin disables, enables, re-roles and resets the password of users over the API, and cannot
lock the admins out (``PATCH /api/v1/users/{id}``), on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import sessionmaker

from server.db.models import ApiToken, User
from server.token_usage import TokenUsage
from tests.server.api.conftest import Api


def _patch(api: Api, user_id: int, body: dict[str, Any], role: str = "admin") -> httpx.Response:
    return api.client.patch(f"/api/v1/users/{user_id}", headers=api.headers(role), json=body)


def _user(api: Api, username: str) -> dict[str, Any]:
    listed = api.get("/api/v1/users", role="admin").json()["items"]
    (user,) = [u for u in listed if u["username"] == username]
    return user


def _sign_in(api: Api, username: str, password: str) -> int:
    answer = api.client.post("/api/v1/auth/token", json={"username": username, "password": password})
    return answer.status_code


def test_a_disabled_user_is_refused_with_every_token_until_enabled_again(api: Api) -> None:
    made = api.post(
        "/api/v1/users", role="admin", json={"username": "li", "role": "reviewer", "password": "first-pass"}
    ).json()
    token = {"Authorization": f"Bearer {made['token']['token']}"}
    user_id = made["user"]["id"]
    assert api.client.get("/api/v1/cases", headers=token).status_code == 200

    disabled = _patch(api, user_id, {"disabled": True})
    assert disabled.status_code == 200 and disabled.json()["disabled"] is True
    refused = api.client.get("/api/v1/cases", headers=token)
    assert refused.status_code == 401 and refused.json()["detail"]
    assert _sign_in(api, "li", "first-pass") == 401

    assert _patch(api, user_id, {"disabled": False}).json()["disabled"] is False
    assert api.client.get("/api/v1/cases", headers=token).status_code == 200
    assert _sign_in(api, "li", "first-pass") == 201


def test_a_role_change_and_a_password_reset_take_effect_at_once(api: Api) -> None:
    made = api.post("/api/v1/users", role="admin", json={"username": "ana", "role": "viewer"}).json()
    token = {"Authorization": f"Bearer {made['token']['token']}"}
    user_id = made["user"]["id"]
    assert api.client.get("/api/v1/users", headers=token).status_code == 403

    promoted = _patch(api, user_id, {"role": "admin"})
    assert promoted.status_code == 200 and promoted.json()["role"] == "admin"
    assert api.client.get("/api/v1/users", headers=token).status_code == 200

    assert _sign_in(api, "ana", "a-new-password") == 401  # made without one
    assert _patch(api, user_id, {"password": "a-new-password"}).status_code == 200
    assert _sign_in(api, "ana", "a-new-password") == 201
    assert "hash" not in str(_user(api, "ana")) and "password" not in str(_user(api, "ana"))

    # A reset signs out whoever signed in with the old password; the admin's token for her stays.
    old = api.client.post("/api/v1/auth/token", json={"username": "ana", "password": "a-new-password"})
    signed_in = {"Authorization": f"Bearer {old.json()['token']}"}
    assert api.client.get("/api/v1/cases", headers=signed_in).status_code == 200
    assert _patch(api, user_id, {"password": "yet-another-one"}).status_code == 200
    assert api.client.get("/api/v1/cases", headers=signed_in).status_code == 401
    assert api.client.get("/api/v1/cases", headers=token).status_code == 200
    assert _sign_in(api, "ana", "a-new-password") == 401


def test_the_admins_cannot_be_locked_out(api: Api) -> None:
    me = _user(api, "admin-1")
    own = _patch(api, me["id"], {"disabled": True})
    assert own.status_code == 409 and "yourself" in own.json()["detail"]
    assert _patch(api, me["id"], {"role": "reviewer"}).status_code == 409
    assert _patch(api, me["id"], {"role": "admin", "password": "admins-own-pw"}).status_code == 200

    # Another admin may disable this one while both are active, but not the last one left.
    other = api.post("/api/v1/users", role="admin", json={"username": "root2", "role": "admin"}).json()
    other_token = {"Authorization": f"Bearer {other['token']['token']}"}
    first = api.client.patch(f"/api/v1/users/{me['id']}", headers=other_token, json={"disabled": True})
    assert first.status_code == 200
    alone = _patch(api, other["user"]["id"], {"role": "viewer"})
    assert alone.status_code == 401  # admin-1 is disabled now: its own token is refused
    last = api.client.patch(
        f"/api/v1/users/{other['user']['id']}", headers=other_token, json={"disabled": True}
    )
    assert last.status_code == 409  # yourself, and the last active admin
    with api.sessions() as session:
        active = session.scalars(select(User.username).where(User.role == "admin", User.disabled.is_(False)))
        assert set(active) == {"root2"}


def test_a_box_account_can_be_disabled_but_not_made_a_person(api: Api) -> None:
    box = _user(api, "device-1")
    assert _patch(api, box["id"], {"role": "reviewer"}).status_code == 422
    assert _patch(api, box["id"], {"password": "box-password"}).status_code == 422
    viewer = _user(api, "viewer-1")
    assert _patch(api, viewer["id"], {"role": "device"}).status_code == 422
    assert _patch(api, box["id"], {"disabled": True}).json()["disabled"] is True
    assert api.get("/api/v1/users/me", role="device").status_code == 401


def test_bad_requests_say_what_is_wrong(api: Api) -> None:
    viewer = _user(api, "viewer-1")
    assert _patch(api, 999999, {"disabled": True}).status_code == 404
    assert _patch(api, viewer["id"], {"role": "superuser"}).status_code == 422
    assert _patch(api, viewer["id"], {"password": "short"}).status_code == 422
    assert _patch(api, viewer["id"], {"username": "renamed"}).status_code == 422
    assert _patch(api, viewer["id"], {"disabled": True}, role="reviewer").status_code == 403


def test_two_admins_disabling_each_other_at_once_leave_one(api: Api) -> None:
    """The last-admin check holds under concurrency: the second change waits for the first, then
    sees it (PostgreSQL row locks; SQLite runs one writer at a time anyway)."""
    if api.settings.database_url.startswith("sqlite"):
        pytest.skip("SQLite serialises writers: no two changes interleave")
    from fastapi import HTTPException

    from server.api.schemas.users import UserUpdate
    from server.api.users import _check_update
    from server.auth import Principal, Role

    other = api.post("/api/v1/users", role="admin", json={"username": "root2", "role": "admin"}).json()[
        "user"
    ]
    first = _user(api, "admin-1")
    off = UserUpdate(disabled=True)
    one, two = api.sessions(), api.sessions()
    try:
        # admin-1 disables root2 and has not committed yet...
        target = one.get(User, other["id"])
        assert target is not None
        _check_update(one, target, off, Principal(first["id"], "admin-1", Role.admin, 0))
        target.disabled = True
        one.flush()
        # ...while root2 disables admin-1: its check must wait for the first change, then refuse.
        outcome: list[object] = []

        def second() -> None:
            victim = two.get(User, first["id"])
            assert victim is not None
            try:
                _check_update(two, victim, off, Principal(other["id"], "root2", Role.admin, 0))
                outcome.append("allowed")
            except HTTPException as exc:
                outcome.append(exc.status_code)

        waiting = threading.Thread(target=second)
        waiting.start()
        waiting.join(timeout=1.0)
        assert waiting.is_alive(), "the second check did not wait for the first change"
        one.commit()
        waiting.join(timeout=10.0)
        assert outcome == [409]
    finally:
        two.rollback()
        one.close()
        two.close()


def test_the_users_list_says_when_each_user_last_used_a_token(api: Api) -> None:
    usage: TokenUsage = api.client.app.state.token_usage  # type: ignore[attr-defined]
    usage.flush(api.sessions)  # whatever the fixture's own calls noted
    before = {
        u["username"]: u["last_active_at"] for u in api.get("/api/v1/users", role="admin").json()["items"]
    }
    assert before["reviewer-1"] is None  # never used yet

    started = datetime.now(timezone.utc)
    assert api.get("/api/v1/cases", role="reviewer").status_code == 200
    assert (
        api.client.get("/open311/v2/services.json", params={"api_key": api.tokens["viewer"]}).status_code
        == 200
    )
    assert usage.pending() >= 2  # noted in memory, not written on the request's way
    after = {
        u["username"]: u["last_active_at"] for u in api.get("/api/v1/users", role="admin").json()["items"]
    }
    for name in ("reviewer-1", "viewer-1"):  # the API's and Open311's callers
        assert after[name] is not None and datetime.fromisoformat(after[name]) >= started, name
    assert after["admin-1"] is not None  # its own listings
    assert usage.pending() == 0  # listing users wrote what was noted, the admin's own call too
    assert after["device-1"] is None

    # A time only moves forward: an older use flushed late does not move it back.
    with api.sessions() as session:
        token_id = session.scalars(
            select(ApiToken.id).join(User).where(User.username == "reviewer-1")
        ).first()
    assert token_id is not None
    usage.note(token_id, started - timedelta(days=1))
    usage.flush(api.sessions)
    again = {
        u["username"]: u["last_active_at"] for u in api.get("/api/v1/users", role="admin").json()["items"]
    }
    assert again["reviewer-1"] == after["reviewer-1"]


def test_a_failed_write_keeps_the_times_for_the_next_one(api: Api, tmp_path: Path) -> None:
    usage = TokenUsage()
    at = datetime.now(timezone.utc)
    usage.note(1, at)
    gone = sessionmaker(bind=create_engine(f"sqlite:///{tmp_path / 'missing' / 'db.sqlite'}"))
    assert usage.flush(gone) == 0 and usage.pending() == 1
    assert usage.flush(api.sessions) == 1 and usage.pending() == 0
