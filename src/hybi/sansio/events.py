"""What a session reports after reading bytes.

A complete data message is reported as the message itself, `str` for text and `bytes`
for binary, so the common case allocates nothing beyond the message. Everything else
is one of the small classes below.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

__all__ = ["CloseReceived", "ConnectionFailed", "Event", "Ping", "Pong", "Role", "State"]


class Role(Enum):
    CLIENT = "client"
    SERVER = "server"


class State(Enum):
    """Where a session is in its lifetime (RFC 6455 section 7)."""

    OPEN = "open"
    CLOSING = "closing"  # this side sent a close frame and waits for the peer's
    CLOSED = "closed"  # close frames crossed, or the connection was failed


@dataclass(frozen=True, slots=True)
class Ping:
    """The peer sent a ping; the session has already queued the pong (section 5.5.2)."""

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
    """The peer broke the protocol; the session queued a close frame with `code`.

    The transport should be closed once the queued bytes are written (section 7.1.7).
    """

    code: int
    reason: str


Event = str | bytes | Ping | Pong | CloseReceived | ConnectionFailed
