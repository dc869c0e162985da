"""Reading JSON that came over the wire, refusing what JSON allows but the contract does not.

    raw, text = load_wire_object(payload, "event")   # PayloadError says what was wrong

The published schema promises UTF-8 JSON objects of plain values. Python's ``json``
accepts more than that, and what it lets through fails later, far from the cause: UTF-16
and UTF-32 (it guesses the encoding), ``NaN`` / ``Infinity`` and ``1e400`` (floats a
database refuses, failing a whole batch of other devices' events), integers of any
length, NUL characters and lone surrogates (PostgreSQL cannot store them), duplicate
keys (two readers may keep different values) and nesting deep enough to raise
``RecursionError``. Each is refused here with a message naming it, before any model
sees the payload. The depth is measured without recursion, before parsing.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from streetwatch.errors import PayloadError

#: Objects and arrays nested deeper than this are refused. The deepest message today is 3
#: levels (telemetry -> coverage -> point); the margin leaves room for new fields.
MAX_JSON_DEPTH = 16

#: Integers must fit a signed 64-bit column.
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

_BOMS = (
    (b"\x00\x00\xfe\xff", "a UTF-32 byte order mark"),
    (b"\xff\xfe\x00\x00", "a UTF-32 byte order mark"),
    (b"\xef\xbb\xbf", "a UTF-8 byte order mark"),
    (b"\xfe\xff", "a UTF-16 byte order mark"),
    (b"\xff\xfe", "a UTF-16 byte order mark"),
)
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
#: Escapes that decode to characters no text column can hold: NUL and UTF-16 surrogates.
_SUSPECT_ESCAPE = re.compile(r"\\u(?:0000|[dD][89abcdefABCDEF])")


def load_wire_object(payload: bytes | str, what: str) -> tuple[dict[str, Any], str]:
    """Decode ``payload`` as one JSON object; return it and its text (for strict model validation)."""
    text = _utf8_text(payload, what)
    _check_depth(text.encode() if isinstance(payload, str) else payload, what)
    try:
        raw = json.loads(
            text,
            parse_constant=_refuse_constant,
            parse_float=_finite_float,
            parse_int=_int64,
            object_pairs_hook=_unique_keys,
        )
    except json.JSONDecodeError as exc:
        raise PayloadError(f"{what} payload is not JSON: {exc}") from exc
    except _Refused as exc:
        raise PayloadError(f"{what} payload {exc}") from None
    except RecursionError:  # the depth check makes this unreachable; kept as a last guard
        raise PayloadError(f"{what} payload nests deeper than {MAX_JSON_DEPTH} levels") from None
    if not isinstance(raw, dict):
        raise PayloadError(f"{what} payload must be a JSON object, got {type(raw).__name__}")
    if _SUSPECT_ESCAPE.search(text):
        _check_strings(raw, what)
    return raw, text


class _Refused(ValueError):
    """Raised from inside the JSON decoder's hooks; turned into a PayloadError."""


def _utf8_text(payload: bytes | str, what: str) -> str:
    if isinstance(payload, str):
        if payload.startswith("\ufeff"):
            raise PayloadError(f"{what} payload starts with a byte order mark; send UTF-8 without one")
        if "\x00" in payload:
            raise PayloadError(f"{what} payload contains a NUL character outside a string")
        return payload
    for bom, name in _BOMS:
        if payload.startswith(bom):
            raise PayloadError(f"{what} payload starts with {name}; send UTF-8 JSON without one")
    if b"\x00" in payload:
        # Raw NUL bytes are never valid JSON; in practice they mean UTF-16 or UTF-32.
        raise PayloadError(f"{what} payload contains NUL bytes (UTF-16 or UTF-32?); send UTF-8 JSON")
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PayloadError(f"{what} payload is not UTF-8: {exc}") from None


def _check_depth(data: bytes, what: str) -> None:
    """Refuse nesting beyond :data:`MAX_JSON_DEPTH`, counted on brackets outside strings."""
    if data.count(b"[") + data.count(b"{") <= MAX_JSON_DEPTH:
        return  # cannot nest deeper than it has brackets
    depth = 0
    for byte in _STRING.sub(b"", data).translate(None, _NOT_BRACKETS):
        if byte in b"[{":
            depth += 1
            if depth > MAX_JSON_DEPTH:
                raise PayloadError(f"{what} payload nests deeper than {MAX_JSON_DEPTH} levels")
        else:
            depth -= 1


def _refuse_constant(name: str) -> Any:
    raise _Refused(f"contains {name}, which JSON does not allow and the schema refuses")


def _finite_float(literal: str) -> float:
    value = float(literal)
    if not math.isfinite(value):
        raise _Refused(f"contains the number {literal[:40]}, which does not fit a 64-bit float")
    return value


def _int64(literal: str) -> int:
    # Length first: int() of a huge literal is itself slow (and capped by Python at 4,300 digits).
    if len(literal) > 20 or not INT64_MIN <= (value := int(literal)) <= INT64_MAX:
        raise _Refused(f"contains the integer {literal[:40]}, beyond the signed 64-bit range")
    return value


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _Refused(f"repeats the key {key!r}; each key may appear once")
            seen.add(key)
    return result


def _check_strings(raw: dict[str, Any], what: str) -> None:
    """Refuse NUL characters and lone surrogates in any key or string value (iteratively)."""
    stack: list[tuple[str, Any]] = [("", raw)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, dict):
            for key, item in value.items():
                where = f"{path}.{key}" if path else key
                _check_text(key, where, what)
                stack.append((where, item))
        elif isinstance(value, list):
            stack.extend((f"{path}[{i}]", item) for i, item in enumerate(value))
        elif isinstance(value, str):
            _check_text(value, path, what)


def _check_text(text: str, where: str, what: str) -> None:
    if "\x00" in text:
        raise PayloadError(f"{what} payload has a NUL character in {where or '(root)'}")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise PayloadError(
            f"{what} payload has a lone UTF-16 surrogate in {where or '(root)'}; it is not valid text"
        ) from None
