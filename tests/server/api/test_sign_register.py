"""The signboard register end to end: a patrol drives one street twice.

First pass: every sign opens a "new signboard" case; a dispatcher rejects each as permitted,
which registers it (place + fingerprint of its crop). Second pass, a day later, same places:
the signs are seen again from a slightly different place and light (re-encoded crops, see
``bench.sign_fingerprint.resight``), except one shop has put up a different sign. Exactly one
case opens: the changed sign, naming its register entry. Real shop-sign crops: the in-repo
fixture (``tests/server/signs/crops``), and the shared validation photos when present.
"""

from __future__ import annotations

import random
import uuid
from datetime import timedelta
from pathlib import Path

import cv2
import numpy as np
import pytest
from sqlalchemy import func, select

from bench.sign_fingerprint import crops as shared_crops
from bench.sign_fingerprint import resight
from server.db.models import Case, Event, Sign, SignSighting
from server.matching.geo import haversine_m
from tests.server.api.conftest import NOW, Api, ingest, make_event, store_evidence
from tests.server.api.conftest import offset_position as offset

FIXTURE = Path(__file__).resolve().parents[1] / "signs" / "crops"
SHARED = Path(__file__).resolve().parents[4] / "shared" / "data" / "signboards"
SPACING_M = 20.0  # shop signs along the street, farther apart than the signboard case radius (15 m)
#: How far ahead of the van a sign is when the box confirms it: where the camera's fix is then.
AHEAD_M = 25.0


def _jpeg(image: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 85])
    assert ok
    return data.tobytes()


def fixture_crops() -> list[np.ndarray]:
    images = [cv2.imread(str(p)) for p in sorted(FIXTURE.glob("*.jpg"))]
    assert len(images) == 8 and all(i is not None for i in images)
    return [i for i in images if i is not None]


def drive(
    api: Api, signs: list[np.ndarray], rng: random.Random, at_day: int, heading: int = 0, placed: bool = True
) -> list[uuid.UUID]:
    """One pass down the street: each sign a track of two events (new, update), each with its own
    re-sighted crop and a GPS fix a couple of metres off. Returns the event ids.

    ``heading`` 0: the fix is at the sign, like a box that cannot place what it sees. +1 (east) or
    -1 (west): the van drives that way, its fix is ``AHEAD_M`` before each sign, and the event
    carries the sign's own position as the box estimates it (``object_position``, a few metres off)
    unless not ``placed`` (a box of schema 3 or older).
    """
    ids = []
    for index, sign in enumerate(signs):
        track = uuid.uuid4()
        for step in range(2):
            crop = _jpeg(resight(sign, rng))
            store_evidence(api, crop, device_id="van-1")
            at = NOW + timedelta(days=at_day, seconds=index * 10 + step)
            estimate = None
            if heading and placed:
                lat, lon = offset(rng.uniform(-1, 1), index * SPACING_M + rng.uniform(-1.5, 1.5))
                estimate = {"lat": lat, "lon": lon, "accuracy_m": 4.0, "along_m": AHEAD_M}
            event = make_event(
                violation_type="illegal_signboard",
                detector_class="signboard",
                device_id="van-1",
                observed_at=at,
                east_m=index * SPACING_M - heading * AHEAD_M + rng.uniform(-2, 2),
                north_m=rng.uniform(-2, 2),
                track_id=track,
                evidence=(crop, crop),
                object_position=estimate,
            )
            ingest(api, event, now=at + timedelta(seconds=1))
            ids.append(event.event_id)
    return ids


def replay_twice(
    api: Api, street: list[np.ndarray], replacement: np.ndarray, seed: int, headings: tuple[int, int] = (0, 0)
) -> None:
    rng = random.Random(seed)
    swapped = len(street) // 2
    drive(api, street, rng, at_day=0, heading=headings[0])
    with api.sessions() as session:
        first = session.scalars(select(Case).order_by(Case.id)).all()
        assert len(first) == len(street), [c.title for c in first]
        assert all(c.title.startswith("New signboard") for c in first)
        case_ids = [c.id for c in first]
    for case_id in case_ids:
        answer = api.post(
            f"/api/v1/cases/{case_id}/actions", json={"action": "reject", "reject_reason": "permitted"}
        )
        assert answer.status_code == 200, answer.text
    with api.sessions() as session:
        registered = session.scalars(select(Sign).order_by(Sign.id)).all()
        assert [s.case_id for s in registered] == case_ids
        assert all(s.fingerprint is not None and s.source == "review" for s in registered)
        changed_entry = registered[swapped].id

    second_street = list(street)
    second_street[swapped] = replacement  # the shop put up another sign
    ids = drive(api, second_street, rng, at_day=1, heading=headings[1])

    with api.sessions() as session:
        opened = session.scalars(select(Case).where(Case.id.not_in(case_ids))).all()
        assert len(opened) == 1, [(c.title, c.lat, c.lon) for c in opened]
        case = opened[0]
        assert case.title.startswith("Changed signboard")
        assert f"register entry {changed_entry}" in case.title
        assert case.event_count == 2
        sightings = {
            s.event_id: s for s in session.scalars(select(SignSighting).where(SignSighting.event_id.in_(ids)))
        }
        assert len(sightings) == len(ids)
        changed = [s for s in sightings.values() if s.outcome == "changed"]
        assert {s.sign_id for s in changed} == {changed_entry} and {s.case_id for s in changed} == {case.id}
        attached = [s for s in sightings.values() if s.outcome == "attached"]
        assert len(attached) == 2 * (len(street) - 1)
        # Every sighting attached to the sign it is, not a neighbour.
        by_case = {s.id: s.case_id for s in session.scalars(select(Sign))}
        events = {e.event_id: e for e in session.scalars(select(Event).where(Event.event_id.in_(ids)))}
        for sighting in attached:
            assert events[sighting.event_id].case_id is None
            assert sighting.sign_id is not None
        assert len({s.sign_id for s in attached}) == len(street) - 1
        assert changed_entry not in {s.sign_id for s in attached}
        seen = session.scalar(select(func.sum(Sign.sighting_count)))
        assert seen == 2 * (len(street) - 1)
        assert len(by_case) == len(street)


