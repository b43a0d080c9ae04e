"""The asyncio WebSocket client: `async with hybi.connect(uri, versions=...) as ws: ...`.

The client opens with its most preferred version. When the server refuses it with 400
or 426 and lists the versions it accepts (RFC 6455 section 4.4), the client retries once,
on a new connection, with its most preferred version in that list. It never retries
more than once; with no version in common, NoCommonVersion names both lists.
"""

from __future__ import annotations

import asyncio
import logging
import ssl as ssl_module
from collections.abc import AsyncIterator, Sequence

from hybi._awaitable import AwaitableOpening
from hybi._options import header_fields, one_of_the_header_options, tls_handshake_failed
from hybi._proxy import ProxySetting, choose_proxy, proxy_tls
from hybi._version import __version__
from hybi.aio.connection import Connection
from hybi.aio.proxy import open_tunnel
from hybi.exceptions import HandshakeAttempt, HandshakeError, InvalidProxyMessage
from hybi.sansio.connection import DEFAULT_MAX_FRAGMENTS, DEFAULT_MAX_SIZE, Options
from hybi.sansio.connection import ClientConnection as ClientProtocol
from hybi.sansio.deflate import CompressionSetting, client_factories
from hybi.sansio.dialects import DEFAULT_VERSIONS, Dialect, VersionSpec, resolve_versions
from hybi.sansio.http import DEFAULT_LIMITS, HeadersLike, HTTPLimits
from hybi.sansio.negotiation import ClientNegotiation
from hybi.sansio.reconnect import Backoff, retryable
from hybi.sansio.uri import WebSocketURI, parse_uri

__all__ = ["USER_AGENT", "ClientConnection", "connect"]

USER_AGENT = f"hybi/{__version__} (Python WebSocket client)"
logger = logging.getLogger("hybi.client")


class ClientConnection(Connection):
    """A client's connection; `handshake_attempts` records every handshake it took."""

    logger_name = "hybi.client"

    def __init__(self, protocol: ClientProtocol, *, max_queue: int = 32) -> None:
        super().__init__(protocol, max_queue=max_queue)
        self.handshake_attempts: tuple[HandshakeAttempt, ...] = ()
        """Every handshake this connection took: the version, the status, the versions listed."""


