"""The protocol core: bytes in, events out, bytes to send. No sockets, threads or clocks."""

from hybi.sansio.dialects import ALL_VERSIONS, DEFAULT_VERSIONS, DIALECTS, Dialect, Session, resolve_versions
from hybi.sansio.events import CloseReceived, ConnectionFailed, Event, Ping, Pong, Role, State
from hybi.sansio.handshake import Accepted, ClientHandshake, ServerHandshake
from hybi.sansio.http import Headers, HTTPLimits, Request, Response

__all__ = [
    "ALL_VERSIONS",
    "DEFAULT_VERSIONS",
    "DIALECTS",
    "Accepted",
    "ClientHandshake",
    "CloseReceived",
    "ConnectionFailed",
    "Dialect",
    "Event",
    "HTTPLimits",
    "Headers",
    "Ping",
    "Pong",
    "Request",
    "Response",
    "Role",
    "ServerHandshake",
    "Session",
    "State",
    "resolve_versions",
]
