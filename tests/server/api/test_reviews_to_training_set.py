"""The review loop end to end: reviewed cases on a live server -> ``streetwatch dataset from-reviews``
-> a YOLO set the repository's own importer reads back, with real street photos as clean frames."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import pytest
import uvicorn

from streetwatch.cli import main
from tests.server.api.conftest import Api, ingest, jpeg, make_event, store_evidence
from training.datasets.importers import import_dataset
from training.datasets.taxonomy import load_taxonomy

VEHICLES = Path(__file__).resolve().parents[4] / "shared" / "data" / "vehicles" / "val"
TRUCK_ID = 2  # class 2 of the vehicle set's labels


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def live_url(api: Api) -> Iterator[str]:
    """The same app as ``api``, served over real HTTP by uvicorn in a thread."""
    port = _free_port()
    app = api.client.app
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


def _trucks(count: int) -> list[tuple[Path, tuple[float, float, float, float]]]:
    """Real photos with a labelled truck, and that truck's normalised (cx, cy, w, h)."""
    found = []
    for label in sorted((VEHICLES / "labels").glob("*.txt")):
        rows = [line.split() for line in label.read_text().splitlines() if line.strip()]
        truck = next((r for r in rows if int(r[0]) == TRUCK_ID and float(r[3]) > 0.1), None)
        image = VEHICLES / "images" / f"{label.stem}.jpg"
        if truck and image.is_file():
            cx, cy, w, h = (float(v) for v in truck[1:5])
            found.append((image, (cx, cy, w, h)))
        if len(found) == count:
            return found
    pytest.skip(f"needs {count} labelled trucks under {VEHICLES}")


def _seed_case(
    api: Api,
    photo: Path,
    norm: tuple[float, float, float, float],
    east_m: float,
    moved: bool = False,
    violation: tuple[str, str] = ("unsealed_truck", "truck"),
) -> int:
    """A truck case whose clean frame is ``photo``; the event's frame was twice as big (the box
    downscales its evidence), so the exporter has to scale the box back. ``moved``: seen from a
    passing van, the truck had moved on by the event's frame; only ``evidence.box`` says where it
    is in the clean frame. ``violation``: the type and detector class, a truck's unless given."""
    clean = photo.read_bytes()
    height, width = cv2.imread(str(photo)).shape[:2]
    big_w, big_h = 2 * width, 2 * height
    cx, cy, w, h = norm
    box = ((cx - w / 2) * big_w, (cy - h / 2) * big_h, (cx + w / 2) * big_w, (cy + h / 2) * big_h)
    shift = min(w * big_w / 2, big_w - box[2]) if moved else 0.0  # half a truck on, inside the frame
    frame, crop = jpeg(int(east_m) + 1), jpeg(int(east_m) + 2)
    for data in (frame, crop, clean):
        store_evidence(api, data)
    event = make_event(
        violation_type=violation[0],
        detector_class=violation[1],
        east_m=east_m,
        evidence=(frame, crop),
        clean=clean,
        box=(box[0] + shift, box[1], box[2] + shift, box[3]),
        frame_size=(big_w, big_h),
        evidence_box=box if moved else None,
    )
    (outcome,) = ingest(api, event)
    assert outcome.case_id is not None
    return outcome.case_id


def export_reviews(api: Api, live_url: str, tmp_path: Path, *extra: str, exit_code: int = 0) -> Path:
    """``streetwatch dataset from-reviews`` against the live server, as a viewer; the folder it wrote."""
    out = tmp_path / "reviews"
    server = ["--server", live_url, "--token", api.tokens["viewer"]]
    args = ["dataset", "from-reviews", *server, "--out", str(out), "--cache", str(tmp_path / "cache")]
    assert main([*args, *extra]) == exit_code
    return out


def _labels(folder: Path) -> dict[str, list[list[float]]]:
    return {
        f.stem: [[float(v) for v in line.split()] for line in f.read_text().splitlines() if line.strip()]
        for f in sorted((folder / "labels" / "train").glob("*.txt"))
    }


