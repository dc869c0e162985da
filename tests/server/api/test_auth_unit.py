"""Password hashes, token hashes and the role ladder, without a server."""

from __future__ import annotations

import pytest

from server.auth import Role, hash_password, hash_token, new_token, parse_role, role_allows, verify_password


def test_password_hash_verifies_only_the_right_password_and_is_salted() -> None:
    first, second = hash_password("correct horse"), hash_password("correct horse")
    assert first != second  # salted
    assert first.startswith("scrypt$") and "correct" not in first
    assert verify_password("correct horse", first) and verify_password("correct horse", second)
    assert not verify_password("correct hors", first)
    assert (
        not verify_password("x", "")
        and not verify_password("x", "md5$abc")
        and not verify_password("x", "a$b$c$d$e$f")
    )
    with pytest.raises(ValueError, match="empty"):
        hash_password("")


def test_tokens_are_random_and_stored_as_sha256() -> None:
    tokens = {new_token() for _ in range(50)}
    assert len(tokens) == 50 and all(t.startswith("swt_") and len(t) > 40 for t in tokens)
    token = next(iter(tokens))
    digest = hash_token(token)
    assert len(digest) == 64 and token not in digest and hash_token(token) == digest


@pytest.mark.parametrize(
    ("held", "required", "allowed"),
    [
        ("viewer", "viewer", True),
        ("viewer", "reviewer", False),
        ("reviewer", "viewer", True),
        ("reviewer", "admin", False),
        ("admin", "reviewer", True),
        ("admin", "admin", True),
        ("device", "viewer", False),
        ("device", "admin", False),
        ("admin", "device", False),
        ("device", "device", True),
    ],
)
def test_role_ladder(held: str, required: str, allowed: bool) -> None:
    assert role_allows(Role(held), Role(required)) is allowed


def test_parse_role_names_the_valid_roles() -> None:
    assert parse_role("admin") is Role.admin
    with pytest.raises(ValueError, match="viewer, reviewer, admin, device"):
        parse_role("root")
