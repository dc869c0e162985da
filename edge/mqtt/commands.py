"""Commands from the server (``.../commands``): parsed, checked, routed to registered handlers.

A handler is registered with the typed model of its command (a subclass of
:class:`streetwatch.messages.Command` whose ``type`` is a ``Literal``)::

    dispatcher.register(SendTelemetryCommand, lambda cmd: reporter.wake())

Malformed JSON, an invalid envelope, an unknown type, a payload that does not fit
the model, a repeated ``command_id`` (QoS 1 may deliver twice) or a handler that
raises: each is logged and ignored; the box keeps running.

Replies (``.../commands/reply``, :class:`streetwatch.messages.CommandReply`): every
command whose ``command_id`` can be read is answered through the ``reply`` callback:
``accepted`` before its handler runs and ``done`` after it returns, or ``failed`` with
the reason (unknown type, invalid fields, the handler raised). A handler registered
with ``own_replies=True`` starts long work (a model update) and sends its own
``progress`` / ``done`` / ``failed`` later through :class:`Replier`. A redelivered
``command_id`` is not answered again: its first answer stands.
"""

from __future__ import annotations

import collections
import logging
import re
from collections.abc import Callable
from typing import Literal, Protocol, TypeVar

from streetwatch.errors import PayloadError
from streetwatch.events import decode_json_object
from streetwatch.messages import (
    COMMAND_TYPE_PATTERN,
    MAX_COMMAND_BYTES,
    Command,
    parse_command_header,
    validate_command,
)

log = logging.getLogger(__name__)

C = TypeVar("C", bound=Command)

#: How many recent command ids are remembered to ignore redeliveries.
REMEMBERED_IDS = 256
#: A reply's ``type`` when the command's own type is unreadable (it must fit the type pattern).
UNREADABLE_TYPE = "unknown"
#: Longest reason sent in a reply (the wire model's limit).
MAX_REASON = 1000

ReplyState = Literal["accepted", "progress", "done", "failed"]
_TYPE = re.compile(COMMAND_TYPE_PATTERN)


class ReplyFunction(Protocol):
    """Publishes one :class:`streetwatch.messages.CommandReply` (the MQTT sink's ``reply``)."""

    def __call__(
        self,
        command_id: str,
        type: str,
        state: ReplyState,
        *,
        step: str | None = None,
        progress: float | None = None,
        reason: str | None = None,
    ) -> None: ...


class Replier:
    """The replies of one command, for handlers that finish their work later (``own_replies``)."""

    def __init__(self, reply: ReplyFunction | None, command_id: str, type_name: str) -> None:
        self._reply = reply
        self.command_id = command_id
        self.type = type_name

    def send(
        self,
        state: ReplyState,
        *,
        step: str | None = None,
        progress: float | None = None,
        reason: str | None = None,
    ) -> None:
        if self._reply is None:
            return
        try:
            self._reply(
                self.command_id,
                self.type,
                state,
                step=step,
                progress=None if progress is None else min(1.0, max(0.0, progress)),
                reason=reason[:MAX_REASON] if reason else None,
            )
        except Exception:  # a reply that cannot be built or sent must not end the command's work
            log.exception("reply %s to command %r could not be sent", state, self.command_id)

    def progress(self, step: str, share: float | None = None) -> None:
        self.send("progress", step=step, progress=share)

    def done(self, step: str | None = None) -> None:
        self.send("done", step=step, progress=1.0)

    def failed(self, reason: str, step: str | None = None) -> None:
        self.send("failed", step=step, reason=reason)


class CommandDispatcher:
    def __init__(self, reply: ReplyFunction | None = None) -> None:
        self._handlers: dict[str, tuple[type[Command], Callable[..., None], bool]] = {}
        self._seen: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._reply = reply
        self.ignored = 0
        self.handled = 0

    def register(self, model: type[C], handler: Callable[..., None], *, own_replies: bool = False) -> None:
        """Route commands of ``model``'s type to ``handler`` (one handler per type).

        ``own_replies``: the handler is called as ``handler(command, replier)`` and sends
        ``done`` / ``failed`` itself (the dispatcher only says ``accepted``, or ``failed``
        if the handler raises); otherwise ``handler(command)`` and ``done`` when it returns.
        """
        type_name = model.model_fields["type"].default
        if not isinstance(type_name, str) or model is Command:
            raise TypeError(f"{model.__name__} needs a default 'type' (a Literal) to be registered")
        if type_name in self._handlers:
            raise ValueError(f"a handler for command type {type_name!r} is already registered")
        self._handlers[type_name] = (model, handler, own_replies)

    @property
    def types(self) -> list[str]:
        return sorted(self._handlers)

    def dispatch(self, payload: bytes) -> bool:
        """Handle one command payload; True if a handler ran to completion."""
        try:
            header, raw = parse_command_header(payload)
        except PayloadError as exc:
            self._refuse_readable(payload, f"malformed command: {exc}")
            return self._ignore(f"malformed command ignored: {exc}")
        entry = self._handlers.get(header.type)
        if header.command_id in self._seen:
            return self._ignore(f"command {header.command_id!r} was already handled; redelivery ignored")
        replier = Replier(self._reply, header.command_id, header.type)
        if entry is None:
            message = (
                f"unknown command type {header.type!r} (this box knows: {', '.join(self.types) or 'none'})"
            )
            self._remember(header.command_id)
            replier.failed(message)
            return self._ignore(f"command {header.command_id!r} ignored: {message}")
        model, handler, own_replies = entry
        try:
            command = validate_command(model, raw)
        except PayloadError as exc:
            self._remember(header.command_id)
            replier.failed(str(exc))
            return self._ignore(f"command {header.command_id!r} ignored: {exc}")
        self._remember(header.command_id)
        replier.send("accepted")
        try:
            if own_replies:
                handler(command, replier)
            else:
                handler(command)
        except Exception as exc:
            log.exception("handler of command %r (%s) failed", header.command_id, header.type)
            replier.failed(f"the box could not carry it out: {type(exc).__name__}: {exc}")
            return False
        if not own_replies:
            replier.done()
        self.handled += 1
        log.info("command %r (%s) handled", header.command_id, header.type)
        return True

    def _refuse_readable(self, payload: bytes, reason: str) -> None:
        """Answer a command refused before its envelope validated, when its ``command_id`` is readable."""
        if self._reply is None or len(payload) > MAX_COMMAND_BYTES:
            return  # an oversized payload is never parsed, not even for its id
        try:
            raw = decode_json_object(payload, "command")
        except Exception:
            return  # not JSON, too deep, not an object: nothing to address a reply to
        command_id = raw.get("command_id")
        if not isinstance(command_id, str) or not 1 <= len(command_id) <= 64 or command_id in self._seen:
            return
        type_name = raw.get("type")
        if not isinstance(type_name, str) or not _TYPE.match(type_name):
            type_name = UNREADABLE_TYPE
        self._remember(command_id)
        Replier(self._reply, command_id, type_name).failed(reason)

    def _remember(self, command_id: str) -> None:
        self._seen[command_id] = None
        while len(self._seen) > REMEMBERED_IDS:
            self._seen.popitem(last=False)

    def _ignore(self, message: str) -> bool:
        self.ignored += 1
        log.warning("%s", message)
        return False
