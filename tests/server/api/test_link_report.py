"""``PUT /fleet/devices/{id}/link``: a box the broker refuses says so over HTTP, and the fleet shows
why it is silent (SQLite and PostgreSQL). Only the box itself may report; the problem clears when
the box says so or is heard online over MQTT again."""

from __future__ import annotations

from datetime import timedelta

from server.api.deps import utcnow
from server.db.models import Device
from server.ingest.device_updates import DeviceUpdates
from streetwatch.messages import StatusMessage
from tests.server.api.conftest import Api

BOX = "device-1"  # the api fixture's device account: its user name is its device id
REFUSED = "broker 10.0.0.5:8883 refused the connection as 'device-1': Not authorized"


def report(api: Api, body: dict[str, object], device_id: str = BOX) -> int:
    reply = api.client.put(
        f"/api/v1/fleet/devices/{device_id}/link", json=body, headers=api.headers("device")
    )
    return reply.status_code


def box(api: Api) -> dict[str, object]:
    (shown,) = [b for b in api.get("/api/v1/fleet").json()["boxes"] if b["device_id"] == BOX]
    return dict(shown)


def test_a_refused_box_shows_as_refused_until_it_says_the_refusal_is_over(api: Api) -> None:
    began = utcnow() - timedelta(minutes=20)
    assert report(api, {"problem": REFUSED, "since": began.isoformat()}) == 204
    shown = box(api)  # never heard over MQTT: the report makes its row
    assert (shown["health"], shown["link_problem"]) == ("refused", REFUSED)
    assert str(shown["link_problem_since"]).startswith(began.isoformat()[:19])

    later = REFUSED.replace("Not authorized", "Bad user name or password")
    assert report(api, {"problem": later, "since": utcnow().isoformat()}) == 204
    shown = box(api)
    assert shown["link_problem"] == later  # the newest words...
    assert str(shown["link_problem_since"]).startswith(began.isoformat()[:19])  # ...since the first

    assert report(api, {"problem": None}) == 204
    shown = box(api)
    assert (shown["health"], shown["link_problem"], shown["link_problem_since"]) == ("ok", None, None)


def test_only_the_box_itself_reports_and_a_clock_ahead_says_now(api: Api) -> None:
    assert report(api, {"problem": REFUSED}, device_id="van-99") == 403
    assert report(api, {"problem": "x" * 501}) == 422
    ahead = utcnow() + timedelta(days=2)
    assert report(api, {"problem": REFUSED, "since": ahead.isoformat()}) == 204
    with api.sessions() as session:
        device = session.get(Device, BOX)
        assert device is not None and device.link_problem_since is not None
        assert device.link_problem_since <= utcnow()


def test_heard_online_over_mqtt_clears_the_problem(api: Api) -> None:
    assert report(api, {"problem": REFUSED}) == 204
    now = utcnow()
    updates = DeviceUpdates()
    updates.status(StatusMessage(state="online", device_id=BOX, software_version="1.0", at=now), now)
    with api.sessions.begin() as session:
        updates.write(session, now)
    shown = box(api)
    assert (shown["health"], shown["link_problem"]) == ("ok", None)