class connect(AwaitableOpening[ClientConnection]):  # noqa: N801 - used like a function, as in `async with connect(...)`
    """Open a client connection: `ws = await connect(uri)`, `async with connect(uri) as ws`,
    or, reconnecting whenever the connection is lost, `async for ws in connect(uri)`.

    `versions` lists the versions the client speaks, most preferred first; it opens with
    the first and follows section 4.4 once if the server refuses it. `origin` is sent as
    `Origin` (version 13) or `Sec-WebSocket-Origin` (versions 7 and 8).
    `additional_headers` (a dict, (name, value) pairs or Headers; `extra_headers` is the
    same) go into the request, and `user_agent_header` as `User-Agent` (None: none).
    `open_timeout` bounds the whole opening, retry included. `ssl` takes an SSLContext
    (wss:// URIs get a default one) and `server_hostname` the name to check the
    certificate against. With `async for`, a failed attempt is retried after `backoff`
    delays (RFC 6455 section 7.2.3) when `hybi.sansio.reconnect.retryable` says it may
    succeed; other failures raise.

    `proxy` is True by default: the proxy the environment names (`HTTPS_PROXY`, `HTTP_PROXY`
    for ws://, `ALL_PROXY`; `NO_PROXY` exempts hosts), if any; a URL (`http://`, `https://`,
    `socks5h://`, `socks5://`, `socks4a://`, `socks4://`, credentials as `user:password@`)
    picks one, and None connects directly. `proxy_ssl` and `proxy_server_hostname` are for
    TLS to an `https://` proxy; `ssl` and `server_hostname` stay the server's, inside it.
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
        proxy: ProxySetting = True,
        proxy_ssl: ssl_module.SSLContext | None = None,
        proxy_server_hostname: str | None = None,
    ) -> None:
        self.uri: WebSocketURI = parse_uri(uri)
        self.proxy = choose_proxy(self.uri, proxy)
        self.proxy_ssl = proxy_tls(self.proxy, proxy_ssl)
        self.proxy_server_hostname = proxy_server_hostname
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
        self.options = Options(
            max_size=max_size,
            max_fragments=max_fragments,
            open_timeout=open_timeout,
            close_timeout=close_timeout,
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
            idle_timeout=idle_timeout,
        )
        self.connection: ClientConnection | None = None

    async def _attempt(self, dialect: Dialect) -> ClientConnection:
        loop = asyncio.get_running_loop()
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
            now=loop.time(),
        )
        try:
            if self.proxy is not None:
                connection = await self._through_proxy(protocol)
            else:
                _, connection = await loop.create_connection(
                    lambda: ClientConnection(protocol, max_queue=self.max_queue),
                    self.host,
                    self.port,
                    ssl=self.ssl,
                    server_hostname=(self.server_hostname or self.uri.host) if self.ssl is not None else None,
                )
        except ssl_module.SSLCertVerificationError:
            raise  # a real TLS server whose certificate is not trusted: said clearly already
        except (ssl_module.SSLError, ConnectionResetError) as error:
            if self.ssl is None:
                raise
            raise tls_handshake_failed(self.host, self.port, error) from error
        try:
            await connection.opened
        except BaseException:
            if connection.transport is not None:
                connection.transport.abort()
            raise
        return connection

    async def _through_proxy(self, protocol: ClientProtocol) -> ClientConnection:
        """A tunnel through the proxy, TLS to the server inside it for wss:// (TLS in TLS
        with an https:// proxy), then the WebSocket connection on the same transport."""
        assert self.proxy is not None
        loop = asyncio.get_running_loop()
        transport, tunnel = await open_tunnel(
            self.proxy,
            self.host,
            self.port,
            proxy_ssl=self.proxy_ssl,
            proxy_server_hostname=self.proxy_server_hostname,
            user_agent=self.additional_headers.get("User-Agent"),
        )
        try:
            if self.ssl is not None:
                if tunnel.early:
                    raise InvalidProxyMessage("bytes came through the tunnel before the TLS handshake")
                tls = await loop.start_tls(
                    transport, tunnel, self.ssl, server_hostname=self.server_hostname or self.uri.host
                )
                if tls is None:  # pragma: no cover - only when the loop is closing
                    raise ConnectionResetError("the event loop closed during the TLS handshake")
                transport = tls
            if tunnel.lost:  # closed right after the proxy's answer: no one else would say so
                raise ConnectionResetError("the proxy closed the tunnel as soon as it was open")
            connection = ClientConnection(protocol, max_queue=self.max_queue)
            transport.set_protocol(connection)
            connection.connection_made(transport)
            if tunnel.early:
                connection.data_received(bytes(tunnel.early))
            transport.resume_reading()
        except BaseException:
            transport.abort()
            raise
        return connection

    async def _connect(self) -> ClientConnection:
        """Section 4.4, as `ClientNegotiation` decides: one attempt, and at most one retry
        with a version the server listed (or the draft its answer shows)."""
        negotiation = ClientNegotiation(self.dialects)
        while True:
            dialect = negotiation.next_dialect()
            try:
                connection = await self._attempt(dialect)
            except HandshakeError as error:
                negotiation.failed(error)
                continue
            connection.handshake_attempts = negotiation.succeeded()
            return connection

    async def __aiter__(self) -> AsyncIterator[ClientConnection]:
        """A connection, then a new one each time the previous one ends: reconnection.

        A failed attempt is retried after the next `backoff` delay if `retryable(error)`,
        and raised otherwise; the delays start over after each successful opening.
        """
        while True:
            try:
                connection = await self._enter()
            except Exception as error:
                if not retryable(error):
                    raise
                delay = self.backoff.next_delay()
                logger.info("connecting to %s failed (%s); retrying in %.1f s", self.uri, error, delay)
                await asyncio.sleep(delay)
                continue
            self.backoff.reset()
            try:
                yield connection
            finally:
                await connection.close()

    async def _enter(self) -> ClientConnection:
        if self.open_timeout is None:
            self.connection = await self._connect()
        else:
            async with asyncio.timeout(self.open_timeout):
                self.connection = await self._connect()
        return self.connection

    async def _exit(self) -> None:
        if self.connection is not None:
            await self.connection.close()
