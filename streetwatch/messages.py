"""Wire models of the MQTT messages besides the event: status, telemetry and commands.

The event itself is :class:`streetwatch.events.ViolationEvent`; evidence travels as raw
JPEG bytes. These models are shared by the edge (which builds them) and the server
(which validates them); every one forbids unknown keys. Topics: :mod:`streetwatch.topics`;
payload examples: ``docs/mqtt.md``.

Commands are the one open-ended message: the server may learn new command types
before a box does. :func:`parse_command_header` therefore reads only the envelope
(``command_id`` and ``type``); the box validates the rest with the model registered for
that type (extra keys forbidden there too) and logs and ignores what it does not know.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Annotated, Any, ClassVar, Literal, TypeVar
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from streetwatch.errors import PayloadError
from streetwatch.events import (
    DEVICE_ID_PATTERN,
    ConfigRef,
    ModelRef,
    UtcDatetime,
    decode_json_object,
    summarise_validation_error,
    validate_wire,
)
from streetwatch.wire_json import load_wire_object

#: Commands are small; anything bigger is refused before parsing.
MAX_COMMAND_BYTES = 16 * 1024

#: The envelope of a command: what a box needs to route it.
COMMAND_TYPE_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"


_M = TypeVar("_M", bound=BaseModel)


#: Coverage points in one telemetry report (the box thins its track to fit).
MAX_COVERAGE_POINTS = 10_000


class _Strict(BaseModel):
    # Wire input is validated in strict mode (:func:`streetwatch.events.validate_wire`).
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    def to_json(self) -> bytes:
        """Compact UTF-8 JSON, the exact bytes published on MQTT."""
        return self.model_dump_json().encode()


class _Message(_Strict):
    """A box-to-server message: parsed with :meth:`from_json`, errors as :class:`PayloadError`."""

    kind: ClassVar[str]

    @classmethod
    def from_json(cls: type[_Msg], payload: bytes | str) -> _Msg:
        return _parse(cls, payload, cls.kind)


_Msg = TypeVar("_Msg", bound=_Message)


class StatusMessage(_Message):
    """Retained on ``.../status``: is the box online, and what software and models it runs."""

    kind: ClassVar[str] = "status"

    state: Literal["online", "offline"] = Field(
        description="online: sent on every connect; offline: the last will, or sent on a clean shutdown."
    )
    device_id: str = Field(pattern=DEVICE_ID_PATTERN, description="The box this status describes.")
    software_version: str = Field(min_length=1, max_length=64, description="StreetWatch version on the box.")
    models: list[ModelRef] = Field(
        default_factory=list,
        max_length=32,
        description="Models the box runs: its detectors, then its truck load classifier if it has one.",
    )
    config: ConfigRef | None = Field(
        default=None,
        description="The configuration installed over the air that the box runs; null when it runs the "
        "file it was set up with (after a rollback too). Absent from older boxes, which do not say.",
    )
    at: UtcDatetime = Field(description="UTC time the message was built (for the will: when it was armed).")
    phase: Literal["starting", "running"] | None = Field(
        default=None,
        description="With state online: starting while the box loads its models (or builds TensorRT "
        "engines, minutes on a first start), running once it processes frames. Absent from older boxes.",
    )


class CoveragePoint(_Strict):
    """One point of the vehicle's track: where the camera has looked (for coverage maps)."""

    lat: float = Field(ge=-90, le=90, description="Latitude in degrees, WGS 84.")
    lon: float = Field(ge=-180, le=180, description="Longitude in degrees, WGS 84.")
    at: UtcDatetime = Field(description="UTC time of the fix.")
    heading: float | None = Field(
        default=None, ge=0, lt=360, description="Course over ground or camera direction, degrees from north."
    )


class OutboxDepth(_Strict):
    """What is waiting on the box's disk to be delivered (until the server acknowledges it as stored)."""

    events: int = Field(ge=0, description="Events the server has not yet acknowledged as stored.")
    evidence: int = Field(ge=0, description="Evidence images the server has not yet acknowledged as stored.")
    bytes: int = Field(ge=0, description="Payload bytes of all waiting messages.")
    oldest_at: UtcDatetime | None = Field(
        default=None, description="UTC creation time of the oldest message."
    )
    sent_events: int = Field(
        default=0,
        ge=0,
        description="Of `events`: taken by the broker, waiting for the server's acknowledgement.",
    )
    sent_evidence: int = Field(
        default=0,
        ge=0,
        description="Of `evidence`: taken by the broker, waiting for the server's acknowledgement.",
    )
    resent: int = Field(
        default=0,
        ge=0,
        description="Messages sent again because the server had not acknowledged them in time, counted "
        "since the outbox was created.",
    )


