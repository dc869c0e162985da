"""A signboard case says what the register decided and shows the entry it compared with (SQLite and
PostgreSQL): a dispatcher judging a "changed" sign sees the permitted one's photo, permit, how far
and how alike; a case marked permitted names the entry it became; other cases carry nothing."""

from __future__ import annotations

import random

from sqlalchemy import select

from server.db.models import Case, Sign
from server.settings import SignSettings
from tests.server.api.conftest import Api, ingest, make_event
from tests.server.api.test_sign_register import drive, fixture_crops


def cases(api: Api) -> list[int]:
    with api.sessions() as session:
        return list(session.scalars(select(Case.id).order_by(Case.id)))


def test_a_changed_sign_case_shows_the_registered_sign_beside_it(api: Api) -> None:
    crops = fixture_crops()
    street, replacement = crops[:2], crops[5]
    rng = random.Random(7)
    drive(api, street, rng, at_day=0)
    first, second = cases(api)
    new = api.get(f"/api/v1/cases/{first}").json()["sign_register"]
    assert (new["outcome"], new["sign_id"], new["registered_as"]) == ("new", None, None)

    reply = api.post(
        f"/api/v1/cases/{first}/actions", json={"action": "reject", "reject_reason": "permitted"}
    )
    assert reply.status_code == 200, reply.text
    with api.sessions() as session:
        entry = session.scalars(select(Sign).where(Sign.case_id == first)).one()
        entry.permit_id = "SB-0042"
        session.commit()
        entry_id, entry_crop = entry.id, entry.crop_sha256
    assert api.get(f"/api/v1/cases/{first}").json()["sign_register"]["registered_as"] == entry_id

    drive(api, [replacement, street[1]], rng, at_day=1)  # the first shop put up another sign
    (changed_id,) = [c for c in cases(api) if c not in (first, second)]
    shown = api.get(f"/api/v1/cases/{changed_id}").json()["sign_register"]
    assert (shown["outcome"], shown["sign_id"], shown["permit_id"]) == ("changed", entry_id, "SB-0042")
    assert shown["sign_crop_url"].endswith(f"/api/v1/evidence/{entry_crop}")
    assert (
        api.get(shown["sign_crop_url"]).headers["content-type"] == "image/jpeg"
    )  # the permitted sign's photo
    assert shown["similarity"] < SignSettings().min_similarity and shown["distance_m"] < 10
    assert shown["registered_as"] is None

    removed = api.client.delete(f"/api/v1/signs/{entry_id}", headers=api.headers("reviewer"))
    assert removed.status_code == 204  # the entry is gone: the case still says why it opened
    gone = api.get(f"/api/v1/cases/{changed_id}").json()["sign_register"]
    assert (gone["outcome"], gone["sign_id"], gone["sign_crop_url"]) == ("changed", None, None)


def test_a_case_the_register_never_saw_carries_no_register_context(api: Api) -> None:
    event = make_event(violation_type="garbage_overflow", detector_class="garbage")
    ingest(api, event)
    (case_id,) = cases(api)
    assert api.get(f"/api/v1/cases/{case_id}").json()["sign_register"] is None
