"""A release server (real HTTP with Range, can cut a download), signed commands, tiny ONNX models
and a box running the real pipeline against a real broker, for the over-the-air update tests."""

from __future__ import annotations

import hashlib
import http.server
import json
import re
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import paho.mqtt.client as mqtt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from numpy.typing import NDArray
from onnx import TensorProto, helper

from edge.config import DeviceConfig
from edge.frames import Frame
from streetwatch.messages import Command, CommandReply, UpdateModelCommand
from streetwatch.release_signing import Release, sign
from streetwatch.topics import (
    command_replies_topic,
    commands_topic,
    events_topic,
    status_topic,
    telemetry_topic,
)

REPO = Path(__file__).resolve().parents[3]
DET = REPO / "models" / "streetwatch-det" / "streetwatch-det.onnx"
DET_INT8 = REPO / "models" / "streetwatch-det" / "streetwatch-det-int8.onnx"
REPLAY = REPO / "datasets" / "samples" / "replay"
TOKEN = "box-token-0123456789"
T0 = datetime(2026, 5, 4, 8, 0, tzinfo=timezone.utc)


# -- the release server ------------------------------------------------------------------------


@dataclass
class ReleaseServer:
    """Serves files from a folder over real HTTP: Bearer token, ``Range`` requests (206), and
    ``cut_at``: every response stops at that byte of the file and drops the connection (a dead zone)."""

    root: Path
    token: str = TOKEN
    cut_at: int | None = None
    requests: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests.append({"path": self.path, "range": self.headers.get("Range")})
                if self.headers.get("Authorization") != f"Bearer {server.token}":
                    self.send_error(401, "device credentials required")
                    return
                path = server.root / self.path.lstrip("/")
                if not path.is_file():
                    self.send_error(404)
                    return
                data = path.read_bytes()
                start = 0
                match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
                if match:
                    start = int(match.group(1))
                    if start >= len(data):
                        self.send_error(416)
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:]
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if server.cut_at is not None and len(data) > server.cut_at:
                    self.wfile.write(data[start : max(start, server.cut_at)])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{name}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


# -- keys and commands -------------------------------------------------------------------------


def write_public_key(key: Ed25519PrivateKey, path: Path) -> Path:
    path.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return path


def model_command(
    server: ReleaseServer,
    file: Path,
    key: Ed25519PrivateKey,
    *,
    version: str,
    name: str = "streetwatch-det",
    sha256: str | None = None,
    signature: str | None = None,
) -> UpdateModelCommand:
    """Put ``file`` on the server and build its signed ``update_model`` command."""
    served = f"{uuid.uuid4().hex[:8]}-{file.name}"
    shutil.copyfile(file, server.root / served)
    digest = sha256 or hashlib.sha256(file.read_bytes()).hexdigest()
    size = file.stat().st_size
    release = Release(kind="model", name=name, version=version, size=size, sha256=digest)
    return UpdateModelCommand(
        command_id=f"m-{uuid.uuid4().hex[:12]}",
        name=name,
        version=version,
        url=server.url(served),
        sha256=digest,
        size=size,
        signature=signature or sign(key, release),
    )


# -- tiny ONNX models --------------------------------------------------------------------------

DET_NAMES = str(
    dict(enumerate(["garbage", "garbage_bin", "overflow", "signboard", "car", "motor", "truck", "bus"]))
)


def _save(graph: onnx.GraphProto, path: Path, names: str = DET_NAMES) -> Path:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    for k, v in {"names": names, "imgsz": "[416, 416]", "streetwatch_model": "streetwatch-det"}.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = k, v
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def wrong_shape_model(path: Path) -> Path:
    """Loads in onnxruntime, but its output (1, 5, 10) is one class where the metadata names eight."""
    x = helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 416, 416])
    y = helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, 5, 10])
    zeros = helper.make_tensor("zeros", TensorProto.FLOAT, [1, 5, 10], np.zeros(50, dtype=np.float32))
    # output = zeros + 0 * mean(images): it reads the input, so nothing is folded away.
    nodes = [
        helper.make_node("ReduceMean", ["images"], ["m"], keepdims=1),
        helper.make_node("Mul", ["m", "zero"], ["m0"]),
        helper.make_node("Add", ["zeros", "m0"], ["output0"]),
    ]
    zero = helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0])
    return _save(helper.make_graph(nodes, "wrong-shape", [x], [y], [zeros, zero]), path)


def raising_model(path: Path) -> Path:
    """A YOLOv8-shaped model that finds nothing and runs fine on dark frames but fails (a Gather index
    out of range) on a frame whose brightest pixel is white: it passes the probe on grey frames and
    raises during probation once the camera sees white."""
    x = helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 416, 416])
    y = helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, 12, 3549])
    table = helper.make_tensor("table", TensorProto.FLOAT, [1, 1, 12, 3549], np.zeros(12 * 3549, np.float32))
    nodes = [
        helper.make_node("ReduceMax", ["images"], ["mx"], keepdims=0),
        helper.make_node("Floor", ["mx"], ["fl"]),  # grey: 0.35 -> 0; white: 1.0 -> 1
        helper.make_node("Cast", ["fl"], ["idx"], to=TensorProto.INT64),
        helper.make_node("Gather", ["table", "idx"], ["picked"], axis=0),  # index 1 is out of range
        helper.make_node("Identity", ["picked"], ["output0"]),
    ]
    return _save(helper.make_graph(nodes, "raises-on-white", [x], [y], [table]), path)


