"""GET /events: filters, bbox, time window, sort and pages return exactly the right rows."""

from __future__ import annotations

from datetime import timedelta

from tests.server.api.conftest import NOW, Api, ingest, jpeg, make_event, offset_position, store_evidence


def _seed(api: Api) -> dict[str, str]:
    frame, crop = jpeg(10), jpeg(11)
    store_evidence(api, frame)
    store_evidence(api, crop)
    events = {
        "g1": make_event(observed_at=NOW - timedelta(hours=3), evidence=(frame, crop)),
        "g2": make_event(observed_at=NOW - timedelta(hours=2), north_m=3, device_id="box-2"),
        "g3": make_event(observed_at=NOW - timedelta(hours=1), east_m=4),
        "sign": make_event(
            violation_type="illegal_signboard", observed_at=NOW - timedelta(minutes=30), east_m=800
        ),
        "vend": make_event(
            violation_type="street_vending", observed_at=NOW - timedelta(minutes=10), position=False
        ),
    }
    ingest(api, *events.values())
    return {name: str(event.event_id) for name, event in events.items()}


def _ids(response_json: dict) -> list[str]:  # type: ignore[type-arg]
    return [item["event_id"] for item in response_json["items"]]


def test_filters_select_the_right_events(api: Api) -> None:
    ids = _seed(api)
    everything = api.get("/api/v1/events").json()
    assert everything["total"] == 5
    # Default order: newest observation first.
    assert _ids(everything) == [ids["vend"], ids["sign"], ids["g3"], ids["g2"], ids["g1"]]

    garbage = api.get("/api/v1/events", params={"violation_type": "garbage_overflow"}).json()
    assert set(_ids(garbage)) == {ids["g1"], ids["g2"], ids["g3"]}
    assert garbage["total"] == 3

    box2 = api.get("/api/v1/events", params={"device_id": "box-2"}).json()
    assert _ids(box2) == [ids["g2"]]

    window = {
        "since": (NOW - timedelta(hours=2)).isoformat(),
        "until": (NOW - timedelta(minutes=10)).isoformat(),
    }
    assert set(_ids(api.get("/api/v1/events", params=window).json())) == {ids["g2"], ids["g3"], ids["sign"]}

    # A 100 m box around the corner holds the garbage events, not the signboard 800 m east
    # nor the event without a position.
    south_west = offset_position(-50, -50)
    north_east = offset_position(50, 50)
    bbox = f"{south_west[1]},{south_west[0]},{north_east[1]},{north_east[0]}"
    near = api.get("/api/v1/events", params={"bbox": bbox}).json()
    assert set(_ids(near)) == {ids["g1"], ids["g2"], ids["g3"]}


def test_pages_are_disjoint_and_cover_everything(api: Api) -> None:
    ids = _seed(api)
    seen: list[str] = []
    for offset in (0, 2, 4):
        page = api.get("/api/v1/events", params={"limit": 2, "offset": offset, "sort": "observed_at"}).json()
        assert page["total"] == 5 and page["limit"] == 2 and page["offset"] == offset
        seen += _ids(page)
    assert seen == [ids["g1"], ids["g2"], ids["g3"], ids["sign"], ids["vend"]]


def test_event_detail_has_position_model_and_evidence_urls(api: Api) -> None:
    ids = _seed(api)
    detail = api.get(f"/api/v1/events/{ids['g1']}").json()
    assert detail["violation_type"] == "garbage_overflow"
    assert detail["position"]["source"] == "gpx"
    assert detail["model"] == {"name": "test-model", "version": "1"}
    assert detail["case_id"] is not None
    image = api.client.get(detail["evidence"]["frame_url"], headers=api.headers("viewer"))
    assert image.status_code == 200
    assert image.headers["content-type"] == "image/jpeg"
    assert image.content == jpeg(10)
    assert api.get(f"/api/v1/events/{ids['vend']}").json()["position"] is None


