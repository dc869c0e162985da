"""A permit list imported into the sign register: CSV or GeoJSON, positions and optional photos.

    report = import_permits(session, Path("permits.csv"), photos=Path("photos/"), store=store,
                            actor="admin", now=now)

**CSV** (UTF-8, a header row; column names are case-insensitive, ``latitude``/``longitude`` or
``lng`` also do)::

    permit_id,lat,lon,valid_until,description,photo
    SB-2026-0042,21.02851,105.85420,2027-06-30,"Pho 24, Hang Bai 12",sb-0042.jpg

**GeoJSON**: a FeatureCollection of Point features (``[lon, lat]``), the same fields as
properties (``permit_id`` required; ``valid_until``, ``description``, ``photo`` optional).

``permit_id`` is required: importing the same list again updates its entries instead of
adding them twice. ``valid_until`` is a date (valid through that day, UTC) or an ISO time.
``photo`` is a picture of the sign alone (a JPEG or PNG), relative to ``photos`` (default: the
list's folder); without one, the first patrol sighting at the place becomes its look. A row
that is wrong (no position, a bad date, a photo that is missing or not an image) is reported
with its row number and skipped; the others are imported.

:func:`import_permit_text` imports a list sent as text (``POST /api/v1/signs/import``, the
console's Signs page), with the photos sent beside it (:class:`SentPhotos`: a row's ``photo``
matches a sent file by its name, or by its last path part, since a browser sends file names
without folders). A list sent without photos is imported without them, and the report's
``notes`` say so; photos sent that no row names are noted too (a misspelt name, most likely).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, time, timezone
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.db.models import Sign
from server.evidence_store import EvidenceStore, ImageLimits, inspect_image, sha256_hex
from server.signs.fingerprint import FingerprintError, fingerprint
from server.signs.service import SignError, SignIn, add_sign, keep_photo, move_sign
from streetwatch.errors import ConfigError, StreetWatchError

PermitFormat = Literal["csv", "geojson"]

#: Other names permit lists use for the position columns.
_ALIASES = {"latitude": "lat", "longitude": "lon", "lng": "lon", "long": "lon"}


#: Reads the photo a row names (raises :class:`SignError` saying why it cannot).
PhotoReader = Callable[[str], bytes]


def photos_in_folder(folder: Path) -> PhotoReader:
    """Photos named relative to ``folder`` (the command line's ``--photos``, or the list's folder)."""

    def read(name: str) -> bytes:
        photo = folder / name
        try:
            return photo.read_bytes()
        except OSError as exc:
            raise SignError(f"photo {photo}: {exc.strerror or exc}") from None

    return read


class SentPhotos:
    """Photos sent beside a list, by file name; remembers which ones a row asked for."""

    def __init__(self, files: Mapping[str, bytes]) -> None:
        self._files = dict(files)
        self._by_base = {_base(name): name for name in files}
        self._used: set[str] = set()

    def __call__(self, name: str) -> bytes:
        sent = name if name in self._files else self._by_base.get(_base(name))
        if sent is None:
            count = len(self._files)
            photos = "1 photo" if count == 1 else f"{count} photos"
            raise SignError(f"photo {name!r} is not among the {photos} sent with the list")
        self._used.add(sent)
        return self._files[sent]

    def unused(self) -> list[str]:
        """Names of the photos sent that no row asked for, sorted."""
        return sorted(set(self._files) - self._used)


def _base(name: str) -> str:
    return PurePosixPath(name.replace("\\", "/")).name.lower()


def _column(name: str) -> str:
    key = name.strip().lower()
    return _ALIASES.get(key, key)


@dataclass
class ImportReport:
    added: int = 0
    updated: int = 0
    errors: list[str] = field(default_factory=list)  # "row 7: ..." for each skipped row
    notes: list[str] = field(default_factory=list)  # "row 7: ..." for each row imported in part
    #: (lat, lon) of every row added or updated: the places whose open cases a permit may now cover.
    places: list[tuple[float, float]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Row:
    where: str  # "row 7" / "feature 3", for messages
    values: dict[str, Any]


def import_permits(
    session: Session, path: Path, *, photos: Path | None, store: EvidenceStore, actor: str, now: datetime
) -> ImportReport:
    """Import the permit list at ``path`` (``.csv``, ``.geojson`` or ``.json``); nothing is committed.
    Its photos go into ``store`` (the server's evidence store), where the console shows them.

    Raises :class:`ConfigError` when the file as a whole cannot be read.
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read permit list {path}: {exc}") from exc
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".geojson", ".json"):
        raise ConfigError(f"permit list {path}: expected a .csv, .geojson or .json file")
    kind: PermitFormat = "csv" if suffix == ".csv" else "geojson"
    folder = photos if photos is not None else path.parent
    return import_permit_text(
        session,
        text,
        kind,
        name=str(path),
        photos=photos_in_folder(folder),
        store=store,
        actor=actor,
        now=now,
    )


