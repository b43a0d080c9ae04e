"""The asyncio WebSocket client: `async with hybi.connect(uri, versions=...) as ws: ...`.

The client opens with its most preferred version. When the server refuses it with 400
or 426 and lists the versions it accepts (RFC 6455 section 4.4), the client retries once,
on a new connection, with its most preferred version in that list. It never retries
more than once; with no version in common, NoCommonVersion names both lists.
"""

from __future__ import annotations

import asyncio
import ssl as ssl_module
from collections.abc import Generator, Sequence
from types import TracebackType
from typing import Any

from hybi.aio.connection import Connection
from hybi.exceptions import (
    HandshakeAttempt,
    HandshakeError,
    InvalidHandshake,
    InvalidStatus,
    LegacyAnswer,
    NoCommonVersion,
)
from hybi.sansio.dialects import DEFAULT_VERSIONS, Dialect, VersionSpec, resolve_versions
from hybi.sansio.events import Role
from hybi.sansio.handshake import ClientHandshake
from hybi.sansio.http import DEFAULT_LIMITS, Headers, HTTPLimits
from hybi.sansio.negotiation import choose_retry
from hybi.sansio.rfc6455_session import DEFAULT_MAX_MESSAGE_SIZE
from hybi.sansio.uri import WebSocketURI, parse_uri

__all__ = ["ClientConnection", "connect"]

_VERSION_REFUSALS = (400, 426)


class ClientConnection(Connection):
    """A client's connection; `handshake_attempts` records every handshake it took."""

    role = Role.CLIENT

    def __init__(self, handshake: ClientHandshake, **options: Any) -> None:
        super().__init__(**options)
        self.handshake = handshake
        self.handshake_attempts: tuple[HandshakeAttempt, ...] = ()
        self.opened: asyncio.Future[None] = self.loop.create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        assert self.transport is not None
        self.request = self.handshake.request
        self.transport.write(self.handshake.request_bytes())

    def data_received(self, data: bytes) -> None:
        if self.session is not None:
            self._handle_data(data)
            return
        try:
            accepted = self.handshake.receive_data(data)
        except HandshakeError as error:
            self.response = self.handshake.response
            if not self.opened.done():
                self.opened.set_exception(error)
            assert self.transport is not None
            self.transport.close()
            return
        if accepted is None:
            return
        self.dialect = accepted.dialect
        self.subprotocol = accepted.subprotocol
        self.response = accepted.response
        self._open(accepted.session, self.handshake.trailing)

    def _check_ready(self) -> None:
        """The connection is open once the session is ready (after the hixie-76 answer)."""
        super()._check_ready()
        if self.ready.done() and not self.opened.done():
            failure = self.ready.exception()
            if failure is not None:
                self.opened.set_exception(failure)
            else:
                self.opened.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if not self.opened.done():
            try:
                self.handshake.connection_lost()
            except HandshakeError as error:
                self.opened.set_exception(error)
                return
            reason = f": {exc}" if exc else ""
            self.opened.set_exception(InvalidHandshake(f"connection closed during the opening handshake{reason}"))


class connect:  # noqa: N801 - used like a function, as in `async with connect(...)`
    """Open a client connection: `ws = await connect(uri)` or `async with connect(uri) as ws`.

    `versions` lists the versions the client speaks, most preferred first; it opens with
    the first and follows section 4.4 once if the server refuses it. `origin` is sent as
    `Origin` (version 13) or `Sec-WebSocket-Origin` (versions 7 and 8). `open_timeout`
    bounds the whole opening, retry included.
    """

    def __init__(
        self,
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
        max_size: int | None = DEFAULT_MAX_MESSAGE_SIZE,
        max_queue: int = 32,
        ping_interval: float | None = 20.0,
        ping_timeout: float | None = 20.0,
        close_timeout: float = 10.0,
        limits: HTTPLimits = DEFAULT_LIMITS,
    ) -> None:
        self.uri: WebSocketURI = parse_uri(uri)
        self.dialects = resolve_versions(versions)
        self.subprotocols = tuple(subprotocols)
        self.origin = origin
        self.extra_headers = tuple(extra_headers)
        self.ssl = ssl if ssl is not None else (ssl_module.create_default_context() if self.uri.secure else None)
        self.host = host if host is not None else self.uri.host
        self.port = port if port is not None else self.uri.port
        self.open_timeout = open_timeout
        self.max_size = max_size
        self.limits = limits
        self.connection_options = {
            "max_queue": max_queue,
            "ping_interval": ping_interval,
            "ping_timeout": ping_timeout,
            "close_timeout": close_timeout,
        }
        self.connection: ClientConnection | None = None

    async def _attempt(self, dialect: Dialect) -> ClientConnection:
        handshake = ClientHandshake(
            dialect,
            self.uri.resource,
            self.uri.host_header,
            origin=self.origin,
            subprotocols=self.subprotocols,
            extra_headers=Headers(self.extra_headers),
            limits=self.limits,
            max_message_size=self.max_size,
            secure=self.uri.secure,
        )
        loop = asyncio.get_running_loop()
        _, connection = await loop.create_connection(
            lambda: ClientConnection(handshake, **self.connection_options),
            self.host,
            self.port,
            ssl=self.ssl,
            server_hostname=self.uri.host if self.ssl is not None else None,
        )
        try:
            await connection.opened
        except BaseException:
            if connection.transport is not None:
                connection.transport.abort()
            raise
        return connection

    async def _connect(self) -> ClientConnection:
        """Section 4.4: one attempt, and at most one retry with a version the server listed.

        A server that answers a versioned request in the manner of hixie-76 or hixie-75
        (a 101 naming its URL in `Sec-WebSocket-Location` or `WebSocket-Location`, and no
        `Sec-WebSocket-Accept`) shows it speaks only the old drafts: the retry then uses
        that draft, if the client speaks it. A list naming 0 (hybi-00) means hixie-76.
        """
        attempts: list[HandshakeAttempt] = []
        tried: list[Dialect] = []
        dialect = self.dialects[0]
        while True:
            tried.append(dialect)
            try:
                connection = await self._attempt(dialect)
            except LegacyAnswer as answer:
                attempts.append(HandshakeAttempt(dialect.name, 101, (), str(answer)))
                legacy = next((d for d in self.dialects if d.name == answer.dialect), None)
                if legacy is None or len(tried) > 1 or legacy in tried:
                    raise
                dialect = legacy
                continue
            except InvalidStatus as refusal:
                status = refusal.response.status
                attempts.append(HandshakeAttempt(dialect.name, status, refusal.server_versions, str(refusal)))
                if status not in _VERSION_REFUSALS or dialect.listed_as in refusal.server_versions:
                    raise  # refused for another reason than its version
                retry = choose_retry(self.dialects, tried, refusal.server_versions) if len(tried) == 1 else None
                if retry is None:
                    raise NoCommonVersion(
                        refusal.response, [d.name for d in self.dialects], refusal.server_versions, attempts
                    ) from refusal
                dialect = retry
                continue
            attempts.append(HandshakeAttempt(dialect.name, 101))
            connection.handshake_attempts = tuple(attempts)
            return connection

    async def _open(self) -> ClientConnection:
        if self.open_timeout is None:
            self.connection = await self._connect()
        else:
            async with asyncio.timeout(self.open_timeout):
                self.connection = await self._connect()
        return self.connection

    def __await__(self) -> Generator[Any, None, ClientConnection]:
        return self._open().__await__()

    async def __aenter__(self) -> ClientConnection:
        return await self._open()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if self.connection is not None:
            await self.connection.close()
