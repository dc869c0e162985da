"""Where the camera was: fixed position, NMEA 0183 (serial device or log file), or GPX track replay.

``open_locator(config)`` returns a :class:`edge.interfaces.Locator`:
``position_at(frame.timestamp) -> streetwatch.events.Position | None``
(lat, lon, accuracy, heading, speed) and ``close()``. ``None`` means no
fix recent enough (``location.max_fix_age_s``): the event is sent without a
position rather than with a stale one.
"""

from __future__ import annotations

from edge.config import LocationConfig
from edge.interfaces import Locator
from edge.location.fixed import FixedLocator, NoLocator
from edge.location.gpx import GpxLocator, parse_gpx
from edge.location.nmea import NmeaFixAssembler, NmeaStats, parse_nmea, parse_sentence
from edge.location.nmea_file import NmeaFileLocator
from edge.location.serial import NmeaSerialLocator
from edge.location.track import Fix
from streetwatch.errors import LocationError

__all__ = [
    "Fix",
    "FixedLocator",
    "GpxLocator",
    "NmeaFileLocator",
    "NmeaFixAssembler",
    "NmeaSerialLocator",
    "NmeaStats",
    "NoLocator",
    "open_locator",
    "parse_gpx",
    "parse_nmea",
    "parse_sentence",
]


def open_locator(config: LocationConfig) -> Locator:
    """The locator the config describes; :class:`LocationError` if its file or device cannot be used."""
    kind = config.kind
    if kind == "none":
        return NoLocator()
    if kind == "fixed":
        if config.lat is None or config.lon is None:
            raise LocationError("location.kind 'fixed' needs lat and lon")
        return FixedLocator(
            config.lat, config.lon, accuracy_m=config.accuracy_m, heading_deg=config.heading_deg
        )
    if config.path is None:
        raise LocationError(f"location.kind {kind!r} needs path")
    if kind == "gpx":
        return GpxLocator(config.path, max_fix_age_s=config.max_fix_age_s, time_offset_s=config.time_offset_s)
    if kind == "nmea_file":
        return NmeaFileLocator(
            config.path, max_fix_age_s=config.max_fix_age_s, time_offset_s=config.time_offset_s
        )
    if kind == "nmea_serial":
        return NmeaSerialLocator(config.path, baudrate=config.baudrate, max_fix_age_s=config.max_fix_age_s)
    raise LocationError(f"unknown location kind {kind!r}")
