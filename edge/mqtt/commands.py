"""Commands from the server (``.../commands``): parsed, checked, routed to registered handlers.

A handler is registered with the typed model of its command (a subclass of
:class:`streetwatch.messages.Command` whose ``type`` is a ``Literal``)::

    dispatcher.register(SendTelemetryCommand, lambda cmd: reporter.wake())

Malformed JSON, an invalid envelope, an unknown type, a payload that does not fit
the model, a repeated ``command_id`` (QoS 1 may deliver twice) or a handler that
raises: each is logged and ignored; the box keeps running.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from streetwatch.errors import PayloadError
from streetwatch.messages import Command, parse_command_header, validate_command

log = logging.getLogger(__name__)

C = TypeVar("C", bound=Command)

#: How many recent command ids are remembered to ignore redeliveries.
REMEMBERED_IDS = 256


class CommandDispatcher:
    def __init__(self) -> None:
        self._handlers: dict[str, tuple[type[Command], Callable[[Any], None]]] = {}
        self._seen: collections.OrderedDict[str, None] = collections.OrderedDict()
        self.ignored = 0
        self.handled = 0

    def register(self, model: type[C], handler: Callable[[C], None]) -> None:
        """Route commands of ``model``'s type to ``handler`` (one handler per type)."""
        type_name = model.model_fields["type"].default
        if not isinstance(type_name, str) or model is Command:
            raise TypeError(f"{model.__name__} needs a default 'type' (a Literal) to be registered")
        if type_name in self._handlers:
            raise ValueError(f"a handler for command type {type_name!r} is already registered")
        self._handlers[type_name] = (model, handler)

    @property
    def types(self) -> list[str]:
        return sorted(self._handlers)

    def dispatch(self, payload: bytes) -> bool:
        """Handle one command payload; True if a handler ran to completion."""
        try:
            header, raw = parse_command_header(payload)
        except PayloadError as exc:
            return self._ignore(f"malformed command ignored: {exc}")
        entry = self._handlers.get(header.type)
        if entry is None:
            return self._ignore(
                f"command {header.command_id!r} of unknown type {header.type!r} ignored "
                f"(this box knows: {', '.join(self.types) or 'none'})"
            )
        if header.command_id in self._seen:
            return self._ignore(f"command {header.command_id!r} was already handled; redelivery ignored")
        model, handler = entry
        try:
            command = validate_command(model, raw)
        except PayloadError as exc:
            return self._ignore(f"command {header.command_id!r} ignored: {exc}")
        self._remember(header.command_id)
        try:
            handler(command)
        except Exception:
            log.exception("handler of command %r (%s) failed", header.command_id, header.type)
            return False
        self.handled += 1
        log.info("command %r (%s) handled", header.command_id, header.type)
        return True

    def _remember(self, command_id: str) -> None:
        self._seen[command_id] = None
        while len(self._seen) > REMEMBERED_IDS:
            self._seen.popitem(last=False)

    def _ignore(self, message: str) -> bool:
        self.ignored += 1
        log.warning("%s", message)
        return False
