"""A permit list sent to ``POST /api/v1/signs/import`` (the console's Signs page), SQLite and PostgreSQL:
a dry run counts and changes nothing, wrong rows are listed and skipped, the same list again
updates its entries, the photos sent with the list become the entries' looks and are kept (a
list sent without them is imported without them, with a note), and a list that cannot be read
at all is a 422 that says why."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import cv2
from sqlalchemy import func, select

from server.db.models import Evidence, Sign
from server.signs.fingerprint import fingerprint, similarity
from server.signs.service import views
from tests.server.api.conftest import Api

CROPS = sorted((Path(__file__).parents[1] / "signs" / "crops").glob("*.jpg"))  # real sign crops

PERMITS = (
    "Permit_ID,latitude,longitude,valid_until,description,photo\n"
    'SB-1,21.02851,105.85420,2027-06-30,"Pho 24, Hang Bai 12",sb-1.jpg\n'
    "SB-2,21.02900,105.85500,,,\n"
    "SB-3,not-a-number,105.8,,,\n"
)


def permits(api: Api) -> dict[str, Sign]:
    with api.sessions() as session:
        return {s.permit_id or "": s for s in session.scalars(select(Sign))}


def test_a_dry_run_counts_then_the_import_registers_and_a_second_one_updates(api: Api) -> None:
    checked = api.post("/api/v1/signs/import", json={"format": "csv", "text": PERMITS, "dry_run": True})
    assert checked.status_code == 200, checked.text
    report = checked.json()
    assert (report["added"], report["updated"], report["dry_run"]) == (2, 0, True)
    assert report["errors"] == ["row 4: position 'not-a-number', '105.8' is not two numbers"]
    assert report["notes"] == [
        "row 2: photo 'sb-1.jpg' not read (the list came without photos); the first sighting "
        "at the place gives the sign its look"
    ]
    assert permits(api) == {}  # a dry run changes nothing

    done = api.post("/api/v1/signs/import", json={"format": "csv", "text": PERMITS}).json()
    assert (done["added"], done["updated"], done["dry_run"]) == (2, 0, False)
    signs = permits(api)
    assert set(signs) == {"SB-1", "SB-2"}
    first = signs["SB-1"]
    assert (first.source, first.created_by) == ("import", "reviewer-1")
    assert first.description == "Pho 24, Hang Bai 12"
    assert first.valid_until is not None and first.valid_until.date().isoformat() == "2027-06-30"
    assert first.fingerprint is None  # no photo: the first sighting gives its look

    moved = PERMITS.replace("21.02900,105.85500", "21.02910,105.85510")
    again = api.post("/api/v1/signs/import", json={"format": "csv", "text": moved}).json()
    assert (again["added"], again["updated"]) == (0, 2)
    assert len(permits(api)) == 2 and round(permits(api)["SB-2"].lat, 5) == 21.0291


def test_a_geojson_list_is_read_and_an_unreadable_list_is_refused_with_the_reason(api: Api) -> None:
    features = [
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [105.8542, 21.0285]},
         "properties": {"permit_id": "GJ-1", "valid_until": "2027-01-01"}},
        {"type": "Feature", "geometry": {"type": "LineString", "coordinates": [[105.85, 21.02], [105.9, 21]]},
         "properties": {"permit_id": "GJ-2"}},
    ]  # fmt: skip
    text = json.dumps({"type": "FeatureCollection", "features": features})
    report = api.post("/api/v1/signs/import", json={"format": "geojson", "text": text}).json()
    assert (report["added"], report["errors"]) == (1, ["feature 2: its geometry is not a Point"])
    assert set(permits(api)) == {"GJ-1"}

    no_header = api.post("/api/v1/signs/import", json={"format": "csv", "text": "SB-9;21.0;105.8\n"})
    assert no_header.status_code == 422
    assert "the permit list: the header lacks lat, lon, permit_id" in no_header.json()["detail"]
    not_json = api.post("/api/v1/signs/import", json={"format": "geojson", "text": "permit_id,lat,lon"})
    assert not_json.status_code == 422 and "is not valid JSON" in not_json.json()["detail"]
    refused = api.post("/api/v1/signs/import", json={"format": "xlsx", "text": "x"})
    assert refused.status_code == 422
    assert set(permits(api)) == {"GJ-1"}


def test_photos_sent_with_the_list_become_the_entries_looks_and_are_kept(api: Api) -> None:
    listed = (
        "permit_id,lat,lon,photo\n"
        "SB-1,21.02851,105.85420,photos/sb-1.jpg\n"  # a folder in the list; the browser sends the name
        "SB-2,21.02900,105.85500,sb-2.jpg\n"  # named, not sent
        "SB-3,21.02950,105.85600,broken.jpg\n"  # sent, not an image
        "SB-4,21.03000,105.85700,sb-4.png\n"  # a PNG: kept as a JPEG
        "SB-5,21.03050,105.85800,\n"
    )
    crop = CROPS[0].read_bytes()
    ok, png = cv2.imencode(".png", cv2.imread(str(CROPS[2])))
    assert ok
    sent = {
        "sb-4.png": base64.b64encode(png.tobytes()).decode(),
        "sb-1.jpg": base64.b64encode(crop).decode(),
        "broken.jpg": base64.b64encode(b"not a jpeg at all").decode(),
        "extra.jpg": base64.b64encode(CROPS[1].read_bytes()).decode(),
    }
    body = {"format": "csv", "text": listed, "photos": sent}
    checked = api.post("/api/v1/signs/import", json=body | {"dry_run": True}).json()
    assert (checked["added"], checked["updated"]) == (3, 0)
    assert checked["errors"] == [
        "row 3: photo 'sb-2.jpg' is not among the 4 photos sent with the list",
        "row 4: photo: must be a JPEG; these 17 bytes are not an image (starts b'not ') (JPEG or PNG)",
    ]
    assert checked["notes"] == ["photo 'extra.jpg' was sent but no row names it"]
    with api.sessions() as session:  # a dry run keeps no photo and registers nothing
        assert session.scalar(select(func.count()).select_from(Evidence)) == 0
        assert session.scalar(select(func.count()).select_from(Sign)) == 0
    assert not any(Path(api.settings.evidence_dir).rglob("*.jpg"))

    done = api.post("/api/v1/signs/import", json=body).json()
    assert (done["added"], done["errors"], done["notes"]) == (3, checked["errors"], checked["notes"])
    signs = permits(api)
    assert set(signs) == {"SB-1", "SB-4", "SB-5"}
    assert signs["SB-1"].crop_sha256 == hashlib.sha256(crop).hexdigest()
    assert similarity(views(signs["SB-1"])[0], fingerprint(crop)) > 0.99  # its look is the sent photo
    assert signs["SB-5"].fingerprint is None and signs["SB-5"].crop_sha256 is None
    as_jpeg = api.get(f"/api/v1/evidence/{signs['SB-4'].crop_sha256}")
    assert as_jpeg.status_code == 200 and as_jpeg.content.startswith(b"\xff\xd8\xff")
    assert similarity(views(signs["SB-4"])[0], fingerprint(CROPS[2].read_bytes())) > 0.9
    shown = api.get(f"/api/v1/evidence/{signs['SB-1'].crop_sha256}")  # the console shows the photo
    assert shown.status_code == 200 and shown.content == crop


def test_a_photo_that_is_not_base64_is_refused_and_nothing_is_imported(api: Api) -> None:
    body = {"format": "csv", "text": "permit_id,lat,lon,photo\nSB-1,21.0285,105.8542,a.jpg\n"}
    refused = api.post("/api/v1/signs/import", json=body | {"photos": {"a.jpg": "%%% not base64 %%%"}})
    assert refused.status_code == 422
    assert refused.json()["detail"] == "photo 'a.jpg' is not base64"
    assert permits(api) == {}
