"""The server's tables, as typed SQLAlchemy 2 models.

The schema changes only through Alembic migrations (``server/migrations``);
these classes must match the latest migration (a test compares them).

Enumerations are stored as short strings rather than native enums so that
adding a state is a plain data change on both SQLite and PostgreSQL; ``EnumText``
columns hand the code enum members and write their string values.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import Enum
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    Uuid,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from server.cases.states import CaseState
from server.db.types import EnumText, UtcDateTime
from server.signs.outcome import SignOutcome

#: Constraint names are fixed so migrations can drop and alter them on both backends.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UtcDateTime(),
        dict[str, Any]: JSON,
        list[Any]: JSON,
    }


class UserRole(str, Enum):
    viewer = "viewer"
    reviewer = "reviewer"
    admin = "admin"
    device = "device"


class DeviceStatus(str, Enum):
    unknown = "unknown"
    online = "online"
    offline = "offline"


class Device(Base):
    """An edge box, as the server last heard of it (events, status and telemetry)."""

    __tablename__ = "devices"

    device_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    first_seen_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16), default=DeviceStatus.unknown.value)
    status_at: Mapped[datetime | None]
    software_version: Mapped[str | None] = mapped_column(String(64))
    models: Mapped[list[Any] | None] = mapped_column(JSON)
    last_lat: Mapped[float | None] = mapped_column(Float)
    last_lon: Mapped[float | None] = mapped_column(Float)
    last_position_at: Mapped[datetime | None]
    event_count: Mapped[int] = mapped_column(Integer, default=0)
    # The newest telemetry report minus its coverage track: fps, outbox backlog, drops, temperatures.
    health: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    health_at: Mapped[datetime | None]
    # The fleet: the group rollouts target, and the configuration the box last said it applied.
    fleet_group: Mapped[str | None] = mapped_column(String(64), index=True)
    config_name: Mapped[str | None] = mapped_column(String(128))
    config_version: Mapped[str | None] = mapped_column(String(64))
    # What the box said over HTTP while the broker refused it (PUT /fleet/devices/{id}/link);
    # cleared when it says the refusal ended or is heard online over MQTT again.
    link_problem: Mapped[str | None] = mapped_column(String(500))
    link_problem_since: Mapped[datetime | None]


class User(Base):
    """A person (or a device credential) that may call the API."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime]
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)

    tokens: Mapped[list[ApiToken]] = relationship(back_populates="user", cascade="all, delete-orphan")


