"""Is a signboard sighting a known sign? A pure function of (event, fingerprint, nearby signs, settings).

    decision = decide_sign(event, fp, nearby, settings, radius_cap_m=rule.radius_m, crop_overdue=False)

No database, no image decoding: the caller (``server.ingest.process``) fingerprints the crop it
holds, finds the register entries in the event's geohash cells and acts on the
:class:`SignDecision`. Rules, in order:

1. A sign is *at the place* when it lies within ``max_distance_m`` plus the sighting's GPS
   accuracy (at most ``max_accuracy_m`` of it), never beyond ``radius_cap_m`` (the signboard
   matching radius: the cells ingest locks and reads). No registered sign there: ``new``.
2. The sighting's crop has not arrived: ``pending`` while it may still come, then
   ``unverified`` (a case says its appearance could not be checked).
3. The most similar registered sign there (its best view) with similarity ≥ ``min_similarity``: ``attached``
   (no case), or ``expired`` when its permit's ``valid_until`` has passed.
4. A registered sign there without a fingerprint (a permit imported without a photo) takes
   the sighting as its first look: ``attached``, with ``adopt`` set.
5. Otherwise the place's sign now looks different: ``changed``, naming the nearest sign.

Then the places where no sign may hang (``signs.no_sign_zones``, :mod:`server.signs.zones`): a
sighting that would open a case (new, changed, expired, unverified) inside one is ``restricted``,
a "signboard in a no-sign zone" case, the zone's name and reason in its title (the register entry,
if any, kept). A sign the register knows as permitted there still opens none: the register is the
dispatcher's (or the permit office's) standing decision on that sign.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from server.matching.geo import haversine_m
from server.settings import SignSettings
from server.signs.fingerprint import similarity
from server.signs.outcome import SignOutcome as SignOutcome  # re-exported: the decision's name for it
from server.signs.zones import ZoneLabel, zone_at
from streetwatch.events import ViolationEvent

#: Case titles are stored in 200 characters.
TITLE_MAX = 200


@dataclass(frozen=True, slots=True)
class RegisteredSign:
    """What deciding needs to know about one register entry."""

    sign_id: int
    lat: float
    lon: float
    #: Fingerprints of the sign's known views (its permitted case's crops); empty: no photo yet.
    views: tuple[Mapping[str, Any], ...]
    valid_until: datetime | None = None


@dataclass(frozen=True, slots=True)
class SignDecision:
    outcome: SignOutcome
    sign_id: int | None = None
    distance_m: float | None = None
    similarity: float | None = None
    adopt: bool = False  # the sign has no fingerprint yet: store this sighting's
    reason: str = ""
    zone: ZoneLabel | None = None  # restricted: the no-sign zone it is in

    @property
    def zone_name(self) -> str | None:
        """What a sighting stores of its zone (``sign_sightings.zone_name``)."""
        return self.zone.name if self.zone is not None else None

    @property
    def zone_reason(self) -> str | None:
        return self.zone.reason if self.zone is not None else None

    def case_title(self, event: ViolationEvent) -> str:
        """The title of the case the decision opens: what the register found, and where."""
        where = event.place
        place = (
            f"near {where.lat:.5f}, {where.lon:.5f}" if where is not None else f"seen by {event.device_id}"
        )
        entry = f"register entry {self.sign_id}"
        if self.outcome is SignOutcome.restricted and self.zone is not None:
            title = f"Signboard in no-sign zone {self.zone.name!r} {place}"
            return f"{title}: {self.zone.reason}"[:TITLE_MAX] if self.zone.reason else title[:TITLE_MAX]
        return {
            SignOutcome.new: f"New signboard {place}: none registered here",
            SignOutcome.changed: f"Changed signboard {place}: looks different from {entry}",
            SignOutcome.expired: f"Signboard permit expired {place} ({entry})",
            SignOutcome.unverified: f"Signboard at a registered place {place}, appearance not checked"
            f" ({entry})",
        }.get(self.outcome, f"Signboard {place}")


def reach_m(event: ViolationEvent, settings: SignSettings, radius_cap_m: float) -> float:
    """How far from a sighting a registered sign still counts as at its place."""
    place = event.place
    accuracy = place.accuracy_m if place and place.accuracy_m else 0.0
    return min(settings.max_distance_m + min(accuracy, settings.max_accuracy_m), radius_cap_m)


def decide_sign(
    event: ViolationEvent,
    crop_fingerprint: Mapping[str, Any] | None,
    nearby: Iterable[RegisteredSign],
    settings: SignSettings,
    *,
    radius_cap_m: float,
    crop_overdue: bool,
) -> SignDecision:
    """Decide what a signboard sighting is; see the module docstring for the rules."""
    decision = _by_register(
        event, crop_fingerprint, nearby, settings, radius_cap_m=radius_cap_m, crop_overdue=crop_overdue
    )
    zone = _zone_of(event, settings) if decision.outcome.opens_case else None
    if zone is None:
        return decision
    return replace(
        decision,
        outcome=SignOutcome.restricted,
        zone=zone,
        reason=f"in no-sign zone {zone.name!r}; the register: {decision.reason}",
    )


def with_zone(decision: SignDecision, event: ViolationEvent, settings: SignSettings) -> SignDecision:
    """A ``restricted`` decision read back from a sighting stored without its zone (before the
    sightings kept it) with a zone again, from the event's place, so a later event of the track
    that opens a case names one too."""
    if decision.outcome is not SignOutcome.restricted or decision.zone is not None:
        return decision
    return replace(decision, zone=_zone_of(event, settings))


def zone_title(event: ViolationEvent, settings: SignSettings) -> str | None:
    """With the register off (``signs.enabled: false``) every sign opens a case; one in a no-sign
    zone still says so in its title. None outside every zone."""
    zone = _zone_of(event, settings)
    if zone is None:
        return None
    return SignDecision(SignOutcome.restricted, zone=zone).case_title(event)


def _zone_of(event: ViolationEvent, settings: SignSettings) -> ZoneLabel | None:
    """The no-sign zone the sighting's place (the sign's own when the box placed it) lies in."""
    place = event.place
    zone = None if place is None else zone_at(settings.zones, place.lat, place.lon)
    return None if zone is None else zone.label


def _by_register(
    event: ViolationEvent,
    crop_fingerprint: Mapping[str, Any] | None,
    nearby: Iterable[RegisteredSign],
    settings: SignSettings,
    *,
    radius_cap_m: float,
    crop_overdue: bool,
) -> SignDecision:
    place = event.place  # the sign's own estimated position when the box sent one
    if place is None:
        return SignDecision(SignOutcome.new, reason="the sighting has no position to look up")
    reach = reach_m(event, settings, radius_cap_m)
    here: list[tuple[float, RegisteredSign]] = []
    for sign in nearby:
        distance = haversine_m(place.lat, place.lon, sign.lat, sign.lon)
        if distance <= reach:
            here.append((distance, sign))
    if not here:
        return SignDecision(SignOutcome.new, reason=f"no registered sign within {reach:.1f} m")
    here.sort(key=lambda item: (item[0], item[1].sign_id))
    nearest_distance, nearest = here[0]
    if crop_fingerprint is None:
        outcome = SignOutcome.unverified if crop_overdue else SignOutcome.pending
        return SignDecision(
            outcome, nearest.sign_id, round(nearest_distance, 2), reason="the sighting's crop is not here"
        )
    scored = [
        (max(similarity(dict(crop_fingerprint), dict(view)) for view in sign.views), distance, sign)
        for distance, sign in here
        if sign.views
    ]
    scored.sort(key=lambda item: (-item[0], item[1], item[2].sign_id))
    if scored and scored[0][0] >= settings.min_similarity:
        score, distance, sign = scored[0]
        at = event.observed_at
        if sign.valid_until is not None and at > sign.valid_until:
            return SignDecision(
                SignOutcome.expired,
                sign.sign_id,
                round(distance, 2),
                score,
                reason=f"register entry {sign.sign_id}'s permit ran out {sign.valid_until:%Y-%m-%d}",
            )
        return SignDecision(
            SignOutcome.attached,
            sign.sign_id,
            round(distance, 2),
            score,
            reason=f"register entry {sign.sign_id}, {distance:.1f} m away, similarity {score:.2f}",
        )
    blank = [(distance, sign) for distance, sign in here if not sign.views]
    if blank:
        distance, sign = blank[0]
        return SignDecision(
            SignOutcome.attached,
            sign.sign_id,
            round(distance, 2),
            adopt=True,
            reason=f"register entry {sign.sign_id} had no photo: this sighting is its first look",
        )
    best = scored[0][0] if scored else None
    return SignDecision(
        SignOutcome.changed,
        nearest.sign_id,
        round(nearest_distance, 2),
        best,
        reason=f"register entry {nearest.sign_id} is {nearest_distance:.1f} m away but looks different"
        + (f" (similarity {best:.2f})" if best is not None else ""),
    )
