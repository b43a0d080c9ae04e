"""The protocol core: bytes in, events out, bytes to send. No sockets, threads or clocks."""

from hybi.sansio.connection import (
    DEFAULT_MAX_SIZE,
    ClientConnection,
    CloseInfo,
    Connection,
    Options,
    ServerConnection,
    open_connection,
)
from hybi.sansio.dialects import ALL_VERSIONS, DEFAULT_VERSIONS, DIALECTS, Dialect, resolve_versions
from hybi.sansio.events import (
    CloseReceived,
    ConnectionFailed,
    Event,
    HandshakeFailed,
    Opened,
    Ping,
    Pong,
    RequestReceived,
    Role,
    State,
    TransportAction,
)
from hybi.sansio.extensions import ClientExtensionFactory, Extension, ServerExtensionFactory
from hybi.sansio.handshake import Accepted, ClientHandshake, ServerHandshake
from hybi.sansio.http import Headers, HTTPLimits, Request, Response
from hybi.sansio.negotiation import ClientNegotiation

__all__ = [
    "ALL_VERSIONS",
    "DEFAULT_MAX_SIZE",
    "DEFAULT_VERSIONS",
    "DIALECTS",
    "Accepted",
    "ClientConnection",
    "ClientExtensionFactory",
    "ClientHandshake",
    "ClientNegotiation",
    "CloseInfo",
    "CloseReceived",
    "Connection",
    "ConnectionFailed",
    "Dialect",
    "Event",
    "Extension",
    "HTTPLimits",
    "HandshakeFailed",
    "Headers",
    "Opened",
    "Options",
    "Ping",
    "Pong",
    "Request",
    "RequestReceived",
    "Response",
    "Role",
    "ServerConnection",
    "ServerExtensionFactory",
    "ServerHandshake",
    "State",
    "TransportAction",
    "open_connection",
    "resolve_versions",
]
