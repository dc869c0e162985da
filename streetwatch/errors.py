"""Exceptions raised by StreetWatch code.

Every error derives from :class:`StreetWatchError`, so a caller can catch the
whole family in one place, httpx-style::

    StreetWatchError
    ├── ConfigError            a config file is missing, unreadable or invalid
    ├── ModelError             a detector model cannot be used
    │   ├── ModelNotFoundError     the file is not where the config says
    │   └── ModelFormatError       the file is not an ONNX model we can decode
    ├── SourceError            a frame source cannot be opened or has ended for good
    ├── LocationError          a GPS source cannot be opened or parsed
    ├── PayloadError           a message on the wire does not follow the contract
    ├── StorageError           local storage (outbox, evidence, database) failed
    └── DatasetError           a dataset or label file cannot be imported

Messages name the offending path, field or value and say what to do about it.
"""

from __future__ import annotations


class StreetWatchError(Exception):
    """Base class of every error StreetWatch raises on purpose."""


class ConfigError(StreetWatchError):
    """A config file is missing, unreadable or does not validate."""


class ModelError(StreetWatchError):
    """A detector model cannot be loaded or run."""


class ModelNotFoundError(ModelError):
    """The model file does not exist where the configuration says it is."""


class ModelFormatError(ModelError):
    """The model file exists but is not an ONNX detector we know how to decode."""


class SourceError(StreetWatchError):
    """A frame source cannot be opened, or it ended and cannot be reopened."""


class LocationError(StreetWatchError):
    """A position source (NMEA device/file, GPX track) cannot be opened or parsed."""


class PayloadError(StreetWatchError):
    """A message does not follow the wire contract (bad JSON, wrong schema, wrong device)."""


class NewerSchemaError(PayloadError):
    """A message of a schema version newer than this build reads (a box upgraded before its server).

    Not the sender's mistake and not final: the server's upgrade will read it, so a receiver keeps
    it from being dropped (the server does not acknowledge it; the box sends it again later).
    """


class StorageError(StreetWatchError):
    """Local storage failed: outbox, evidence store or database (disk full, corrupt file...)."""


class DatasetError(StreetWatchError):
    """A dataset, label file or annotation export cannot be imported."""
