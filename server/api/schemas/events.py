"""Stored violation events."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, Field

from server.api.links import EvidenceLinks
from server.db.models import Event


class PositionPublic(BaseModel):
    lat: float = Field(description="Latitude, WGS 84.")
    lon: float = Field(description="Longitude, WGS 84.")
    accuracy_m: float | None = Field(default=None, description="Estimated horizontal error in metres.")
    heading_deg: float | None = Field(default=None, description="Course over ground, degrees from north.")
    speed_mps: float | None = Field(default=None, description="Speed over ground, metres per second.")
    source: str | None = Field(default=None, description="fixed / nmea / gpx.")


class ObjectPositionPublic(BaseModel):
    """The object's own place as the box estimated it from a moving camera (event schema 4)."""

    lat: float = Field(description="Latitude, WGS 84.")
    lon: float = Field(description="Longitude, WGS 84.")
    accuracy_m: float = Field(description="Estimated error in metres.")
    along_m: float = Field(description="How far along the camera's travel from its fix; negative: behind.")


class ModelPublic(BaseModel):
    name: str = Field(description="Detector model name.")
    version: str = Field(description="Detector model version.")


class ConfigPublic(BaseModel):
    name: str = Field(description="Name of the box configuration, as its release names it.")
    version: str = Field(description="Its version.")


class EvidencePublic(BaseModel):
    frame_sha256: str = Field(description="SHA-256 of the annotated full-frame JPEG.")
    frame_url: str = Field(description="Where to fetch the full frame (needs a viewer token).")
    crop_sha256: str | None = Field(description="SHA-256 of the crop JPEG.")
    crop_url: str | None = Field(description="Where to fetch the crop (needs a viewer token).")
    clean_sha256: str | None = Field(
        default=None, description="SHA-256 of the same frame with nothing drawn (training data)."
    )
    clean_url: str | None = Field(default=None, description="Where to fetch the clean frame.")
    captured_at: datetime | None = Field(description="When the evidence frame was taken.")
    box: list[float] | None = Field(
        default=None,
        description="[x1, y1, x2, y2]: the object in the evidence frame, in frame pixels (boxes sending "
        "event schema 3); null from older boxes, whose evidence only the event's box describes (the "
        "latest frame's, which is not the evidence frame when the object moved).",
    )


class AttributesPublic(BaseModel):
    """A second stage's answer from the box (events of schema 2)."""

    load: str | None = Field(
        default=None,
        description="A truck's load as the box's classifier saw it: uncovered (raises the case) or unsure "
        "(a candidate for review); covered, empty and closed trucks raise nothing and never arrive.",
    )
    load_score: float | None = Field(default=None, description="The classifier's probability of its answer.")
    load_model: str | None = Field(default=None, description="Name and version of the load classifier.")
    load_likeliest: str | None = Field(
        default=None,
        description="With load unsure: the classifier's likeliest answer all the same (load_score is its "
        "probability); null when no classifier answered or the box is older (event schema < 5).",
    )


class EventBase(BaseModel):
    event_id: uuid.UUID = Field(description="Unique id of the message, made on the box.")
    device_id: str = Field(description="The box that saw it.")
    violation_type: str = Field(description="street_vending / garbage_overflow / illegal_signboard / ...")


class EventPublic(EventBase):
    camera_id: str = Field(description="Which camera of the box saw it.")
    track_id: uuid.UUID = Field(description="The tracked violation on that box this event belongs to.")
    sequence: int = Field(description="Order within the track.")
    lifecycle: str = Field(description="new / update / end.")
    candidate: bool = Field(description="Raised by a generic class, pending review.")
    detector_class: str = Field(description="The detector's class name.")
    score: float = Field(description="Confirmed score, 0..1.")
    box: list[float] = Field(description="[x1, y1, x2, y2] in frame pixels.")
    frame_width: int = Field(description="Frame width in pixels.")
    frame_height: int = Field(description="Frame height in pixels.")
    observed_at: datetime = Field(description="UTC time of the frame.")
    first_seen_at: datetime = Field(description="UTC time the track was first seen.")
    frames_seen: int = Field(description="Frames the track was detected in so far.")
    received_at: datetime = Field(description="When the server stored it.")
    position: PositionPublic | None = Field(description="Camera position; null without a GPS fix.")
    object_position: ObjectPositionPublic | None = Field(
        default=None,
        description="The object's own place, estimated by the box from how its box grew as the camera "
        "travelled (stationary objects, boxes sending event schema 4); the case is placed by it. Null "
        "when the box could not tell or did not try.",
    )
    model: ModelPublic = Field(description="The detector that produced it.")
    config: ConfigPublic | None = Field(
        default=None,
        description="The configuration installed over the air that the box ran; null when it ran the file "
        "it was set up with, or is older than event schema 6.",
    )
    evidence: EvidencePublic | None = Field(description="Evidence images; null when none was kept.")
    attributes: AttributesPublic | None = Field(
        default=None, description="The box's second-stage answer (a truck's load); null when none ran."
    )
    case_id: int | None = Field(description="The case this event was merged into.")


def event_public(event: Event, links: EvidenceLinks) -> EventPublic:
    """The API view of a stored event."""
    # The columns hold the violation's place (the object's when the box placed it); the camera's
    # fix as sent is in the raw event.
    fix = event.camera_position
    position = PositionPublic.model_validate(fix) if fix is not None else None
    place = event.object_position
    evidence = None
    if event.frame_sha256:
        evidence = EvidencePublic(
            frame_sha256=event.frame_sha256,
            frame_url=links.url(event.frame_sha256),
            crop_sha256=event.crop_sha256,
            crop_url=links.maybe(event.crop_sha256),
            clean_sha256=event.clean_sha256,
            clean_url=links.maybe(event.clean_sha256),
            captured_at=event.evidence_captured_at,
            box=event.evidence_box,
        )
    return EventPublic(
        event_id=event.event_id,
        device_id=event.device_id,
        violation_type=event.violation_type,
        camera_id=event.camera_id,
        track_id=event.track_id,
        sequence=event.sequence,
        lifecycle=event.lifecycle,
        candidate=event.candidate,
        detector_class=event.detector_class,
        score=event.score,
        box=[float(v) for v in event.box],
        frame_width=event.frame_width,
        frame_height=event.frame_height,
        observed_at=event.observed_at,
        first_seen_at=event.first_seen_at,
        frames_seen=event.frames_seen,
        received_at=event.received_at,
        position=position,
        object_position=ObjectPositionPublic.model_validate(place) if place is not None else None,
        model=ModelPublic(name=event.model_name, version=event.model_version),
        config=(
            ConfigPublic(name=event.config_name, version=event.config_version)
            if event.config_name is not None and event.config_version is not None
            else None
        ),
        evidence=evidence,
        attributes=AttributesPublic.model_validate(event.attributes) if event.attributes else None,
        case_id=event.case_id,
    )
