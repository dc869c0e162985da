"""Nothing a box committed is lost: end to end, black-box, through the ``streetwatch`` CLI.

LONG RUNNING (about 70 s on 2 busy cores; marked ``slow``). Real processes, each started the way
an operator starts it: Mosquitto from the shipped ``deploy/mosquitto`` config, two
``streetwatch server ingest`` workers, ``streetwatch server run`` (for ``/metrics``) and
``streetwatch edge run`` replaying truck photos as a patrol. While the box reports:

* the server's evidence disk fills up and is freed again (a small tmpfs; needs root, the
  step is left out with a printed reason otherwise),
* the broker is killed with SIGKILL twice and restarted after several seconds each time,
* one of the two ingest workers is stopped for 40 s (``/metrics`` must show it),
* the box is killed with SIGKILL and started again (camera unplugged: it only delivers).

Then every event the box committed to its outbox is stored exactly once, every image it
committed is stored (file and row), and the outbox ends empty. Ack timeouts are short
(5-10 s) so that re-sends happen within the run.

What the box committed is read from a log table that a trigger in the outbox file fills in
the same transaction as each insert; the box's own code is not touched.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cv2
import httpx
import pytest
import yaml
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from demo.mosquitto import free_port
from edge.outbox.schema import open_database
from tests.support.shipped_broker import ShippedBroker

pytestmark = [pytest.mark.slow, pytest.mark.broker]

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "datasets" / "samples" / "images"
TRUCK_PHOTOS = ["vehicles_vnv_1292_jpg.jpg", "vehicles_vnv_28_jpg.jpg", "vehicles_vnv_1249_jpg.jpg"]
DEVICE = "e2e-van"
WORKERS = {"ingest-1": "ingest-one-pw", "ingest-2": "ingest-two-pw"}
BOX_PASSWORD = "e2e-van-pw"
#: The whole run, disturbances and final delivery, must fit in this.
DEADLINE_S = 180.0


class Processes:
    """The processes this test started, by id; each in its own session, so they are ended alone."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.running: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        with (self.logs / f"{name}.log").open("ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "streetwatch.cli", *args],
                cwd=REPO,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.running[name] = process
        return process

    def signal(self, name: str, signum: int, timeout: float = 30.0) -> None:
        process = self.running.pop(name)
        if process.poll() is None:
            process.send_signal(signum)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def alive(self, name: str) -> bool:
        return name in self.running and self.running[name].poll() is None

    def tail(self, name: str, lines: int = 25) -> str:
        path = self.logs / f"{name}.log"
        text_ = path.read_text(errors="replace") if path.exists() else ""
        return f"--- {name}.log ---\n" + "\n".join(text_.splitlines()[-lines:])

    def stop_all(self) -> None:
        for name in list(self.running):
            self.signal(name, signal.SIGKILL, timeout=10)


@pytest.fixture
def database_url(tmp_path: Path) -> Iterator[str]:
    """PostgreSQL (a fresh schema) when the project's test server runs, else an SQLite file."""
    base = os.environ.get("STREETWATCH_TEST_PG_URL")
    if not base:
        yield f"sqlite:///{tmp_path / 'streetwatch.db'}"
        return
    schema = f"e2e_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    finally:
        admin.dispose()


def patrol_frames(folder: Path, passes: int = 40) -> None:
    """Truck photos, four frames each, in passes that differ in one corner patch (new images each pass)."""
    folder.mkdir()
    n = 0
    for p in range(passes):
        for photo in TRUCK_PHOTOS:
            image = cv2.imread(str(SAMPLES / photo))
            assert image is not None, photo
            image[0:12, 0:12] = (p * 6, 255 - p * 6, (p * 37) % 256)
            for _ in range(4):
                n += 1
                cv2.imwrite(str(folder / f"frame_{n:04d}.jpg"), image)