def import_permit_text(
    session: Session,
    text: str,
    kind: PermitFormat,
    *,
    name: str,
    photos: PhotoReader | None,
    store: EvidenceStore | None = None,
    actor: str,
    now: datetime,
) -> ImportReport:
    """Import a permit list given as text; ``name`` is how messages call it. Photos are read with
    ``photos`` and kept in ``store``; with None (a list sent without photos) a row's photo is left
    out, with a note."""
    text = text.removeprefix("\ufeff")
    rows = list(_csv_rows(text, name) if kind == "csv" else _geojson_rows(text, name))
    report = ImportReport()
    seen: set[str] = set()
    for row in rows:
        if photos is None and row.values.get("photo"):
            report.notes.append(
                f"{row.where}: photo {row.values['photo']!r} not read (the list came without photos); "
                "the first sighting at the place gives the sign its look"
            )
            row = _Row(row.where, {k: v for k, v in row.values.items() if k != "photo"})
        try:
            sign, crop = _parse(row, photos)
            if crop is not None:
                crop = jpeg_photo(crop)  # the same check on a dry run as on the import
            if sign.permit_id in seen:
                raise SignError(f"permit {sign.permit_id} appears twice in the list")
            seen.add(sign.permit_id or "")
            # One savepoint per row: a row refused half-way (its entry written, then its photo
            # refused by the evidence store, e.g. a full disk) leaves neither behind.
            with session.begin_nested():
                updated = _upsert(session, sign, crop, actor, now)
                if crop is not None and store is not None:
                    keep_photo(session, store, crop, f"permit list ({actor})", now)
        except SignError as exc:
            report.errors.append(f"{row.where}: {exc}")
            continue
        if updated:
            report.updated += 1
        else:
            report.added += 1
        report.places.append((sign.lat, sign.lon))
    return report


def _csv_rows(text: str, path: str) -> Iterator[_Row]:
    reader = csv.DictReader(io.StringIO(text))
    if reader.fieldnames is None:
        raise ConfigError(f"permit list {path} is empty")
    names = {_ALIASES.get(name.strip().lower(), name.strip().lower()) for name in reader.fieldnames}
    missing = {"permit_id", "lat", "lon"} - names
    if missing:
        raise ConfigError(
            f"permit list {path}: the header lacks {', '.join(sorted(missing))}"
            f" (it has {', '.join(sorted(names))})"
        )
    for number, record in enumerate(reader, start=2):
        values = {_column(k): (v or "").strip() for k, v in record.items() if k is not None}
        yield _Row(f"row {number}", {k: v for k, v in values.items() if v != ""})


