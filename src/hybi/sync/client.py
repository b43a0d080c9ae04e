"""The threaded WebSocket client: `with hybi.sync.connect(uri, versions=...) as ws: ...`.

The client opens with its most preferred version. When the server refuses it with 400
or 426 and lists the versions it accepts (RFC 6455 section 4.4), the client retries once,
on a new connection, with its most preferred version in that list; `ClientNegotiation`
decides, as for the asyncio client. With no version in common, NoCommonVersion names both
lists. `for ws in connect(uri)` reconnects as `async for` does on asyncio, after the
delays and for the failures `hybi.sansio.reconnect` says.
"""

from __future__ import annotations

import logging
import socket
import ssl as ssl_module
import time
from collections.abc import Iterator, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, NoReturn

from hybi._options import header_fields, one_of_the_header_options, tls_handshake_failed
from hybi.aio.client import USER_AGENT
from hybi.exceptions import HandshakeAttempt, HandshakeError
from hybi.sansio.connection import DEFAULT_MAX_FRAGMENTS, DEFAULT_MAX_SIZE, Options
from hybi.sansio.connection import ClientConnection as ClientProtocol
from hybi.sansio.deflate import CompressionSetting, client_factories
from hybi.sansio.dialects import DEFAULT_VERSIONS, Dialect, VersionSpec, resolve_versions
from hybi.sansio.http import DEFAULT_LIMITS, HeadersLike, HTTPLimits
from hybi.sansio.negotiation import ClientNegotiation
from hybi.sansio.reconnect import Backoff, retryable
from hybi.sansio.uri import WebSocketURI, parse_uri
from hybi.sync.connection import Connection

__all__ = ["USER_AGENT", "ClientConnection", "connect"]

logger = logging.getLogger("hybi.client")


class ClientConnection(Connection):
    """A client's connection; `handshake_attempts` records every handshake it took."""

    logger_name = "hybi.client"

    def __init__(self, protocol: ClientProtocol, sock: socket.socket, *, max_queue: int = 32) -> None:
        super().__init__(protocol, sock, max_queue=max_queue)
        self.handshake_attempts: tuple[HandshakeAttempt, ...] = ()
        """Every handshake this connection took: the version, the status, the versions listed."""