def test_bad_queries_get_clear_json_errors(api: Api) -> None:
    _seed(api)
    bad_bbox = api.get("/api/v1/events", params={"bbox": "1,2,3"})
    assert bad_bbox.status_code == 422
    assert "bbox" in bad_bbox.json()["detail"] and "4 comma-separated" in bad_bbox.json()["detail"]
    flipped = api.get("/api/v1/events", params={"bbox": "106,21,105,22"})
    assert flipped.status_code == 422 and "min must not exceed max" in flipped.json()["detail"]
    bad_sort = api.get("/api/v1/events", params={"sort": "-password"})
    assert bad_sort.status_code == 422 and "observed_at" in bad_sort.json()["detail"]
    too_big = api.get("/api/v1/events", params={"limit": 100000})
    assert too_big.status_code == 422 and too_big.json()["detail"][0]["loc"] == ["query", "limit"]
    bad_type = api.get("/api/v1/events", params={"violation_type": "jaywalking"})
    assert bad_type.status_code == 422
    missing = api.get("/api/v1/events/00000000-0000-4000-8000-000000000000")
    assert missing.status_code == 404 and "no event" in missing.json()["detail"]
    not_uuid = api.get("/api/v1/events/not-a-uuid")
    assert not_uuid.status_code == 422


def test_cursor_pages_walk_every_event_once_in_order(api: Api) -> None:
    ids = _seed(api)
    # Two events share an observation time, so the cursor must break ties by event_id.
    (twin,) = ingest(api, make_event(observed_at=NOW - timedelta(hours=2), north_m=6))
    for sort in ("-observed_at", "observed_at", "-score"):
        by_offset = _ids(api.get("/api/v1/events", params={"sort": sort, "limit": 100}).json())
        walked: list[str] = []
        params: dict[str, object] = {"sort": sort, "limit": 2}
        while True:
            page = api.get("/api/v1/events", params=params).json()
            walked += _ids(page)
            if page["next_cursor"] is None:
                break
            params["cursor"] = page["next_cursor"]
        assert walked == by_offset, sort
        assert len(walked) == 6 and str(twin.event_id) in walked and ids["g2"] in walked


def test_bad_cursors_are_refused_with_a_message(api: Api) -> None:
    _seed(api)
    first = api.get("/api/v1/events", params={"limit": 2}).json()
    wrong_sort = api.get(
        "/api/v1/events", params={"limit": 2, "sort": "score", "cursor": first["next_cursor"]}
    )
    assert wrong_sort.status_code == 422 and "same sort" in wrong_sort.json()["detail"]
    garbage = api.get("/api/v1/events", params={"cursor": "not-a-cursor"})
    assert garbage.status_code == 422 and "cursor" in garbage.json()["detail"]
    both = api.get("/api/v1/events", params={"cursor": first["next_cursor"], "offset": 2})
    assert both.status_code == 422 and "offset" in both.json()["detail"]


def test_an_event_shows_the_cameras_fix_and_the_objects_place_and_the_case_sits_at_the_object(
    api: Api,
) -> None:
    """A van 25 m before a sign: the box placed the sign; its case and the bbox filter follow the sign."""
    lat, lon = offset_position(25, 0)
    place = {"lat": lat, "lon": lon, "accuracy_m": 6.0, "along_m": 25.0}
    event = make_event(violation_type="illegal_signboard", object_position=place)
    ingest(api, event)
    shown = api.get(f"/api/v1/events/{event.event_id}").json()
    camera = offset_position(0, 0)
    assert (shown["position"]["lat"], shown["position"]["lon"]) == camera  # where the van was
    assert shown["position"]["source"] == "gpx" and shown["position"]["accuracy_m"] == 4.0
    assert shown["object_position"] == place
    case = api.get(f"/api/v1/cases/{shown['case_id']}").json()
    assert (case["lat"], case["lon"]) == (lat, lon)
    south_west, north_east = offset_position(15, -10), offset_position(35, 10)
    bbox = f"{south_west[1]},{south_west[0]},{north_east[1]},{north_east[0]}"
    assert _ids(api.get("/api/v1/events", params={"bbox": bbox}).json()) == [str(event.event_id)]
    plain = make_event(east_m=500)  # a box that did not place its object
    ingest(api, plain)
    listed = {item["event_id"]: item for item in api.get("/api/v1/events").json()["items"]}
    assert listed[str(plain.event_id)]["object_position"] is None
    assert listed[str(event.event_id)]["object_position"] == place
