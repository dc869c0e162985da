"""Open311 GeoReport v2: service list, request shape, status mapping, filters, errors."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from tests.server.api.conftest import NOW, Api, ingest, jpeg, make_event, store_evidence

GEOREPORT_FIELDS = {
    "service_request_id", "status", "status_notes", "service_name", "service_code", "description",
    "agency_responsible", "service_notice", "requested_datetime", "updated_datetime", "expected_datetime",
    "address", "address_id", "zipcode", "lat", "long", "media_url",
}  # fmt: skip
#: Seeded cases open at NOW, long ago by the wall clock; every query names its window.
WINDOW = {
    "start_date": (NOW - timedelta(days=1)).isoformat(),
    "end_date": (NOW + timedelta(days=1)).isoformat(),
}


def _seed(api: Api) -> dict[str, int]:
    frame, crop = jpeg(30), jpeg(31)
    store_evidence(api, frame)
    store_evidence(api, crop)
    out = ingest(
        api,
        make_event(evidence=(frame, crop)),
        make_event(violation_type="illegal_signboard", east_m=600),
        make_event(violation_type="street_vending", north_m=600, source="fixed"),  # a fixed camera's
    )
    return {"garbage": out[0].case_id or 0, "sign": out[1].case_id or 0, "vend": out[2].case_id or 0}


def test_services_are_the_four_violation_types(api: Api) -> None:
    services = api.get("/open311/v2/services.json").json()
    assert [s["service_code"] for s in services] == [
        "street_vending", "garbage_overflow", "illegal_signboard", "unsealed_truck",
    ]  # fmt: skip
    for service in services:
        assert service["metadata"] is False and service["type"] == "realtime"
        assert service["service_name"] and service["description"] and service["group"]


def test_requests_have_the_georeport_shape_and_our_values(api: Api) -> None:
    cases = _seed(api)
    requests = api.get("/open311/v2/requests.json", params=WINDOW).json()
    assert len(requests) == 3
    by_id = {r["service_request_id"]: r for r in requests}
    garbage = by_id[str(cases["garbage"])]
    assert set(garbage) == GEOREPORT_FIELDS
    assert garbage["status"] == "open"
    assert garbage["service_code"] == "garbage_overflow" and garbage["service_name"] == "Garbage overflow"
    assert abs(garbage["lat"] - 21.0285) < 1e-6 and abs(garbage["long"] - 105.8542) < 1e-6
    assert garbage["requested_datetime"].startswith("2026-05-04T09:00:00")
    assert garbage["expected_datetime"].startswith("2026-05-05T09:00:00")  # garbage SLA: 24 h
    media = api.client.get(garbage["media_url"], headers=api.headers("viewer"))
    assert media.status_code == 200 and media.content == jpeg(30)
    assert by_id[str(cases["sign"])]["media_url"] is None  # no evidence kept


def test_states_map_to_open_and_closed(api: Api) -> None:
    cases = _seed(api)
    api.post(f"/api/v1/cases/{cases['sign']}/actions", json={"action": "reject", "reason": "permitted sign"})
    api.post(f"/api/v1/cases/{cases['vend']}/actions", json={"action": "dispatch", "team": "patrol-7"})

    def ids(status: str) -> set[str]:
        got = api.get("/open311/v2/requests.json", params={**WINDOW, "status": status}).json()
        return {r["service_request_id"] for r in got}

    assert ids("open") == {str(cases["garbage"]), str(cases["vend"])}
    assert ids("closed") == {str(cases["sign"])}
    assert ids("open,closed") == {str(c) for c in cases.values()}
    (vend,) = api.get(f"/open311/v2/requests/{cases['vend']}.json").json()
    assert vend["agency_responsible"] == "patrol-7" and vend["status_notes"] == "A team has been dispatched."


def test_filters_default_window_and_api_key(api: Api) -> None:
    cases = _seed(api)
    signs = api.get(
        "/open311/v2/requests.json", params={**WINDOW, "service_code": "illegal_signboard"}
    ).json()
    assert [r["service_request_id"] for r in signs] == [str(cases["sign"])]
    several = api.get(
        "/open311/v2/requests.json", params={"service_request_id": f"{cases['sign']},{cases['vend']}"}
    )
    assert {r["service_request_id"] for r in several.json()} == {str(cases["sign"]), str(cases["vend"])}
    later = {"start_date": (NOW + timedelta(hours=1)).isoformat()}
    assert api.get("/open311/v2/requests.json", params=later).json() == []

    # Without dates: the last 90 days. The seeded cases are older; one opened now is listed.
    assert api.get("/open311/v2/requests.json").json() == []
    (fresh,) = ingest(api, make_event(north_m=2000), now=datetime.now(timezone.utc))
    listed = api.get("/open311/v2/requests.json").json()
    assert [r["service_request_id"] for r in listed] == [str(fresh.case_id)]

    # GeoReport clients send the key as a query parameter.
    keyed = api.client.get("/open311/v2/services.json", params={"api_key": api.tokens["viewer"]})
    assert keyed.status_code == 200
    device = api.client.get("/open311/v2/services.json", params={"api_key": api.tokens["device"]})
    assert device.status_code == 403


def test_errors_are_georeport_error_lists(api: Api) -> None:
    _seed(api)
    unknown = api.get("/open311/v2/requests.json", params={"service_code": "jaywalking"})
    assert unknown.status_code == 400
    assert unknown.json() == [{"code": 400, "description": unknown.json()[0]["description"]}]
    assert "jaywalking" in unknown.json()[0]["description"]
    missing = api.get("/open311/v2/requests/987654.json")
    assert missing.status_code == 404 and missing.json()[0]["code"] == 404
    bad_status = api.get("/open311/v2/requests.json", params={"status": "pending"})
    assert bad_status.status_code == 400 and "open or closed" in bad_status.json()[0]["description"]
    bad_date = api.get("/open311/v2/requests.json", params={"start_date": "yesterday"})
    assert bad_date.status_code == 400 and "start_date" in bad_date.json()[0]["description"]
    anonymous = api.client.get("/open311/v2/services.json")
    assert anonymous.status_code == 401 and anonymous.json()[0]["code"] == 401