def test_a_street_driven_twice_with_one_sign_swapped_opens_exactly_one_case(api: Api) -> None:
    crops = fixture_crops()
    replay_twice(api, crops[:7], replacement=crops[7], seed=11)


def test_driven_back_the_other_way_the_signs_own_places_still_match(api: Api) -> None:
    """East, then west: the van's fixes at confirmation are 50 m apart, the signs' places are not."""
    crops = fixture_crops()
    replay_twice(api, crops[:7], replacement=crops[7], seed=12, headings=(1, -1))


def test_without_the_signs_own_places_the_way_back_opens_new_cases(api: Api) -> None:
    """What the places are for: the same two passes from boxes that send only the van's fix."""
    crops = fixture_crops()[:3]
    rng = random.Random(13)
    drive(api, crops, rng, at_day=0, heading=1, placed=False)
    with api.sessions() as session:
        case_ids = list(session.scalars(select(Case.id)))
    for case_id in case_ids:
        api.post(f"/api/v1/cases/{case_id}/actions", json={"action": "reject", "reject_reason": "permitted"})
    ids = drive(api, crops, rng, at_day=1, heading=-1, placed=False)
    with api.sessions() as session:
        sightings = session.scalars(select(SignSighting).where(SignSighting.event_id.in_(ids))).all()
        events = session.scalars(select(Event).where(Event.event_id.in_(ids))).all()
    assert len(case_ids) == len(crops)
    # Not one permitted sign recognised: each sighting is "new" (or "changed" beside a neighbour)
    # and lands in a case for a dispatcher, some in the permitted case of another sign.
    assert len(sightings) == len(ids) == len(events)
    assert not [s for s in sightings if s.outcome == "attached"]
    assert all(e.case_id is not None for e in events)


def test_the_same_on_the_shared_validation_signs(api: Api) -> None:
    if not (SHARED / "val" / "labels").is_dir():
        pytest.skip(f"no shared signboard photos at {SHARED}")
    crops = [c for c in shared_crops(SHARED, min_side=48) if min(c.shape[:2]) >= 48]
    rng = random.Random(5)
    rng.shuffle(crops)
    replay_twice(api, crops[:20], replacement=crops[20], seed=5)


def test_reopening_a_permitted_case_takes_its_sign_out_of_the_register(api: Api) -> None:
    crops = fixture_crops()
    drive(api, crops[:1], random.Random(1), at_day=0)
    with api.sessions() as session:
        case_id = session.scalars(select(Case.id)).one()
    api.post(f"/api/v1/cases/{case_id}/actions", json={"action": "reject", "reject_reason": "permitted"})
    with api.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Sign)) == 1
    answer = api.post(f"/api/v1/cases/{case_id}/actions", json={"action": "reopen"})
    assert answer.status_code == 200, answer.text
    with api.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Sign)) == 0


def test_a_case_rejected_for_another_reason_registers_nothing(api: Api) -> None:
    drive(api, fixture_crops()[:1], random.Random(2), at_day=0)
    with api.sessions() as session:
        case_id = session.scalars(select(Case.id)).one()
    body = {"action": "reject", "reject_reason": "not_a_violation"}
    assert api.post(f"/api/v1/cases/{case_id}/actions", json=body).status_code == 200
    with api.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Sign)) == 0


