"""``GET /cases/{id}/package``: a case's evidence as a ZIP an inspector can file and check (SQLite and
PostgreSQL): the manifest is the case as the API gives it, every image is named by its SHA-256 and
checks against SHA256SUMS, an image the box never delivered is listed as missing, a corrupt
file on the server is left out with the reason rather than packed, and a long case keeps every
event, packing the images an inspector needs first."""

from __future__ import annotations

import hashlib
import io
import json
import uuid
import zipfile
from datetime import timedelta

import pytest

from server.api import case_package
from server.db.models import Evidence
from streetwatch.events import Lifecycle
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


def test_a_long_case_keeps_every_event_and_packs_the_images_an_inspector_needs_first(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fixed camera's case gathers more events than the detail shows (200): the package keeps
    them all, and past its image limit it packs the first and newest sighting and each pass's
    ``new`` before the best-scoring update, naming the rest."""
    monkeypatch.setattr(case_package, "IMAGE_EVENTS", 3)
    images = {
        name: (jpeg(20 + 2 * i), jpeg(21 + 2 * i)) for i, name in enumerate(("first", "best", "pass", "last"))
    }
    for frame, crop in images.values():
        store_evidence(api, frame)
        store_evidence(api, crop)
    track = uuid.uuid4()
    events = []
    for i in range(205):
        kind = {0: "first", 100: "best", 150: "pass", 204: "last"}.get(i)
        event = make_event(
            observed_at=NOW + timedelta(seconds=30 * i),
            track_id=track,
            score=0.99 if kind == "best" else 0.6,
            evidence=images[kind] if kind else None,
        )
        if i and kind != "pass":  # the track's updates; at 150 another pass finds it anew
            event = event.model_copy(update={"lifecycle": Lifecycle.update, "sequence": i})
        events.append(event)
    outcomes = ingest(api, *events)
    case_id = outcomes[0].case_id
    assert case_id is not None and {o.case_id for o in outcomes} == {case_id}
    assert len(api.get(f"/api/v1/cases/{case_id}").json()["events"]) == 200  # the detail: the newest

    zipped = package(api, case_id)
    manifest = json.loads(zipped.read("manifest.json"))
    assert manifest["package"]["events_included"] == manifest["package"]["events_total"] == 205
    assert manifest["case"]["events"][0]["observed_at"].startswith(NOW.isoformat()[:19])  # the first sighting

    def digests(*names: str) -> set[str]:
        return {hashlib.sha256(data).hexdigest() for name in names for data in images[name]}

    assert set(manifest["files"]) == digests("first", "last", "pass")
    assert set(manifest["not_included"]) == digests("best")
    for sha256, why in manifest["not_included"].items():
        assert why == f"past the images of 3 events a package holds; GET /api/v1/evidence/{sha256}"
    assert manifest["missing"] == {}
    summary = zipped.read("summary.html").decode()
    assert summary.count("<img ") == 6 and summary.count("not in the package: past the images of 3") == 2
