"""Server settings (pydantic-settings): values given in code, then the environment, then a YAML
file, then the defaults.

    settings = load_settings("server.yaml")          # or load_settings(None): defaults + environment
    settings = ServerSettings(database_url=url)       # in code (tests): exactly these, no environment

Every field can be set from the environment as ``STREETWATCH_`` plus the field path in
capitals joined by ``__``, e.g. ``STREETWATCH_DATABASE_URL``, ``STREETWATCH_MQTT__HOST``,
``STREETWATCH_MATCHING__GARBAGE_OVERFLOW__RADIUS_M``; the environment wins over the file. Only
variables naming a field are read, so unrelated ``STREETWATCH_*`` variables are left alone. How
the sources are read, and how a wrong value is reported: :mod:`server.settings_sources`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_serializer,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, SettingsError

from server.settings_sources import ENV_NESTED_DELIMITER, ENV_PREFIX, active_sources, reading
from server.signs.zone_file import ZoneFile
from server.signs.zones import SignZone
from streetwatch.events import MAX_EVENT_BYTES, ViolationType

#: The geohash precision of case cells (about 153 m x 153 m at the equator, 76 m wide at 60° N).
#: A matching radius must stay below the cell's width, so that a cell and its eight neighbours
#: hold every case within the radius.
CELL_PRECISION = 7
MAX_RADIUS_M = 70.0


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MatchingRule(_Section):
    """How events of one violation type merge into cases."""

    radius_m: float = Field(gt=0, le=MAX_RADIUS_M, description="An event joins a case within this distance.")
    join_window_s: float = Field(
        gt=0, description="An event joins a case whose latest event is at most this many seconds away."
    )
    recurrence_window_s: float = Field(
        ge=0,
        description="An event near a case resolved or closed at most this many seconds ago opens a new case "
        "linked to it as a recurrence; 0 disables linking.",
    )
    moving: bool = Field(
        default=False,
        description="Moving violations (trucks) match by device + track and time instead of by place.",
    )
    sla_hours: float = Field(gt=0, description="Hours from a case's opening until it is due.")
    priority: int = Field(ge=1, le=5, description="Priority of new cases: 1 most urgent .. 5 least.")
    one_object_per_case: bool = Field(
        default=False,
        description="Objects one box sees at the same time are different violations, each its own case "
        "(signs: each has its own permit). Off: one case per place (a spot of garbage, however many piles).",
    )
    second_pass_gap_s: float = Field(
        default=0,
        ge=0,
        description="A patrol's sighting (a position from GNSS, not a fixed camera) opens a case only "
        "when the place is seen again at least this many seconds after the first sighting (a separate "
        "pass); until then it waits in awaiting_recurrence, out of the queue and Open311. 0: open at once.",
    )
    second_pass_expiry_s: float = Field(
        default=7 * 24 * 3600.0,
        gt=0,
        description="A sighting awaiting a second pass that is not seen again within this many seconds of "
        "its first sighting expires (used when second_pass_gap_s > 0).",
    )

    @model_validator(mode="after")
    def _second_pass_fits(self) -> MatchingRule:
        if self.second_pass_gap_s > 0 and self.moving:
            raise ValueError("second_pass_gap_s applies to place-bound types; a moving rule cannot use it")
        if self.second_pass_gap_s >= self.second_pass_expiry_s:
            raise ValueError(
                f"second_pass_gap_s ({self.second_pass_gap_s:g}) must be below second_pass_expiry_s "
                f"({self.second_pass_expiry_s:g}): a second pass could never come in time"
            )
        return self


def _default_rules() -> dict[ViolationType, MatchingRule]:
    hour = 3600.0
    day = 24 * hour
    return {
        # A stall is real when it is there again on another pass: patrol sightings wait for one.
        ViolationType.street_vending: MatchingRule(
            radius_m=30,
            join_window_s=4 * hour,
            recurrence_window_s=7 * day,
            sla_hours=4,
            priority=3,
            second_pass_gap_s=0.5 * hour,
            second_pass_expiry_s=7 * day,
        ),
        ViolationType.garbage_overflow: MatchingRule(
            radius_m=20, join_window_s=2 * day, recurrence_window_s=7 * day, sla_hours=24, priority=2
        ),
        ViolationType.illegal_signboard: MatchingRule(
            radius_m=15,
            join_window_s=14 * day,
            recurrence_window_s=30 * day,
            sla_hours=72,
            priority=4,
            one_object_per_case=True,  # a shop front's signs, seen in one frame, are each their own case
        ),
        ViolationType.unsealed_truck: MatchingRule(
            radius_m=50, join_window_s=600, recurrence_window_s=0, moving=True, sla_hours=2, priority=2
        ),
    }


class MqttSettings(_Section):
    """The broker the ingest worker reads from."""

    host: str = Field(default="127.0.0.1", description="Broker host name or address.")
    port: int = Field(default=1883, ge=1, le=65535, description="Broker TCP port.")
    username: str | None = Field(default=None, description="User name for the broker, if it asks for one.")
    # SecretStr: shown as ********** in reprs and logs; get_secret_value() where the client logs in.
    password: SecretStr | None = Field(default=None, description="Password for the broker.")
    password_file: str | None = Field(
        default=None,
        description="File whose first line is the broker password (instead of password): keeps it out "
        "of the settings file and the environment. Read when the settings are loaded.",
    )
    tls_ca_file: str | None = Field(default=None, description="CA bundle to verify the broker; enables TLS.")
    client_id: str = Field(
        default="streetwatch-ingest",
        min_length=1,
        max_length=64,
        description="MQTT client id of the worker; defaults to the username when one is given. Each "
        "worker needs its own, and the same one after a restart: the broker keeps that id's persistent "
        "session (and the messages the shared subscription routed to it) while the worker is down. The "
        "shipped broker binds every login to the client id equal to its username, so give each worker "
        "its own broker user (ingest-1, ingest-2, ...) and leave client_id unset.",
    )
    share_group: str = Field(
        default="streetwatch-ingest",
        pattern=r"^[A-Za-z0-9_-]+$",
        description="Shared-subscription group: workers in one group split the messages between them.",
    )
    keepalive_s: int = Field(default=30, ge=5, description="MQTT keepalive in seconds.")

    @model_validator(mode="before")
    @classmethod
    def _client_id_follows_username(cls, data: Any) -> Any:
        # The broker binds each login to one client id (its username): a worker given only its
        # own user must not connect as the shared default id and be refused.
        if isinstance(data, dict) and data.get("username") and not data.get("client_id"):
            data = {**data, "client_id": data["username"]}
        if isinstance(data, dict) and data.get("password_file"):
            if data.get("password"):
                raise ValueError("give the broker password or password_file, not both")
            data = {**data, "password": _first_line(Path(str(data["password_file"])))}
        return data

    receive_maximum: int = Field(
        default=1000,
        ge=1,
        le=65535,
        description="Unacknowledged QoS 1 messages the broker may have in flight to one worker (a batch "
        "is acked only after its commit, so this bounds the batch size too).",
    )

    @field_serializer("password", when_used="json")
    def _password_in_json(self, password: SecretStr | None) -> str | None:
        # Settings written out on purpose (the demo's server.yaml, a benchmark's worker process)
        # must load again with the same password; reprs and logs still show it masked.
        return None if password is None else password.get_secret_value()


class IngestLimits(_Section):
    """Sizes and batching of the ingest worker."""

    max_event_bytes: int = Field(
        default=MAX_EVENT_BYTES, gt=0, description="Larger event payloads are rejected."
    )
    max_evidence_bytes: int = Field(
        default=4 * 1024 * 1024, gt=0, description="Larger evidence images are rejected."
    )
    max_status_bytes: int = Field(default=16 * 1024, gt=0, description="Larger status payloads are rejected.")
    max_telemetry_bytes: int = Field(
        default=256 * 1024, gt=0, description="Larger telemetry payloads are rejected."
    )
    batch_size: int = Field(
        default=400, ge=1, description="Messages stored per database transaction (acked after its commit)."
    )
    batch_wait_s: float = Field(
        default=0.05, gt=0, description="A partial batch is committed after waiting this long for more."
    )
    telemetry_retention_h: float = Field(
        default=48, gt=0, description="Telemetry coverage older than this is deleted."
    )
    max_telemetry_points: int = Field(
        default=200, ge=1, description="Positions kept from one telemetry message (the rest are thinned)."
    )
    max_evidence_side: int = Field(
        default=8192,
        ge=1,
        le=65535,
        description="Evidence JPEGs declaring a wider or taller image are refused.",
    )
    max_evidence_pixels: int = Field(
        default=40_000_000,
        ge=1,
        description="Evidence JPEGs declaring more pixels (width x height) are refused before decoding.",
    )
    max_orphan_evidence: int = Field(
        default=200,
        ge=0,
        description="Images per device that no event names yet (e.g. sent ahead of their event); more are "
        "refused until events name them or the clean-up removes them.",
    )
    max_orphan_evidence_bytes: int = Field(
        default=128 * 1024 * 1024,
        ge=0,
        description="Bytes of such images per device. A box replaying a backlog has a batch's worth "
        "(up to batch_size messages, mostly images just ahead of their events) in flight; a refused "
        "image is not acknowledged, so the box sends it again.",
    )
    orphan_evidence_grace_s: float = Field(
        default=3600,
        gt=0,
        description="Images no event names this long after they arrived are deleted (an event arriving "
        "later is stored without them).",
    )
    max_clock_skew_s: float = Field(
        default=300,
        ge=0,
        description="Telemetry whose coverage points lie further ahead of the server's clock is refused.",
    )
    max_coverage_age_h: float = Field(
        default=366 * 24,
        gt=0,
        description="Telemetry with coverage points older than this is refused: a box whose clock was never "
        "set (1970). Replays of recorded footage carry their recording's times, so the default is a year.",
    )
    max_coverage_speed_mps: float = Field(
        default=70,
        gt=0,
        description="Telemetry whose track moves faster than this between two points (beyond a GPS jitter "
        "allowance of 500 m) is refused: no patrol vehicle does 250 km/h.",
    )


class CoverageSettings(_Section):
    """When a patrol passing by without seeing a case makes it "possibly resolved"."""

    enabled: bool = Field(default=True, description="Mark cases possibly resolved from telemetry coverage.")
    grace_s: float = Field(
        default=120,
        ge=0,
        description="A pass counts only if the device sent no event of the case within this many seconds "
        "around it (its detections may lag its telemetry).",
    )
    min_case_age_s: float = Field(
        default=300, ge=0, description="Cases younger than this are never marked possibly resolved."
    )


class ConsoleSettings(_Section):
    """The dispatcher console served at ``/console/``: its session cookie and its map."""

    cookie_secure: bool = Field(
        default=False,
        description="Mark the session cookie Secure (sent over HTTPS only). Turn on when the server is "
        "reached through TLS (a reverse proxy); leave off for plain-HTTP intranet use.",
    )
    session_hours: float = Field(
        default=12, gt=0, le=24 * 30, description="A console sign-in lasts this long (one shift)."
    )
    live_poll_s: float = Field(
        default=1.0,
        gt=0,
        le=60,
        description="How often the live stream of a signed-in console checks the database for new or "
        "changed cases (one cheap indexed query per open console).",
    )
    tile_url: str | None = Field(
        default=None,
        description="An OpenStreetMap-style tile URL template with {z}/{x}/{y}, e.g. the city's own tile "
        "server. Unset: the console draws positions on a plain map with a scale bar and fetches "
        "nothing.",
    )
    tile_attribution: str = Field(default="", description="Attribution text shown under the tile layer.")
    teams: list[str] = Field(
        default_factory=list,
        description="Teams or grids suggested when dispatching while no team is defined (a dispatcher "
        "may still type another); once an admin adds teams (/api/v1/teams, streetwatch team add), "
        "those are offered instead.",
    )


def _first_line(path: Path) -> str:
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise ValueError(f"cannot read the broker password file {path}: {exc}") from None
    if not lines or not lines[0]:
        raise ValueError(f"the broker password file {path} is empty")
    return lines[0]


class ApiSettings(_Section):
    """Limits of the HTTP API: request size, sign-in throttling and token lifetime."""

    max_body_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        description="Larger request bodies are refused with 413 before they are read.",
    )
    max_upload_bytes: int = Field(
        default=32 * 1024 * 1024,
        ge=1024,
        description="The same for the routes that take files: POST /signs/import (a permit list with its "
        "photos, base64). Larger lists go in with streetwatch signs import on the server.",
    )
    token_lifetime_h: float = Field(
        default=12,
        gt=0,
        description="Hours a token from POST /auth/token (signing in) stays valid. Tokens an admin makes "
        "(streetwatch user create|token, POST /users) expire only when given --expires-in-days.",
    )
    login_failures_per_user: int = Field(
        default=5,
        ge=1,
        description="Failed sign-ins for one username within login_window_s; then 429 until the window "
        "has room again.",
    )
    login_attempts_per_address: int = Field(
        default=30,
        ge=1,
        description="Sign-in attempts (any outcome) from one client address within login_window_s.",
    )
    login_window_s: float = Field(default=300, gt=0, description="The sign-in throttling window in seconds.")


class FleetSettings(_Section):
    """Over-the-air updates: where signed releases are, how boxes fetch them, when a rollout halts."""

    model_registry: str = Field(
        default="models/registry.json",
        description="The model registry; its folder's signatures.json says which versions are signed "
        "(streetwatch model sign).",
    )
    config_store: str = Field(
        default="var/fleet", description="Release folder of signed box configurations (fleet sign-config)."
    )
    public_key: str | None = Field(
        default=None,
        description="The fleet's release public key: when set, a rollout is refused unless the signature "
        "verifies (the boxes check it anyway).",
    )
    download_base_url: str = Field(
        default="http://127.0.0.1:8000",
        description="How boxes reach this server's API; download URLs in commands start with it.",
    )
    reply_timeout_s: float = Field(
        default=900,
        gt=0,
        description="A box that sends no reply for this long after its command (or its last reply) "
        "halts the rollout.",
    )
    precision_margin: float = Field(
        default=0.05,
        ge=0,
        le=1,
        description="Halt when the new model's live share confirmed falls this far below the old one's.",
    )
    min_reviews: int = Field(
        default=20, ge=1, description="Reviewed cases of each version before precision is compared."
    )
    advance_every_s: float = Field(
        default=5, gt=0, description="How often an ingest worker moves rollouts on (sends waves, checks)."
    )


class SignSettings(_Section):
    """The signboard register (``server.signs``): when a sighting is a known sign."""

    enabled: bool = Field(
        default=True,
        description="Check signboard events against the register: a known sign opens no case, a new or "
        "changed one opens a case that says so.",
    )
    max_distance_m: float = Field(
        default=6,
        gt=0,
        le=MAX_RADIUS_M,
        description="A sighting is at a registered sign's place within this distance, plus the sighting's "
        "GPS accuracy (capped by max_accuracy_m); never beyond the signboard matching radius.",
    )
    max_accuracy_m: float = Field(
        default=10,
        ge=0,
        description="At most this much of a sighting's reported GPS accuracy widens max_distance_m.",
    )
    min_similarity: float = Field(
        default=0.54,
        ge=0,
        le=1,
        description="Fingerprint similarity (0..1) from which a sighting looks like the registered sign "
        "(bench/sign_fingerprint.py measures where same and different signs fall).",
    )
    pending_s: float = Field(
        default=300,
        ge=0,
        description="A sighting whose crop has not arrived waits this long for it; then it is decided "
        "without its appearance (a case marked unverified near a registered sign).",
    )
    no_sign_zones: str | None = Field(
        default=None,
        description="GeoJSON file of the places where no signboard may hang (Polygon or MultiPolygon "
        "features with a name and an optional reason): a sign seen in one opens a 'signboard in a "
        "no-sign zone' case unless the register knows it as permitted. Checked when the settings "
        "load (a bad file stops the server) and read again within seconds of a change; a changed file "
        "that cannot be used is logged and the zones read before stay in force.",
    )
    no_sign_zones_check_s: float = Field(
        default=2.0,
        ge=0,
        description="How often, at most, the zone file is looked at for a change (one stat call).",
    )
    _zone_file: ZoneFile | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _read_zones(self) -> SignSettings:
        if self.no_sign_zones:  # ZoneFileError is a ValueError
            self._zone_file = ZoneFile(Path(self.no_sign_zones), check_every_s=self.no_sign_zones_check_s)
        return self

    @property
    def zones(self) -> tuple[SignZone, ...]:
        """The no-sign zones in force, in file order (the file's latest good version)."""
        return self._zone_file.current() if self._zone_file is not None else ()

    @property
    def zone_file(self) -> ZoneFile | None:
        """The watched zone file; None without ``no_sign_zones``."""
        return self._zone_file


class ServerSettings(BaseSettings):
    """Everything the central server needs to run.

    Built in code (``ServerSettings(...)``), it holds the values given and the defaults, never
    the environment; :func:`load_settings` (or :meth:`load`) adds the environment and a file.
    """

    model_config = SettingsConfigDict(
        extra="forbid", frozen=True, env_prefix=ENV_PREFIX, env_nested_delimiter=ENV_NESTED_DELIMITER
    )

    database_url: str = Field(
        default="sqlite:///var/streetwatch.db",
        description="SQLAlchemy URL: sqlite:///path (default) or postgresql://user:pass@host/db.",
    )
    evidence_dir: str = Field(
        default="var/evidence", description="Folder of the content-addressed evidence store."
    )
    taxonomy: str | None = Field(
        default=None,
        description="classes.yaml whose detector classes reviewers may name as labels"
        " (default: the repository's datasets/classes.yaml).",
    )
    mqtt: MqttSettings = Field(default_factory=MqttSettings, description="The broker to ingest from.")
    limits: IngestLimits = Field(default_factory=IngestLimits, description="Ingest sizes and batching.")
    api: ApiSettings = Field(default_factory=ApiSettings, description="HTTP API limits.")
    coverage: CoverageSettings = Field(
        default_factory=CoverageSettings, description="Possibly-resolved rules."
    )
    console: ConsoleSettings = Field(
        default_factory=ConsoleSettings, description="The dispatcher console: sign-in, live updates, map."
    )
    fleet: FleetSettings = Field(
        default_factory=FleetSettings, description="Over-the-air model and configuration rollouts."
    )
    signs: SignSettings = Field(
        default_factory=SignSettings, description="The signboard register: known signs open no case."
    )
    matching: dict[ViolationType, MatchingRule] = Field(
        default_factory=_default_rules,
        description="Per violation type: radius, time windows, SLA and priority. Types and fields left "
        "out keep their defaults.",
    )

    @field_validator("database_url")
    @classmethod
    def _database_url_is_usable(cls, value: str) -> str:
        # Checked here, not when the first connection fails: the message then names the variable
        # or the file. It never repeats the URL, which may hold a password.
        return _check_database_url(value)

    @field_validator("matching", mode="before")
    @classmethod
    def _rules_start_from_their_defaults(cls, value: Any) -> Any:
        # One field of a rule (STREETWATCH_MATCHING__GARBAGE_OVERFLOW__RADIUS_M=25) changes that
        # field; the rule's others keep their defaults.
        if not isinstance(value, Mapping):
            return value
        defaults = {violation.value: rule for violation, rule in _default_rules().items()}
        return {
            key: {**defaults[key].model_dump(), **given}
            if isinstance(given, Mapping) and isinstance(key, str) and key in defaults
            else given
            for key, given in value.items()
        }

    @field_validator("matching")
    @classmethod
    def _every_type_has_a_rule(
        cls, value: dict[ViolationType, MatchingRule]
    ) -> dict[ViolationType, MatchingRule]:
        return {**_default_rules(), **value}

    def rule(self, violation: ViolationType | str) -> MatchingRule:
        return self.matching[ViolationType(violation)]

    def for_display(self) -> dict[str, Any]:
        """Every value as plain data to show a person (check-config), passwords masked."""
        data = self.model_dump(mode="json")
        data["database_url"] = url_without_password(self.database_url)
        if self.mqtt.password is not None:
            data["mqtt"]["password"] = "**********"
        return data

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        # Reprs end up in logs and tracebacks: show where the database is, not its password.
        for name, value in super().__repr_args__():
            yield name, (url_without_password(value) if name == "database_url" else value)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Values given in code win, then STREETWATCH_* variables, then the YAML file (defaults come
        # last on their own). The environment and the file are read only by load(): settings built
        # in code are exactly what they were given. No .env files, no secrets folder.
        return (init_settings, *active_sources(settings_cls))

    @classmethod
    def load(
        cls, path: str | Path | None = None, env: Mapping[str, str] | None = None, **values: Any
    ) -> ServerSettings:
        """``values`` over ``STREETWATCH_*`` variables of ``env`` (default: the process environment)
        over the YAML file ``path`` over the defaults; :class:`ConfigError` names what is wrong."""
        environ = os.environ if env is None else env
        with reading(None if path is None else Path(path), environ) as read:
            try:
                return cls(**values)
            except ValidationError as exc:
                raise read.invalid(exc) from exc
            except SettingsError as exc:
                raise read.unreadable(exc) from exc


#: Database URLs the server can open (server/db/session.py), with an optional driver: postgresql+psycopg.
_DATABASE_SCHEME = re.compile(r"^(sqlite|postgresql|postgres)(\+\w+)?$")


def url_without_password(url: str) -> str:
    """``url`` with its password, if any, shown as ``***``: URLs end up in logs and error messages."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        return parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@", 1)).geturl()
    except ValueError:
        return "(a database URL that does not parse)"


def _check_database_url(url: str) -> str:
    expected = "expected sqlite:///path/to/file.db or postgresql://user:password@host[:port]/database"
    scheme, sep, _ = url.partition("://")
    if not sep or not _DATABASE_SCHEME.match(scheme.lower()):
        raise ValueError(f"not a database URL the server can use: {expected}")
    if scheme.lower().startswith("sqlite"):
        return url
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - parsing the port is the check (a non-number raises)
    except ValueError as exc:
        raise ValueError(f"not a valid PostgreSQL URL ({exc}): {expected}") from None
    if not parts.path.strip("/"):
        raise ValueError(f"the PostgreSQL URL names no database: {expected}")
    return url


def load_settings(path: str | Path | None = None, env: Mapping[str, str] | None = None) -> ServerSettings:
    """Read ``path`` (optional YAML) under the ``STREETWATCH_*`` variables of ``env``, validate."""
    return ServerSettings.load(path, env)