def test_reviewed_cases_become_a_training_set(
    api: Api,
    live_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (confirmed_photo, confirmed_box), (bus_photo, bus_box), (negative_photo, _) = _trucks(3)
    confirmed = _seed_case(api, confirmed_photo, confirmed_box, 0)
    relabelled = _seed_case(api, bus_photo, bus_box, 1000)
    rejected = _seed_case(api, negative_photo, confirmed_box, 2000)
    _seed_case(api, negative_photo, confirmed_box, 3000)  # never reviewed: not exported
    for case_id, body in (
        (confirmed, {"action": "confirm"}),
        (relabelled, {"action": "reject", "label": "bus"}),
        (rejected, {"action": "reject"}),
    ):
        assert api.post(f"/api/v1/cases/{case_id}/actions", json=body).status_code == 200

    monkeypatch.setenv("STREETWATCH_TOKEN", api.tokens["viewer"])
    out, cache = tmp_path / "reviews", tmp_path / "cache"
    args = ["dataset", "from-reviews", "--server", live_url, "--out", str(out), "--cache", str(cache)]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "3 reviewed cases" in printed and "truck: 1/3 confirmed by reviewers" in printed

    # Read back with the repository's own YOLO importer: the classes and boxes survive the trip.
    taxonomy = load_taxonomy()
    dataset = import_dataset(
        "yolo", out, source="reviews", taxonomy=taxonomy, mapping=taxonomy.identity_mapping()
    )
    assert dataset.report.problems == []
    by_class = {box.class_name: (image, box) for image in dataset.images for box in image.boxes}
    assert set(by_class) == {"truck", "bus"}
    assert len(dataset.images) == 2  # the negative is listed, not written
    for name, (cx, cy, w, h) in (("truck", confirmed_box), ("bus", bus_box)):
        image, box = by_class[name]
        assert box.x1 / image.width == pytest.approx(cx - w / 2, abs=2e-3)
        assert box.y2 / image.height == pytest.approx(cy + h / 2, abs=2e-3)
    # ...and it merges with other sets like any imported one.
    merged = tmp_path / "merged"
    assert main(["dataset", "merge", str(out), "--out", str(merged), "--classes", "truck,bus"]) == 0
    merged_labels = [p.read_text() for p in merged.glob("labels/*/*.txt")]
    assert sorted(text.split()[0] for text in merged_labels) == ["0", "1"]  # truck, bus
    export = (out / "review_export.json").read_text()
    assert '"not": "truck"' in export and f'"case_id": {rejected}' in export

    # Negatives as background images, from the cache; a damaged cached frame is fetched again.
    damaged = next(cache.glob("*.jpg"))
    original = damaged.read_bytes()
    damaged.write_bytes(original[:500])
    again = tmp_path / "with-negatives"
    args = ["dataset", "from-reviews", "--server", live_url, "--out", str(again), "--cache", str(cache)]
    assert main([*args, "--negatives", "background"]) == 0
    labels = _labels(again)
    assert len(labels) == 3
    assert sorted(len(rows) for rows in labels.values()) == [0, 1, 1]
    assert damaged.read_bytes() == original


def test_a_refused_token_or_an_unreachable_server_is_a_clear_error(
    api: Api, live_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "reviews"
    code = main(["dataset", "from-reviews", "--server", live_url, "--token", "swt_wrong", "--out", str(out)])
    assert code == 1
    assert "refused the token (401)" in capsys.readouterr().err
    port = _free_port()  # nothing listens there
    code = main(
        ["dataset", "from-reviews", "--server", f"http://127.0.0.1:{port}", "--token", "t", "--out", str(out)]
    )
    assert code == 1
    assert "cannot reach the StreetWatch server" in capsys.readouterr().err
    code = main(["dataset", "from-reviews", "--server", "server:8000", "--token", "t", "--out", str(out)])
    assert code == 1
    assert "is not an http(s) URL" in capsys.readouterr().err
    assert not out.exists()


def test_nothing_reviewed_is_an_error_that_says_what_to_do(
    api: Api, live_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    token = api.tokens["viewer"]
    out = tmp_path / "reviews"
    assert main(["dataset", "from-reviews", "--server", live_url, "--token", token, "--out", str(out)]) == 1
    assert "review cases (confirm / reject) on the server first" in capsys.readouterr().err


def test_two_cases_in_one_frame_make_one_image_with_both_boxes(
    api: Api, live_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (photo, box), (_, other_box) = _trucks(2)
    first = _seed_case(api, photo, box, 0)
    second = _seed_case(api, photo, other_box, 1000)  # another object in the very same frame
    token = api.tokens["viewer"]
    out = tmp_path / "reviews"
    args = ["dataset", "from-reviews", "--server", live_url, "--token", token, "--out", str(out)]
    args += ["--cache", str(tmp_path / "cache")]

    # Only an unlabelled rejection so far: nothing to write, and the error says what to do.
    assert api.post(f"/api/v1/cases/{first}/actions", json={"action": "reject"}).status_code == 200
    assert main(args) == 1
    assert "rejections without a class" in capsys.readouterr().err

    assert api.post(f"/api/v1/cases/{second}/actions", json={"action": "confirm"}).status_code == 200
    body = {"action": "reopen"}
    assert api.post(f"/api/v1/cases/{first}/actions", json=body).status_code == 200
    body = {"action": "confirm", "label": "bus"}
    assert api.post(f"/api/v1/cases/{first}/actions", json=body).status_code == 200
    assert main([*args, "--overwrite"]) == 0
    (rows,) = _labels(out).values()
    assert sorted(int(row[0]) for row in rows) == sorted(
        load_taxonomy().class_names().index(name) for name in ("bus", "truck")
    )


def test_withdrawn_decisions_and_frameless_cases_are_reported_not_exported(
    api: Api, live_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (photo, box), (other_photo, other_box) = _trucks(2)
    kept = _seed_case(api, photo, box, 0)
    taken_back = _seed_case(api, other_photo, other_box, 1000)
    frameless = ingest(api, make_event(violation_type="unsealed_truck", detector_class="truck", east_m=2000))
    frameless_id = frameless[0].case_id
    for case_id in (kept, taken_back, frameless_id):
        assert api.post(f"/api/v1/cases/{case_id}/actions", json={"action": "confirm"}).status_code == 200
    # taken back: reject, then reopen (a confirm cannot be reopened; a rejection can)
    assert api.post(f"/api/v1/cases/{taken_back}/actions", json={"action": "reject"}).status_code == 200
    assert api.post(f"/api/v1/cases/{taken_back}/actions", json={"action": "reopen"}).status_code == 200

    out = export_reviews(api, live_url, tmp_path)
    printed = capsys.readouterr().out
    assert f"withdrawn (reopened, no decision stands): cases {taken_back}" in printed
    assert f"case {frameless_id} (confirmed): the server holds no clean frame" in printed
    assert len(_labels(out)) == 1  # only the case that still stands, with its frame

    # the server's own reason reaches the user when it refuses a request
    export_reviews(api, live_url, tmp_path, "--overwrite", "--frames", "50", exit_code=1)
    assert "frames: " in capsys.readouterr().err
