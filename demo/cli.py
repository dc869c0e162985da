"""``streetwatch demo``: the whole data path on one machine, from sample photos to cases.

What it starts, in order, all under one work folder (default ``var/demo``):

1. a local Mosquitto broker on a free port;
2. the server on SQLite: migrations, an admin user (its token is printed), an
   ingest worker subscribed to the broker, and the HTTP API (uvicorn);
3. an edge box (``streetwatch edge run``, a separate process) replaying the
   shipped sample photos along the GPX patrol route of ``deploy/edge.demo.yaml``,
   publishing over MQTT through its disk outbox.

It prints where the cases are, waits for the replay to be delivered and
ingested, prints a summary, and keeps serving until Ctrl-C. ``--once`` exits
after the summary instead (exit code 1 when no event arrived).

Every run starts from an empty work folder, so the numbers are the same each
time; the folder keeps the logs, the database and ``server.yaml`` afterwards.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import FrameType
from typing import IO, Any

#: Marks a folder as made by the demo, so a re-run may wipe it (and nothing else).
MARKER = ".streetwatch-demo"
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}
#: Locked while a demo runs in the folder.
LOCK = ".streetwatch-demo.lock"
_HELD_LOCKS: list[IO[str]] = []
#: The edge run's closing line about its truck load stage (edge/cli.py).
TRUCKS_LINE = re.compile(
    r"trucks: (\d+ raised, \d+ unsure, \d+ silenced by the load stage(?:, \d+ too far to judge)?)"
)
#: The ingest is done when nothing new has arrived for this long after the edge finished.
SETTLE_S = 3.0
#: The edge run's closing words when the server has not acknowledged everything (edge/cli.py).
LEFT_IN_OUTBOX = re.compile(r"(\d+ events and \d+ images wait in the outbox)")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="Run broker, server and an edge box replaying the samples; print where the cases are.",
    )
    parser.add_argument(
        "--workdir", default="var/demo", help="Folder for the run (wiped first; default var/demo)."
    )
    parser.add_argument("--host", default="127.0.0.1", help="HTTP address (default 127.0.0.1).")
    parser.add_argument("--port", type=int, default=8000, help="HTTP port (default 8000; 0: any free port).")
    parser.add_argument("--edge-config", help="Device config to replay (default deploy/edge.demo.yaml).")
    parser.add_argument("--max-frames", type=int, help="Stop the replay after this many frames.")
    parser.add_argument(
        "--once", action="store_true", help="Exit after the replay is ingested, with a summary."
    )
    parser.add_argument(
        "--timeout", type=float, default=900.0, help="Give up waiting for the replay after this many seconds."
    )
    parser.set_defaults(handler=_handle)


@dataclass(frozen=True)
class Summary:
    events: int
    cases: int
    cases_by_type: dict[str, int]
    devices: int
    #: The box's own account of its truck load stage ("0 raised, 1 unsure, 14 silenced ..."), if any.
    trucks: str | None = None
    #: Signs seen that the register knew (no case), and all signs seen.
    signs_registered: int = 0
    signs_seen: int = 0

    def lines(self) -> list[str]:
        kinds = ", ".join(f"{k} {v}" for k, v in sorted(self.cases_by_type.items())) or "none"
        lines = [
            f"events stored: {self.events} from {self.devices} device(s)",
            f"cases: {self.cases} ({kinds})",
        ]
        if self.signs_seen:
            registered = f"{self.signs_registered} of {self.signs_seen}"
            lines.append(f"signs: {registered} seen were registered (no case)")
        if self.trucks is not None:
            lines.append(f"trucks on the box: {self.trucks}")
        return lines


def _handle(args: argparse.Namespace) -> int:
    from edge.config import MAX_DRAIN_ON_CLOSE_S
    from streetwatch.paths import deploy_dir

    # Migrations log every step at INFO; the demo's own lines are what matter here.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    workdir = prepare_workdir(Path(args.workdir))
    edge_config = Path(args.edge_config) if args.edge_config else deploy_dir() / "edge.demo.yaml"
    demo = Demo(workdir, host=args.host, port=args.port)
    # SIGTERM (e.g. from `timeout` or a service manager) shuts down like Ctrl-C, so the broker
    # and the edge process are stopped instead of left behind.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        demo.start_broker()
        token = demo.start_server()
        demo.start_edge(edge_config, args.max_frames, drain_s=min(args.timeout, MAX_DRAIN_ON_CLOSE_S))
        base = demo.base_url
        print(
            "\nStreetWatch demo is running.\n"
            f"  console:  {base}/   (sign in as admin, password {demo.admin_password})\n"
            f"  cases:    {base}/api/v1/cases\n"
            f"  API docs: {base}/docs   (Authorize with the token below)\n"
            f"  Open311:  {base}/open311/v2/requests.json?api_key=<token>\n"
            f"  admin token (shown once): {token}\n"
            f'  try: curl -H "Authorization: Bearer {token}" {base}/api/v1/cases\n'
            f"  MQTT broker: {demo.broker.host}:{demo.broker.port}\n"
            f"  logs and data: {workdir} (server settings: server.yaml)\n",
            flush=True,
        )
        if not demo.wait_for_replay(args.timeout):
            return 1
        summary = demo.summary(token)
        print("replay ingested: " + "; ".join(summary.lines()), flush=True)
        if args.once:
            if summary.events == 0:
                print(f"no event reached the server; see the logs in {workdir}", file=sys.stderr)
                return 1
            return 0
        print(f"serving {base}/api/v1/cases until Ctrl-C", flush=True)
        while True:
            time.sleep(1.0)
    except KeyboardInterrupt:
        print("\nstopping the demo", file=sys.stderr)
        return 0
    finally:
        demo.stop()


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def prepare_workdir(workdir: Path) -> Path:
    """An empty work folder, locked for this run.

    Refuses a non-empty folder the demo did not make, and a folder another demo is using
    (wiping its database under it would break that run).
    """
    import fcntl

    from streetwatch.errors import ConfigError

    workdir = workdir.resolve()
    if workdir.exists() and any(workdir.iterdir()) and not (workdir / MARKER).exists():
        raise ConfigError(f"{workdir} is not empty and was not made by the demo; pick another --workdir")
    workdir.mkdir(parents=True, exist_ok=True)
    lock = (workdir / LOCK).open("w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        lock.close()
        raise ConfigError(
            f"another streetwatch demo is running in {workdir}; stop it or pick another --workdir"
        ) from None
    _HELD_LOCKS.append(lock)  # held until the process exits
    for entry in workdir.iterdir():
        if entry.name == LOCK:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    (workdir / MARKER).write_text("made by streetwatch demo; wiped on the next run\n")
    return workdir


def live_replay(source: Any, location: Any, now: datetime) -> tuple[Any, Any]:
    """Move a recorded replay (frames and GPS track together) so that it ends ``now``.

    The events then look live: observation times, SLA due times and the ingest lag are
    those of a patrol that just drove the route, and the GPS fixes still match their
    frames. (The replay runs faster than real time; ending, not starting, at ``now``
    keeps every observation time in the past.)
    """
    if source.start_time is None:
        return source, location
    start = now - timedelta(seconds=replay_span_s(source))
    shift = (start - source.start_time).total_seconds()
    source = source.model_copy(update={"start_time": start})
    if location.kind in ("gpx", "nmea_file"):
        location = location.model_copy(update={"time_offset_s": location.time_offset_s + shift})
    return source, location


def replay_span_s(source: Any) -> float:
    """Seconds of recorded time an image-folder replay covers (0 for other sources)."""
    if source.kind != "images":
        return 0.0
    folder = Path(source.uri)
    images = [p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES] if folder.is_dir() else []
    return float(len(images) * source.image_interval_s)


class Demo:
    """The running pieces; :meth:`stop` takes down whatever was started."""

    def __init__(self, workdir: Path, *, host: str, port: int) -> None:
        self.workdir = workdir
        self.host = host
        self.port = port
        self.broker: Any = None
        self.worker: Any = None
        self.http: Any = None
        self.http_thread: threading.Thread | None = None
        self.edge: subprocess.Popen[bytes] | None = None
        self.edge_config: Any = None
        self.settings: Any = None
        self.admin_password = ""

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start_broker(self) -> None:
        from demo.mosquitto import MosquittoBroker

        self.broker = MosquittoBroker(self.workdir / "broker")
        self.broker.start()

    def start_server(self) -> str:
        """Migrate, make the admin, start ingest and HTTP; return the admin's token."""
        import uvicorn
        import yaml

        from demo.approach import ZONES
        from demo.mosquitto import free_port
        from demo.permits import PERMITS
        from server.app import create_app
        from server.auth import Role, create_user
        from server.db.migrate import upgrade
        from server.db.session import make_engine, session_factory
        from server.evidence_store import EvidenceStore
        from server.ingest.worker import IngestWorker
        from server.settings import MqttSettings, ServerSettings, SignSettings
        from server.signs.permits import import_permits
        from streetwatch.errors import ConfigError

        self.settings = ServerSettings(
            database_url=f"sqlite:///{self.workdir / 'streetwatch.db'}",
            evidence_dir=str(self.workdir / "evidence"),
            mqtt=MqttSettings(host=self.broker.host, port=self.broker.port),
            # A made-up no-sign zone along the approached sign's side of the street (demo.approach).
            signs=SignSettings(no_sign_zones=str(ZONES)),
        )
        # The same settings as a file, so `streetwatch server run --config` can reopen this demo.
        (self.workdir / "server.yaml").write_text(yaml.safe_dump(self.settings.model_dump(mode="json")))
        upgrade(self.settings.database_url)
        engine = make_engine(self.settings.database_url)
        try:
            with session_factory(engine)() as session:
                # A password too, so the dispatcher console (/) can be signed in to.
                self.admin_password = secrets.token_urlsafe(9)
                now = datetime.now(timezone.utc)
                token = create_user(session, "admin", Role.admin, now, password=self.admin_password).token
                # A made-up permit for one of the replay's signs (demo.permits): it opens no case.
                store = EvidenceStore(self.settings.evidence_dir)
                imported = import_permits(session, PERMITS, photos=None, store=store, actor="demo", now=now)
                if imported.errors:
                    raise ConfigError(f"{PERMITS}: {'; '.join(imported.errors)}")
                session.commit()
        finally:
            engine.dispose()

        self.worker = IngestWorker(self.settings)
        self.worker.start()
        if not self.worker.wait_subscribed(15.0):
            raise ConfigError(f"the ingest worker did not subscribe at the broker on port {self.broker.port}")

        if self.port == 0:
            self.port = free_port(self.host)
        from server.web.live import SHUTDOWN_GRACE_S
        from server.web.serving import HttpServer

        config = uvicorn.Config(
            create_app(self.settings),
            host=self.host,
            port=self.port,
            log_level="warning",
            timeout_graceful_shutdown=SHUTDOWN_GRACE_S,
        )
        self.http = HttpServer(config)  # ends open consoles' live streams when stopped
        self.http_thread = threading.Thread(target=self.http.run, name="http", daemon=True)
        self.http_thread.start()
        deadline = time.monotonic() + 15.0
        while not self.http.started:
            if not self.http_thread.is_alive() or time.monotonic() > deadline:
                raise ConfigError(
                    f"the HTTP server could not listen on {self.host}:{self.port} (port in use?)"
                )
            time.sleep(0.05)
        return token

    def start_edge(self, device_config: Path, max_frames: int | None, drain_s: float) -> None:
        """Write the demo's device config (MQTT sink to our broker) and start the edge process, which
        waits up to ``drain_s`` for the server's acks when its replay ends."""
        import yaml

        from edge.config import MqttSinkConfig, OutboxConfig, load_config

        base = load_config(device_config)
        sink = MqttSinkConfig(
            host=self.broker.host,
            port=self.broker.port,
            outbox=OutboxConfig(path=str(self.workdir / "edge-outbox.sqlite3")),
            telemetry_interval_s=5.0,
            # The replay is finite: the box delivers what it found before it exits, so the
            # summary counts every event and the fleet page keeps the box's own last status.
            drain_on_close_s=drain_s,
        )
        evidence = base.evidence.model_copy(update={"directory": str(self.workdir / "edge-evidence")})
        source, location = live_replay(base.source, base.location, datetime.now(timezone.utc))
        self.edge_config = base.model_copy(
            update={"sink": sink, "evidence": evidence, "source": source, "location": location}
        )
        path = self.workdir / "edge.yaml"
        path.write_text(
            yaml.safe_dump(self.edge_config.model_dump(mode="json", exclude_none=True), sort_keys=False)
        )
        command = [sys.executable, "-m", "streetwatch.cli", "-v", "edge", "run", "--config", str(path)]
        if max_frames:
            command += ["--max-frames", str(max_frames)]
        with (self.workdir / "edge.log").open("wb") as log:
            self.edge = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        print(f"edge box {base.device_id} replaying {base.source.uri} (log: {self.workdir / 'edge.log'})")

    def wait_for_replay(self, timeout: float) -> bool:
        """Wait until the edge has finished, its outbox is delivered and the ingest has settled."""
        assert self.edge is not None
        deadline = time.monotonic() + timeout
        while self.edge.poll() is None:
            if time.monotonic() > deadline:
                print(f"the replay did not finish within {timeout:.0f} s", file=sys.stderr)
                return False
            time.sleep(0.5)
        if self.edge.returncode != 0:
            tail = (self.workdir / "edge.log").read_text(errors="replace").splitlines()[-15:]
            print(
                f"the edge process exited with {self.edge.returncode}:\n  " + "\n  ".join(tail),
                file=sys.stderr,
            )
            return False
        self._report_leftovers()
        self._wait_ingest_settled(deadline)
        return True

    def _report_leftovers(self) -> None:
        # The box waited for the server's acks before exiting; its last line says what it still
        # holds (that goes out on its next start).
        text = (self.workdir / "edge.log").read_text(errors="replace")
        left = LEFT_IN_OUTBOX.findall(text)
        if left:
            print(f"the edge outbox did not drain in time: {left[-1]}", file=sys.stderr)

    def _wait_ingest_settled(self, deadline: float) -> None:
        # Delivered to the broker is not yet stored: wait until the worker has received nothing
        # new for SETTLE_S (its batches commit within batch_wait_s of the last message).
        last = -1
        quiet_since = time.monotonic()
        while time.monotonic() < deadline:
            received = self.worker.stats.received
            if received != last:
                last, quiet_since = received, time.monotonic()
            elif time.monotonic() - quiet_since >= SETTLE_S:
                return
            time.sleep(0.2)

    def summary(self, token: str) -> Summary:
        """Counts read back through the HTTP API, as a client would see them."""
        events = self._get("/api/v1/events?limit=1", token)["total"]
        devices = self._get("/api/v1/devices?limit=1", token)["total"]
        by_type: Counter[str] = Counter()
        offset, total = 0, None
        while total is None or offset < total:
            page = self._get(f"/api/v1/cases?limit=500&offset={offset}", token)
            total = page["total"]
            by_type.update(case["violation_type"] for case in page["items"])
            offset += len(page["items"]) or total
        cases = total or 0
        signs = self._get("/api/v1/stats/signs", token)
        registered, opened = signs["signs_without_case"], signs["signs_with_case"]
        return Summary(events, cases, dict(by_type), devices, self._trucks(), registered, registered + opened)

    def _trucks(self) -> str | None:
        # Silenced trucks send nothing to the server; the box's last line says how many there were
        # (``streetwatch edge run``; its telemetry carries the same counts to /metrics while it runs).
        try:
            text = (self.workdir / "edge.log").read_text(errors="replace")
        except OSError:
            return None
        found = TRUCKS_LINE.findall(text)
        return found[-1] if found else None

    def _get(self, path: str, token: str) -> Any:
        request = urllib.request.Request(self.base_url + path, headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.load(response)

    def stop(self) -> None:
        if self.edge is not None and self.edge.poll() is None:
            self.edge.terminate()
            try:
                self.edge.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.edge.kill()
                self.edge.wait()
        if self.http is not None:
            self.http.should_exit = True
            if self.http_thread is not None:
                self.http_thread.join(10)
        if self.worker is not None:
            self.worker.stop()
        if self.broker is not None:
            self.broker.stop()
