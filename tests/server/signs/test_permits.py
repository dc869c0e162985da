"""Permit lists (CSV, GeoJSON) through ``streetwatch signs import``, on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import json
import shutil
from datetime import datetime, timezone
from pathlib import Path

import cv2
import pytest
import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from server.db.models import Evidence, Sign
from server.evidence_store import EvidenceStore
from server.signs.fingerprint import fingerprint, similarity
from server.signs.permits import jpeg_photo
from server.signs.service import SignError, views
from streetwatch.cli import main

CROPS = sorted((Path(__file__).parent / "crops").glob("*.jpg"))


def _config(tmp_path: Path, url: str) -> str:
    config = tmp_path / "server.yaml"
    config.write_text(yaml.safe_dump({"database_url": url, "evidence_dir": str(tmp_path / "ev")}))
    return str(config)


def _import_csv(
    tmp_path: Path, url: str, rows: str, photos: Path, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str, str]:
    """``streetwatch signs import`` of a CSV list with its photo folder: exit code, stdout, stderr."""
    permits = tmp_path / "permits.csv"
    permits.write_text(rows)
    code = main(
        ["signs", "import", str(permits), "--photos", str(photos), "--config", _config(tmp_path, url)]
    )
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _signs(sessions: sessionmaker[Session]) -> dict[str, Sign]:
    with sessions() as session:
        return {s.permit_id or "": s for s in session.scalars(select(Sign))}


def test_csv_permits_with_photos_are_registered_and_a_second_import_updates_them(
    migrated_url: str, sessions: sessionmaker[Session], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(CROPS[0], photos / "sb-1.jpg")
    code, out, err = _import_csv(
        tmp_path,
        migrated_url,
        "Permit_ID,lat,lon,valid_until,description,photo\n"
        'SB-1,21.02851,105.85420,2027-06-30,"Pho 24, Hang Bai 12",sb-1.jpg\n'
        "SB-2,21.02900,105.85500,,,\n"
        "SB-3,not-a-number,105.8,,,\n"
        "SB-4,21.03,105.85,2027-02-30,,\n"
        "SB-5,21.03,105.85,,,missing.jpg\n"
        ",21.03,105.85,,,\n",
        photos,
        capsys,
    )
    assert code == 1
    assert out.strip().endswith("2 added, 0 updated, 4 skipped")
    assert "row 4: position 'not-a-number', '105.8' is not two numbers" in err
    assert "row 5: valid_until '2027-02-30' is not a date" in err
    assert "row 6: photo " in err and "missing.jpg" in err
    assert "row 7: permit_id is missing" in err

    signs = _signs(sessions)
    assert set(signs) == {"SB-1", "SB-2"}
    one = signs["SB-1"]
    assert (one.lat, one.lon, one.source, one.description) == (
        21.02851,
        105.8542,
        "import",
        "Pho 24, Hang Bai 12",
    )
    assert one.valid_until == datetime(2027, 6, 30, 23, 59, 59, 999999, tzinfo=timezone.utc)
    assert len(views(one)) == 1 and one.crop_sha256 is not None
    assert views(signs["SB-2"]) == [] and signs["SB-2"].valid_until is None
    _photo_is_kept(sessions, tmp_path / "ev", one.crop_sha256, CROPS[0].read_bytes())

    # The city's next list: SB-1 moved a little and has a new photo; nothing is added twice.
    shutil.copy(CROPS[1], photos / "sb-1.jpg")
    code, out, _err = _import_csv(
        tmp_path,
        migrated_url,
        "permit_id,Latitude,lng,valid_until,photo\nSB-1,21.02852,105.85421,2028-01-01T00:00:00Z,sb-1.jpg\n",
        photos,
        capsys,
    )
    assert code == 0
    assert out.strip().endswith("0 added, 1 updated, 0 skipped")
    again = _signs(sessions)
    assert set(again) == {"SB-1", "SB-2"} and again["SB-1"].id == one.id
    assert again["SB-1"].lat == 21.02852
    assert again["SB-1"].valid_until == datetime(2028, 1, 1, tzinfo=timezone.utc)
    assert similarity(views(again["SB-1"])[0], views(one)[0]) < 0.54  # another photo, another look
    assert again["SB-1"].crop_sha256 is not None
    _photo_is_kept(sessions, tmp_path / "ev", again["SB-1"].crop_sha256, CROPS[1].read_bytes())

    config = _config(tmp_path, migrated_url)
    assert main(["signs", "list", "--json", "--config", config]) == 0
    listed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert sorted(row["permit_id"] for row in listed) == ["SB-1", "SB-2"]
    assert main(["signs", "remove", str(one.id), "--config", config]) == 0
    assert set(_signs(sessions)) == {"SB-2"}
    assert main(["signs", "remove", str(one.id), "--config", config]) == 1
    assert f"no register entry {one.id}" in capsys.readouterr().err


def test_geojson_permits_are_registered_with_their_points(
    migrated_url: str, sessions: sessionmaker[Session], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copy(CROPS[2], tmp_path / "a.jpg")
    collection = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [105.8542, 21.0285]},
                "properties": {"permit_id": "G-1", "valid_until": "2027-01-31", "photo": "a.jpg"},
            },
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [105.8551, 21.0291]},
                "properties": {"permit_id": "G-2", "description": "banner"},
            },
            {
                "type": "Feature",
                "geometry": {"type": "LineString", "coordinates": [[105.8, 21.0], [105.9, 21.1]]},
                "properties": {"permit_id": "G-3"},
            },
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [200.0, 21.0]},
                "properties": {"permit_id": "G-4"},
            },
        ],
    }
    path = tmp_path / "permits.geojson"
    path.write_text(json.dumps(collection))
    assert main(["signs", "import", str(path), "--config", _config(tmp_path, migrated_url)]) == 1
    captured = capsys.readouterr()
    assert captured.out.strip().endswith("2 added, 0 updated, 2 skipped")
    assert "feature 3: its geometry is not a Point" in captured.err
    assert "feature 4: position (21.0, 200.0) is not a WGS 84 latitude/longitude" in captured.err
    signs = _signs(sessions)
    assert (signs["G-1"].lat, signs["G-1"].lon) == (21.0285, 105.8542)
    assert len(views(signs["G-1"])) == 1 and views(signs["G-2"]) == []
    assert signs["G-2"].description == "banner"


def test_a_list_that_cannot_be_read_as_a_whole_is_a_clear_error(
    migrated_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path, migrated_url)
    bad = tmp_path / "permits.csv"
    bad.write_text("id,northing,easting\n1,2,3\n")
    assert main(["signs", "import", str(bad), "--config", config]) == 1
    assert "the header lacks lat, lon, permit_id" in capsys.readouterr().err
    bad_json = tmp_path / "permits.geojson"
    bad_json.write_text('{"type": "Feature"}')
    assert main(["signs", "import", str(bad_json), "--config", config]) == 1
    assert "expected a GeoJSON FeatureCollection" in capsys.readouterr().err
    (tmp_path / "permits.xlsx").write_bytes(b"PK")
    assert main(["signs", "import", str(tmp_path / "permits.xlsx"), "--config", config]) == 1
    assert "expected a .csv, .geojson or .json file" in capsys.readouterr().err


def _photo_is_kept(sessions: sessionmaker[Session], evidence_dir: Path, sha256: str, data: bytes) -> None:
    """A permit's photo is in the evidence store, where the console and the API show it, and marked
    referenced so the orphan clean-up keeps it."""
    with sessions() as session:
        row = session.get(Evidence, sha256)
        assert row is not None and row.referenced_at is not None
        assert row.device_id == "permit list (import)"
    assert EvidenceStore(str(evidence_dir)).read(row.path) == data


def test_a_png_photo_is_kept_as_a_jpeg_and_one_declaring_too_many_pixels_is_refused_unread() -> None:
    ok, png = cv2.imencode(".png", cv2.imread(str(CROPS[0])))
    assert ok
    kept = jpeg_photo(png.tobytes())
    assert kept.startswith(b"\xff\xd8\xff")
    assert similarity(fingerprint(kept), fingerprint(CROPS[0].read_bytes())) > 0.9
    assert jpeg_photo(CROPS[0].read_bytes()) == CROPS[0].read_bytes()  # a JPEG is kept as it came
    huge = bytearray(png.tobytes())
    huge[16:24] = (100_000).to_bytes(4, "big") * 2  # the header's width and height
    with pytest.raises(SignError, match="PNG declares 100000x100000 pixels"):
        jpeg_photo(bytes(huge))
    with pytest.raises(SignError, match="this PNG of 32 bytes does not decode"):
        jpeg_photo(b"\x89PNG\r\n\x1a\n" + b"\0" * 24)


def test_a_row_refused_after_reading_its_photo_leaves_no_entry_and_no_kept_photo(
    migrated_url: str, sessions: sessionmaker[Session], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(CROPS[0], photos / "sb-1.jpg")
    shutil.copy(CROPS[1], photos / "sb-1-again.jpg")
    # A real JPEG the register cannot fingerprint: too small to describe a sign.
    sign = cv2.imread(str(CROPS[2]))
    assert sign is not None
    ok, tiny = cv2.imencode(".jpg", cv2.resize(sign, (3, 3)))
    assert ok
    (photos / "tiny.jpg").write_bytes(tiny.tobytes())
    code, out, err = _import_csv(
        tmp_path,
        migrated_url,
        "permit_id,lat,lon,photo\n"
        "SB-1,21.02851,105.85420,sb-1.jpg\n"
        "SB-1,21.02900,105.85500,sb-1-again.jpg\n"
        "SB-2,21.03000,105.85600,tiny.jpg\n",
        photos,
        capsys,
    )
    assert code == 1
    assert out.strip().endswith("1 added, 0 updated, 2 skipped")
    assert "row 3: permit SB-1 appears twice in the list" in err
    assert "row 4: the crop is too small" in err

    assert set(_signs(sessions)) == {"SB-1"}
    with sessions() as session:
        kept = set(session.scalars(select(Evidence.sha256)))
    first = jpeg_photo(CROPS[0].read_bytes())
    assert kept == {hashlib.sha256(first).hexdigest()}


def test_the_import_names_open_signboard_cases_standing_where_a_permit_now_is(
    migrated_url: str, sessions: sessionmaker[Session], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from server.db.models import Case

    now = datetime.now(timezone.utc)
    with sessions() as session:
        ids = []
        for lat, state in ((21.0285, "new"), (21.0286, "rejected"), (21.0400, "new")):
            case = Case(
                violation_type="illegal_signboard",
                state=state,
                title="a sign",
                lat=lat,
                lon=105.8542,
                opened_at=now,
                first_event_at=now,
                last_event_at=now,
                updated_at=now,
            )
            session.add(case)
            session.flush()
            ids.append(case.id)
        session.commit()
    # At the first case's place; the rejected one 11 m off is not open, the third 1.3 km away.
    code, out, err = _import_csv(
        tmp_path, migrated_url, "permit_id,lat,lon\nSB-9,21.02851,105.8542\n", tmp_path, capsys
    )
    assert (code, err) == (0, "")
    assert (
        f"1 open signboard case stands where a permit now is, opened before it was known: #{ids[0]}." in out
    )
