"""Device configuration: one YAML file per edge box, validated on load.

Every model forbids unknown keys (a typo is an error, not a silently ignored
setting) and describes every field; ``deploy/edge.example.yaml`` is the
annotated example and ``streetwatch edge check-config FILE`` validates a file.
Relative paths in the file are resolved against the file's folder.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from streetwatch.events import DEVICE_ID_PATTERN, ViolationType
from streetwatch.yaml_model import invalid, read_yaml_mapping


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SourceConfig(_Section):
    kind: Literal["video", "stream", "usb", "gstreamer", "images"] = Field(
        description="video: a file; stream: rtsp:// or http(s):// URL; usb: a camera index or /dev/videoN; "
        "gstreamer: a pipeline string ending in appsink; images: a folder replayed in name order."
    )
    uri: str = Field(description="File path, URL, camera index/device, pipeline string or folder.")
    fps_limit: float | None = Field(
        default=None, gt=0, description="Drop frames to stay under this rate (live sources). None: no limit."
    )
    loop: bool = Field(default=False, description="Start over at the end of a file or folder (demos).")
    image_interval_s: float = Field(
        default=1.0, gt=0, description="Images source: seconds between consecutive images' timestamps."
    )
    start_time: datetime | None = Field(
        default=None,
        description="Replay sources: UTC time of the first frame (e.g. to align with a GPX track). "
        "None: the wall clock at start.",
    )
    reconnect_initial_s: float = Field(default=1.0, gt=0, description="First wait after a stream is lost.")
    reconnect_max_s: float = Field(default=60.0, gt=0, description="Longest wait between reconnect attempts.")
    max_reconnects: int | None = Field(
        default=None, ge=0, description="Give up after this many failed reconnects in a row. None: never."
    )


class LocationConfig(_Section):
    kind: Literal["none", "fixed", "nmea_serial", "nmea_file", "gpx"] = Field(
        default="none", description="Where positions come from."
    )
    lat: float | None = Field(default=None, ge=-90, le=90, description="fixed: latitude (WGS 84).")
    lon: float | None = Field(default=None, ge=-180, le=180, description="fixed: longitude (WGS 84).")
    accuracy_m: float = Field(default=5.0, ge=0, description="fixed: surveyed accuracy in metres.")
    heading_deg: float | None = Field(
        default=None, ge=0, lt=360, description="fixed: direction the camera looks, degrees from north."
    )
    path: str | None = Field(
        default=None, description="nmea_serial: device (/dev/ttyUSB0); nmea_file / gpx: file path."
    )
    baudrate: int = Field(default=9600, gt=0, description="nmea_serial: serial speed.")
    max_fix_age_s: float = Field(
        default=5.0, gt=0, description="A fix older than this is not used (the event gets no position)."
    )
    time_offset_s: float = Field(
        default=0.0, description="gpx / nmea_file: seconds added to track times to align them with frames."
    )

    @model_validator(mode="after")
    def _needs(self) -> LocationConfig:
        if self.kind == "fixed" and (self.lat is None or self.lon is None):
            raise ValueError("location.kind 'fixed' needs lat and lon")
        if self.kind in ("nmea_serial", "nmea_file", "gpx") and not self.path:
            raise ValueError(f"location.kind {self.kind!r} needs path")
        return self


class CameraConfig(_Section):
    """How a vehicle's camera looks out: lets the box place a sign or a pile on its side of the road."""

    hfov_deg: float = Field(
        gt=0,
        lt=180,
        description="Horizontal field of view of the frames the detectors see, in degrees (the lens's "
        "datasheet, or measured: 2 * atan(half the frame's width / the focal length in pixels)).",
    )
    facing: Literal["ahead", "behind"] = Field(
        default="ahead", description="Which way the camera looks along the vehicle's travel."
    )