# -- a source the test steers --------------------------------------------------------------------


class PacedSource:
    """Frames at ``fps`` in wall time (a camera): the replay photos in a loop, or grey frames that turn
    white when ``white`` is set. Timestamps advance 1 s per frame (the rules' frame clock)."""

    def __init__(self, fps: float, photos: bool) -> None:
        self.name = "test-cam"
        self.fps = fps
        self.white = threading.Event()
        self.closed = threading.Event()
        self.images: list[NDArray[np.uint8]] = []
        if photos:
            import cv2

            for path in sorted(REPLAY.glob("*.jpg"))[:48]:
                image = cv2.imread(str(path))
                assert image is not None, f"cannot read {path}"
                self.images.append(np.asarray(cv2.resize(image, (640, 480)), dtype=np.uint8))

    def __iter__(self) -> Iterator[Frame]:
        i = 0
        next_at = time.monotonic()
        while not self.closed.is_set():
            if self.images:
                image = self.images[i % len(self.images)]
            else:
                image = np.full((480, 640, 3), 255 if self.white.is_set() else 90, dtype=np.uint8)
            yield Frame(image=image, timestamp=T0 + timedelta(seconds=i), index=i, source=self.name)
            i += 1
            next_at += 1.0 / self.fps
            time.sleep(max(0.0, next_at - time.monotonic()))

    def close(self) -> None:
        self.closed.set()


# -- the server's side of MQTT -------------------------------------------------------------------