class ApiToken(Base):
    """A bearer token; only its SHA-256 is stored, never the token itself."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    #: None: no expiry (tokens an admin made without one, and every token made before 0008).
    expires_at: Mapped[datetime | None]

    user: Mapped[User] = relationship(back_populates="tokens")


class LoginAttempt(Base):
    """One sign-in attempt counted by the throttle (``server.login_throttle``), shared by every API
    process. ``key`` is a SHA-256 of the user name or the client address, never the name itself: a
    failed attempt's "user name" is sometimes a password typed in the wrong field."""

    __tablename__ = "login_attempts"
    __table_args__ = (Index("ix_login_attempts_key_at", "key", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(index=True)


class CaseViewer(Base):
    """Which case each open console shows now, and when it last said so (``/viewing``): so two
    dispatchers see that they are on the same case before both decide it. One row per person and
    console page (``tab``, a random id the page makes), kept fresh by its heartbeat; a row not
    refreshed within ``server.api.viewing.FRESH_S`` counts no more, and old ones are swept."""

    __tablename__ = "case_viewers"

    username: Mapped[str] = mapped_column(String(64), primary_key=True)
    tab: Mapped[str] = mapped_column(String(64), primary_key=True)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    seen_at: Mapped[datetime] = mapped_column(index=True)


class Case(Base):
    """One real-world violation, merged from every event that describes it."""

    __tablename__ = "cases"
    __table_args__ = (
        # Candidate lookup: open cases of one type in a handful of geohash cells.
        Index("ix_cases_type_cell_state", "violation_type", "cell", "state"),
        # Moving violations (trucks) are found by device + track instead of place.
        Index("ix_cases_type_device_track", "violation_type", "device_id", "track_id"),
        Index("ix_cases_state_last_event", "state", "last_event_at"),
        # The console's live stream: cases changed since its last poll.
        Index("ix_cases_updated_at", "updated_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    violation_type: Mapped[str] = mapped_column(String(32))
    state: Mapped[CaseState] = mapped_column(EnumText(CaseState, 24), default=CaseState.new)
    priority: Mapped[int] = mapped_column(Integer, default=3)  # 1 most urgent .. 5 least
    title: Mapped[str] = mapped_column(String(200))
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    cell: Mapped[str | None] = mapped_column(String(12))  # geohash of (lat, lon), see server.matching.geohash
    device_id: Mapped[str | None] = mapped_column(String(64))  # the opening event's device
    track_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)  # the opening event's track
    opened_at: Mapped[datetime]
    first_event_at: Mapped[datetime]
    last_event_at: Mapped[datetime]
    sla_due_at: Mapped[datetime | None]
    event_count: Mapped[int] = mapped_column(Integer, default=0)
    device_count: Mapped[int] = mapped_column(Integer, default=0)
    max_score: Mapped[float] = mapped_column(Float, default=0.0)
    candidate: Mapped[bool] = mapped_column(Boolean, default=False)  # every event so far is a candidate
    assigned_team: Mapped[str | None] = mapped_column(String(64))
    recurrence_of: Mapped[int | None] = mapped_column(ForeignKey("cases.id", ondelete="SET NULL"))
    # A duplicate merged into another case (closed, its events moved there).
    merged_into: Mapped[int | None] = mapped_column(ForeignKey("cases.id", ondelete="SET NULL"))
    possibly_resolved_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]

    events: Mapped[list[Event]] = relationship(back_populates="case", order_by="Event.observed_at")
    transitions: Mapped[list[CaseTransition]] = relationship(
        back_populates="case", order_by="CaseTransition.id", cascade="all, delete-orphan"
    )


class CaseTransition(Base):
    """One step of a case's workflow: who moved it, when, why, from where to where."""

    __tablename__ = "case_transitions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    from_state: Mapped[CaseState | None] = mapped_column(EnumText(CaseState, 24))  # None for the creation
    to_state: Mapped[CaseState] = mapped_column(EnumText(CaseState, 24))
    actor: Mapped[str] = mapped_column(String(64))  # a username, or "system:<component>"
    reason: Mapped[str] = mapped_column(Text, default="")
    team: Mapped[str | None] = mapped_column(String(64))
    # confirm: the detector class the reviewer says the object is, when the box named it wrongly.
    label: Mapped[str | None] = mapped_column(String(64))
    # The reviewer's action (confirm, reject, reopen, ...); None for system steps and for rows
    # written before actions were recorded.
    action: Mapped[str | None] = mapped_column(String(16))
    # reject: the reason from the fixed set (server.cases.review); merge: "duplicate".
    reason_code: Mapped[str | None] = mapped_column(String(24))
    # What the action changed (boxes, attributes, the other case of a merge, a bulk call's id).
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    at: Mapped[datetime]

    case: Mapped[Case] = relationship(back_populates="transitions")


class CaseReview(Base):
    """What reviewers drew on a case's reviewed frame; the history is in ``case_transitions.details``.

    Boxes are ``[x1, y1, x2, y2]`` in pixels of ``event_id``'s frame.
    """

    __tablename__ = "case_reviews"

    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), primary_key=True)
    event_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("events.event_id", ondelete="SET NULL"))
    box: Mapped[list[Any] | None] = mapped_column(JSON)  # the corrected box; None: the detector's stands
    added_boxes: Mapped[list[Any]] = mapped_column(JSON)  # [{"class_name", "box"}]: objects it missed
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON)  # name -> {"value", "box"}
    updated_by: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime]