class TilesConfig(_Section):
    """Sliced inference (edge.detector.tiled): the detector also runs on a grid of overlapping tiles.

    A model with a fixed input (416x416) shrinks a 1080p frame four- to five-fold, and small far
    objects vanish; each tile is shrunk less. Costs ``rows x cols`` (+1 with ``full_frame``)
    inferences per frame for that detector.
    """

    rows: int = Field(default=2, ge=1, le=8, description="Tile rows.")
    cols: int = Field(default=2, ge=1, le=8, description="Tile columns.")
    overlap: float = Field(
        default=0.2,
        ge=0,
        le=0.5,
        description="Share of a tile's side it overlaps its neighbour by; an object smaller than the overlap "
        "is whole in at least one tile.",
    )
    full_frame: bool = Field(
        default=True,
        description="Also run on the whole frame (large objects, and those cut by a tile edge).",
    )
    classes: list[str] | None = Field(
        default=None,
        min_length=1,
        description="Keep tiles' boxes of these class names only (the full frame keeps every class), for the "
        "classes whose small far objects are missed. None: every class.",
    )

    @model_validator(mode="after")
    def _some_tiles(self) -> TilesConfig:
        if self.rows * self.cols < 2:
            raise ValueError("tiles: a 1x1 grid is the whole frame; use at least 2 tiles or drop 'tiles'")
        if self.classes is not None and not self.full_frame:
            raise ValueError("tiles.classes needs full_frame: true (other classes come from the full frame)")
        return self


class FlipConfig(_Section):
    """Test-time flip (edge.detector.flipped): the detector also runs on the mirrored frame, and the
    two answers are merged per object. Costs a second inference per frame for that detector."""

    merge: Literal["mean", "max"] = Field(
        default="mean",
        description="An object's score from the two views: mean (seen in one view only: half its score) or "
        "max (the higher).",
    )
    iou: float = Field(
        default=0.55,
        gt=0,
        le=1,
        description="Boxes of one class from the two views overlapping this much are one object.",
    )
    classes: list[str] | None = Field(
        default=None,
        min_length=1,
        description="Merge the two views for these class names only; the others come from the frame alone, "
        "as without flip. None: every class.",
    )
    single_view: float | None = Field(
        default=None,
        gt=0,
        le=1,
        description="An object only one view sees scores this share of its score. None: as merge says "
        "(mean: 0.5, max: 1).",
    )


class DetectorConfig(_Section):
    model: str = Field(description="Path to the ONNX model file.")
    decoder: Literal["auto", "yolov8", "yolov8_end2end", "yolox"] = Field(
        default="auto",
        description="Output decoder. auto: read from the ONNX metadata/output shape (ultralytics exports).",
    )
    class_names: list[str] | None = Field(
        default=None,
        description="Class names for models whose metadata has none (YOLOX); else read from the model.",
    )
    keep_classes: list[str] | None = Field(
        default=None, description="Only keep detections of these class names (None: all)."
    )
    conf: float = Field(default=0.25, ge=0, le=1, description="Minimum score for a detection.")
    iou: float = Field(default=0.45, gt=0, le=1, description="IoU threshold of class-aware NMS.")
    imgsz: int | None = Field(default=None, gt=0, description="Input size override; None: from the model.")
    providers: list[str] = Field(
        default_factory=lambda: [
            "TensorrtExecutionProvider",
            "CUDAExecutionProvider",
            "CPUExecutionProvider",
        ],
        description="onnxruntime providers in order of preference; unavailable ones are skipped.",
    )
    name: str | None = Field(default=None, description="Model name override (default: from metadata).")
    version: str | None = Field(default=None, description="Model version override (default: from metadata).")
    tiles: TilesConfig | None = Field(
        default=None,
        description="Also run on overlapping tiles of the frame, for small far objects "
        "(edge.detector.tiled). None: the whole frame only.",
    )
    flip: FlipConfig | None = Field(
        default=None,
        description="Also run on the mirrored frame and merge the two answers (edge.detector.flipped). "
        "None: one pass.",
    )