class FleetClient:
    """Sends commands to a box and records its replies, retained status, telemetry and events (a real
    MQTT client)."""

    def __init__(self, port: int, device_id: str) -> None:
        self.device_id = device_id
        self.replies: list[dict[str, Any]] = []
        self.status: list[dict[str, Any]] = []
        self.telemetry: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []
        self._lock = threading.RLock()  # predicates given to wait() read through the same lock
        self.subscribed = threading.Event()
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=f"fleet-{uuid.uuid4().hex[:8]}", protocol=mqtt.MQTTv5
        )
        topics = [
            (command_replies_topic(device_id), 1),
            (status_topic(device_id), 1),
            (telemetry_topic(device_id), 1),
            (events_topic(device_id), 1),
        ]
        self.client.on_connect = lambda c, *_: c.subscribe(topics)
        self.client.on_subscribe = lambda *_: self.subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert self.subscribed.wait(5)

    def _on_message(self, _c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            if message.topic.endswith("/commands/reply"):
                CommandReply.from_json(bytes(message.payload))
                self.replies.append(json.loads(message.payload))
            elif message.topic.endswith("/telemetry"):
                self.telemetry.append(json.loads(message.payload))
            elif message.topic == events_topic(self.device_id):
                self.events.append(json.loads(message.payload))
            elif message.payload:
                self.status.append(json.loads(message.payload))

    def send(self, command: Command) -> str:
        self.client.publish(commands_topic(self.device_id), command.to_json(), qos=1)
        return command.command_id

    def of(self, command_id: str) -> list[dict[str, Any]]:
        with self._lock:
            return [r for r in self.replies if r["command_id"] == command_id]

    def wait(self, predicate: Callable[[FleetClient], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if predicate(self):
                    return True
            time.sleep(0.05)
        return False

    def final(self, command_id: str, timeout: float = 60.0) -> dict[str, Any]:
        """The command's done or failed reply."""
        if not self.wait(lambda f: any(r["state"] in ("done", "failed") for r in f.of(command_id)), timeout):
            raise AssertionError(f"no final reply to {command_id} within {timeout} s: {self.of(command_id)}")
        return next(r for r in self.of(command_id) if r["state"] in ("done", "failed"))

    def models(self) -> list[dict[str, str]]:
        with self._lock:
            return list(self.status[-1]["models"]) if self.status else []

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def box_config(tmp: Path, port: int, device_id: str, public_key: Path, **updates: Any) -> DeviceConfig:
    """One streetwatch-det detector, MQTT sink, updates on (short probation for tests)."""
    token = tmp / "http-token"
    tmp.mkdir(parents=True, exist_ok=True)
    token.write_text(TOKEN + "\n")
    raw: dict[str, Any] = {
        "device_id": device_id,
        "source": {"kind": "images", "uri": str(REPLAY)},  # replaced by a PacedSource in-process
        "detectors": [
            {
                "model": str(DET),
                "conf": 0.1,
                "keep_classes": ["garbage", "overflow", "garbage_bin", "signboard", "car", "truck"],
                "providers": ["CPUExecutionProvider"],
            }
        ],
        "inference_workers": 1,
        "class_map": [
            {"detector_class": "garbage", "violation_type": "garbage_overflow"},
            {"detector_class": "overflow", "violation_type": "garbage_overflow"},
            {"detector_class": "signboard", "violation_type": "illegal_signboard", "candidate": True},
            {"detector_class": "truck", "violation_type": "unsealed_truck", "candidate": True},
        ],
        "evidence": {"directory": str(tmp / "evidence")},
        "sink": {
            "kind": "mqtt",
            "host": "127.0.0.1",
            "port": port,
            "keepalive_s": 5,
            "reconnect_min_s": 0.1,
            "reconnect_max_s": 0.5,
            "outbox": {"path": str(tmp / "outbox.sqlite3")},
        },
        "updates": {
            "release_public_key": str(public_key),
            "http_token_file": str(token),
            "staging_dir": str(tmp / "staging"),
            "models_dir": str(tmp / "models"),
            "configs_dir": str(tmp / "configs"),
            "probation_s": 1.0,
            "probation_frames": 5,
            "stall_s": 5.0,
            "download_attempts": 2,
            **updates,
        },
    }
    return DeviceConfig.model_validate(raw)


def stalling_model(path: Path, turns: int = 2500, side: int = 512) -> Path:
    """A YOLOv8-shaped model that finds nothing, at once on dark frames; on a frame whose brightest pixel
    is white it loops over ``turns`` square matrix products first: about 6 s on one core here, far past
    the test's ``stall_s`` of 1 s (a slower or busier machine only makes the stall longer)."""
    x = helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 416, 416])
    y = helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, 12, 3549])
    square = [side, side]
    body = helper.make_graph(
        [
            helper.make_node("MatMul", ["m_in", "w"], ["m_mul"]),
            helper.make_node("Tanh", ["m_mul"], ["m_out"]),
            helper.make_node("Identity", ["cond_in"], ["cond_out"]),
        ],
        "turn",
        [
            helper.make_tensor_value_info("i", TensorProto.INT64, []),
            helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
            helper.make_tensor_value_info("m_in", TensorProto.FLOAT, square),
        ],
        [
            helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
            helper.make_tensor_value_info("m_out", TensorProto.FLOAT, square),
        ],
    )
    weights = (np.random.default_rng(0).standard_normal(side * side) / side).astype(np.float32)
    initialisers = [
        helper.make_tensor("w", TensorProto.FLOAT, square, weights),
        helper.make_tensor("m0", TensorProto.FLOAT, square, np.ones(side * side, np.float32)),
        helper.make_tensor("k", TensorProto.FLOAT, [], [float(turns)]),
        helper.make_tensor("true", TensorProto.BOOL, [], [True]),
        helper.make_tensor("zeros", TensorProto.FLOAT, [1, 12, 3549], np.zeros(12 * 3549, np.float32)),
        helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0]),
    ]
    nodes = [
        helper.make_node("ReduceMax", ["images"], ["mx"], keepdims=0),
        helper.make_node("Floor", ["mx"], ["fl"]),  # grey: 0 turns; white: `turns`
        helper.make_node("Mul", ["fl", "k"], ["turns_f"]),
        helper.make_node("Cast", ["turns_f"], ["turns"], to=TensorProto.INT64),
        helper.make_node("Loop", ["turns", "true", "m0"], ["m_final"], body=body),
        helper.make_node("ReduceMax", ["m_final"], ["s"], keepdims=0),
        helper.make_node("Mul", ["s", "zero"], ["s0"]),
        helper.make_node("Add", ["zeros", "s0"], ["output0"]),
    ]
    return _save(helper.make_graph(nodes, "stalls-on-white", [x], [y], initialisers), path)


def constant_model(path: Path, output: NDArray[np.float32], names: str = DET_NAMES) -> Path:
    """A model that answers ``output`` (shape (1, 12, 3549), YOLOv8 layout) whatever the frame."""
    x = helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 416, 416])
    y = helper.make_tensor_value_info("output0", TensorProto.FLOAT, list(output.shape))
    nodes = [
        helper.make_node("ReduceMean", ["images"], ["m"], keepdims=0),
        helper.make_node("Mul", ["m", "zero"], ["m0"]),
        helper.make_node("Add", ["answer", "m0"], ["output0"]),
    ]
    initialisers = [
        helper.make_tensor("answer", TensorProto.FLOAT, list(output.shape), output.ravel()),
        helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0]),
    ]
    return _save(helper.make_graph(nodes, "constant", [x], [y], initialisers), path, names)


def one_box_output() -> NDArray[np.float32]:
    """A confident 'garbage' box in the middle of every frame (where the real model sees nothing)."""
    out = np.zeros((1, 12, 3549), dtype=np.float32)
    out[0, :4, 0] = (208.0, 208.0, 120.0, 120.0)  # cx, cy, w, h in input pixels
    out[0, 4, 0] = 0.95
    return out