def box_config(tmp_path: Path, broker: ShippedBroker, source: dict[str, Any]) -> dict[str, Any]:
    return {
        "device_id": DEVICE,
        "camera_id": "front",
        "source": source,
        "location": {"kind": "fixed", "lat": 31.23, "lon": 121.47},
        "detectors": [
            {
                "model": str(REPO / "models" / "yolox_nano" / "yolox_nano.onnx"),
                "conf": 0.3,
                "keep_classes": ["truck"],
                "providers": ["CPUExecutionProvider"],
            }
        ],
        "inference_workers": 1,
        "tracker": {"high_thresh": 0.4, "low_thresh": 0.1, "new_track_thresh": 0.45, "match_iou": 0.2,
                    "lost_timeout_s": 1},
        "class_map": [{"detector_class": "truck", "violation_type": "unsealed_truck", "candidate": True}],
        "rules": {"unsealed_truck": {"min_score": 0.35, "min_box_area_px": 900, "confirm_frames": 2,
                                     "confirm_window": 2, "update_interval_s": 30, "end_after_s": 1,
                                     "cooldown_s": 0}},
        "evidence": {"directory": str(tmp_path / "box" / "evidence"), "max_total_mb": 500},
        "sink": {
            "kind": "mqtt",
            "host": "127.0.0.1",
            "port": broker.tls_port,
            "password": BOX_PASSWORD,
            "tls": {"ca_file": str(broker.etc / "ca.crt")},
            "keepalive_s": 5,
            "reconnect_min_s": 0.5,
            "reconnect_max_s": 2,
            "ack_timeout_s": 5,
            "ack_timeout_max_s": 10,
            "telemetry_interval_s": 5,
            "outbox": {"path": str(tmp_path / "box" / "outbox.sqlite3")},
        },
    }  # fmt: skip


def log_commits(outbox: Path) -> None:
    """Create the outbox file and a trigger that records every message the box commits to it."""
    outbox.parent.mkdir(parents=True, exist_ok=True)
    conn = open_database(outbox)
    conn.executescript(
        """
        CREATE TABLE committed_log (kind TEXT NOT NULL, key TEXT);
        CREATE TRIGGER log_commits AFTER INSERT ON messages BEGIN
            INSERT INTO committed_log (kind, key) VALUES (NEW.kind, NEW.key);
        END;
        """
    )
    conn.close()


def read_outbox(outbox: Path) -> tuple[set[str], set[str], int, dict[str, int]]:
    """(committed event ids, committed image hashes, rows still queued, drop counters)."""
    conn = sqlite3.connect(f"file:{outbox}?mode=ro", uri=True, timeout=30)
    try:
        log = conn.execute("SELECT kind, key FROM committed_log").fetchall()
        queued = conn.execute("SELECT count(*) FROM messages").fetchone()[0]
        dropped = dict(conn.execute("SELECT name, value FROM counters").fetchall())
    finally:
        conn.close()
    events = {str(k) for kind, k in log if kind == "event"}
    images = {str(k) for kind, k in log if kind == "evidence"}
    return events, images, int(queued), {str(k): int(v) for k, v in dropped.items()}


