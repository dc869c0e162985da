"""``GET /cases/{id}/package``: a case's evidence as a ZIP an inspector can file and check (SQLite and
PostgreSQL): the manifest is the case as the API gives it, every image is named by its SHA-256 and
checks against SHA256SUMS, an image the box never delivered is listed as missing, and a corrupt
file on the server is left out with the reason rather than packed."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from datetime import timedelta

from server.db.models import Evidence
from tests.server.api.conftest import NOW, Api, ingest, jpeg, make_event, store_evidence


def package(api: Api, case_id: int) -> zipfile.ZipFile:
    reply = api.get(f"/api/v1/cases/{case_id}/package")
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"] == "application/zip"
    assert reply.headers["content-disposition"] == f'attachment; filename="streetwatch-case-{case_id}.zip"'
    return zipfile.ZipFile(io.BytesIO(reply.content))


def test_the_package_holds_the_case_its_images_and_checksums_that_hold(api: Api) -> None:
    frames = [jpeg(i) for i in range(5)]
    for data in frames[:4]:  # the last event's crop never arrived
        store_evidence(api, data)
    first = make_event(evidence=(frames[0], frames[1]), clean=frames[2], score=0.7)
    second = make_event(evidence=(frames[3], frames[4]), observed_at=NOW + timedelta(seconds=30), score=0.9)
    (opened, joined) = ingest(api, first, second)
    assert opened.case_id == joined.case_id and opened.case_id is not None
    reply = api.post(f"/api/v1/cases/{opened.case_id}/actions", json={"action": "confirm", "reason": "pile"})
    assert reply.status_code == 200

    zipped = package(api, opened.case_id)
    manifest = json.loads(zipped.read("manifest.json"))
    assert manifest["case"] == api.get(f"/api/v1/cases/{opened.case_id}").json() | {
        "updated_at": manifest["case"]["updated_at"]  # the same case: only the moment may differ
    }
    assert manifest["package"]["made_by"] == "viewer-1" and manifest["package"]["events_total"] == 2
    stored = {hashlib.sha256(data).hexdigest() for data in frames[:4]}
    assert set(manifest["files"]) == stored
    lost = hashlib.sha256(frames[4]).hexdigest()
    assert manifest["missing"] == {lost: "never received from the box"}
    for sha256, name in manifest["files"].items():
        assert name == f"images/{sha256}.jpg" and hashlib.sha256(zipped.read(name)).hexdigest() == sha256
    sums = dict(reversed(line.split("  ")) for line in zipped.read("SHA256SUMS").decode().splitlines())
    assert set(sums) == {*manifest["files"].values(), "manifest.json", "summary.html"}
    for name, digest in sums.items():
        assert hashlib.sha256(zipped.read(name)).hexdigest() == digest, name
    summary = zipped.read("summary.html").decode()
    assert f"Case {opened.case_id}: " in summary and "pile" in summary  # the confirm's reason
    assert summary.count("<img ") == 3  # two frames and the one crop that arrived
    assert "not in the package: never received from the box" in summary


def test_a_corrupt_image_on_the_server_is_left_out_with_the_reason(api: Api) -> None:
    frame, crop = jpeg(10), jpeg(11)
    for data in (frame, crop):
        store_evidence(api, data)
    (outcome,) = ingest(api, make_event(evidence=(frame, crop)))
    assert outcome.case_id is not None
    with api.sessions() as session:
        row = session.get(Evidence, hashlib.sha256(crop).hexdigest())
        assert row is not None
        path = api.client.app.state.evidence_store.path_of(row.path)  # type: ignore[attr-defined]
    path.write_bytes(b"flipped bits")  # the disk under the store went bad
    manifest = json.loads(package(api, outcome.case_id).read("manifest.json"))
    assert list(manifest["files"]) == [hashlib.sha256(frame).hexdigest()]
    (why,) = manifest["missing"].values()
    assert why.startswith("listed but unreadable on the server: ") and "corrupt" in why
    assert api.get("/api/v1/cases/999999/package").status_code == 404
