"""The one wire format: a violation event, as the edge sends it and the server stores it.

Defined once, here; the edge builds it, the server validates against it, and
``docs/event.schema.json`` is generated from it (``streetwatch schema``).

Identity rules (they make at-least-once delivery safe):

* ``event_id`` names one *message*. The edge makes it once, stores it in its
  outbox and re-sends the same id after any failure, so a receiver treats a
  repeated ``event_id`` as a no-op.
* ``track_id`` names one *tracked violation* on one device. Its ``new``,
  ``update`` and ``end`` events share it; ``sequence`` orders them.

Bump :data:`SCHEMA_VERSION` for any change a receiver could misread, and keep
the server accepting the previous version for one release.

Versions: 1 is the original event; 2 adds the optional ``attributes`` (a second stage's answer
about the object, e.g. a truck's load); 3 adds the optional ``evidence.box`` (where the object is
in the evidence frame: the track's best frame, or a truck's nearest view, often not the frame
``box`` describes); 4 adds the optional ``object_position`` (where a stationary object seen from a
moving camera is, estimated on the box, as opposed to ``position``, where the camera was); 5 adds
the optional ``attributes.load_likeliest`` (an unsure load's likeliest answer); 6 adds the optional
``config`` (the configuration installed over the air that the box ran: a model's version alone
does not say how it was run, and a configuration rollout is judged by its cases).
A receiver of this build reads all six; an older event may not carry what a later version
adds. Upgrade servers before boxes: a server refuses a version it does not know.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from enum import Enum
from typing import Annotated, Any, Literal, TypeVar
from uuid import UUID

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)
from pydantic.json_schema import JsonDict

from streetwatch.errors import NewerSchemaError, PayloadError
from streetwatch.geo import distance_m
from streetwatch.wire_json import load_wire_object

SCHEMA_VERSION: Literal[6] = 6
#: Every version this build reads (see the module docstring for what each one adds).
SUPPORTED_SCHEMA_VERSIONS: tuple[int, ...] = (1, 2, 3, 4, 5, 6)

_Model = TypeVar("_Model", bound=BaseModel)

#: Device ids become MQTT topic levels and file names on the server: keep them tame.
DEVICE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"

#: Anything bigger is not an event (evidence images travel separately).
MAX_EVENT_BYTES = 64 * 1024

#: Counters stored in 32-bit integer columns (PostgreSQL INTEGER).
MAX_INT32 = 2**31 - 1
#: A JPEG cannot be wider or taller than this; nor can the frame an event describes.
MAX_FRAME_SIDE = 65_535
#: An object's estimated place lies at most this far from the camera that saw it (``along_m``'s
#: bound; a box places objects within a few hundred metres). Further is a broken estimate.
MAX_PLACE_REACH_M = 1_000.0

#: Times on the wire: RFC 3339 with a zone ("Z" or an offset); the server refuses naive ones.
RFC3339_PATTERN = r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,6})?([Zz]|[+-]\d{2}:\d{2})$"
_RFC3339 = re.compile(RFC3339_PATTERN)
#: Times outside [1970, 2100) are refused: no real clock says them, and far ones overflow
#: when shifted to UTC. A box that booted without a clock says 1970 and is still heard.
EARLIEST_TIME = datetime(1970, 1, 1, tzinfo=timezone.utc)
LATEST_TIME = datetime(2100, 1, 1, tzinfo=timezone.utc)


class ViolationType(str, Enum):
    """The four violations StreetWatch reports. Definitions: ``datasets/classes.yaml``."""

    street_vending = "street_vending"
    garbage_overflow = "garbage_overflow"
    illegal_signboard = "illegal_signboard"
    unsealed_truck = "unsealed_truck"


class Lifecycle(str, Enum):
    """Where a tracked violation is in its life on the edge."""

    new = "new"  # confirmed for the first time
    update = "update"  # still there; a better frame or a longer dwell
    end = "end"  # no longer seen (left the view, removed, or the track was lost)


def _rfc3339_text(value: object) -> object:
    # JSON input arrives as text and is parsed here (strict mode would refuse a str afterwards);
    # Python callers (the edge) pass datetime objects, which go through unchanged.
    if not isinstance(value, str):
        return value
    if not _RFC3339.match(value):
        raise ValueError(
            f"time {value[:40]!r} is not RFC 3339 with a timezone, e.g. 2026-05-01T08:00:00Z or +08:00"
        )
    try:
        return datetime.fromisoformat(value.upper())
    except ValueError:
        raise ValueError(f"time {value!r} is not a valid date and time") from None


def _require_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError(f"time must carry a timezone (UTC), got naive {value.isoformat()}")
    try:
        utc = value.astimezone(timezone.utc)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+14:00
        raise ValueError(f"time {value.isoformat()} is outside the supported range") from None
    if not EARLIEST_TIME <= utc < LATEST_TIME:
        raise ValueError(f"time {utc.isoformat()} is outside 1970-01-01 .. 2100-01-01 (UTC)")
    return utc


#: A timezone-aware datetime, normalised to UTC; a naive one is refused (its zone is unknowable).
UtcDatetime = Annotated[
    datetime,
    BeforeValidator(_rfc3339_text),
    AfterValidator(_require_utc),
    Field(
        json_schema_extra={
            "pattern": RFC3339_PATTERN,
            "formatMinimum": EARLIEST_TIME.isoformat().replace("+00:00", "Z"),
            "formatExclusiveMaximum": LATEST_TIME.isoformat().replace("+00:00", "Z"),
        }
    ),
]


class _Strict(BaseModel):
    # allow_inf_nan=False: NaN and infinities are refused in every float, from JSON or from Python.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Position(_Strict):
    """Where the camera was when the frame was taken (WGS 84)."""

    lat: float = Field(ge=-90, le=90, description="Latitude in degrees, WGS 84.")
    lon: float = Field(ge=-180, le=180, description="Longitude in degrees, WGS 84.")
    accuracy_m: float | None = Field(
        default=None,
        ge=0,
        le=1_000_000,
        description="Estimated horizontal error in metres (from HDOP or config).",
    )
    heading_deg: float | None = Field(
        default=None, ge=0, lt=360, description="Course over ground, degrees clockwise from true north."
    )
    speed_mps: float | None = Field(
        default=None, ge=0, le=1_000, description="Speed over ground in metres per second."
    )
    source: Literal["fixed", "nmea", "gpx"] = Field(description="Where the fix came from.")


class ObjectPosition(_Strict):
    """Where a stationary object is, estimated by the box from a moving camera (``schema_version`` 4).

    The point of the camera's path abreast of the object: how the object's box grew (or shrank) as
    the camera travelled tells how far ahead (or behind) it is (``edge.rules.placement``). A box
    that knows its camera's field of view (config ``camera``) also moves it to its side of the
    path, by where the box sits in the frame; without one it stays on the path.
    """

    lat: float = Field(ge=-90, le=90, description="Latitude in degrees, WGS 84.")
    lon: float = Field(ge=-180, le=180, description="Longitude in degrees, WGS 84.")
    accuracy_m: float = Field(
        ge=0,
        le=1_000_000,
        description="Estimated error in metres: the fit's, a share of along_m for the detector's boxes, "
        "the side estimate's (when made) and the camera fix's.",
    )
    along_m: float = Field(
        ge=-1_000,
        le=1_000,
        description="How far along the camera's travel from 'position' the object lies; negative: behind.",
    )


#: One box coordinate: pixels of the frame, with the one-pixel tolerance the edge's rounding needs.
_BoxCoordinate = Annotated[float, Field(ge=-1, le=MAX_FRAME_SIDE + 1)]

Box = Annotated[
    tuple[_BoxCoordinate, _BoxCoordinate, _BoxCoordinate, _BoxCoordinate],
    Field(
        description="Box [x1, y1, x2, y2] in pixels of the original frame: x2 > x1, y2 > y1, and inside "
        "the frame (-1 <= x1, y1; x2 <= frame_width + 1; y2 <= frame_height + 1)."
    ),
]


class ModelRef(_Strict):
    """The detector that produced the detection, as its ONNX metadata names it."""

    name: str = Field(min_length=1, max_length=128, description="Model name from the ONNX metadata.")
    version: str = Field(min_length=1, max_length=64, description="Model version from the ONNX metadata.")


class ConfigRef(_Strict):
    """A box configuration installed over the air, as its release names it (``update_config``)."""

    name: str = Field(min_length=1, max_length=128, description="Configuration name from its release.")
    version: str = Field(min_length=1, max_length=64, description="Configuration version from its release.")


class EvidenceRef(_Strict):
    """Content-addressed evidence images; the bytes travel on their own topic."""

    frame_sha256: str = Field(
        pattern=r"^[0-9a-f]{64}$", description="SHA-256 of the annotated full-frame JPEG."
    )
    frame_bytes: int = Field(gt=0, le=MAX_INT32, description="Size of the full-frame JPEG in bytes.")
    crop_sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256 of the crop JPEG.")
    crop_bytes: int = Field(gt=0, le=MAX_INT32, description="Size of the crop JPEG in bytes.")
    clean_sha256: str | None = Field(
        default=None,
        pattern=r"^[0-9a-f]{64}$",
        description=(
            "SHA-256 of the same full frame without anything drawn on it: what a reviewed case"
            " turns into training data. Null when the box does not keep clean frames."
        ),
    )
    clean_bytes: int | None = Field(
        default=None, gt=0, le=MAX_INT32, description="Size of the clean frame JPEG in bytes."
    )
    captured_at: UtcDatetime = Field(description="UTC time of the frame the evidence was cut from.")
    box: Box | None = Field(
        default=None,
        description="The object's box [x1, y1, x2, y2] in the evidence frame, in pixels of the original "
        "frame (schema_version 3). The evidence is the track's best frame (a truck's: its nearest "
        "view), and an object seen from a moving van is elsewhere in it than in the frame the event's "
        "box describes. Null or absent from older boxes: then only the event's box is known.",
    )

    @model_validator(mode="after")
    def _clean_pair(self) -> EvidenceRef:
        if (self.clean_sha256 is None) != (self.clean_bytes is None):
            raise ValueError("clean_sha256 and clean_bytes come together or not at all")
        return self


class TruckLoad(str, Enum):
    """A truck's load as the box's load classifier saw it (``datasets/truck_load/PROTOCOL.md``)."""

    uncovered = "uncovered"  # open to the sky, wholly or partly: the only answer that raises a case
    covered = "covered"  # tarp or canvas over the load
    empty = "empty"  # open bed with nothing on it
    closed = "closed"  # box, container, tanker, mixer
    not_a_truck = "not_a_truck"
    unsure = "unsure"  # no answer was sure enough: the event stays a candidate for review


class EventAttributes(_Strict):
    """What a second stage on the box said about the object (``schema_version`` 2 and later)."""

    load: TruckLoad | None = Field(
        default=None,
        description="The truck's load (unsealed_truck events from a box with a load classifier).",
    )
    load_score: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="The classifier's probability of its answer; for 'unsure', of its likeliest class.",
    )
    load_model: str | None = Field(
        default=None, min_length=1, max_length=200, description="Name and version of the load classifier."
    )
    load_likeliest: TruckLoad | None = Field(
        default=None,
        description="With load 'unsure': the classifier's likeliest answer all the same, the one "
        "load_score is the probability of (schema_version 5); null when no classifier answered.",
    )

    @model_validator(mode="after")
    def _load_pair(self) -> EventAttributes:
        if (self.load is None) != (self.load_score is None):
            raise ValueError("load and load_score come together or not at all")
        if self.load_likeliest is not None:
            if self.load is not TruckLoad.unsure:
                raise ValueError("load_likeliest goes with load 'unsure' only (a sure answer is load)")
            if self.load_likeliest is TruckLoad.unsure:
                raise ValueError("load_likeliest is one of the classifier's answers, not 'unsure'")
        return self


def _schema_requires_version(schema: JsonDict) -> None:
    # Python callers may leave schema_version out (it defaults); on the wire it is required.
    required = schema.setdefault("required", [])
    assert isinstance(required, list)
    if "schema_version" not in required:
        required.insert(0, "schema_version")


class ViolationEvent(_Strict):
    """One observation of a tracked violation, as published by an edge box."""

    model_config = ConfigDict(json_schema_extra=_schema_requires_version)

    schema_version: Literal[1, 2, 3, 4, 5, 6] = Field(
        default=SCHEMA_VERSION,
        description="Version of this schema (2 adds attributes, 3 evidence.box, 4 object_position, "
        "5 attributes.load_likeliest, 6 config; 1 to 5 are still read).",
    )
    event_id: UUID = Field(description="Unique id of this message; stable across re-sends.")
    device_id: str = Field(pattern=DEVICE_ID_PATTERN, description="The edge box that saw it.")
    camera_id: str = Field(
        default="cam0", pattern=DEVICE_ID_PATTERN, description="Which camera of the box saw it."
    )
    track_id: UUID = Field(description="Stable id of the tracked violation on this device.")
    sequence: int = Field(ge=0, le=MAX_INT32, description="Order of this event within its track (new = 0).")
    lifecycle: Lifecycle = Field(description="new / update / end of the tracked violation.")
    violation_type: ViolationType = Field(description="Which violation this is.")
    candidate: bool = Field(
        description="True when a generic (e.g. COCO) class raised it, pending a dispatcher's review."
    )
    detector_class: str = Field(min_length=1, max_length=64, description="The detector's class name.")
    score: float = Field(ge=0, le=1, description="Confirmed score (median over the confirming frames).")
    box: Box
    frame_width: int = Field(gt=0, le=MAX_FRAME_SIDE, description="Width of the frame in pixels.")
    frame_height: int = Field(gt=0, le=MAX_FRAME_SIDE, description="Height of the frame in pixels.")
    observed_at: UtcDatetime = Field(description="UTC time of the frame this event describes.")
    first_seen_at: UtcDatetime = Field(description="UTC time the track was first seen.")
    frames_seen: int = Field(ge=1, le=MAX_INT32, description="Frames in which the track was detected so far.")
    position: Position | None = Field(description="Camera position at observed_at; null without a fix.")
    object_position: ObjectPosition | None = Field(
        default=None,
        description="The object's own estimated position (schema_version 4): a stationary object seen "
        "from a moving camera, once its track tells; null or absent otherwise (receivers use 'position').",
    )
    model: ModelRef
    config: ConfigRef | None = Field(
        default=None,
        description="The configuration installed over the air that the box ran when it raised this "
        "(schema_version 6); null or absent when the box runs the configuration file it was set up with.",
    )
    attributes: EventAttributes | None = Field(
        default=None,
        description="Second-stage answers about the object, e.g. a truck's load (schema_version 2); "
        "null or absent when no second stage ran.",
    )
    evidence: EvidenceRef | None = Field(
        default=None, description="Best frame so far; null when evidence was dropped or not kept."
    )

    @model_validator(mode="after")
    def _coherent(self) -> ViolationEvent:
        self._check_box(self.box, "box")
        evidence_box = self.evidence.box if self.evidence is not None else None
        if evidence_box is not None:
            if self.schema_version < 3:
                raise ValueError("evidence.box needs schema_version 3 or later")
            self._check_box(evidence_box, "evidence.box")
        if self.first_seen_at > self.observed_at:
            raise ValueError("first_seen_at is after observed_at")
        if self.attributes is not None and self.schema_version < 2:
            raise ValueError("attributes need schema_version 2 or later")
        if (
            self.attributes is not None
            and self.attributes.load_likeliest is not None
            and self.schema_version < 5
        ):
            raise ValueError("attributes.load_likeliest needs schema_version 5 or later")
        if self.config is not None and self.schema_version < 6:
            raise ValueError("config needs schema_version 6 or later")
        if self.object_position is not None:
            if self.schema_version < 4:
                raise ValueError("object_position needs schema_version 4 or later")
            if self.position is None:
                raise ValueError("object_position needs the camera's position")
            place = self.object_position
            reach = distance_m(self.position.lat, self.position.lon, place.lat, place.lon)
            if reach > MAX_PLACE_REACH_M:
                raise ValueError(
                    f"object_position lies {reach:,.0f} m from the camera's position; "
                    f"at most {MAX_PLACE_REACH_M:,.0f} m is believable"
                )
        return self

    @property
    def place(self) -> Position | None:
        """Where the violation is: the object's estimated position when the box sent one, else the
        camera's. Same fix source, heading and speed as ``position``; the estimate's accuracy."""
        if self.object_position is None or self.position is None:
            return self.position
        return self.position.model_copy(
            update={
                "lat": self.object_position.lat,
                "lon": self.object_position.lon,
                "accuracy_m": self.object_position.accuracy_m,
            }
        )

    def _check_box(self, box: tuple[float, float, float, float], name: str) -> None:
        x1, y1, x2, y2 = box
        if not (x2 > x1 and y2 > y1):
            raise ValueError(f"{name} must satisfy x2 > x1 and y2 > y1, got {list(box)}")
        if x1 < -1 or y1 < -1 or x2 > self.frame_width + 1 or y2 > self.frame_height + 1:
            size = f"{self.frame_width}x{self.frame_height}"
            raise ValueError(f"{name} {list(box)} lies outside the {size} frame")

    def to_json(self) -> bytes:
        """Compact UTF-8 JSON, the exact bytes published on MQTT."""
        return self.model_dump_json(exclude_none=False).encode()

    @classmethod
    def from_json(cls, payload: bytes | str) -> ViolationEvent:
        """Parse and validate a payload; raise :class:`PayloadError` that says what is wrong."""
        size = len(payload)
        if size > MAX_EVENT_BYTES:
            raise PayloadError(f"event payload is {size} bytes; the limit is {MAX_EVENT_BYTES}")
        raw, text = load_wire_object(payload, "event")
        version = raw.get("schema_version")
        if type(version) is not int or version not in SUPPORTED_SCHEMA_VERSIONS:  # true and 1.0 are not 1
            readable = ", ".join(str(v) for v in SUPPORTED_SCHEMA_VERSIONS)
            if type(version) is int and version > max(SUPPORTED_SCHEMA_VERSIONS):
                raise NewerSchemaError(
                    f"schema_version {version} is newer than this build; this build reads {readable} "
                    "(upgrade the server before its boxes)"
                )
            raise PayloadError(f"unsupported schema_version {version!r}; this build reads {readable}")
        return validate_wire(cls, text, "event")


def validate_wire(model: type[_Model], text: str, what: str) -> _Model:
    """Validate JSON text from the wire in strict mode: no value of the wrong JSON type is converted.

    Lax mode would read ``"0.8"`` as 0.8, ``"yes"`` as true, ``true`` as 1.0 and a Unix number
    as a time; strict mode refuses each, as the published schema does.
    """
    try:
        return model.model_validate_json(text, strict=True)
    except ValidationError as exc:
        raise PayloadError(
            f"{what} payload does not follow the schema: {summarise_validation_error(exc)}"
        ) from exc


def decode_json_object(payload: bytes | str, what: str) -> dict[str, Any]:
    """Decode a payload that must be one JSON object; :class:`PayloadError` says what it was instead.

    The checks of :func:`streetwatch.wire_json.load_wire_object` apply (UTF-8 only, no NaN,
    64-bit integers, no NUL, bounded nesting).
    """
    return load_wire_object(payload, what)[0]


def event_json_schema() -> dict[str, object]:
    """The JSON Schema of :class:`ViolationEvent`, as written to ``docs/event.schema.json``."""
    schema = ViolationEvent.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"https://streetwatch.example/schemas/event/v{SCHEMA_VERSION}.json"
    return schema


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def as_utc(value: datetime, name: str) -> datetime:
    """Refuse a naive time (its zone is unknowable) and express an aware one in UTC."""
    if value.tzinfo is None:
        raise ValueError(f"{name} must carry a timezone (UTC), got naive {value.isoformat()}")
    return value.astimezone(timezone.utc)


def summarise_validation_error(exc: ValidationError) -> str:
    """The first few field errors as one line: 'field.path: message; ...'."""
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err["loc"]) or "(root)"
        parts.append(f"{where}: {err['msg']}")
    more = exc.error_count() - len(parts)
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")