def _geojson_rows(text: str, path: str) -> Iterator[_Row]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"permit list {path} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict) or data.get("type") != "FeatureCollection":
        raise ConfigError(f"permit list {path}: expected a GeoJSON FeatureCollection")
    features = data.get("features")
    if not isinstance(features, list):
        raise ConfigError(f"permit list {path}: the FeatureCollection has no features list")
    for number, feature in enumerate(features, start=1):
        where = f"feature {number}"
        if not isinstance(feature, dict):
            yield _Row(where, {"_error": "not a GeoJSON feature"})
            continue
        props = feature.get("properties") or {}
        geometry = feature.get("geometry") or {}
        values: dict[str, Any] = dict(props) if isinstance(props, dict) else {}
        coords = geometry.get("coordinates") if isinstance(geometry, dict) else None
        if not isinstance(geometry, dict) or geometry.get("type") != "Point" or not isinstance(coords, list):
            values["_error"] = "its geometry is not a Point"
        elif len(coords) < 2:
            values["_error"] = "its Point has fewer than 2 coordinates"
        else:
            values["lon"], values["lat"] = coords[0], coords[1]
        yield _Row(where, values)


def _parse(row: _Row, photos: PhotoReader | None) -> tuple[SignIn, bytes | None]:
    values = row.values
    if "_error" in values:
        raise SignError(str(values["_error"]))
    permit = str(values.get("permit_id", "")).strip()
    if not permit:
        raise SignError("permit_id is missing")
    try:
        lat, lon = float(values["lat"]), float(values["lon"])
    except (KeyError, TypeError, ValueError):
        raise SignError(f"position {values.get('lat')!r}, {values.get('lon')!r} is not two numbers") from None
    sign = SignIn(
        lat=lat,
        lon=lon,
        permit_id=permit,
        valid_until=_valid_until(values.get("valid_until")),
        description=str(values.get("description", ""))[:500],
        source="import",
    )
    sign.check()
    crop = photos(str(values["photo"])) if values.get("photo") and photos is not None else None
    return sign, crop


def jpeg_photo(data: bytes) -> bytes:
    """A register photo as the evidence store keeps it: a JPEG as it came, a PNG re-encoded
    (quality 95). Raises :class:`SignError` saying why one cannot be used."""
    if data.startswith(_PNG_MAGIC) and len(data) >= 24:
        width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
        limits = ImageLimits()  # checked before decoding, as the store checks a JPEG's header
        if limits.too_large(width, height):
            raise SignError(
                f"photo: PNG declares {width}x{height} pixels; the limit is {limits.max_side} per side"
            )
        import cv2  # heavy; only a PNG needs it here
        import numpy as np

        image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
        if image is None:
            raise SignError(f"photo: this PNG of {len(data)} bytes does not decode")
        ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 95])
        if not ok:
            raise SignError("photo: the PNG could not be re-encoded as a JPEG")
        data = encoded.tobytes()
    try:
        inspect_image(data)
    except StreetWatchError as exc:
        raise SignError(
            f"photo: {str(exc).replace('evidence must be', 'must be', 1)} (JPEG or PNG)"
        ) from None
    return data


_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _valid_until(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    text = str(value).strip()
    try:
        if len(text) == 10:  # a date: valid through that day
            return datetime.combine(datetime.fromisoformat(text).date(), time.max, tzinfo=timezone.utc)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise SignError(f"valid_until {text!r} is not a date (YYYY-MM-DD) or an ISO time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _upsert(session: Session, sign: SignIn, crop: bytes | None, actor: str, now: datetime) -> bool:
    """Add the entry, or update the one with its permit id; True when it was an update."""
    same_permit = select(Sign).where(Sign.permit_id == sign.permit_id)
    # The entry in force first: one a permitted case replaced is history.
    existing = session.scalars(same_permit.order_by(Sign.superseded_by.is_not(None), Sign.id.desc())).first()
    if existing is None:
        add_sign(session, sign, actor, now, crops=[crop] if crop is not None else [])
        return False
    move_sign(existing, sign.lat, sign.lon)
    existing.valid_until = sign.valid_until
    existing.description = sign.description
    if crop is not None:
        try:
            existing.fingerprint = {"views": [fingerprint(crop)]}
        except FingerprintError as exc:
            raise SignError(f"photo: {exc}") from exc
        existing.crop_sha256 = sha256_hex(crop)
    session.flush()
    return True
