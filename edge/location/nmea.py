"""NMEA 0183 parsing: pure functions from text lines to typed GGA/RMC sentences and fixes.

Only the two sentences a position needs are read, from any talker (GP, GN,
GL, GA, BD...):

* ``GGA`` gives the fix quality, HDOP and altitude. Accuracy is estimated as
  ``HDOP × 5 m`` (HDOP scales a receiver's range error; ~5 m is a typical
  1-sigma user range error of a consumer GNSS receiver, so HDOP 1.0 ≈ 5 m).
* ``RMC`` gives the date, validity, speed over ground (knots → m/s) and course
  over ground (degrees from true north).

Sentences of one epoch share their UTC time of day and are merged into one
:class:`~edge.location.track.Fix`. Every line's checksum is verified; garbage,
bad checksums and void fixes (GGA quality 0, RMC status ``V`` or mode ``N``)
are skipped and counted in :class:`NmeaStats`, never raised to the caller.

Why not ``pynmea2``: it splits sentences and checks the checksum, but a
non-hexadecimal checksum, an out-of-range latitude or an impossible date still
parse there (as a generic error or as data); the typed errors below
(:class:`NmeaChecksumError`, :class:`NmeaSentenceError`) and the range checks
would stay, leaving it only the split on commas.

Example, two sentences of one epoch (checksums are the XOR of the characters
between ``$`` and ``*``)::

    $GPGGA,081500.00,3112.3456,N,12128.7654,E,1,09,0.9,12.5,M,8.9,M,,*6A
    $GPRMC,081500.00,A,3112.3456,N,12128.7654,E,10.0,87.5,010524,,,A*56
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone

from edge.location.track import Fix
from streetwatch.errors import LocationError

#: Metres of horizontal error per unit of HDOP (see the module docstring).
METRES_PER_HDOP = 5.0
KNOT_MPS = 1852.0 / 3600.0


class NmeaSentenceError(LocationError, ValueError):
    """A line is not a well-formed NMEA sentence (garbage)."""


class NmeaChecksumError(NmeaSentenceError):
    """A line has a missing or wrong checksum."""


@dataclass(frozen=True)
class GgaSentence:
    time_of_day: time
    lat: float | None
    lon: float | None
    quality: int
    satellites: int | None
    hdop: float | None
    altitude_m: float | None

    @property
    def valid(self) -> bool:
        return self.quality > 0 and self.lat is not None and self.lon is not None


@dataclass(frozen=True)
class RmcSentence:
    time_of_day: time
    valid: bool
    lat: float | None
    lon: float | None
    speed_mps: float | None
    course_deg: float | None
    date: date | None


Sentence = GgaSentence | RmcSentence


def checksum(body: str) -> int:
    """XOR of the characters between ``$`` and ``*``.

    >>> f"{checksum('GPGGA,,,,,,0,,,,,,,,'):02X}"
    '66'
    """
    value = 0
    for char in body:
        value ^= ord(char)
    return value


def parse_sentence(line: str) -> Sentence | None:
    """Parse one line; ``None`` for well-formed sentences of other types (GSV, VTG...).

    Raises :class:`NmeaChecksumError` or :class:`NmeaSentenceError` saying what is wrong.
    """
    text = line.strip()
    if not text.startswith("$"):
        raise NmeaSentenceError("does not start with '$'")
    star = text.rfind("*")
    if star < 0 or len(text) - star - 1 != 2:
        raise NmeaChecksumError("no '*hh' checksum at the end")
    body, stated = text[1:star], text[star + 1 :]
    try:
        expected = int(stated, 16)
    except ValueError as exc:
        raise NmeaChecksumError(f"checksum {stated!r} is not hexadecimal") from exc
    if checksum(body) != expected:
        raise NmeaChecksumError(f"checksum {stated} does not match the computed {checksum(body):02X}")
    fields = body.split(",")
    address = fields[0]
    if len(address) < 5 or not address.isalnum():
        raise NmeaSentenceError(f"bad address field {address!r}")
    kind = address[-3:]
    if kind == "GGA":
        return _gga(fields)
    if kind == "RMC":
        return _rmc(fields)
    return None


def _gga(fields: list[str]) -> GgaSentence:
    if len(fields) < 10:
        raise NmeaSentenceError(f"GGA has {len(fields)} fields, expected at least 10")
    quality = _int(fields[6], "fix quality")
    return GgaSentence(
        time_of_day=_time(fields[1]),
        lat=_coordinate(fields[2], fields[3], "NS", 2),
        lon=_coordinate(fields[4], fields[5], "EW", 3),
        quality=quality if quality is not None else 0,
        satellites=_int(fields[7], "satellites"),
        hdop=_float(fields[8], "HDOP"),
        altitude_m=_float(fields[9], "altitude"),
    )


def _rmc(fields: list[str]) -> RmcSentence:
    if len(fields) < 10:
        raise NmeaSentenceError(f"RMC has {len(fields)} fields, expected at least 10")
    status = fields[2]
    if status not in ("A", "V"):
        raise NmeaSentenceError(f"RMC status {status!r} is neither A nor V")
    mode = fields[12] if len(fields) > 12 else ""
    speed_knots = _float(fields[7], "speed")
    return RmcSentence(
        time_of_day=_time(fields[1]),
        valid=status == "A" and not mode.startswith("N"),
        lat=_coordinate(fields[3], fields[4], "NS", 2),
        lon=_coordinate(fields[5], fields[6], "EW", 3),
        speed_mps=None if speed_knots is None else speed_knots * KNOT_MPS,
        course_deg=_float(fields[8], "course"),
        date=_date(fields[9]),
    )


def _float(text: str, what: str) -> float | None:
    if not text:
        return None
    try:
        return float(text)
    except ValueError as exc:
        raise NmeaSentenceError(f"{what} {text!r} is not a number") from exc


def _int(text: str, what: str) -> int | None:
    if not text:
        return None
    if not text.isdigit():
        raise NmeaSentenceError(f"{what} {text!r} is not an integer")
    return int(text)


def _time(text: str) -> time:
    whole, _, fraction = text.partition(".")
    if len(whole) != 6 or not whole.isdigit() or (fraction and not fraction.isdigit()):
        raise NmeaSentenceError(f"time {text!r} is not hhmmss.ss")
    hh, mm, ss = int(whole[:2]), int(whole[2:4]), int(whole[4:6])
    if hh > 23 or mm > 59 or ss > 59:
        raise NmeaSentenceError(f"time {text!r} is out of range")
    micro = int((fraction + "000000")[:6]) if fraction else 0
    return time(hh, mm, ss, micro)


def _date(text: str) -> date | None:
    if not text:
        return None
    if len(text) != 6 or not text.isdigit():
        raise NmeaSentenceError(f"date {text!r} is not ddmmyy")
    yy = int(text[4:])
    try:
        return date(2000 + yy if yy < 80 else 1900 + yy, int(text[2:4]), int(text[:2]))
    except ValueError as exc:
        raise NmeaSentenceError(f"date {text!r} is not a calendar date") from exc


def _coordinate(value: str, hemisphere: str, allowed: str, degree_digits: int) -> float | None:
    """``ddmm.mmmm`` / ``dddmm.mmmm`` with a hemisphere letter to signed degrees; ``None`` when empty."""
    if not value and not hemisphere:
        return None
    if hemisphere not in allowed or len(hemisphere) != 1:
        raise NmeaSentenceError(f"hemisphere {hemisphere!r} is not one of {allowed}")
    head = value.split(".")[0]
    if len(head) != degree_digits + 2 or not head.isdigit():
        raise NmeaSentenceError(f"coordinate {value!r} is not {'d' * degree_digits}mm.mmmm")
    degrees = int(head[:degree_digits])
    minutes = _float(value[degree_digits:], "minutes")
    limit = 90 if degree_digits == 2 else 180
    if minutes is None or minutes >= 60 or degrees + minutes / 60 > limit:
        raise NmeaSentenceError(f"coordinate {value!r} is out of range")
    signed = degrees + minutes / 60
    return -signed if hemisphere in "SW" else signed


@dataclass
class NmeaStats:
    """What a stream of lines contained; garbage is counted here instead of raised."""

    lines: int = 0
    sentences: int = 0  # well-formed GGA / RMC
    ignored: int = 0  # well-formed sentences of other types
    bad_checksum: int = 0
    garbage: int = 0
    void: int = 0  # GGA / RMC that say "no fix"
    undated: int = 0  # epochs with a fix but no known date (GGA only, before any RMC)
    fixes: int = 0
    last_problem: str = field(default="", compare=False)

    def summary(self) -> str:
        return (
            f"{self.lines} lines, {self.fixes} fixes, {self.void} void, {self.bad_checksum} bad checksums, "
            f"{self.garbage} garbage, {self.ignored} other sentences, {self.undated} undated"
        )


@dataclass
class _Epoch:
    time_of_day: time
    gga: GgaSentence | None = None
    rmc: RmcSentence | None = None
    emitted: bool = False


class NmeaFixAssembler:
    """Turns NMEA lines into fixes, one per epoch (the GGA and RMC of one time of day).

    A fix is emitted as soon as its epoch has both sentences, or when the next
    epoch starts (receivers that send only one of them). ``fallback_date``
    supplies the date for GGA-only epochs before any RMC (live devices: today).
    Deterministic and free of I/O, so it is tested on plain strings.
    """

    def __init__(self, fallback_date: Callable[[time], date] | None = None) -> None:
        self.stats = NmeaStats()
        self._fallback_date = fallback_date
        self._epoch: _Epoch | None = None
        self._last_date: tuple[date, time] | None = None  # (date, time of day) of the last RMC with a date

    def feed(self, line: str) -> list[Fix]:
        """Consume one line; return the fixes it completed (usually zero or one)."""
        stats = self.stats
        stats.lines += 1
        if not line.strip():
            stats.lines -= 1
            return []
        try:
            sentence = parse_sentence(line)
        except NmeaChecksumError as exc:
            stats.bad_checksum += 1
            stats.last_problem = f"bad checksum: {exc}: {line.strip()[:80]!r}"
            return []
        except NmeaSentenceError as exc:
            stats.garbage += 1
            stats.last_problem = f"garbage: {exc}: {line.strip()[:80]!r}"
            return []
        if sentence is None:
            stats.ignored += 1
            return []
        stats.sentences += 1
        if not sentence.valid:
            stats.void += 1
        if isinstance(sentence, RmcSentence) and sentence.date is not None:
            self._last_date = (sentence.date, sentence.time_of_day)
        out: list[Fix] = []
        if self._epoch is not None and self._epoch.time_of_day != sentence.time_of_day:
            out += self._finish(self._epoch)
            self._epoch = None
        if self._epoch is None:
            self._epoch = _Epoch(sentence.time_of_day)
        epoch = self._epoch
        if isinstance(sentence, GgaSentence):
            epoch.gga = sentence
        else:
            epoch.rmc = sentence
        if epoch.gga is not None and epoch.rmc is not None and not epoch.emitted:
            out += self._finish(epoch)
        return out

    def flush(self) -> list[Fix]:
        """Emit the epoch still open (end of a file)."""
        epoch, self._epoch = self._epoch, None
        return self._finish(epoch) if epoch is not None else []

    def _finish(self, epoch: _Epoch) -> list[Fix]:
        if epoch.emitted:
            return []
        epoch.emitted = True
        gga = epoch.gga if epoch.gga is not None and epoch.gga.valid else None
        rmc = epoch.rmc if epoch.rmc is not None and epoch.rmc.valid else None
        where = gga or rmc
        if where is None or where.lat is None or where.lon is None:
            return []
        day = self._date_for(epoch.time_of_day, rmc)
        if day is None:
            self.stats.undated += 1
            return []
        self.stats.fixes += 1
        return [
            Fix(
                time=datetime.combine(day, epoch.time_of_day, tzinfo=timezone.utc),
                lat=where.lat,
                lon=where.lon,
                accuracy_m=None if gga is None or gga.hdop is None else gga.hdop * METRES_PER_HDOP,
                heading_deg=None if rmc is None else rmc.course_deg,
                speed_mps=None if rmc is None else rmc.speed_mps,
                altitude_m=None if gga is None else gga.altitude_m,
            )
        ]

    def _date_for(self, time_of_day: time, rmc: RmcSentence | None) -> date | None:
        if rmc is not None and rmc.date is not None:
            return rmc.date
        if self._last_date is not None:
            day, last_time = self._last_date
            # A GGA just after midnight following an RMC of the previous evening belongs to the next day.
            if time_of_day < last_time and _seconds(last_time) - _seconds(time_of_day) > 12 * 3600:
                return day + timedelta(days=1)
            return day
        return self._fallback_date(time_of_day) if self._fallback_date is not None else None


def _seconds(t: time) -> float:
    return t.hour * 3600 + t.minute * 60 + t.second + t.microsecond / 1e6


def parse_nmea(lines: Iterable[str]) -> tuple[list[Fix], NmeaStats]:
    """All fixes in a sequence of lines (a log file), with what was skipped."""
    assembler = NmeaFixAssembler()
    fixes: list[Fix] = []
    for line in lines:
        fixes += assembler.feed(line)
    fixes += assembler.flush()
    return fixes, assembler.stats
