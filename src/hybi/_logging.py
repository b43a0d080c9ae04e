"""What the asyncio and sync connections log, and how: records on `hybi.server` or
`hybi.client`, each carrying the connection's id.

At DEBUG, the request and response heads and every message in and out (elided); at INFO, a
handshake the peer broke; at ERROR, a failing handler or hook. Both I/O layers use this
module, so that a connection logs the same records whichever layer runs it.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from hybi.sansio.connection import Connection as Protocol
from hybi.sansio.events import Event, Opened

__all__ = ["HANDSHAKE_FAILED", "ConnectionLogger", "LoggedConnection", "preview"]

_PREVIEW = 60
"""Characters of a payload shown in DEBUG records; the rest is elided."""

HANDSHAKE_FAILED = "opening handshake failed: %s"
"""The INFO record of a handshake the peer broke or the server refused (its format)."""


class ConnectionLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """Puts the connection's id in front of every record, and in `record.connection_id`."""

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        assert self.extra is not None
        kwargs.setdefault("extra", {}).update(self.extra)
        return f"[{self.extra['connection_id']}] {msg}", kwargs


def preview(message: str | bytes | bytearray | memoryview) -> str:
    """A message as a DEBUG record shows it: its kind, size and start."""
    if isinstance(message, str):
        shown = repr(message[:_PREVIEW])
        return f"text [{len(message)}] {shown}{'…' if len(message) > _PREVIEW else ''}"
    half = _PREVIEW // 2
    return f"binary [{len(message)}] {message[:half].hex()}{'…' if len(message) > half else ''}"


class LoggedConnection:
    """The id and logger of a connection of either I/O layer, both made when first needed
    (an idle connection that logs nothing pays for neither), and its DEBUG records of the
    core's events."""

    logger_name = "hybi"
    protocol: Protocol
    _id: uuid.UUID | None = None
    _logger: ConnectionLogger | None = None

    @property
    def id(self) -> uuid.UUID:
        """A unique id, which every log record of this connection carries (made when first
        needed: an idle connection that logs nothing does not pay for it)."""
        if self._id is None:
            self._id = uuid.uuid4()
        return self._id

    @property
    def logger(self) -> ConnectionLogger:
        if self._logger is None:
            self._logger = ConnectionLogger(logging.getLogger(self.logger_name), {"connection_id": str(self.id)[:8]})
        return self._logger

    def _log_events(self, events: list[Event]) -> None:
        """DEBUG: each message received (elided), the heads once open, other events as they are."""
        for event in events:
            if isinstance(event, str | bytes):
                self.logger.debug("< %s", preview(event))
            elif isinstance(event, Opened):
                request, response = self.protocol.request, self.protocol.response
                if request is not None:
                    self.logger.debug("request: %s", request.serialize().decode("latin-1").strip())
                if response is not None:
                    self.logger.debug("response: %s", response.serialize().decode("latin-1").strip())
                self.logger.debug("open, version %s", self.protocol.version)
            else:
                self.logger.debug("< %s", event)
