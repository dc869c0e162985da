"""Credentials: bearer tokens, password hashes and the role ladder.

Tokens are random strings shown once when they are made; the database keeps
only their SHA-256, so a leaked database does not leak working tokens (and a
token is long and random enough that an unsalted hash is safe). Passwords are
hashed with scrypt from the standard library, salted, with the parameters
stored beside the hash so they can be raised later without breaking old ones.

Roles: ``viewer`` < ``reviewer`` < ``admin`` form a ladder, each allowed what
the one below is. ``device`` sits outside the ladder: an edge box's credential
may identify itself but never reads or changes cases, so it is refused by every
dispatcher endpoint whatever rank that endpoint asks for.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.db.models import ApiToken, User, UserRole
from streetwatch.errors import StreetWatchError

#: Prefix of every token, so a leaked one is recognisable in logs and secret scanners.
TOKEN_PREFIX = "swt_"

# scrypt cost: n=2**14, r=8 uses 16 MiB and ~50 ms per check here; raise n as machines grow.
_SCRYPT_N = 2**14
_SCRYPT_R = 8
_SCRYPT_P = 1
_SCRYPT_DKLEN = 32
_SCRYPT_MAXMEM = 64 * 1024 * 1024


#: The roles, stored by value in ``users.role``: viewer reads cases, events, devices and evidence;
#: reviewer also confirms, rejects, dispatches and resolves cases; admin also manages users;
#: device is an edge box's credential and may call no dispatcher endpoint at all.
Role = UserRole


#: The shortest password a user may have.
MIN_PASSWORD_CHARS = 8


class PasswordError(StreetWatchError, ValueError):
    """A password that cannot be set (too short, or for a box's account)."""


#: Names of the tokens made by signing in with a password (the API's and the console's), as
#: opposed to those an admin issues for scripts and boxes; a password reset revokes them.
API_SIGN_IN_TOKEN = "sign-in"
CONSOLE_SIGN_IN_TOKEN = "console sign-in"
SIGN_IN_TOKEN_NAMES = (API_SIGN_IN_TOKEN, CONSOLE_SIGN_IN_TOKEN)

#: Rank on the dispatcher ladder; ``device`` has none.
_LADDER: dict[Role, int] = {Role.viewer: 1, Role.reviewer: 2, Role.admin: 3}


def role_allows(held: Role, required: Role) -> bool:
    """True when a credential of role ``held`` may call an endpoint that needs ``required``."""
    if required is Role.device:
        return held is Role.device
    rank = _LADDER.get(held)
    return rank is not None and rank >= _LADDER[required]


def parse_role(value: str) -> Role:
    """The role named ``value``; ValueError listing the valid names otherwise."""
    try:
        return Role(value)
    except ValueError:
        names = ", ".join(r.value for r in Role)
        raise ValueError(f"unknown role {value!r}; use one of: {names}") from None


def new_token() -> str:
    """A fresh bearer token (256 random bits). Show it once; store only :func:`hash_token`."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """SHA-256 hex of a token: what the database stores and looks tokens up by."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def hash_password(password: str) -> str:
    """A salted scrypt hash in the form ``scrypt$n$r$p$salt$hash`` (base64 parts)."""
    if not password:
        raise ValueError("password must not be empty")
    salt = secrets.token_bytes(16)
    digest = _scrypt(password, salt, _SCRYPT_N, _SCRYPT_R, _SCRYPT_P)
    return "$".join(["scrypt", str(_SCRYPT_N), str(_SCRYPT_R), str(_SCRYPT_P), _b64(salt), _b64(digest)])


def verify_password(password: str, stored: str | None) -> bool:
    """True when ``password`` matches ``stored``; False for a malformed or missing hash."""
    if not stored:
        return False
    parts = stored.split("$")
    if len(parts) != 6 or parts[0] != "scrypt":
        return False
    try:
        n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
        salt = base64.b64decode(parts[4])
        expected = base64.b64decode(parts[5])
    except ValueError:
        return False
    candidate = _scrypt(password, salt, n, r, p)
    return hmac.compare_digest(candidate, expected)


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=_SCRYPT_DKLEN, maxmem=_SCRYPT_MAXMEM
    )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


@dataclass(frozen=True)
class Principal:
    """Who is calling: the user behind a valid token, with the token's row id."""

    user_id: int
    username: str
    role: Role
    token_id: int


@dataclass(frozen=True)
class IssuedToken:
    """A token as made: ``token`` is the only copy of the secret; show it once."""

    token: str
    token_id: int
    user_id: int
    username: str
    role: Role
    expires_at: datetime | None = None


#: Login names: what the API accepts and shows.
USERNAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$"


class InvalidUsernameError(StreetWatchError, ValueError):
    """The name does not fit :data:`USERNAME_PATTERN`."""