def server_holds(url: str) -> tuple[list[str], dict[str, str], dict[str, int]]:
    """(event ids, image hash -> path, rejection counts) in the server's database."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            events = [
                str(uuid.UUID(str(r[0]))) for r in connection.execute(text("SELECT event_id FROM events"))
            ]
            images = {
                str(r[0]): str(r[1]) for r in connection.execute(text("SELECT sha256, path FROM evidence"))
            }
            rejected = {
                str(r[0]): int(r[1]) for r in connection.execute(text("SELECT reason, count FROM rejections"))
            }
    finally:
        engine.dispose()
    return events, images, rejected


class FullDisk:
    """A small tmpfs as the server's evidence folder, that can be filled up and freed."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.filler = folder / "filler.bin"
        self.mounted = False
        self.reason = ""
        folder.mkdir(parents=True)
        if os.geteuid() != 0:
            self.reason = "not root: cannot mount a tmpfs to fill"
            return
        result = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=256m", "tmpfs", str(folder)], capture_output=True, text=True
        )
        if result.returncode != 0:
            self.reason = f"cannot mount a tmpfs: {result.stderr.strip()}"
            return
        self.mounted = True

    def fill(self) -> None:
        """Write zeros until the file system refuses even a byte (unbuffered: nothing left to flush)."""
        fd = os.open(self.filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        try:
            for size in (1 << 20, 1 << 16, 1 << 12, 1):
                block = b"\0" * size
                while True:
                    try:
                        if os.write(fd, block) < size:
                            break
                    except OSError:
                        break
        finally:
            os.close(fd)

    def free(self) -> None:
        self.filler.unlink(missing_ok=True)

    def unmount(self) -> None:
        if self.mounted:
            subprocess.run(["umount", "-l", str(self.folder)], capture_output=True)


def kill_broker(broker: ShippedBroker) -> None:
    """SIGKILL, as a power cut or the OOM killer would."""
    assert broker.proc is not None and broker.proc.poll() is None, "the broker is not running"
    broker.proc.kill()
    broker.proc.wait()
    broker.proc = None


def wait_until(check: Callable[[], bool], timeout: float, what: str, procs: Processes) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.25)
    names = sorted(path.stem for path in procs.logs.glob("*.log"))
    raise AssertionError(f"{what} not within {timeout:.0f} s\n" + "\n".join(procs.tail(n) for n in names))