def test_register_entries_are_listed_added_and_removed_through_the_api(api: Api) -> None:
    crop = _jpeg(fixture_crops()[0])
    sha = store_evidence(api, crop)
    body = {"lat": 21.0285, "lon": 105.8542, "permit_id": "SB-9", "valid_until": "2027-01-01T00:00:00Z"}
    assert api.post("/api/v1/signs", role="viewer", json=body).status_code == 403
    assert api.post("/api/v1/signs", role="device", json=body).status_code == 403
    answer = api.post("/api/v1/signs", json={**body, "crop_sha256": sha})
    assert answer.status_code == 201, answer.text
    made = answer.json()
    assert (made["permit_id"], made["source"], made["views"], made["crop_sha256"]) == ("SB-9", "api", 1, sha)
    assert made["created_by"] == "reviewer-1"

    refused = api.post("/api/v1/signs", json={**body, "crop_sha256": "0" * 64})
    assert refused.status_code == 422 and "not held by the server" in refused.json()["detail"]
    assert api.post("/api/v1/signs", json={**body, "lat": 91}).status_code == 422
    assert api.post("/api/v1/signs", json={**body, "colour": "red"}).status_code == 422

    page = api.get("/api/v1/signs").json()
    assert page["total"] == 1 and page["items"][0]["id"] == made["id"]
    assert api.get("/api/v1/signs", params={"permit_id": "nope"}).json()["total"] == 0
    detail = api.get(f"/api/v1/signs/{made['id']}").json()
    assert detail["sightings"] == [] and detail["views"] == 1
    assert api.get("/api/v1/signs/999999").status_code == 404
    assert api.get("/api/v1/signs/99999999999").status_code == 422

    delete = api.client.delete(f"/api/v1/signs/{made['id']}", headers=api.headers("viewer"))
    assert delete.status_code == 403
    delete = api.client.delete(f"/api/v1/signs/{made['id']}", headers=api.headers("reviewer"))
    assert delete.status_code == 204
    assert api.get("/api/v1/signs").json()["total"] == 0
    again = api.client.delete(f"/api/v1/signs/{made['id']}", headers=api.headers("reviewer"))
    assert again.status_code == 404


def test_a_sign_added_through_the_api_keeps_its_sighting_out_of_the_cases(api: Api) -> None:
    crops = fixture_crops()
    sha = store_evidence(api, _jpeg(crops[3]))
    lat, lon = 21.0285, 105.8542  # the base corner of the seeded events
    assert api.post("/api/v1/signs", json={"lat": lat, "lon": lon, "crop_sha256": sha}).status_code == 201
    drive(api, crops[3:4], random.Random(3), at_day=0)
    with api.sessions() as session:
        assert session.scalars(select(Case)).all() == []
    sign_id = api.get("/api/v1/signs").json()["items"][0]["id"]
    detail = api.get(f"/api/v1/signs/{sign_id}").json()
    assert [s["outcome"] for s in detail["sightings"]] == ["attached", "attached"]
    assert detail["sighting_count"] == 2


def test_a_bulk_reject_as_permitted_registers_every_sign_of_a_street(api: Api) -> None:
    """A dispatcher clearing a whole street at once (the console's bulk action) registers each sign."""
    crops = fixture_crops()
    drive(api, crops[:3], random.Random(4), at_day=0)
    body = {
        "action": "reject",
        "reject_reason": "permitted",
        "filter": {"violation_type": "illegal_signboard", "state": ["new"]},
    }
    answer = api.post("/api/v1/cases/bulk-actions", json=body)
    assert answer.status_code == 200, answer.text
    assert answer.json()["succeeded"] == 3
    with api.sessions() as session:
        signs = session.scalars(select(Sign)).all()
        assert len(signs) == 3 and all(views_of(s) == 2 for s in signs)  # both frames of each pass
    drive(api, crops[:3], random.Random(5), at_day=1)
    with api.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Case)) == 3  # nothing new opened


def views_of(sign: Sign) -> int:
    return len((sign.fingerprint or {}).get("views", []))


def test_a_permitted_sign_is_registered_at_its_most_accurate_place(api: Api) -> None:
    """The track's later estimate has seen more of the approach: the register takes it."""
    crop = _jpeg(fixture_crops()[0])
    store_evidence(api, crop, device_id="van-1")
    track = uuid.uuid4()
    rough, fine = offset(0.0, 6.0), offset(0.0, 1.0)
    events = [
        make_event(
            violation_type="illegal_signboard",
            detector_class="signboard",
            device_id="van-1",
            observed_at=NOW + timedelta(seconds=step),
            east_m=-25.0 + 20 * step,
            track_id=track,
            evidence=(crop, crop),
            score=score,
            object_position={"lat": lat, "lon": lon, "accuracy_m": accuracy, "along_m": 25.0 - 20 * step},
        )
        for step, ((lat, lon), accuracy, score) in enumerate([(rough, 8.0, 0.9), (fine, 2.0, 0.6)])
    ]
    for event in events:
        ingest(api, event, now=event.observed_at + timedelta(seconds=1))
    with api.sessions() as session:
        case_id = session.scalars(select(Case.id)).one()
    api.post(f"/api/v1/cases/{case_id}/actions", json={"action": "reject", "reject_reason": "permitted"})
    with api.sessions() as session:
        sign = session.scalars(select(Sign)).one()
    assert haversine_m(sign.lat, sign.lon, *fine) < 0.5  # not the higher-scoring, rougher first one
