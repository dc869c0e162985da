"""What the sign register decided for one sighting, apart from the decision code so that the ORM
(``sign_sightings.outcome``) can use it without importing the fingerprint and its OpenCV."""

from __future__ import annotations

from enum import Enum


class SignOutcome(str, Enum):
    attached = "attached"  # a registered sign seen again: no case
    new = "new"  # no sign registered here: a "new signboard" case
    changed = "changed"  # a registered place whose sign looks different: a "changed signboard" case
    expired = "expired"  # the registered sign, but its permit ran out: a case
    pending = "pending"  # waiting for the crop: no case yet
    unverified = "unverified"  # at a registered place, the crop never came: a case to look at
    restricted = "restricted"  # in a no-sign zone (server.signs.zones), not registered: a case

    @property
    def opens_case(self) -> bool:
        return self not in (SignOutcome.attached, SignOutcome.pending)

    def __str__(self) -> str:
        return self.value
