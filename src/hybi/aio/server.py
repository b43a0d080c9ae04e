"""The asyncio WebSocket server: `async with hybi.serve(handler, host, port): ...`."""

from __future__ import annotations

import asyncio
import inspect
import socket
import ssl as ssl_module
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from hybi._awaitable import AwaitableOpening
from hybi._options import header_fields, one_of_the_header_options
from hybi._version import __version__
from hybi.aio.connection import Connection
from hybi.exceptions import ConnectionClosed
from hybi.sansio.connection import DEFAULT_MAX_FRAGMENTS, DEFAULT_MAX_SIZE, Options
from hybi.sansio.connection import ServerConnection as ServerProtocol
from hybi.sansio.deflate import CompressionSetting, server_factories
from hybi.sansio.dialects import DEFAULT_VERSIONS, VersionSpec, resolve_versions
from hybi.sansio.events import State
from hybi.sansio.handshake import OriginRule
from hybi.sansio.http import DEFAULT_LIMITS, HeadersLike, HTTPLimits, Request, Response, text_response

__all__ = ["Handler", "ProcessRequest", "Server", "ServerConnection", "serve"]

Handler = Callable[["ServerConnection"], Awaitable[None]]
ProcessRequest = Callable[["ServerConnection", Request], "Response | Awaitable[Response | None] | None"]
SelectSubprotocol = Callable[["ServerConnection", Sequence[str]], "str | None"]
ProcessResponseHook = Callable[["ServerConnection", Request, Response], "Response | None"]

SERVER_HEADER = f"hybi/{__version__}"


class ServerConnection(Connection):
    """A connection accepted by a Server; passed to the handler once open."""

    logger_name = "hybi.server"

    def __init__(self, server: Server) -> None:
        options = server.options
        select = options.select_subprotocol
        protocol = ServerProtocol(
            server.dialects,
            server.protocol_options,
            subprotocols=options.subprotocols,
            select_subprotocol=None if select is None else (lambda request, offered: select(self, offered)),
            origins=options.origins,
            extensions=server.extension_factories,
            extra_headers=server.response_headers.items(),
            limits=options.limits,
            secure=server.secure,
            require_subprotocol=options.require_subprotocol,
            now=asyncio.get_running_loop().time(),
        )
        super().__init__(protocol, max_queue=options.max_queue)
        self.server_protocol = protocol
        self.server = server

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # which arms the open timeout
        self.server.handshaking.add(self)

    def _keepalive_inherited(self) -> bool:
        return self.server.keepalive_inherited

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self.server.handshaking.discard(self)
        self.server.connections.discard(self)

    def _request_received(self, request: Request) -> None:
        """Run process_request, awaiting it if it is a coroutine, then let the core finish."""
        hook = self.server.options.process_request
        if hook is None:
            self._answer(None)
            return
        try:
            answer = hook(self, request)
        except Exception:
            self.logger.exception("process_request failed")
            answer = text_response(500, "internal server error\n")
        if inspect.isawaitable(answer):
            assert self.transport is not None
            self.transport.pause_reading()
            self.server.start(self._await_answer(answer))
        else:
            self._answer(answer)

    async def _await_answer(self, pending: Awaitable[Response | None]) -> None:
        try:
            answer = await pending
        except Exception:
            self.logger.exception("process_request failed")
            answer = text_response(500, "internal server error\n")
        self._answer(answer)
        if self.transport is not None and not self.transport.is_closing() and not self._reading_paused:
            self.transport.resume_reading()

    def _answer(self, answer: Response | None) -> None:
        """`process_request`'s answer, or None: the core's pipeline decides."""
        protocol = self.server_protocol
        if protocol.state is not State.CONNECTING:
            return  # the opening handshake timed out meanwhile
        if answer is not None:
            events = protocol.reject(answer)
        else:
            hook = self.server.options.process_response
            events = protocol.accept(
                process_response=None if hook is None else (lambda request, response: hook(self, request, response)),
                now=self.loop.time(),
            )
        if protocol.internal_error is not None:
            self.logger.error("opening handshake failed", exc_info=protocol.internal_error)
        self._process(events)

    def _opened(self) -> None:
        super()._opened()
        self.server.handshaking.discard(self)
        self.server.connections.add(self)
        server = self.server
        work = server.handler(self)
        # Server.start, with its two callbacks in one: this runs for every connection.
        task = self.loop.create_task(work) if asyncio.iscoroutine(work) else asyncio.ensure_future(work)
        server.tasks.add(task)
        task.add_done_callback(self._handler_done)

    def _handler_done(self, task: asyncio.Future[None]) -> None:
        """The handler returned: close with 1000; it raised: log it and close with 1011.
        (A callback rather than a wrapping coroutine: an idle connection holds one frame
        less.) The closing handshake goes on by itself; `Server.wait_closed` waits for it."""
        self.server.tasks.discard(task)
        if task.cancelled():
            self.close_anyhow(1001, "going away")
            return
        error = task.exception()
        if error is None or isinstance(error, ConnectionClosed):
            self.close_anyhow(1000, "")  # nothing happens if the peer closed it already
            return
        self.logger.error("connection handler failed", exc_info=error)
        self.close_anyhow(1011, "internal error")