class Event(Base):
    """One event exactly as received (``raw``), with its fields unpacked for queries."""

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_device_track", "device_id", "track_id"),
        Index("ix_events_case_device", "case_id", "device_id"),
        Index("ix_events_type_observed", "violation_type", "observed_at"),
        Index("ix_events_observed", "observed_at"),
        Index("ix_events_received", "received_at"),
        Index("ix_events_device_received", "device_id", "received_at"),  # a device's recent events
    )

    event_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    device_id: Mapped[str] = mapped_column(String(64))
    camera_id: Mapped[str] = mapped_column(String(64))
    track_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    sequence: Mapped[int] = mapped_column(Integer)
    lifecycle: Mapped[str] = mapped_column(String(8))
    violation_type: Mapped[str] = mapped_column(String(32))
    candidate: Mapped[bool] = mapped_column(Boolean)
    detector_class: Mapped[str] = mapped_column(String(64))
    score: Mapped[float] = mapped_column(Float)
    box: Mapped[list[Any]] = mapped_column(JSON)  # [x1, y1, x2, y2] in frame pixels
    frame_width: Mapped[int] = mapped_column(Integer)
    frame_height: Mapped[int] = mapped_column(Integer)
    observed_at: Mapped[datetime]
    first_seen_at: Mapped[datetime]
    frames_seen: Mapped[int] = mapped_column(Integer)
    # Where the violation is (what cases are matched by): the object's place when the box estimated
    # it (event schema 4, object_position), else the camera's fix. The camera's own fix is in raw.
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    accuracy_m: Mapped[float | None] = mapped_column(Float)
    heading_deg: Mapped[float | None] = mapped_column(Float)
    speed_mps: Mapped[float | None] = mapped_column(Float)
    position_source: Mapped[str | None] = mapped_column(String(8))
    model_name: Mapped[str] = mapped_column(String(128))
    model_version: Mapped[str] = mapped_column(String(64))
    # The configuration installed over the air that the box ran (event schema 6); None: its own file.
    config_name: Mapped[str | None] = mapped_column(String(128))
    config_version: Mapped[str | None] = mapped_column(String(64))
    frame_sha256: Mapped[str | None] = mapped_column(String(64))
    crop_sha256: Mapped[str | None] = mapped_column(String(64))
    clean_sha256: Mapped[str | None] = mapped_column(String(64))  # the frame with nothing drawn
    evidence_captured_at: Mapped[datetime | None]
    received_at: Mapped[datetime]
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id", ondelete="SET NULL"))
    # A second stage's answer from the box (schema 2), e.g. {"load": "uncovered", "load_score": 0.91}.
    attributes: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    raw: Mapped[dict[str, Any]] = mapped_column(JSON)

    case: Mapped[Case | None] = relationship(back_populates="events")

    @property
    def evidence_box(self) -> list[float] | None:
        """Where the object is in the evidence frame (schema 3, kept in ``raw``); None from older boxes."""
        evidence = self.raw.get("evidence") if isinstance(self.raw, dict) else None
        box = evidence.get("box") if isinstance(evidence, dict) else None
        return [float(v) for v in box] if isinstance(box, list) and len(box) == 4 else None

    @property
    def camera_position(self) -> dict[str, Any] | None:
        """The camera's fix as the box sent it (``raw``); None without one."""
        position = self.raw.get("position") if isinstance(self.raw, dict) else None
        return position if isinstance(position, dict) else None

    @property
    def object_position(self) -> dict[str, Any] | None:
        """The object's own place as the box estimated it (schema 4, ``raw``); None when it did not."""
        place = self.raw.get("object_position") if isinstance(self.raw, dict) else None
        return place if isinstance(place, dict) else None

    @property
    def box_on_evidence(self) -> list[float]:
        """The object's box to draw on (or cut from) the evidence frame: its own box there when the
        box sent one, else the event's box, which is the latest frame's (the same frame for a still
        scene, another one when the object moved since its best frame)."""
        return self.evidence_box or [float(v) for v in self.box]


class Evidence(Base):
    """An evidence image in the content-addressed store (``server.evidence_store``)."""

    __tablename__ = "evidence"
    __table_args__ = (
        # Only images not yet found referenced: what the orphan quota and clean-up read.
        Index(
            "ix_evidence_unreferenced",
            "device_id",
            "received_at",
            postgresql_where=text("referenced_at IS NULL"),
            sqlite_where=text("referenced_at IS NULL"),
        ),
    )

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size_bytes: Mapped[int] = mapped_column(Integer)
    content_type: Mapped[str] = mapped_column(String(64))
    path: Mapped[str] = mapped_column(String(200))  # relative to the evidence directory
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    device_id: Mapped[str] = mapped_column(String(64))  # the device that first sent it
    received_at: Mapped[datetime]
    # When the orphan clean-up found an event naming it; None until then (server.ingest.orphans).
    referenced_at: Mapped[datetime | None]


class Rejection(Base):
    """Counters of refused MQTT messages, by reason (for /metrics and diagnosis)."""

    __tablename__ = "rejections"

    reason: Mapped[str] = mapped_column(String(32), primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)
    last_at: Mapped[datetime]
    last_topic: Mapped[str] = mapped_column(String(255), default="")
    last_detail: Mapped[str] = mapped_column(Text, default="")


class IngestWorker(Base):
    """An ingest worker's heartbeat: while one is down, its share of messages queues at the broker."""

    __tablename__ = "ingest_workers"

    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    started_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    connected: Mapped[bool] = mapped_column(Boolean)


class TelemetryPoint(Base):
    """Where a device was and when: the coverage record behind "possibly resolved".

    Bounded: the ingest worker prunes points older than the configured retention.
    """

    __tablename__ = "telemetry_points"
    __table_args__ = (Index("ix_telemetry_points_device_at", "device_id", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    device_id: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime]
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    cell: Mapped[str] = mapped_column(String(12))


class CommandReply(Base):
    """A box's answer to a command (``.../commands/reply``), stored once per distinct payload."""

    __tablename__ = "command_replies"
    __table_args__ = (Index("ix_command_replies_device_at", "device_id", "received_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # SHA-256 of the payload: a reply re-sent after a reconnect is stored once.
    reply_key: Mapped[str] = mapped_column(String(64), unique=True)
    command_id: Mapped[str] = mapped_column(String(64), index=True)
    device_id: Mapped[str] = mapped_column(String(64))
    type: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))
    step: Mapped[str | None] = mapped_column(String(64))
    progress: Mapped[float | None] = mapped_column(Float)
    reason: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime]
    received_at: Mapped[datetime]


