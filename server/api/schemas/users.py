"""Users, their tokens, and signing in."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from server.auth import MIN_PASSWORD_CHARS, USERNAME_PATTERN, Role


class UserBase(BaseModel):
    username: str = Field(pattern=USERNAME_PATTERN, description="Login name; letters, digits, _ . @ -.")
    role: Role = Field(description="viewer < reviewer < admin; device: an edge box, no dispatcher access.")


class UserCreate(UserBase):
    model_config = ConfigDict(extra="forbid")

    password: str | None = Field(
        default=None,
        min_length=MIN_PASSWORD_CHARS,
        max_length=256,
        description="Optional; lets the user sign in for tokens.",
    )


class UserPublic(UserBase):
    model_config = ConfigDict(from_attributes=True)

    id: int = Field(description="Numeric id.")
    created_at: datetime = Field(description="When the user was made.")
    disabled: bool = Field(description="A disabled user's tokens are refused.")
    last_active_at: datetime | None = Field(
        default=None,
        description="When any of the user's tokens was last used (written about once a minute); null: never.",
    )


class UserUpdate(BaseModel):
    """What an admin changes about a user; fields left out stay as they are."""

    model_config = ConfigDict(extra="forbid")

    disabled: bool | None = Field(
        default=None, description="True: every request of the user is refused, whatever token it holds."
    )
    role: Role | None = Field(
        default=None, description="viewer, reviewer or admin; a box's account stays a box's (device)."
    )
    password: str | None = Field(
        default=None,
        min_length=MIN_PASSWORD_CHARS,
        max_length=256,
        description="A new password (a forgotten one, reset).",
    )


class TokenPublic(BaseModel):
    token: str = Field(description="The bearer token. Shown only now: the server keeps only its hash.")
    token_type: str = Field(
        default="bearer", description="Always bearer: send 'Authorization: Bearer <token>'."
    )
    expires_at: datetime | None = Field(
        default=None,
        description="When the token stops working (sign-in tokens: api.token_lifetime_h after signing in); "
        "null: until it is revoked.",
    )


class UserCreated(BaseModel):
    user: UserPublic
    token: TokenPublic


class LoginRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(max_length=64, description="Login name.")
    password: str = Field(max_length=256, description="Password.")