class UserExistsError(StreetWatchError, ValueError):
    """A user with that name exists already."""


def create_user(
    session: Session,
    username: str,
    role: Role,
    now: datetime,
    password: str | None = None,
    token_expires_at: datetime | None = None,
) -> IssuedToken:
    """Add a user with a first token (valid until ``token_expires_at``; None: until revoked) and a
    password when given; the caller commits."""
    if not re.fullmatch(USERNAME_PATTERN, username):
        # Checked here, not only by the API's model: a name the API cannot show would break
        # every listing of users that includes it.
        raise InvalidUsernameError(
            f"user name {username!r} is not allowed: start with a letter or digit; then letters, "
            "digits, _ . @ - (at most 64)"
        )
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise UserExistsError(f"user {username!r} exists already")
    user = User(
        username=username,
        role=role.value,
        password_hash=hash_password(password) if password else "",
        created_at=now,
        disabled=False,
    )
    session.add(user)
    session.flush()
    return issue_token(session, user, now, name="created with the user", expires_at=token_expires_at)


def set_password(session: Session, user: User, password: str) -> int:
    """Give ``user`` a new password and revoke the tokens made by signing in with the old one (whoever
    knew it is signed out; tokens an admin issued stay). How many were revoked; the caller commits.
    Raises :class:`PasswordError` for a box's account or a password too short."""
    if user.role == Role.device.value:
        raise PasswordError("a box's account signs in with its token only")
    if len(password) < MIN_PASSWORD_CHARS:
        raise PasswordError(f"a password needs at least {MIN_PASSWORD_CHARS} characters")
    user.password_hash = hash_password(password)
    signed_in = session.scalars(
        select(ApiToken).where(
            ApiToken.user_id == user.id, ApiToken.name.in_(SIGN_IN_TOKEN_NAMES), ApiToken.revoked.is_(False)
        )
    ).all()
    for token in signed_in:
        token.revoked = True
    return len(signed_in)


def issue_token(
    session: Session,
    user: User,
    now: datetime,
    name: str | None = None,
    expires_at: datetime | None = None,
) -> IssuedToken:
    """Make a new token for ``user``, valid until ``expires_at`` (None: until revoked); only its
    hash is stored. The caller commits."""
    if expires_at is not None and expires_at <= now:
        raise ValueError(f"a token must expire after it is made ({now.isoformat()}), not {expires_at}")
    token = new_token()
    row = ApiToken(
        token_sha256=hash_token(token),
        user_id=user.id,
        name=name,
        created_at=now,
        revoked=False,
        expires_at=expires_at,
    )
    session.add(row)
    session.flush()
    return IssuedToken(token, row.id, user.id, user.username, Role(user.role), expires_at)


def authenticate_token(session: Session, token: str, now: datetime | None = None) -> Principal | None:
    """The principal behind ``token`` at ``now`` (default: the current time); None when it is
    unknown, revoked, expired or its user is disabled."""
    row = session.execute(
        select(
            ApiToken.id,
            ApiToken.revoked,
            ApiToken.expires_at,
            User.id,
            User.username,
            User.role,
            User.disabled,
        )
        .join(User, User.id == ApiToken.user_id)
        .where(ApiToken.token_sha256 == hash_token(token))
    ).first()
    if row is None:
        return None
    token_id, revoked, expires_at, user_id, username, role, disabled = row
    if revoked or disabled:
        return None
    if expires_at is not None and _aware(expires_at) <= (now or datetime.now(timezone.utc)):
        return None
    try:
        parsed = Role(role)
    except ValueError:
        return None  # a role this build does not know grants nothing
    return Principal(user_id=user_id, username=username, role=parsed, token_id=token_id)


def authenticate_password(session: Session, username: str, password: str) -> User | None:
    """The enabled user whose password matches; None otherwise.

    Every failure costs the same work and gives the same answer: an unknown name, a user
    without a password (made for tokens only), a disabled user and a wrong password each run
    exactly one scrypt check (with today's parameters, unless the user's own hash was made with
    others), so neither the answer nor its time tells which names exist.
    """
    user = session.scalar(select(User).where(User.username == username))
    stored = user.password_hash if user is not None else None
    if not _is_scrypt_hash(stored):
        verify_password(password, _DUMMY_HASH)
        return None
    matches = verify_password(password, stored)
    if user is None or user.disabled or not matches:
        return None
    return user


def _is_scrypt_hash(stored: str | None) -> bool:
    """A hash :func:`verify_password` will really check (so it costs a scrypt run)."""
    parts = (stored or "").split("$")
    return len(parts) == 6 and parts[0] == "scrypt" and all(p.isdigit() for p in parts[1:4])


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)


_DUMMY_HASH = "scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
