"""The threaded WebSocket client: `with hybi.sync.connect(uri, versions=...) as ws: ...`.

The client opens with its most preferred version. When the server refuses it with 400
or 426 and lists the versions it accepts (RFC 6455 section 4.4), the client retries once,
on a new connection, with its most preferred version in that list; `ClientNegotiation`
decides, as for the asyncio client. With no version in common, NoCommonVersion names both
lists.
"""

from __future__ import annotations

import socket
import ssl as ssl_module
import time
from collections.abc import Sequence
from dataclasses import replace

from hybi.exceptions import HandshakeAttempt, HandshakeError
from hybi.sansio.connection import DEFAULT_MAX_SIZE, Options
from hybi.sansio.connection import ClientConnection as ClientProtocol
from hybi.sansio.deflate import CompressionSetting, client_factories
from hybi.sansio.dialects import DEFAULT_VERSIONS, Dialect, VersionSpec, resolve_versions
from hybi.sansio.extensions import ClientExtensionFactory
from hybi.sansio.http import DEFAULT_LIMITS, HTTPLimits
from hybi.sansio.negotiation import ClientNegotiation
from hybi.sansio.uri import WebSocketURI, parse_uri
from hybi.sync.connection import Connection

__all__ = ["ClientConnection", "connect"]


class ClientConnection(Connection):
    """A client's connection; `handshake_attempts` records every handshake it took."""

    logger_name = "hybi.client"

    def __init__(self, protocol: ClientProtocol, sock: socket.socket, *, max_queue: int = 32) -> None:
        super().__init__(protocol, sock, max_queue=max_queue)
        self.handshake_attempts: tuple[HandshakeAttempt, ...] = ()


def connect(
    uri: str,
    *,
    versions: VersionSpec = DEFAULT_VERSIONS,
    subprotocols: Sequence[str] = (),
    origin: str | None = None,
    extra_headers: Sequence[tuple[str, str]] = (),
    ssl: ssl_module.SSLContext | None = None,
    host: str | None = None,
    port: int | None = None,
    open_timeout: float | None = 10.0,
    max_size: int | None = DEFAULT_MAX_SIZE,
    compression: CompressionSetting = "balanced",
    max_queue: int = 32,
    ping_interval: float | None = 20.0,
    ping_timeout: float | None = 20.0,
    close_timeout: float = 10.0,
    limits: HTTPLimits = DEFAULT_LIMITS,
) -> ClientConnection:
    """Open a client connection: `ws = connect(uri)` or `with connect(uri) as ws`.

    `versions` lists the versions the client speaks, most preferred first; it opens with
    the first and follows section 4.4 once if the server refuses it. `origin` is sent as
    `Origin` (version 13) or `Sec-WebSocket-Origin` (versions 7 and 8). `wss://` URIs use
    a default TLS context unless `ssl` gives one. `host` and `port` connect elsewhere than
    the URI says. `open_timeout` bounds the whole opening, retry included (TimeoutError).
    """
    opening = _Opening(
        parse_uri(uri),
        resolve_versions(versions),
        subprotocols=tuple(subprotocols),
        origin=origin,
        extra_headers=tuple(extra_headers),
        ssl=ssl,
        host=host,
        port=port,
        open_timeout=open_timeout,
        compression=compression,
        max_queue=max_queue,
        limits=limits,
        options=Options(
            max_size=max_size,
            open_timeout=open_timeout,
            close_timeout=close_timeout,
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
        ),
    )
    return opening.connect()


class _Opening:
    """One call to `connect`: its settings and the deadline of the whole opening."""

    def __init__(
        self,
        uri: WebSocketURI,
        dialects: tuple[Dialect, ...],
        *,
        subprotocols: tuple[str, ...],
        origin: str | None,
        extra_headers: tuple[tuple[str, str], ...],
        ssl: ssl_module.SSLContext | None,
        host: str | None,
        port: int | None,
        open_timeout: float | None,
        compression: CompressionSetting,
        max_queue: int,
        limits: HTTPLimits,
        options: Options,
    ) -> None:
        self.uri = uri
        self.dialects = dialects
        self.subprotocols = subprotocols
        self.origin = origin
        self.extra_headers = extra_headers
        self.ssl = ssl if ssl is not None else (ssl_module.create_default_context() if uri.secure else None)
        self.host = host if host is not None else uri.host
        self.port = port if port is not None else uri.port
        self.deadline = None if open_timeout is None else time.monotonic() + open_timeout
        self.extension_factories: list[ClientExtensionFactory] = client_factories(compression)
        self.max_queue = max_queue
        self.limits = limits
        # The whole opening, retry included, is bounded here by `deadline` (TimeoutError, as
        # asyncio.timeout raises for the asyncio client); a core timer of the same length,
        # started a moment later, would race it and sometimes win with another error.
        self.options = replace(options, open_timeout=None)

    def remaining(self) -> float | None:
        if self.deadline is None:
            return None
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("opening handshake timed out")
        return left

    def connect(self) -> ClientConnection:
        """Section 4.4, as `ClientNegotiation` decides: one attempt, and at most one retry
        with a version the server listed (or the draft its answer shows)."""
        negotiation = ClientNegotiation(self.dialects)
        while True:
            dialect = negotiation.next_dialect()
            try:
                connection = self.attempt(dialect)
            except HandshakeError as error:
                negotiation.failed(error)
                continue
            connection.handshake_attempts = negotiation.succeeded()
            return connection

    def attempt(self, dialect: Dialect) -> ClientConnection:
        """One opening handshake in `dialect`, on a new TCP (and TLS) connection."""
        sock = socket.create_connection((self.host, self.port), timeout=self.remaining())
        try:
            if self.ssl is not None:
                sock.settimeout(self.remaining())
                sock = self.ssl.wrap_socket(sock, server_hostname=self.uri.host)
            protocol = ClientProtocol(
                dialect,
                self.uri.resource,
                self.uri.host_header,
                self.options,
                origin=self.origin,
                subprotocols=self.subprotocols,
                extra_headers=self.extra_headers,
                extensions=self.extension_factories,
                limits=self.limits,
                secure=self.uri.secure,
                now=time.monotonic(),
            )
            connection = ClientConnection(protocol, sock, max_queue=self.max_queue)
        except BaseException:
            sock.close()
            raise
        connection._start()
        try:
            connection._wait_open(self.remaining())
        except BaseException:
            connection._abort()
            connection.wait_closed(5.0)
            raise
        return connection