@dataclass(frozen=True, kw_only=True)
class ServerOptions:
    """Settings shared by every connection of a server (see `serve` for their meaning)."""

    subprotocols: Sequence[str] = ()
    require_subprotocol: bool = False
    select_subprotocol: SelectSubprotocol | None = None
    process_request: ProcessRequest | None = None
    process_response: ProcessResponseHook | None = None
    origins: Sequence[OriginRule] | None = None
    extra_headers: HeadersLike | None = None
    server_header: str | None = SERVER_HEADER
    compression: CompressionSetting = "balanced"
    max_size: int | None = DEFAULT_MAX_SIZE
    max_fragments: int | None = DEFAULT_MAX_FRAGMENTS
    max_queue: int = 32
    ping_interval: float | None = 20.0
    ping_timeout: float | None = 20.0
    idle_timeout: float | None = None
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
        self.extension_factories = server_factories(options.compression)
        self.response_headers = header_fields(options.extra_headers, "Server", options.server_header)
        self.protocol_options = Options(
            max_size=options.max_size,
            max_fragments=options.max_fragments,
            open_timeout=options.open_timeout,
            close_timeout=options.close_timeout,
            ping_interval=options.ping_interval,
            ping_timeout=options.ping_timeout,
            idle_timeout=options.idle_timeout,
        )
        self.connections: set[ServerConnection] = set()
        """The open connections (a handshake under way is not one yet)."""
        self.handshaking: set[ServerConnection] = set()
        self.tasks: set[asyncio.Future[None]] = set()
        self.server: asyncio.Server | None = None
        self.secure = secure
        self.keepalive_inherited = False
        """Whether every listening socket has TCP keepalive on, which the sockets it accepts
        inherit (so that each connection need not set it)."""

    def _inherit_keepalive(self, listener: asyncio.Server) -> None:
        """Turn TCP keepalive on in the sockets of `listener`, which does not listen yet, so
        that every socket it accepts has it from the start (where accepted sockets are known
        to inherit it: Linux)."""
        if sys.platform != "linux" or not listener.sockets:
            return
        for sock in listener.sockets:
            if sock.family not in (socket.AF_INET, socket.AF_INET6):
                return  # a Unix socket has no keepalive: connection_made sees to each one
        for sock in listener.sockets:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        self.keepalive_inherited = True

    @property
    def sockets(self) -> tuple[Any, ...]:
        return tuple(self.server.sockets) if self.server is not None else ()

    @property
    def port(self) -> int:
        """The port of the first listening socket (useful after binding port 0)."""
        return int(self.sockets[0].getsockname()[1])

    def start(self, work: Awaitable[None]) -> asyncio.Future[None]:
        """Run a task of this server's, which `wait_closed` waits for."""
        task = asyncio.ensure_future(work)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    def close(self, code: int = 1001, reason: str = "server shutting down") -> None:
        """Stop listening and start closing every connection."""
        if self.server is not None:
            self.server.close()
        for connection in list(self.handshaking):
            if connection.transport is not None:
                connection.transport.abort()
        for connection in list(self.connections):
            connection.close_anyhow(code, reason)

    async def wait_closed(self) -> None:
        """Wait until the listening sockets, every connection's handler and every
        connection are done."""
        if self.server is not None:
            await self.server.wait_closed()
        while self.tasks or self.connections or self.handshaking:
            if self.tasks:
                await asyncio.gather(*list(self.tasks), return_exceptions=True)
            ends = [connection.connection_lost_waiter for connection in self.connections | self.handshaking]
            if ends:
                await asyncio.wait(ends)

    async def serve_forever(self) -> None:
        """Accept connections until the server is closed (or this task is cancelled)."""
        assert self.server is not None
        await self.server.serve_forever()

    async def __aenter__(self) -> Server:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()
        await self.wait_closed()