class Rollout(Base):
    """One staged update of a model or configuration to a set of boxes, in waves."""

    __tablename__ = "rollouts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(128))
    version: Mapped[str] = mapped_column(String(64))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    signature: Mapped[str] = mapped_column(String(200))
    # The file served to the boxes, resolved when the rollout was staged.
    source: Mapped[str] = mapped_column(Text)
    selector: Mapped[str] = mapped_column(String(255))
    state: Mapped[str] = mapped_column(String(16), index=True)
    waves: Mapped[list[Any]] = mapped_column(JSON)
    current_wave: Mapped[int] = mapped_column(Integer)
    reply_timeout_s: Mapped[float] = mapped_column(Float)
    precision_margin: Mapped[float] = mapped_column(Float)
    halted_reason: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    targets: Mapped[list[RolloutTarget]] = relationship(
        back_populates="rollout", order_by="RolloutTarget.id", cascade="all, delete-orphan"
    )


class RolloutTarget(Base):
    """One box of a rollout: its wave, the command sent to it and what became of it."""

    __tablename__ = "rollout_targets"
    __table_args__ = (Index("ix_rollout_targets_rollout_wave", "rollout_id", "wave"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    rollout_id: Mapped[int] = mapped_column(ForeignKey("rollouts.id", ondelete="CASCADE"))
    device_id: Mapped[str] = mapped_column(String(64), index=True)
    wave: Mapped[int] = mapped_column(Integer)
    command_id: Mapped[str] = mapped_column(String(64), unique=True)
    state: Mapped[str] = mapped_column(String(16))
    step: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str | None] = mapped_column(Text)
    previous_version: Mapped[str | None] = mapped_column(String(64))
    sent_at: Mapped[datetime | None]
    replied_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]

    rollout: Mapped[Rollout] = relationship(back_populates="targets")


class Sign(Base):
    """A known (permitted) signboard: its place, appearance fingerprint and permit (``server.signs``)."""

    __tablename__ = "signs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    cell: Mapped[str] = mapped_column(String(12), index=True)  # geohash, the cells case matching reads
    # {"views": [server.signs.fingerprint, ...]}; None for a permit imported without a photo until
    # a patrol first sees it.
    fingerprint: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    crop_sha256: Mapped[str | None] = mapped_column(String(64))
    permit_id: Mapped[str | None] = mapped_column(String(64), index=True)
    valid_until: Mapped[datetime | None]
    source: Mapped[str] = mapped_column(String(16))  # review / import / api
    description: Mapped[str] = mapped_column(Text, default="")
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id", ondelete="SET NULL"))
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    last_seen_at: Mapped[datetime | None]
    sighting_count: Mapped[int] = mapped_column(Integer, default=0)
    # The later entry that took this one's place (a case about it marked permitted); such an entry
    # is history and decides no sighting. Deleting the later entry puts this one back in force.
    superseded_by: Mapped[int | None] = mapped_column(ForeignKey("signs.id", ondelete="SET NULL"))
    superseded_at: Mapped[datetime | None]


class SignSighting(Base):
    """What the sign register decided for one signboard event (``server.signs.register``)."""

    __tablename__ = "sign_sightings"
    __table_args__ = (
        Index("ix_sign_sightings_device_track", "device_id", "track_id"),
        Index("ix_sign_sightings_outcome_at", "outcome", "at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("events.event_id", ondelete="CASCADE"), unique=True
    )
    device_id: Mapped[str] = mapped_column(String(64))
    track_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    sign_id: Mapped[int | None] = mapped_column(ForeignKey("signs.id", ondelete="SET NULL"), index=True)
    # Indexed: a case's view and its permitted decision look up the sightings in it.
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id", ondelete="SET NULL"), index=True)
    outcome: Mapped[SignOutcome] = mapped_column(EnumText(SignOutcome, 16))
    distance_m: Mapped[float | None] = mapped_column(Float)
    similarity: Mapped[float | None] = mapped_column(Float)
    # restricted: the no-sign zone it was decided in, as the zone file said then (server.signs.zones)
    zone_name: Mapped[str | None] = mapped_column(String(100))
    zone_reason: Mapped[str | None] = mapped_column(String(160))
    at: Mapped[datetime]


class Team(Base):
    """A crew or grid cases are dispatched to (``server.api.teams``); ``name`` is what
    ``cases.assigned_team`` holds. An inactive team stays on its cases but takes no new ones."""

    __tablename__ = "teams"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    updated_by: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime]