def test_every_committed_event_and_image_is_stored_once_through_crashes_outages_and_a_full_disk(
    tmp_path: Path, database_url: str
) -> None:
    started = time.monotonic()
    logs = tmp_path / "logs"
    logs.mkdir()
    procs = Processes(logs)
    broker = ShippedBroker(tmp_path / "broker", devices={DEVICE: BOX_PASSWORD}, ingest=WORKERS)
    disk = FullDisk(tmp_path / "server-evidence")
    if not disk.mounted:
        print(f"full-disk step left out: {disk.reason}")
    outbox = tmp_path / "box" / "outbox.sqlite3"
    patrol_frames(tmp_path / "frames")
    configs: dict[str, Path] = {}
    for client_id, password in WORKERS.items():
        settings = {
            "database_url": database_url,
            "evidence_dir": str(disk.folder),
            "mqtt": {"host": "127.0.0.1", "port": broker.port, "username": client_id, "password": password,
                     "client_id": client_id, "keepalive_s": 5},
        }  # fmt: skip
        configs[client_id] = tmp_path / f"{client_id}.yaml"
        configs[client_id].write_text(yaml.safe_dump(settings))
    patrol = tmp_path / "box-patrol.yaml"
    patrol.write_text(yaml.safe_dump(box_config(tmp_path, broker, {
        "kind": "images", "uri": str(tmp_path / "frames"), "image_interval_s": 0.5, "loop": True,
    })))  # fmt: skip
    # After the restart the camera is unplugged: the box only delivers what it holds.
    unplugged = tmp_path / "box-unplugged.yaml"
    unplugged.write_text(yaml.safe_dump(box_config(tmp_path, broker, {
        "kind": "stream", "uri": f"http://127.0.0.1:{free_port()}/none.mjpg", "reconnect_max_s": 5,
    })))  # fmt: skip
    log_commits(outbox)
    http_port = free_port()

    def at(seconds: float) -> None:
        time.sleep(max(0.0, seconds - (time.monotonic() - t0)))

    def metrics() -> dict[str, float]:
        response = httpx.get(
            f"http://127.0.0.1:{http_port}/metrics", headers={"Authorization": f"Bearer {token}"}
        )
        response.raise_for_status()
        samples = {}
        for line in response.text.splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                samples[name] = float(value)
        return samples

    try:
        broker.start()
        migrate = subprocess.run(
            [sys.executable, "-m", "streetwatch.cli", "server", "migrate", "--config",
             str(configs["ingest-1"])],
            cwd=REPO, capture_output=True, text=True,
        )  # fmt: skip
        assert migrate.returncode == 0, migrate.stderr
        created = subprocess.run(
            [sys.executable, "-m", "streetwatch.cli", "user", "create", "prometheus", "--role", "viewer"],
            cwd=REPO, capture_output=True, text=True,
            env={**os.environ, "STREETWATCH_DATABASE_URL": database_url},
        )  # fmt: skip
        assert created.returncode == 0, created.stderr
        token = created.stdout.strip().splitlines()[-1]
        for client_id in WORKERS:
            procs.start(client_id, "server", "ingest", "--config", str(configs[client_id]))
        procs.start("api", "server", "run", "--config", str(configs["ingest-1"]), "--port", str(http_port))
        wait_until(lambda: "connected" in (logs / "ingest-2.log").read_text(), 30, "workers connected", procs)
        t0 = time.monotonic()
        procs.start("box", "edge", "run", "--config", str(patrol))

        at(1)  # before the box's first images: each pass over the photos brings new ones for a while
        if disk.mounted:
            disk.fill()
        at(8)
        kill_broker(broker)  # what arrived since its last autosave is gone
        at(14)
        if disk.mounted:
            disk.free()
        broker.start()
        at(20)
        procs.signal("ingest-2", signal.SIGTERM)
        at(26)
        kill_broker(broker)
        at(32)
        broker.start()
        at(40)
        seen = metrics()
        assert seen['streetwatch_ingest_worker_connected{client_id="ingest-2"}'] == 0
        assert seen['streetwatch_ingest_worker_last_seen_seconds{client_id="ingest-2"}'] >= 15
        assert seen['streetwatch_ingest_worker_last_seen_seconds{client_id="ingest-1"}'] < 30
        listed = subprocess.run(
            [sys.executable, "-m", "streetwatch.cli", "server", "workers", "--config",
             str(configs["ingest-1"])],
            cwd=REPO, capture_output=True, text=True,
        )  # fmt: skip
        assert listed.returncode == 1 and "ingest-2: DOWN" in listed.stdout, listed.stdout + listed.stderr
        at(46)
        assert procs.alive("box"), procs.tail("box")
        procs.signal("box", signal.SIGKILL)
        at(48)
        procs.start("box-again", "edge", "run", "--config", str(unplugged))
        at(60)  # ingest-2 was down for 40 s; its share of the box's re-sends queued at the broker
        procs.start("ingest-2", "server", "ingest", "--config", str(configs["ingest-2"]))

        def delivered() -> bool:
            return read_outbox(outbox)[2] == 0

        wait_until(delivered, DEADLINE_S - (time.monotonic() - started), "the box's outbox emptied", procs)
        time.sleep(1.0)  # the last batch's commit is visible to every reader
        committed_events, committed_images, queued, dropped = read_outbox(outbox)
        events, images, rejected = server_holds(database_url)
        files_missing = [
            sha for sha in committed_images if sha in images and not (disk.folder / images[sha]).is_file()
        ]
    finally:
        procs.stop_all()
        broker.stop()
        disk.unmount()

    assert len(committed_events) >= 100, f"the patrol committed only {len(committed_events)} events"
    assert queued == 0
    assert not any(dropped.values()), f"the box dropped messages: {dropped}"
    assert len(events) == len(set(events)), "an event was stored twice"
    assert set(events) == committed_events, (
        f"missing: {len(committed_events - set(events))}, unknown: {len(set(events) - committed_events)}"
    )
    missing_images = committed_images - set(images)
    assert not missing_images, f"{len(missing_images)} of {len(committed_images)} committed images not stored"
    assert not files_missing, f"{len(files_missing)} stored images have no file"
    if disk.mounted:
        assert rejected.get("storage_error", 0) > 0, "the full disk refused nothing: the step tested nothing"
    took = time.monotonic() - started
    print(
        f"stored {len(events)} events and {len(committed_images)} images in {took:.0f} s; refused: {rejected}"
    )
