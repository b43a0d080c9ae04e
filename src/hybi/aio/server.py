"""The asyncio WebSocket server: `async with hybi.serve(handler, host, port): ...`."""

from __future__ import annotations

import asyncio
import inspect
import ssl as ssl_module
from collections.abc import Awaitable, Callable, Generator, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from hybi.aio.connection import Connection, logger
from hybi.exceptions import ConnectionClosed, HandshakeRejected, HybiError
from hybi.sansio.dialects import DEFAULT_VERSIONS, VersionSpec, resolve_versions
from hybi.sansio.dialects.keyaccept import bad_request
from hybi.sansio.events import Role
from hybi.sansio.handshake import ServerHandshake
from hybi.sansio.http import DEFAULT_LIMITS, Headers, HTTPLimits, Request, Response
from hybi.sansio.rfc6455_session import DEFAULT_MAX_MESSAGE_SIZE

__all__ = ["Handler", "ProcessRequest", "Server", "ServerConnection", "serve"]

Handler = Callable[["ServerConnection"], Awaitable[None]]
ProcessRequest = Callable[["ServerConnection", Request], "Response | Awaitable[Response | None] | None"]
SelectSubprotocol = Callable[["ServerConnection", Sequence[str]], "str | None"]


class ServerConnection(Connection):
    """A connection accepted by a Server; passed to the handler once open."""

    role = Role.SERVER

    def __init__(self, server: Server) -> None:
        options = server.options
        super().__init__(
            max_queue=options.max_queue,
            ping_interval=options.ping_interval,
            ping_timeout=options.ping_timeout,
            close_timeout=options.close_timeout,
        )
        self.server = server
        self._handshake = ServerHandshake(
            server.dialects,
            subprotocols=options.subprotocols,
            limits=options.limits,
            max_message_size=options.max_size,
            secure=server.secure,
        )
        self._handshake_task: asyncio.Task[None] | None = None
        self._open_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.server.connections.add(self)
        self._open_timer = self.loop.call_later(self.server.options.open_timeout, self._handshake_timed_out)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self.server.connections.discard(self)
        if self._open_timer is not None:
            self._open_timer.cancel()

    def _handshake_timed_out(self) -> None:
        if self.session is None and self.transport is not None:
            self._failure_detail = "opening handshake timed out"
            self.transport.abort()

    def data_received(self, data: bytes) -> None:
        if self.session is not None:
            self._handle_data(data)
            return
        try:
            request = self._handshake.receive_data(data)
        except HandshakeRejected as rejection:
            self._reject(rejection.response)
            return
        if request is not None and self._handshake_task is None:
            assert self.transport is not None
            self.transport.pause_reading()
            self._handshake_task = self.loop.create_task(self._run(request))
            self.server.tasks.add(self._handshake_task)
            self._handshake_task.add_done_callback(self.server.tasks.discard)

    def _reject(self, response: Response) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(response.serialize())
            self.transport.close()

    async def _run(self, request: Request) -> None:
        """Finish the handshake, then run the handler and close when it returns."""
        self.request = request
        options = self.server.options
        try:
            if options.process_request is not None:
                answer = options.process_request(self, request)
                if inspect.isawaitable(answer):
                    answer = await answer
                if answer is not None:
                    self._reject(answer)
                    return
            dialect = self._handshake.negotiate(request)
            if options.origins is not None and request.origin not in options.origins:
                raise bad_request(f"origin {request.origin!r} is not allowed", 403)
            offered = dialect.offered_subprotocols(request)
            if options.select_subprotocol is not None:
                subprotocol = options.select_subprotocol(self, offered)
            else:
                subprotocol = self._handshake.select_subprotocol(request, dialect)
            reply, accepted = self._handshake.accept(
                request, dialect, subprotocol=subprotocol, extra_headers=Headers(options.extra_headers)
            )
        except HandshakeRejected as rejection:
            self._reject(rejection.response)
            return
        except Exception:
            logger.exception("opening handshake failed")
            self._reject(bad_request("internal server error", 500).response)
            return
        if self.transport is None or self.transport.is_closing():
            return
        if self._open_timer is not None:
            self._open_timer.cancel()
        self.dialect = accepted.dialect
        self.subprotocol = accepted.subprotocol
        self.response = accepted.response
        self._open(accepted.session, self._handshake.trailing, head=reply)
        self.transport.resume_reading()
        try:
            # hixie-76: key3 may come only after the 101 head (proxies hold it back until then).
            await asyncio.wait_for(asyncio.shield(self.ready), options.open_timeout)
        except (TimeoutError, HybiError) as error:
            self._failure_detail = f"opening handshake not completed: {error or 'timed out'}"
            self.transport.abort()
            return
        try:
            await self.server.handler(self)
        except ConnectionClosed:
            pass  # the peer closed or dropped the connection while the handler used it
        except Exception:
            logger.exception("connection handler failed")
            await self._close_anyhow(1011, "internal error")
        else:
            await self.close()