class FusionConfig(_Section):
    """Weighted box fusion of several detectors' classes of one family (e.g. vehicles).

    Boxes of the fused classes from the member detectors are clustered whatever their class
    (IoU >= ``iou``); each cluster becomes one box whose class is the one the members, weighted,
    agree on most, so a confident ``car`` from one model outvotes a ``truck`` from the other on
    the same object. Other classes pass through unchanged.
    """

    detectors: list[int] = Field(
        min_length=2, description="Indexes (in 'detectors') of the models whose boxes are fused."
    )
    weights: list[float] | None = Field(
        default=None, description="Weight of each member, in the order of 'detectors'. None: all 1."
    )
    classes: dict[str, list[str]] = Field(
        min_length=1,
        description="Fused class -> the class names that mean it in any member, e.g. "
        "{motorcycle: [motorcycle, motor]}. Every class listed is a competitor in the vote.",
    )
    context: list[str] = Field(
        default_factory=list,
        description="Fused classes that only vote: a cluster they win yields no fused box, and their own "
        "boxes pass through unchanged (e.g. {bin: [garbage_bin, overflow]} so a bin is never a truck, "
        "while the overflow boxes still raise garbage_overflow).",
    )
    iou: float = Field(default=0.55, gt=0, le=1, description="IoU that puts two boxes in one cluster.")
    conf: float = Field(default=0.3, ge=0, le=1, description="Minimum fused score of a kept box.")
    score: Literal["mean", "max"] = Field(
        default="mean",
        description="mean: a class's score is the weighted mean over ALL members (a member that did not "
        "see it adds 0, as in weighted box fusion); max: the best weighted member score.",
    )
    report_as: int = Field(
        ge=0,
        description="Fused boxes are reported as this detector's (its index; class_map 'detector' and the "
        "model named on events). One fixed index keeps a fused object's track whichever member leads.",
    )

    @model_validator(mode="after")
    def _consistent(self) -> FusionConfig:
        if len(set(self.detectors)) != len(self.detectors):
            raise ValueError("fusion.detectors lists a detector twice")
        if self.weights is not None and len(self.weights) != len(self.detectors):
            raise ValueError("fusion.weights needs one weight per entry of fusion.detectors")
        if self.weights is not None and (min(self.weights) < 0 or sum(self.weights) <= 0):
            raise ValueError("fusion.weights must be >= 0 and not all 0")
        if self.report_as not in self.detectors:
            raise ValueError("fusion.report_as must be one of fusion.detectors")
        unknown = sorted(set(self.context) - set(self.classes))
        if unknown:
            raise ValueError(f"fusion.context {unknown} must be fused classes (keys of fusion.classes)")
        aliases = [a for names in self.classes.values() for a in names]
        if len(set(aliases)) != len(aliases):
            raise ValueError("fusion.classes: a member class name may stand for one fused class only")
        return self


class TruckLoadConfig(_Section):
    """The second stage of a truck violation: a load classifier on each confirmed truck's crop.

    It runs once per track (edge.truck_load.stage): only an open load raises the violation; a
    covered, empty or closed truck, or no truck at all, raises nothing; an unsure answer leaves
    the event a candidate for review.
    """

    model: str = Field(description="Path to the load classifier ONNX (models/truck-load/truck-load.onnx).")
    violation_type: ViolationType = Field(
        default=ViolationType.unsealed_truck, description="The violation whose events the classifier reviews."
    )
    min_score: float = Field(
        default=0.6,
        gt=0,
        le=1,
        description="An answer less probable than this is 'unsure': the event goes out as a candidate.",
    )
    min_side_px: int = Field(
        default=0,
        ge=0,
        description="A truck whose box is shorter than this on its shorter side, in the kept frame the "
        "classifier would look at (shrunk to evidence.max_frame_width), is too far to judge: its first "
        "event waits, and it is judged on the first frame its nearest view is big enough; a truck still "
        "this small when its track ends sends nothing and is counted as too_small. 0: judge every truck "
        "when confirmed. The team's labellers could not tell the load of 145 of 177 trucks under 28 px, "
        "and saw no open load among them (datasets/truck_load).",
    )
    providers: list[str] = Field(
        default_factory=lambda: ["CPUExecutionProvider"],
        description="onnxruntime providers in order of preference; a 3 ms model needs no GPU.",
    )