class serve(AwaitableOpening[Server]):  # noqa: N801 - used like a function, as in `async with serve(...)`
    """Start a WebSocket server: `server = await serve(...)` or `async with serve(...) as server`.

    `handler(connection)` runs for each accepted connection; the connection closes with
    1000 when it returns and with 1011 when it raises. `versions` are the protocol
    versions accepted, most preferred first; a request for any other version gets a 426
    answer listing them (RFC 6455 section 4.4).

    - `process_request(connection, request)` (plain or coroutine) may return a Response to
      answer instead of the handshake (authentication, plain HTTP pages);
      `process_response(connection, request, response)` may change the 101, or return
      another response to send instead.
    - `origins` restricts the Origin header (strings, or compiled patterns matched whole;
      None in the list admits requests without Origin; others get 403).
    - `subprotocols` lists those spoken, most preferred first (`select_subprotocol`
      chooses instead); `require_subprotocol` refuses with 400 a client that offers none.
    - `additional_headers` (`extra_headers` is the same) go into every 101, and
      `server_header` as `Server` (None: none).
    - `compression`: a preset's name, a `hybi.Compression`, or None; `max_size` bounds a
      message (1009 past it), `max_fragments` its frames; `max_queue` messages wait for
      `recv()` before reading pauses.
    - `ping_interval`, `ping_timeout`: keepalive (1011 when a pong is late); `idle_timeout`
      closes (1001) a connection that sent nothing for that long; `open_timeout` bounds
      the handshake and `close_timeout` the closing handshake, after which TCP is dropped.
    """

    def __init__(
        self,
        handler: Handler,
        host: str | Sequence[str] | None = None,
        port: int | None = None,
        *,
        versions: VersionSpec = DEFAULT_VERSIONS,
        subprotocols: Sequence[str] = (),
        require_subprotocol: bool = False,
        select_subprotocol: SelectSubprotocol | None = None,
        process_request: ProcessRequest | None = None,
        process_response: ProcessResponseHook | None = None,
        origins: Sequence[OriginRule] | None = None,
        additional_headers: HeadersLike | None = None,
        extra_headers: HeadersLike | None = None,
        server_header: str | None = SERVER_HEADER,
        compression: CompressionSetting = "balanced",
        max_size: int | None = DEFAULT_MAX_SIZE,
        max_fragments: int | None = DEFAULT_MAX_FRAGMENTS,
        max_queue: int = 32,
        ping_interval: float | None = 20.0,
        ping_timeout: float | None = 20.0,
        idle_timeout: float | None = None,
        close_timeout: float = 10.0,
        open_timeout: float = 10.0,
        limits: HTTPLimits = DEFAULT_LIMITS,
        ssl: ssl_module.SSLContext | None = None,
        sock: Any = None,
        backlog: int = 100,
    ) -> None:
        options = ServerOptions(
            subprotocols=subprotocols,
            require_subprotocol=require_subprotocol,
            select_subprotocol=select_subprotocol,
            process_request=process_request,
            process_response=process_response,
            origins=origins,
            extra_headers=one_of_the_header_options(additional_headers, extra_headers),
            server_header=server_header,
            compression=compression,
            max_size=max_size,
            max_fragments=max_fragments,
            max_queue=max_queue,
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
            idle_timeout=idle_timeout,
            close_timeout=close_timeout,
            open_timeout=open_timeout,
            limits=limits,
        )
        self._server = Server(handler, versions, options, secure=ssl is not None)
        self._host = host
        self._port = port
        self._ssl = ssl
        self._sock = sock
        self._backlog = backlog

    async def _enter(self) -> Server:
        loop = asyncio.get_running_loop()
        server = self._server
        server.server = await loop.create_server(
            lambda: ServerConnection(server),
            self._host,
            self._port,
            ssl=self._ssl,
            sock=self._sock,
            backlog=self._backlog,
            start_serving=False,
        )
        if self._sock is None:  # a socket of the caller's may have queued connections already
            server._inherit_keepalive(server.server)
        await server.server.start_serving()
        return server

    async def _exit(self) -> None:
        self._server.close()
        await self._server.wait_closed()
