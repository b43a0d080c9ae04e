"""What a connection reports after reading bytes or being told something.

A complete data message is reported as the message itself, `str` for text and `bytes`
for binary, so the common case allocates nothing beyond the message. Everything else
is one of the small classes below.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hybi.exceptions import HandshakeError
    from hybi.sansio.dialects.base import Dialect
    from hybi.sansio.http import Request

__all__ = [
    "CloseReceived",
    "ConnectionFailed",
    "Event",
    "HandshakeFailed",
    "Opened",
    "Ping",
    "Pong",
    "RequestReceived",
    "Role",
    "State",
    "TransportAction",
]


class Role(Enum):
    CLIENT = "client"
    SERVER = "server"


class State(Enum):
    """Where a connection is in its lifetime (RFC 6455 sections 4 and 7; `_state.py` has the table)."""

    CONNECTING = "connecting"  # the opening handshake is under way (section 4.1)
    OPEN = "open"  # the handshake completed: messages may flow (section 4.1, 4.2.2)
    CLOSING = "closing"  # this side sent a close frame and waits for the peer's (section 7.1.2)
    CLOSED = "closed"  # close frames crossed, the connection was failed, or TCP ended (section 7.1.4)
    REJECTED = "rejected"  # the opening handshake was refused or failed: no WebSocket at all

    # Members are compared by identity: hashing by it too keeps Enum's Python-level __hash__
    # out of the state table's lookups (several per connection).
    __hash__ = object.__hash__


class TransportAction(Enum):
    """What the I/O layer must do with the transport now; it only ever moves forward."""

    KEEP = "keep"  # go on reading and writing
    CLOSE = "close"  # write what is queued, then close the transport (it is over)
    ABORT = "abort"  # drop the transport now: a close did not complete in time


@dataclass(frozen=True, slots=True)
class RequestReceived:
    """Server: the opening request is complete. Call `accept()` to go on with the handshake,
    or `reject(response)` to answer it with something else (authentication, a plain page).

    `dialect` is the version the request asks for among those served (section 4.2.1), or
    None when it is no acceptable WebSocket request, which `accept()` then refuses (426
    with the list, or 400)."""

    request: Request
    dialect: Dialect | None = None

    @property
    def version(self) -> int | str | None:
        """The version asked for: its number (13, 8, 7, 6, 5) or, for the drafts before
        version numbers, its name ("hixie-76"); None as for `dialect`."""
        if self.dialect is None:
            return None
        return self.dialect.version if self.dialect.version is not None else self.dialect.name


@dataclass(frozen=True, slots=True)
class Opened:
    """The opening handshake completed (after the hixie-76 challenge, where there is one)."""


@dataclass(frozen=True, slots=True)
class HandshakeFailed:
    """The opening handshake failed; `error` says why (a client's InvalidStatus carries the
    versions a refusal listed). A server has queued its refusal."""

    error: HandshakeError


@dataclass(frozen=True, slots=True)
class Ping:
    """The peer sent a ping; the connection has already queued the pong (section 5.5.2)."""

    data: bytes


@dataclass(frozen=True, slots=True)
class Pong:
    data: bytes


@dataclass(frozen=True, slots=True)
class CloseReceived:
    """The peer's close frame. `code` is 1005 when the frame had no status (section 7.1.5)."""

    code: int
    reason: str


@dataclass(frozen=True, slots=True)
class ConnectionFailed:
    """The connection was failed (section 7.1.7) with `code`: the peer broke the protocol, a
    limit was exceeded, or a keepalive ping went unanswered. Where the dialect has close
    frames, one with `code` goes out after whatever the application sends in this turn."""

    code: int
    reason: str


Event = str | bytes | Ping | Pong | CloseReceived | ConnectionFailed | RequestReceived | Opened | HandshakeFailed