@dataclass(frozen=True, kw_only=True)
class ServerOptions:
    """Settings shared by every connection of a server (see `serve` for their meaning)."""

    subprotocols: Sequence[str] = ()
    process_request: ProcessRequest | None = None
    select_subprotocol: SelectSubprotocol | None = None
    origins: Sequence[str | None] | None = None
    extra_headers: Sequence[tuple[str, str]] = ()
    max_size: int | None = DEFAULT_MAX_MESSAGE_SIZE
    max_queue: int = 32
    ping_interval: float | None = 20.0
    ping_timeout: float | None = 20.0
    close_timeout: float = 10.0
    open_timeout: float = 10.0
    limits: HTTPLimits = DEFAULT_LIMITS


class Server:
    """A listening WebSocket server; `close()` ends every connection with 1001."""

    def __init__(
        self, handler: Handler, versions: VersionSpec, options: ServerOptions, *, secure: bool = False
    ) -> None:
        self.handler = handler
        self.dialects = resolve_versions(versions)
        self.options = options
        self.connections: set[ServerConnection] = set()
        self.tasks: set[asyncio.Task[None]] = set()
        self.server: asyncio.Server | None = None
        self.secure = secure

    @property
    def sockets(self) -> tuple[Any, ...]:
        return tuple(self.server.sockets) if self.server is not None else ()

    @property
    def port(self) -> int:
        """The port of the first listening socket (useful after binding port 0)."""
        return int(self.sockets[0].getsockname()[1])

    def close(self, code: int = 1001, reason: str = "server shutting down") -> None:
        """Stop listening and start closing every connection."""
        if self.server is not None:
            self.server.close()
        for connection in list(self.connections):
            if connection.session is None:
                if connection.transport is not None:
                    connection.transport.abort()
            else:
                task = connection.loop.create_task(connection._close_anyhow(code, reason))
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)

    async def wait_closed(self) -> None:
        """Wait until the listening sockets and every connection's handler are done."""
        if self.server is not None:
            await self.server.wait_closed()
        while self.tasks:
            await asyncio.gather(*list(self.tasks), return_exceptions=True)

    async def serve_forever(self) -> None:
        assert self.server is not None
        await self.server.serve_forever()

    async def __aenter__(self) -> Server:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()
        await self.wait_closed()


class serve:  # noqa: N801 - used like a function, as in `async with serve(...)`
    """Start a WebSocket server: `server = await serve(...)` or `async with serve(...) as server`.

    `handler(connection)` runs for each accepted connection; the connection closes with
    1000 when it returns and with 1011 when it raises. `versions` are the protocol
    versions accepted, most preferred first; a request for any other version gets a 426
    answer listing them (RFC 6455 section 4.4). `process_request(connection, request)`
    may return a Response to answer instead of the handshake (authentication, plain HTTP
    pages); `origins` restricts the Origin header; `subprotocols` lists those spoken, most
    preferred first.
    """

    def __init__(
        self,
        handler: Handler,
        host: str | Sequence[str] | None = None,
        port: int | None = None,
        *,
        versions: VersionSpec = DEFAULT_VERSIONS,
        ssl: ssl_module.SSLContext | None = None,
        sock: Any = None,
        backlog: int = 100,
        **options: Any,
    ) -> None:
        self._server = Server(handler, versions, ServerOptions(**options), secure=ssl is not None)
        self._host = host
        self._port = port
        self._ssl = ssl
        self._sock = sock
        self._backlog = backlog

    async def _start(self) -> Server:
        loop = asyncio.get_running_loop()
        server = self._server
        server.server = await loop.create_server(
            lambda: ServerConnection(server),
            self._host,
            self._port,
            ssl=self._ssl,
            sock=self._sock,
            backlog=self._backlog,
        )
        return server

    def __await__(self) -> Generator[Any, None, Server]:
        return self._start().__await__()

    async def __aenter__(self) -> Server:
        return await self._start()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self._server.close()
        await self._server.wait_closed()