class TruckLoadCounts(_Strict):
    """Trucks the box's load stage decided since the edge process started (cumulative; 0 again after a
    restart). ``silenced`` tells "every truck was sealed" apart from "no trucks seen"."""

    raised: int = Field(ge=0, description="Open loads: sent as unsealed_truck cases.")
    unsure: int = Field(ge=0, description="No sure answer: sent as candidates with load 'unsure'.")
    silenced: int = Field(
        ge=0, description="Covered, empty or closed trucks, or no truck at all: nothing sent for them."
    )
    too_small: int = Field(
        default=0,
        ge=0,
        description="Trucks too far to judge (under the stage's min_side_px): nothing sent, the classifier "
        "not asked. Absent from older boxes.",
    )


class StartupProgress(_Strict):
    """What a starting box is doing before its first frame (telemetry carries it every few seconds)."""

    model: str = Field(min_length=1, max_length=128, description="The model being prepared (file name).")
    step: Literal["loading", "building_tensorrt_engine"] = Field(
        description="loading: opening the model; building_tensorrt_engine: TensorRT compiles its engine "
        "(the first start after a new model, TensorRT or board: minutes on a Jetson)."
    )
    elapsed_s: float = Field(ge=0, description="Seconds spent on this step so far.")
    number: int = Field(ge=1, description="Which model this is, 1-based.")
    total: int = Field(ge=1, description="How many models the box prepares.")


class TelemetryMessage(_Message):
    """Sent on ``.../telemetry`` every ``telemetry_interval_s`` while connected."""

    kind: ClassVar[str] = "telemetry"

    device_id: str = Field(pattern=DEVICE_ID_PATTERN, description="The box that reports.")
    at: UtcDatetime = Field(description="UTC time of the report.")
    period_s: float = Field(ge=0, description="Seconds covered by this report (since the previous one).")
    uptime_s: float = Field(ge=0, description="Seconds since the edge process started.")
    frames: int = Field(ge=0, description="Frames processed during the period.")
    fps: float = Field(ge=0, description="frames / period_s.")
    coverage: list[CoveragePoint] = Field(
        default_factory=list,
        max_length=MAX_COVERAGE_POINTS,
        description="Position track since the previous report, thinned, oldest first. The server refuses "
        "a report whose track is not in time order, runs ahead of its clock, or moves implausibly fast.",
    )
    outbox: OutboxDepth
    dropped: dict[Annotated[str, Field(max_length=64)], Annotated[int, Field(ge=0)]] = Field(
        default_factory=dict,
        max_length=64,
        description="Messages the box gave up on, by reason, counted since the outbox was created.",
    )
    cpu_temp_c: float | None = Field(
        default=None, ge=-273.15, le=1000, description="CPU temperature, when a sensor is readable."
    )
    gpu_temp_c: float | None = Field(
        default=None, ge=-273.15, le=1000, description="GPU temperature (Jetson), when readable."
    )
    gpu_load_pct: float | None = Field(
        default=None, ge=0, le=100, description="GPU load (Jetson, tegrastats GR3D_FREQ), when readable."
    )
    cpu_load_pct: float | None = Field(
        default=None, ge=0, le=100, description="Mean load of the online CPU cores (Jetson, tegrastats)."
    )
    ram_used_mb: int | None = Field(
        default=None, ge=0, description="Memory in use, MB (Jetson: CPU and GPU share it)."
    )
    ram_total_mb: int | None = Field(default=None, ge=0, description="Memory of the board, MB.")
    power_mw: int | None = Field(
        default=None, ge=0, description="The module's power draw in mW (its input rail, from tegrastats)."
    )
    truck_load: TruckLoadCounts | None = Field(
        default=None,
        description="What the truck load stage decided, in trucks; absent when the box runs without one.",
    )
    startup: StartupProgress | None = Field(
        default=None,
        description="Present while the box is starting (loading models, building TensorRT engines): "
        "such reports come every startup_report_interval_s, with no frames yet.",
    )


#: Ids per acknowledgement message: keeps one ack well under the 64 KiB payload limit.
MAX_ACK_IDS = 500


class StoredAck(_Message):
    """Server -> box on ``.../acks``: these messages of the box are durably committed.

    End-to-end delivery: the box deletes an outbox row only when an ack names it (an
    event by ``event_id``, an image by its SHA-256), not on the broker's PUBACK, and
    re-sends what stays unacknowledged. The server acks after its transaction commits:
    a stored message, a duplicate of a stored one, or a refusal that a re-send cannot
    change (recorded with its reason). It never acks what it could not store for a
    reason that may pass (database outage, evidence disk full).
    """

    kind: ClassVar[str] = "acks"

    events: list[UUID] = Field(
        default_factory=list, max_length=MAX_ACK_IDS, description="event_id of each stored event."
    )
    evidence: list[Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]] = Field(
        default_factory=list, max_length=MAX_ACK_IDS, description="SHA-256 of each stored image."
    )