class TrackerConfig(_Section):
    high_thresh: float = Field(default=0.5, ge=0, le=1, description="Score of a first-round match.")
    low_thresh: float = Field(default=0.1, ge=0, le=1, description="Lowest score used in the second round.")
    new_track_thresh: float = Field(default=0.6, ge=0, le=1, description="Score needed to start a track.")
    match_iou: float = Field(
        default=0.2, gt=0, le=1, description="Minimum IoU to associate a box to a track."
    )
    lost_timeout_s: float = Field(default=3.0, gt=0, description="A track unseen this long is removed.")


class Zone(_Section):
    name: str = Field(description="Name shown in logs.")
    kind: Literal["include", "exclude"] = Field(description="include: only here; exclude: never here.")
    polygon: list[tuple[float, float]] = Field(
        min_length=3, description="Polygon vertices in frame pixels [[x, y], ...]."
    )


class CoOccurrence(_Section):
    """Another object that must be seen next to a detection for it to count (e.g. a vendor by a stall)."""

    classes: list[str] = Field(min_length=1, description="Detector class names; any one of them will do.")
    min_score: float = Field(default=0.3, ge=0, le=1, description="Score the other object needs.")
    near: float = Field(
        default=0.5,
        ge=0,
        description="How far from the detection the other box may be: it must overlap the detection's "
        "box grown by this share of its width on each side and of its height above and below.",
    )


class RuleConfig(_Section):
    enabled: bool = Field(default=True, description="Report this violation type at all.")
    min_score: float = Field(default=0.4, ge=0, le=1, description="Per-frame score that counts as a hit.")
    min_box_area_px: float = Field(default=400, ge=0, description="Ignore boxes smaller than this (pixels²).")
    confirm_frames: int = Field(default=3, ge=1, description="Hits needed before the violation is confirmed.")
    confirm_window: int = Field(
        default=5, ge=1, description="...within this many most recent observations of the track."
    )
    dwell_s: float = Field(
        default=0.0, ge=0, description="The track must be present this long before it is reported (vending)."
    )
    update_interval_s: float = Field(
        default=30.0, gt=0, description="Send at most one 'update' per track this often (cool-down)."
    )
    end_after_s: float = Field(
        default=10.0, gt=0, description="Send 'end' once a confirmed track has been unseen this long."
    )
    cooldown_s: float = Field(
        default=300.0,
        ge=0,
        description="After 'end', a new track of the same type overlapping the same spot in the frame "
        "within this time continues the old violation instead of raising a new one (fixed cameras).",
    )
    await_place_s: float = Field(
        default=0.0,
        ge=0,
        le=600,
        description="From a moving camera, hold a confirmed violation's 'new' event up to this long for "
        "the object's own position (object_position, estimated from how its box grows as the camera "
        "approaches): it goes out once the place is known, when the track ends or when the time is up. "
        "For what the server matches by place (cases; signs against the sign register). 0: report at once.",
    )
    zones: list[Zone] = Field(default_factory=list, description="Include / exclude polygons (fixed cameras).")
    requires: list[CoOccurrence] = Field(
        default_factory=list,
        description="Objects that must all be seen next to a detection in the same frame for it to count "
        "as a hit (street vending: a person and goods by the umbrella or table). The detectors must keep "
        "these classes (keep_classes).",
    )

    @model_validator(mode="after")
    def _window(self) -> RuleConfig:
        if self.confirm_window < self.confirm_frames:
            raise ValueError("confirm_window must be >= confirm_frames")
        return self


class ClassMapping(_Section):
    detector_class: str = Field(description="Class name as the detector reports it.")
    violation_type: ViolationType = Field(description="Violation it raises.")
    candidate: bool = Field(
        default=False,
        description="True for proxy classes (e.g. COCO truck, umbrella) that only suggest a violation "
        "for review; False for dedicated classes trained on our labels.",
    )
    detector: int | None = Field(
        default=None, ge=0, description="Only from this detector (index in 'detectors'); None: any."
    )
    min_score: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="Per-frame score this class needs to count as a hit, when it differs from the rule's "
        "(two classes of one violation type, one surer than the other). None: the rule's min_score.",
    )