class connect:  # noqa: N801 - used like a function, as in `with connect(...) as ws`
    """Open a client connection: `with connect(uri) as ws`, `ws = connect(uri).open()`, or,
    reconnecting whenever the connection is lost, `for ws in connect(uri)`.

    The options are the asyncio `hybi.connect`'s, with the same names, defaults and
    meaning. `versions` lists the versions the client speaks, most preferred first; it
    opens with the first and follows section 4.4 once if the server refuses it. `origin` is
    sent as `Origin` (version 13) or `Sec-WebSocket-Origin` (versions 7 and 8).
    `additional_headers` (a dict, (name, value) pairs or Headers; `extra_headers` is the
    same) go into the request, and `user_agent_header` as `User-Agent` (None: none).
    `open_timeout` bounds the whole opening, retry included (TimeoutError). `ssl` takes an
    SSLContext (wss:// URIs get a default one) and `server_hostname` the name to check the
    certificate against; `host` and `port` connect elsewhere than the URI says. With `for`,
    a failed attempt is retried after `backoff` delays (RFC 6455 section 7.2.3) when
    `hybi.sansio.reconnect.retryable` says it may succeed; other failures raise.
    """

    def __init__(
        self,
        uri: str,
        *,
        versions: VersionSpec = DEFAULT_VERSIONS,
        subprotocols: Sequence[str] = (),
        origin: str | None = None,
        additional_headers: HeadersLike | None = None,
        extra_headers: HeadersLike | None = None,
        user_agent_header: str | None = USER_AGENT,
        compression: CompressionSetting = "balanced",
        ssl: ssl_module.SSLContext | None = None,
        server_hostname: str | None = None,
        host: str | None = None,
        port: int | None = None,
        open_timeout: float | None = 10.0,
        close_timeout: float = 10.0,
        ping_interval: float | None = 20.0,
        ping_timeout: float | None = 20.0,
        idle_timeout: float | None = None,
        max_size: int | None = DEFAULT_MAX_SIZE,
        max_fragments: int | None = DEFAULT_MAX_FRAGMENTS,
        max_queue: int = 32,
        limits: HTTPLimits = DEFAULT_LIMITS,
        backoff: Backoff | None = None,
    ) -> None:
        self.uri: WebSocketURI = parse_uri(uri)
        self.dialects = resolve_versions(versions)
        self.subprotocols = tuple(subprotocols)
        self.origin = origin
        self.additional_headers = header_fields(
            one_of_the_header_options(additional_headers, extra_headers), "User-Agent", user_agent_header
        )
        self.ssl = ssl if ssl is not None else (ssl_module.create_default_context() if self.uri.secure else None)
        self.server_hostname = server_hostname
        self.host = host if host is not None else self.uri.host
        self.port = port if port is not None else self.uri.port
        self.open_timeout = open_timeout
        self.limits = limits
        self.max_queue = max_queue
        self.backoff = backoff or Backoff()
        self.extension_factories = client_factories(compression)
        # The whole opening, retry included, is bounded here by `open_timeout` (TimeoutError,
        # as asyncio.timeout raises for the asyncio client); a core timer of the same length,
        # started a moment later, would race it and sometimes win with another error.
        self.options = Options(
            max_size=max_size,
            max_fragments=max_fragments,
            open_timeout=None,
            close_timeout=close_timeout,
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
            idle_timeout=idle_timeout,
        )
        self.connection: ClientConnection | None = None

    # -- opening ---------------------------------------------------------------------------

    def open(self) -> ClientConnection:
        """Open a connection (the one `with` closes): section 4.4, as `ClientNegotiation`
        decides, one attempt and at most one retry with a version the server listed (or
        the draft its answer shows), all within `open_timeout`."""
        deadline = None if self.open_timeout is None else time.monotonic() + self.open_timeout
        negotiation = ClientNegotiation(self.dialects)
        while True:
            dialect = negotiation.next_dialect()
            try:
                connection = self._attempt(dialect, deadline)
            except HandshakeError as error:
                negotiation.failed(error)
                continue
            connection.handshake_attempts = negotiation.succeeded()
            self.connection = connection
            return connection

    def _attempt(self, dialect: Dialect, deadline: float | None) -> ClientConnection:
        """One opening handshake in `dialect`, on a new TCP (and TLS) connection."""

        def remaining() -> float | None:
            if deadline is None:
                return None
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("opening handshake timed out")
            return left

        sock = socket.create_connection((self.host, self.port), timeout=remaining())
        try:
            if self.ssl is not None:
                sock.settimeout(remaining())
                try:
                    sock = self.ssl.wrap_socket(sock, server_hostname=self.server_hostname or self.uri.host)
                except ssl_module.SSLCertVerificationError:
                    raise  # a real TLS server whose certificate is not trusted: said clearly already
                except (ssl_module.SSLError, ConnectionResetError) as error:
                    raise tls_handshake_failed(self.host, self.port, error) from error
            protocol = ClientProtocol(
                dialect,
                self.uri.resource,
                self.uri.host_header,
                self.options,
                origin=self.origin,
                subprotocols=self.subprotocols,
                extra_headers=self.additional_headers,
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
            connection._wait_open(remaining())
        except BaseException:
            connection._abort()
            connection.wait_closed(5.0)
            raise
        return connection

    # -- the ways to use it ----------------------------------------------------------------

    def __iter__(self) -> Iterator[ClientConnection]:
        """A connection, then a new one each time the previous one ends: reconnection.

        A failed attempt is retried after the next `backoff` delay if `retryable(error)`,
        and raised otherwise; the delays start over after each successful opening. Each
        connection is closed when the loop moves on from it (or leaves).
        """
        while True:
            try:
                connection = self.open()
            except Exception as error:
                if not retryable(error):
                    raise
                delay = self.backoff.next_delay()
                logger.info("connecting to %s failed (%s); retrying in %.1f s", self.uri, error, delay)
                time.sleep(delay)
                continue
            self.backoff.reset()
            try:
                yield connection
            finally:
                connection.close()

    def __enter__(self) -> ClientConnection:
        return self.open()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if self.connection is not None:
            self.connection.close()

    if not TYPE_CHECKING:  # for people, at run time; mypy says it its own way

        def __getattr__(self, name: str) -> NoReturn:
            if hasattr(ClientConnection, name):
                raise AttributeError(
                    f"connect() is not a connection (no {name!r}): use `with connect(...) as ws`, "
                    "`ws = connect(...).open()` or `for ws in connect(...)`"
                )
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