def stored_ack_batches(events: Sequence[str], evidence: Sequence[str]) -> Iterator[StoredAck]:
    """The acks naming ``events`` (event ids) and ``evidence`` (hashes), at most MAX_ACK_IDS per list.

    >>> [len(a.events) for a in stored_ack_batches([str(UUID(int=i)) for i in range(1001)], [])]
    [500, 500, 1]
    """
    for start in range(0, max(len(events), len(evidence)), MAX_ACK_IDS):
        yield StoredAck.model_validate(
            {"events": events[start : start + MAX_ACK_IDS], "evidence": evidence[start : start + MAX_ACK_IDS]}
        )


class CommandHeader(_Strict):
    """The envelope every command carries; the rest depends on ``type``."""

    command_id: str = Field(min_length=1, max_length=64, description="Unique id chosen by the server.")
    type: str = Field(pattern=COMMAND_TYPE_PATTERN, description="Which command this is.")


class Command(_Strict):
    """Base of typed commands: subclasses add ``type: Literal[...]`` and their own fields."""

    command_id: str = Field(min_length=1, max_length=64, description="Unique id chosen by the server.")
    type: str = Field(pattern=COMMAND_TYPE_PATTERN, description="Which command this is.")


class SendTelemetryCommand(Command):
    """Ask the box to publish a telemetry report now instead of at the next interval."""

    type: Literal["send_telemetry"] = "send_telemetry"


class PublishStatusCommand(Command):
    """Ask the box to publish its retained status again (e.g. after the server lost it)."""

    type: Literal["publish_status"] = "publish_status"


class _ReleaseCommand(Command):
    """Install a signed artifact: where to fetch it and what its bytes must be."""

    name: str = Field(min_length=1, max_length=128, description="Model or configuration name.")
    version: str = Field(min_length=1, max_length=64, description="Version to install.")
    url: str = Field(
        min_length=1, max_length=2048, description="Download URL on the server (device credentials)."
    )
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256 of the file.")
    size: int = Field(gt=0, description="File size in bytes (the download is capped at it).")
    signature: str = Field(
        min_length=1,
        max_length=200,
        description="Base64 Ed25519 signature by the fleet's release key "
        "(streetwatch.release_signing.signed_bytes of kind, name, version, size, sha256).",
    )


class UpdateModelCommand(_ReleaseCommand):
    """Download, check, try and swap in a detector model; roll back if it misbehaves."""

    type: Literal["update_model"] = "update_model"


class UpdateConfigCommand(_ReleaseCommand):
    """Download, check and apply a box configuration (YAML); roll back if the pipeline fails with it."""

    type: Literal["update_config"] = "update_config"


class CommandReply(_Message):
    """Box -> server on ``.../commands/reply``: what became of a command."""

    kind: ClassVar[str] = "command reply"

    command_id: str = Field(min_length=1, max_length=64, description="The command this answers.")
    device_id: str = Field(pattern=DEVICE_ID_PATTERN, description="The box that answers.")
    type: str = Field(pattern=COMMAND_TYPE_PATTERN, description="The command's type.")
    state: Literal["accepted", "progress", "done", "failed"] = Field(
        description="accepted: valid and started; progress: a step passed; done: finished; "
        "failed: refused or rolled back (reason says why)."
    )
    step: str | None = Field(
        default=None,
        max_length=64,
        description="The step reached: download, verify, probe, swap, probation.",
    )
    progress: float | None = Field(default=None, ge=0, le=1, description="Share of the work done.")
    reason: str | None = Field(default=None, max_length=1000, description="Why it failed, for a technician.")
    at: UtcDatetime = Field(description="UTC time of the reply.")


_C = TypeVar("_C", bound=Command)


def parse_command_header(payload: bytes | str) -> tuple[CommandHeader, dict[str, Any]]:
    """Read a command's envelope; return it with the whole decoded object for the typed model."""
    if len(payload) > MAX_COMMAND_BYTES:
        raise PayloadError(f"command payload is {len(payload)} bytes; the limit is {MAX_COMMAND_BYTES}")
    raw = decode_json_object(payload, "command")
    try:
        header = CommandHeader.model_validate({"command_id": raw.get("command_id"), "type": raw.get("type")})
    except ValidationError as exc:
        raise PayloadError(f"command envelope is invalid: {summarise_validation_error(exc)}") from exc
    return header, raw


def _parse(cls: type[_M], payload: bytes | str, what: str) -> _M:
    _, text = load_wire_object(payload, what)
    return validate_wire(cls, text, what)


def validate_command(model: type[_C], raw: dict[str, Any]) -> _C:
    """Validate a decoded command against its typed model (strict, as all wire input);
    :class:`PayloadError` says what is wrong."""
    try:
        return model.model_validate_json(json.dumps(raw), strict=True)
    except ValidationError as exc:
        raise PayloadError(
            f"command {raw.get('type')!r} is invalid: {summarise_validation_error(exc)}"
        ) from exc