def zone_of(name: str) -> ZoneInfo:
    """The IANA time zone ``name``; a clear error when this machine does not know it."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(
            f"unknown time zone {name!r}: use an IANA name such as 'Asia/Ho_Chi_Minh' or 'UTC' "
            "(the box needs the system's tzdata package)"
        ) from exc


class EvidenceConfig(_Section):
    directory: str = Field(default="var/evidence", description="Where evidence JPEGs are kept on the box.")
    jpeg_quality: int = Field(default=85, ge=30, le=100, description="JPEG quality of evidence images.")
    max_frame_width: int = Field(
        default=1280, ge=160, description="Full frames are downscaled to this width."
    )
    max_crop_side: int = Field(default=640, ge=64, description="Crops are downscaled to this longest side.")
    crop_margin: float = Field(default=0.15, ge=0, le=1, description="Context around the box, as a fraction.")
    max_total_mb: float = Field(
        default=2048, gt=0, description="Oldest evidence files are deleted beyond this total size."
    )
    keep_clean_frame: bool = Field(
        default=True,
        description=(
            "Also keep and send the full frame without the box drawn on it. Reviewed cases become"
            " training data only through clean frames; turn off to save about a third of the upload."
        ),
    )
    caption: bool = Field(
        default=True,
        description="Write when (capture time), where (the object's place, else the camera's fix) and which "
        "camera in a strip under the annotated frame; the clean frame and the crop stay as seen.",
    )
    timezone: str = Field(
        default="UTC",
        description="IANA time zone of the caption's time, e.g. Asia/Ho_Chi_Minh (events carry UTC).",
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, name: str) -> str:
        zone_of(name)  # refuses an unknown name at load time, not at the first event
        return name


class JsonlSinkConfig(_Section):
    kind: Literal["jsonl"] = "jsonl"
    path: str = Field(default="var/events.jsonl", description="JSON-lines file the events are appended to.")


class MqttTlsConfig(_Section):
    ca_file: str | None = Field(
        default=None, description="CA certificate (PEM) that signed the broker certificate. None: system CAs."
    )
    certfile: str | None = Field(default=None, description="Client certificate (PEM), for mutual TLS.")
    keyfile: str | None = Field(default=None, description="Private key (PEM) of the client certificate.")
    insecure: bool = Field(
        default=False,
        description="Skip the broker hostname check (test benches only: it allows man-in-the-middle).",
    )

    @model_validator(mode="after")
    def _pair(self) -> MqttTlsConfig:
        if self.keyfile and not self.certfile:
            raise ValueError("tls.keyfile needs tls.certfile")
        return self


class OutboxConfig(_Section):
    path: str = Field(
        default="var/outbox.sqlite3",
        description="SQLite file holding messages until the server acknowledges that it stored them.",
    )
    max_bytes: int = Field(
        default=512 * 1024 * 1024,
        ge=1024 * 1024,
        description="Payload bytes kept at most; beyond it evidence is dropped first, then events, oldest "
        "first (docs/mqtt.md).",
    )
    max_age_s: float = Field(
        default=7 * 24 * 3600,
        gt=0,
        description="Messages older than this are dropped (counted, reported). Age counts the seconds the "
        "box has been running, never the wall clock, so a clock correction drops nothing.",
    )
    evidence_max_age_s: float | None = Field(
        default=None, gt=0, description="Evidence older than this is dropped. None: the same as max_age_s."
    )
    reserve_bytes: int = Field(
        default=8 * 1024 * 1024,
        ge=0,
        description="Disk space set aside beside the outbox (<path>.reserve) and released when the disk is "
        "full, so older evidence can still be dropped to store new events. 0: none.",
    )


class RefusalReportConfig(_Section):
    """Where a box the broker refuses says so over HTTP (edge.mqtt.refusal_report): MQTT is what
    fails, so the fleet page would otherwise only see the box fall silent."""

    url: str = Field(description="The server's API base, e.g. https://streetwatch.city/api/v1.")
    token_file: str = Field(
        description="File whose first line is this box's HTTP token (the one updates.http_token_file names)."
    )


#: The longest a stopping box waits for the server's acks (``MqttSinkConfig.drain_on_close_s``).
MAX_DRAIN_ON_CLOSE_S = 600.0


class MqttSinkConfig(_Section):
    kind: Literal["mqtt"] = "mqtt"
    host: str = Field(description="Broker host name or address.")
    port: int | None = Field(
        default=None, gt=0, lt=65536, description="Broker port. None: 1883, or 8883 with tls."
    )
    username: str | None = Field(default=None, description="Broker username. None: the device_id.")
    password: str | None = Field(default=None, description="Broker password (prefer password_file).")
    password_file: str | None = Field(
        default=None, description="File whose first line is the broker password (keeps it out of the config)."
    )
    tls: MqttTlsConfig | None = Field(default=None, description="Connect with TLS. None: plain TCP.")
    refusal_report: RefusalReportConfig | None = Field(
        default=None,
        description="Tell the server over HTTP when the broker refuses this box's login, and when it stops. "
        "None: only the box's log says it.",
    )
    keepalive_s: int = Field(
        default=30, ge=5, le=3600, description="MQTT keepalive in seconds; a dead link shows after ~1.5x."
    )
    client_id: str | None = Field(
        default=None, description="MQTT client id (the persistent session's key). None: the device_id."
    )
    session_expiry_s: int = Field(
        default=7 * 24 * 3600, ge=0, description="Seconds the broker keeps the session while the box is away."
    )
    reconnect_min_s: float = Field(default=1.0, gt=0, description="First wait before reconnecting.")
    reconnect_max_s: float = Field(default=60.0, gt=0, description="Longest wait between reconnect attempts.")
    inflight_window: int = Field(
        default=100, ge=1, le=65000, description="Messages published but not yet acknowledged, at most."
    )
    ack_timeout_s: float = Field(
        default=90.0,
        ge=1,
        description="Seconds to wait for the server's acknowledgement (acks topic) that it stored a message "
        "before sending it again; each further re-send of the same message waits twice as long.",
    )
    ack_timeout_max_s: float = Field(
        default=900.0,
        ge=1,
        description="Longest wait between re-sends of a message the server has not acknowledged.",
    )
    outbox: OutboxConfig = Field(default_factory=OutboxConfig, description="The on-disk queue.")
    drain_on_close_s: float = Field(
        default=2.0,
        ge=0,
        le=MAX_DRAIN_ON_CLOSE_S,
        description="When the box stops (a signal, or a finite source such as a video file at its end), "
        "seconds it waits for the server to acknowledge what is still in its outbox. What is left then "
        "stays in the outbox and goes out on the next start.",
    )
    telemetry_interval_s: float = Field(default=60.0, ge=1, description="Seconds between telemetry reports.")
    startup_report_interval_s: float = Field(
        default=15.0,
        gt=0,
        le=60,
        description="Seconds between telemetry reports while the box starts (loading models, building "
        "TensorRT engines), so a first start that takes minutes never looks silent.",
    )

    @model_validator(mode="after")
    def _one_password(self) -> MqttSinkConfig:
        if self.password is not None and self.password_file is not None:
            raise ValueError("give either sink.password or sink.password_file, not both")
        if self.reconnect_max_s < self.reconnect_min_s:
            raise ValueError("sink.reconnect_max_s must be >= sink.reconnect_min_s")
        if self.ack_timeout_max_s < self.ack_timeout_s:
            raise ValueError("sink.ack_timeout_max_s must be >= sink.ack_timeout_s")
        return self


class UpdatesConfig(_Section):
    """Over-the-air model and config updates (``update_model`` / ``update_config`` commands).

    Every artifact must carry the fleet's release signature (Ed25519, ``streetwatch fleet
    keygen``); the box holds only the public key. Downloads are authenticated with the box's
    own HTTP token and capped at the signed size (edge.updates).
    """

    release_public_key: str = Field(
        description="The fleet's release public key (PEM); updates not signed by its private key are refused."
    )
    http_token_file: str | None = Field(
        default=None,
        description="File whose first line is this box's HTTP token (sent as 'Authorization: Bearer') for "
        "downloads from the server. None: download without credentials (test benches).",
    )
    staging_dir: str = Field(
        default="var/updates/staging",
        description="Where downloads land (resumed after a cut) until they pass every check.",
    )
    models_dir: str = Field(
        default="var/updates/models",
        description="Installed model versions (the running one and the previous one; older ones are deleted) "
        "and the install state file (installed.json) that rolls back a model whose probation a crash cut.",
    )
    configs_dir: str = Field(
        default="var/updates/configs",
        description="Installed configuration versions (the running one and the previous one).",
    )
    probation_s: float = Field(
        default=60.0,
        gt=0,
        description="After a swap the new model is on probation this long (and at least probation_frames "
        "frames): a failing frame or a stall rolls it back to the previous one.",
    )
    probation_frames: int = Field(default=20, ge=1, description="Frames a new model must pass on probation.")
    stall_s: float = Field(
        default=20.0,
        gt=0,
        description="No frame finished for this long during probation counts as a stall (the model is rolled "
        "back; the systemd watchdog covers a stall that never ends).",
    )
    download_timeout_s: float = Field(
        default=30.0, gt=0, description="Socket timeout of one download request (a resume is a new one)."
    )
    download_attempts: int = Field(
        default=5, ge=1, description="Download requests per update; each resumes where the last one stopped."
    )
    max_download_bytes: int = Field(
        default=512 * 1024 * 1024,
        ge=1024,
        description="Largest artifact the box accepts, whatever the command says (protects the disk).",
    )
    max_drift: float = Field(
        default=0.6,
        gt=0,
        le=1,
        description="Refuse a new model whose detections on recent frames differ from the old model's by "
        "more than this share (1 - matched / all, boxes matched by class and IoU >= 0.5); a new truck load "
        "classifier whose answers on the last trucks differ by more than this share. 1: never refuse.",
    )
    max_slowdown: float = Field(
        default=3.0,
        gt=1,
        description="Roll back a new model whose mean inference time on probation is more than this many "
        "times the old model's (a box that falls behind its camera drops frames).",
    )


def _sink_kind(value: Any) -> str:
    # A sink without 'kind' is the JSON-lines file, as before MQTT existed.
    if isinstance(value, dict):
        return str(value.get("kind", "jsonl"))
    return str(getattr(value, "kind", "jsonl"))


SinkConfig = Annotated[
    Annotated[JsonlSinkConfig, Tag("jsonl")] | Annotated[MqttSinkConfig, Tag("mqtt")],
    Discriminator(_sink_kind),
]


class DeviceConfig(_Section):
    """The whole configuration of one edge box."""

    device_id: str = Field(pattern=DEVICE_ID_PATTERN, description="Unique id of this box (MQTT topic level).")
    camera_id: str = Field(default="cam0", pattern=DEVICE_ID_PATTERN, description="Which camera this is.")
    source: SourceConfig
    location: LocationConfig = Field(default_factory=LocationConfig)
    camera: CameraConfig | None = Field(
        default=None,
        description="A vehicle camera's view: with it, an object the box places (rules' await_place_s, "
        "event object_position) is put on its side of the road, not on the camera's path. None: on the path.",
    )
    detectors: list[DetectorConfig] = Field(min_length=1, description="Models run on every frame.")
    inference_workers: int | None = Field(
        default=None,
        ge=1,
        le=16,
        description="Frames inferred at once, sharing the CPU cores (one intra-op thread each by default). "
        "None: one per core (up to 4) on CPU, 1 on a GPU. Several frames at once raise throughput on "
        "small CPUs; each frame then takes longer, which matters little next to a camera's frame interval.",
    )
    fusion: FusionConfig | None = Field(
        default=None, description="Fuse these detectors' boxes of one class family before tracking."
    )
    tracker: TrackerConfig = Field(default_factory=TrackerConfig)
    truck_load: TruckLoadConfig | None = Field(
        default=None, description="Second stage on confirmed trucks: is the load covered? (None: off)."
    )
    class_map: list[ClassMapping] = Field(
        min_length=1, description="Which detector classes raise which violation type."
    )
    rules: dict[ViolationType, RuleConfig] = Field(
        default_factory=dict, description="Per-violation rules; types not listed use the defaults."
    )
    evidence: EvidenceConfig = Field(default_factory=EvidenceConfig)
    sink: SinkConfig = Field(
        default_factory=JsonlSinkConfig, description="Where events go: kind jsonl (a file) or mqtt."
    )
    updates: UpdatesConfig | None = Field(
        default=None, description="Over-the-air model and config updates (needs the mqtt sink). None: off."
    )

    @field_validator("class_map")
    @classmethod
    def _unique(cls, value: list[ClassMapping]) -> list[ClassMapping]:
        seen: set[tuple[str, int | None]] = set()
        for m in value:
            key = (m.detector_class, m.detector)
            if key in seen:
                raise ValueError(f"class {m.detector_class!r} is mapped twice")
            seen.add(key)
        return value

    @model_validator(mode="after")
    def _fusion_members(self) -> DeviceConfig:
        if self.fusion is not None and max(self.fusion.detectors) >= len(self.detectors):
            raise ValueError(
                f"fusion.detectors {self.fusion.detectors}: "
                f"only {len(self.detectors)} detector(s) are configured"
            )
        return self

    def rule_for(self, violation: ViolationType) -> RuleConfig:
        return self.rules.get(violation, RuleConfig())


def load_config(path: str | Path) -> DeviceConfig:
    """Read and validate a device config; relative paths are resolved against its folder."""
    path = Path(path)
    raw = read_yaml_mapping(path, "device config")
    try:
        config = DeviceConfig.model_validate(raw)
    except ValidationError as exc:
        raise invalid(f"device config {path}", exc) from exc
    return resolve_paths(config, path.parent)


def resolve_paths(config: DeviceConfig, base: Path) -> DeviceConfig:
    """Make relative file paths absolute against ``base`` (the config file's folder)."""

    def fix(p: str) -> str:
        candidate = Path(p).expanduser()
        return str(candidate if candidate.is_absolute() else (base / candidate).resolve())

    source = config.source
    if source.kind in ("video", "images"):
        source = source.model_copy(update={"uri": fix(source.uri)})
    location = config.location
    if location.path and location.kind in ("nmea_file", "gpx"):
        location = location.model_copy(update={"path": fix(location.path)})
    detectors = [d.model_copy(update={"model": fix(d.model)}) for d in config.detectors]
    evidence = config.evidence.model_copy(update={"directory": fix(config.evidence.directory)})
    truck_load = config.truck_load
    if truck_load is not None:
        truck_load = truck_load.model_copy(update={"model": fix(truck_load.model)})
    sink: JsonlSinkConfig | MqttSinkConfig
    if isinstance(config.sink, MqttSinkConfig):
        sink = _resolve_mqtt_paths(config.sink, fix)
    else:
        sink = config.sink.model_copy(update={"path": fix(config.sink.path)})
    updates = config.updates
    if updates is not None:
        updates = _resolve_update_paths(updates, fix)
    return config.model_copy(
        update={
            "source": source,
            "location": location,
            "detectors": detectors,
            "evidence": evidence,
            "truck_load": truck_load,
            "sink": sink,
            "updates": updates,
        }
    )


def _resolve_update_paths(updates: UpdatesConfig, fix: Callable[[str], str]) -> UpdatesConfig:
    names = ("release_public_key", "http_token_file", "staging_dir", "models_dir", "configs_dir")
    return updates.model_copy(update={n: fix(getattr(updates, n)) for n in names if getattr(updates, n)})


def _resolve_mqtt_paths(sink: MqttSinkConfig, fix: Callable[[str], str]) -> MqttSinkConfig:
    tls = sink.tls
    if tls is not None:
        tls = tls.model_copy(
            update={n: fix(getattr(tls, n)) for n in ("ca_file", "certfile", "keyfile") if getattr(tls, n)}
        )
    outbox = sink.outbox.model_copy(update={"path": fix(sink.outbox.path)})
    password_file = fix(sink.password_file) if sink.password_file else None
    return sink.model_copy(update={"tls": tls, "outbox": outbox, "password_file": password_file})
