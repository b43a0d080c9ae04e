"""ASGI WebSocket connections under uvicorn, in every version hybi speaks.

    uvicorn app:app --ws hybi.asgi:UvicornWebSocketProtocol
    HYBI_ASGI_VERSIONS=all uvicorn app:app --ws hybi.asgi:UvicornWebSocketProtocol

uvicorn's HTTP protocol reads the request head; when it is an upgrade to WebSocket it makes
a `UvicornWebSocketProtocol`, hands it the transport and the head again (re-serialized),
and steps aside. From there this module is a pump over `hybi.sansio.ServerConnection`, as
`hybi.aio` is: the core parses the head, chooses the version and writes every byte; the
application decides through ASGI messages (`websocket.accept`, `websocket.close` before
accepting: 403, `websocket.http.response.*`: its own answer). The 101 is written only once
the application accepts.

Which versions: the class attribute `versions`, else the environment variable
`HYBI_ASGI_VERSIONS` (as `hybi serve --versions` takes them: "13,8,7", "all",
"13,hixie-76"), else 13, 8 and 7, as everywhere in hybi: the older drafts' frames are not
masked, so they are opt-in (docs/versions.md).

Where a version lacks a feature: `websocket.send` of bytes to a hixie client raises
`hybi.UnsupportedFeature` in the application, which may catch it; a `websocket.close` code
and reason are dropped where close frames carry none (hixie-75/76, hybi-02, 5), since
closing must always work. `scope["extensions"]["hybi"]["version"]` tells the application
which version it talks (13, 8, 7, 6, 5, "hybi-02", "hixie-76", "hixie-75").

hixie-76 clients send 8 bytes (key3) right after the head. uvicorn's HTTP protocols hand
over the head without the bytes that came with it: with h11 they are taken from h11's
buffer here; httptools and zttp drop them. `UvicornHTTPProtocol` (`--http
hybi.asgi:UvicornHTTPProtocol`) runs uvicorn's own HTTP protocol and passes them on.

uvicorn is imported only for type checking and, by `UvicornHTTPProtocol`, when it is made.
"""

from __future__ import annotations

import asyncio
import http
import logging
import os
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import TYPE_CHECKING, Any, ClassVar, cast
from urllib.parse import quote, unquote

from hybi.exceptions import HandshakeRejected
from hybi.sansio.connection import Options, ServerConnection
from hybi.sansio.deflate import CompressionSetting, server_factories
from hybi.sansio.dialects import DEFAULT_VERSIONS, Dialect, VersionSpec, resolve_versions
from hybi.sansio.events import (
    CloseReceived,
    ConnectionFailed,
    Event,
    HandshakeFailed,
    Opened,
    RequestReceived,
    Role,
    State,
    TransportAction,
)
from hybi.sansio.http import Headers, Request, Response

if TYPE_CHECKING:
    from uvicorn.config import Config
    from uvicorn.server import ServerState

__all__ = ["VERSIONS_ENV", "ClientDisconnected", "UvicornHTTPProtocol", "UvicornWebSocketProtocol"]

VERSIONS_ENV = "HYBI_ASGI_VERSIONS"
"""The environment variable naming the versions served when the class does not."""

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Message, Receive, Send], Awaitable[object]]

_TRACE = 5  # uvicorn's TRACE log level
_REQUEST, _DECIDING, _ACCEPTING, _OPEN, _DENYING, _DONE = range(6)
"""Where the application is: waiting for the head; deciding; accepted, the handshake not yet
complete (hixie-76 waits for key3); open; sending its own HTTP answer; answered or closed."""


class ClientDisconnected(OSError):
    """`send()` on a connection that is gone (ASGI spec 2.4: a server-specific OSError)."""


def _versions(spec: VersionSpec | None) -> tuple[Dialect, ...]:
    if spec is None:
        spec = os.environ.get(VERSIONS_ENV, "").strip() or DEFAULT_VERSIONS
    return resolve_versions(spec)


def _address(transport: asyncio.BaseTransport, name: str) -> tuple[str, int | None] | None:
    """The transport's peer or local address as ASGI gives it: (host, port), or (path, None)
    for a Unix socket."""
    info = transport.get_extra_info(name)
    if isinstance(info, (tuple, list)) and len(info) >= 2:
        return str(info[0]), int(info[1])
    if isinstance(info, str) and info:
        return info, None
    return None


def _header_pairs(items: Iterable[Any], what: str) -> list[tuple[str, str]]:
    """ASGI [name, value] byte pairs as header fields, each checked as `Headers.add` checks
    (a token name, no CR, LF or NUL in the value); RuntimeError names the bad one."""
    checked = Headers()
    for item in items:
        try:
            name, value = item
            checked.add(bytes(name).decode("latin-1"), bytes(value).decode("latin-1"))
        except (TypeError, ValueError) as error:
            raise RuntimeError(f"invalid header in {what}: {item!r} ({error})") from None
    return list(checked)


def _unread_bytes(previous: asyncio.BaseProtocol) -> bytes:
    """What the HTTP protocol read past the request head and would otherwise drop.

    uvicorn's h11 protocol leaves those bytes in its h11 connection, whose `trailing_data`
    (documented for protocol switches) holds them; `UvicornHTTPProtocol` passes them on by
    itself. Other protocols have dropped them.
    """
    if isinstance(previous, UvicornHTTPProtocol):
        return b""
    trailing = getattr(getattr(previous, "conn", None), "trailing_data", None)
    if isinstance(trailing, tuple) and trailing and isinstance(trailing[0], (bytes, bytearray)):
        return bytes(trailing[0])
    return b""


def _keeps_unread_bytes(previous: asyncio.BaseProtocol) -> bool:
    return isinstance(previous, UvicornHTTPProtocol) or hasattr(getattr(previous, "conn", None), "trailing_data")


class UvicornWebSocketProtocol(asyncio.Protocol):
    """One WebSocket connection of an ASGI application under uvicorn.

    uvicorn makes it with its config (`ws_max_size`, `ws_max_queue`, `ws_ping_interval`,
    `ws_ping_timeout`, `ws_per_message_deflate`, `root_path`) once the HTTP protocol has
    read an upgrade request. A subclass may set the class attributes below and be named
    by its import string instead.
    """

    versions: ClassVar[VersionSpec | None] = None
    """The versions served, most preferred first; None: $HYBI_ASGI_VERSIONS, else 13, 8, 7."""
    compression: ClassVar[CompressionSetting] = "balanced"
    """The compression agreed to when uvicorn's `ws_per_message_deflate` is on (the default):
    permessage-deflate, and deflate-frame for the browsers of 2012-2014, with 2^12 windows,
    the same memory as uvicorn's websockets protocol (docs/howto/compression.md)."""
    open_timeout: ClassVar[float | None] = 10.0
    """Seconds from the request head to an open connection: the application's decision and,
    for hixie-76, the wait for key3. Then the connection is dropped."""
    close_timeout: ClassVar[float | None] = 10.0
    """Seconds to wait for the peer's close frame, then for TCP to close."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        if not config.loaded:
            config.load()
        self.config = config
        self.app = cast(ASGIApp, config.loaded_app)
        self.loop = _loop or asyncio.get_running_loop()
        self.logger = logging.getLogger("uvicorn.error")
        self.app_state = app_state
        self.connections = cast("set[Any]", server_state.connections)
        self.tasks = server_state.tasks
        self.default_headers = server_state.default_headers
        self.max_queue = max(1, config.ws_max_queue)
        ping_interval = config.ws_ping_interval if config.ws_ping_interval and config.ws_ping_interval > 0 else None
        options = Options(
            max_size=config.ws_max_size,
            open_timeout=self.open_timeout,
            close_timeout=self.close_timeout,
            ping_interval=ping_interval,
            ping_timeout=config.ws_ping_timeout,
        )
        self.conn = ServerConnection(
            _versions(self.versions),
            options,
            select_subprotocol=lambda request, offered: self._subprotocol,
            extensions=server_factories(self.compression if config.ws_per_message_deflate else None),
            now=self.loop.time(),
        )
        self.transport: asyncio.Transport | None = None
        self.scope: Message = {}
        self.client: tuple[str, int | None] | None = None
        self._phase = _REQUEST
        self._handed_over = False
        self._may_lose_bytes = False
        self._subprotocol: str | None = None
        self._incoming: deque[Message] = deque()
        self._receive_waiter: asyncio.Future[None] | None = None
        self._disconnect: Message | None = None
        self._disconnected = False  # the transport is gone
        self._app_closed = False  # the application sent websocket.close, its own answer, or returned
        self._opened: asyncio.Future[None] = self.loop.create_future()
        self._denial: tuple[int, list[tuple[str, str]], list[bytes]] | None = None
        self._reading_paused = False
        self._writing_paused = False
        self._drain_waiters: list[asyncio.Future[None]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None

    # -- asyncio.Protocol ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)
        self.connections.add(self)
        self.client = _address(transport, "peername")
        if self.logger.isEnabledFor(_TRACE):
            self.logger.log(_TRACE, "%sWebSocket connection made", self._prefix())
        self._arm_timer()

    def data_received(self, data: bytes) -> None:
        if not self._handed_over:
            # The first call is the head, from the HTTP protocol, still the transport's.
            self._handed_over = True
            assert self.transport is not None
            previous = self.transport.get_protocol()
            if previous is not self:
                self._may_lose_bytes = not _keeps_unread_bytes(previous)
                data += _unread_bytes(previous)
            is_reading = getattr(self.transport, "is_reading", None)
            self._reading_paused = callable(is_reading) and not is_reading()
        self._process(self.conn.receive_data(data, now=self.loop.time()))

    def eof_received(self) -> bool | None:
        self._process(self.conn.receive_eof(now=self.loop.time()))
        return None  # the transport closes itself; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self._process(self.conn.connection_lost(now=self.loop.time()))
        self._disconnected = True
        self.connections.discard(self)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = self._timer_at = None
        info = self.conn.close_info()  # 1006 when no close frame came
        self._queue_disconnect(info.code if info is not None else 1006, info.reason if info is not None else "")
        if not self._opened.done():
            self._opened.set_exception(ClientDisconnected("the connection closed during the opening handshake"))
            self._opened.exception()
        self._release_writers()
        if self.logger.isEnabledFor(_TRACE):
            self.logger.log(_TRACE, "%sWebSocket connection lost", self._prefix())

    def pause_writing(self) -> None:
        self._writing_paused = True
        self._update_reading()

    def resume_writing(self) -> None:
        self._writing_paused = False
        self._update_reading()
        self._release_writers()

    def shutdown(self) -> None:
        """uvicorn is stopping or reloading: close with 1012 (Service Restart)."""
        if self._phase == _DECIDING:
            self.logger.info('%s - "WebSocket %s" 503 (shutting down)', self._client(), self._path())
            answer = Response(503, "Service Unavailable", Headers([("Content-Length", "0"), ("Connection", "close")]))
            self._phase = _DONE
            self._queue_disconnect(1012, "")
            self._process(self.conn.reject(answer, now=self.loop.time()))
        elif self._phase in (_ACCEPTING, _OPEN):
            self._queue_disconnect(1012, "")
            self.conn.close(1012, now=self.loop.time())
            self._update_reading()
            self._flush()
        elif self.transport is not None:
            self.transport.close()

    # -- events from the core --------------------------------------------------------------

    def _process(self, events: list[Event]) -> None:
        for event in events:
            if isinstance(event, str):
                self._queue_message({"type": "websocket.receive", "text": event})
            elif isinstance(event, bytes):
                self._queue_message({"type": "websocket.receive", "bytes": event})
            elif isinstance(event, RequestReceived):
                self._request_received(event.request)
            elif isinstance(event, Opened):
                self._phase = _OPEN
                if not self._opened.done():
                    self._opened.set_result(None)
            elif isinstance(event, (CloseReceived, ConnectionFailed)):
                self._queue_disconnect(event.code, event.reason)
            elif isinstance(event, HandshakeFailed) and not self._opened.done():
                self._opened.set_exception(ClientDisconnected(f"the opening handshake failed: {event.error}"))
                self._opened.exception()
        self._flush()

    def _request_received(self, request: Request) -> None:
        """The head is in: refuse what is no WebSocket request of a version served (426,
        400: the application is not asked), else ask the application."""
        try:
            dialect = self.conn.handshake.negotiate(request)
        except HandshakeRejected as rejection:
            self._phase = _DONE
            self.logger.info(
                '%s - "WebSocket %s" %d (%s)', self._client(), request.target, rejection.response.status, rejection
            )
            self._process(self.conn.reject(rejection.response, now=self.loop.time()))
            return
        # Nothing more is read until the application decides; what came with the head is kept.
        self._phase = _DECIDING
        self._update_reading()
        if self._may_lose_bytes and dialect.challenge(Role.SERVER, request, None) is not None:
            self.logger.warning(
                "%s request: its 8 bytes after the head may have been dropped by uvicorn's HTTP "
                "protocol; run uvicorn with --http h11 or --http hybi.asgi:UvicornHTTPProtocol",
                dialect.name,
            )
        self.scope = self._make_scope(request, dialect)
        self._incoming.append({"type": "websocket.connect"})
        task = self.loop.create_task(self._run_asgi())
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def _make_scope(self, request: Request, dialect: Dialect) -> Message:
        assert self.transport is not None
        root_path = self.config.root_path
        raw_path, _, query = request.target.partition("?")
        version = dialect.version if dialect.version is not None else dialect.name
        return {
            "type": "websocket",
            "asgi": {"version": self.config.asgi_version, "spec_version": "2.4"},
            "http_version": request.http_version.removeprefix("HTTP/"),
            "scheme": "wss" if self.transport.get_extra_info("sslcontext") else "ws",
            "server": _address(self.transport, "sockname"),
            "client": self.client,
            "root_path": root_path,
            "path": root_path + unquote(raw_path),
            "raw_path": root_path.encode() + raw_path.encode("latin-1"),
            "query_string": query.encode("latin-1"),
            "headers": [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in request.headers],
            "subprotocols": dialect.offered_subprotocols(request),
            "state": self.app_state.copy(),
            "extensions": {"websocket.http.response": {}, "hybi": {"version": version}},
        }

    # -- receiving -------------------------------------------------------------------------

    def _queue_message(self, message: Message) -> None:
        if self._disconnect is not None:
            return  # the connection is closing: the application has been told, or said so
        self._incoming.append(message)
        self._wake_receiver()
        self._update_reading()

    def _queue_disconnect(self, code: int, reason: str) -> None:
        """The one websocket.disconnect; receive() returns it again when called again."""
        if self._disconnect is not None:
            return
        self._disconnect = {"type": "websocket.disconnect", "code": code, "reason": reason}
        self._wake_receiver()

    def _wake_receiver(self) -> None:
        waiter = self._receive_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def receive(self) -> Message:
        """The next ASGI event: websocket.connect first, then websocket.receive ones, then
        websocket.disconnect (each time it is asked for, once the connection is over)."""
        while not self._incoming:
            if self._disconnect is not None:
                return dict(self._disconnect)
            if self._receive_waiter is not None:
                raise RuntimeError("another task is already waiting in receive()")
            self._receive_waiter = self.loop.create_future()
            try:
                await self._receive_waiter
            finally:
                self._receive_waiter = None
        message = self._incoming.popleft()
        self._update_reading()
        return message

    def _update_reading(self) -> None:
        """Read while the application takes what comes: not while it decides, nor while
        writing is paused, nor while max_queue messages wait for it (until half are taken);
        once the connection is closing, read on for the peer's close frame."""
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        backlog = 0 if self._disconnect is not None else len(self._incoming)
        limit = self.max_queue // 2 + 1 if self._reading_paused else self.max_queue
        pause = self._phase == _DECIDING or self._writing_paused or backlog >= limit
        if pause != self._reading_paused:
            self._reading_paused = pause
            if pause:
                transport.pause_reading()
            else:
                transport.resume_reading()

    # -- sending ---------------------------------------------------------------------------

    async def send(self, message: Message) -> None:
        """Carry out one ASGI send event; raise ClientDisconnected once the connection is gone
        and RuntimeError for an event out of place."""
        kind = message.get("type")
        while self._writing_paused and not self._disconnected:
            waiter = self.loop.create_future()
            self._drain_waiters.append(waiter)
            await waiter
        if self._disconnected:
            raise ClientDisconnected(f"cannot send {kind!r}: the connection is closed")
        if self._phase == _DECIDING:
            if kind == "websocket.accept":
                await self._accept(message)
            elif kind == "websocket.close":
                self._refuse()
            elif kind == "websocket.http.response.start":
                self._start_denial(message)
            else:
                raise RuntimeError(
                    "Expected ASGI message 'websocket.accept', 'websocket.close' or "
                    f"'websocket.http.response.start' but got {kind!r}."
                )
        elif self._phase == _DENYING:
            if kind != "websocket.http.response.body":
                raise RuntimeError(f"Expected ASGI message 'websocket.http.response.body' but got {kind!r}.")
            self._continue_denial(message)
        elif self._phase in (_ACCEPTING, _OPEN) and not self._app_closed:
            if self._phase == _ACCEPTING:
                await asyncio.shield(self._opened)
            if kind == "websocket.send":
                self._send_data(message)
            elif kind == "websocket.close":
                self._close(message)
            else:
                raise RuntimeError(f"Expected ASGI message 'websocket.send' or 'websocket.close', but got {kind!r}.")
        elif not self._app_closed:  # the server answered or closed by itself (shutdown, timeout)
            raise ClientDisconnected(f"cannot send {kind!r}: the server has closed the connection")
        else:
            raise RuntimeError(f"Unexpected ASGI message {kind!r}, after sending 'websocket.close' or a response.")

    async def _accept(self, message: Message) -> None:
        subprotocol = message.get("subprotocol")
        if subprotocol is not None and subprotocol not in self.scope["subprotocols"]:
            raise RuntimeError(
                f"websocket.accept chose subprotocol {subprotocol!r}, which the client did not offer "
                f"(it offered {self.scope['subprotocols']!r})"
            )
        headers = _header_pairs(message.get("headers") or (), "websocket.accept")
        if any(name.lower() == "sec-websocket-protocol" for name, _ in headers):
            raise RuntimeError("websocket.accept headers must not set sec-websocket-protocol: use 'subprotocol'")
        if self.conn.state is not State.CONNECTING:
            raise ClientDisconnected("the opening handshake is over: it timed out or the connection closed")
        self._subprotocol = subprotocol
        handshake = self.conn.handshake
        handshake.extra_headers = tuple(self._with_defaults(headers))
        # A trusted proxy's X-Forwarded-Proto (uvicorn's proxy headers middleware rewrites the
        # scope) decides the scheme of the URL that hixie answers name.
        handshake.secure = self.scope.get("scheme") == "wss"
        self._phase = _ACCEPTING
        self._update_reading()
        events = self.conn.accept(now=self.loop.time())
        if self.conn.internal_error is not None:
            self.logger.error("opening handshake failed", exc_info=self.conn.internal_error)
        self._process(events)
        await asyncio.shield(self._opened)  # hixie-76: until key3 is in
        version = self.scope["extensions"]["hybi"]["version"]
        self.logger.info('%s - "WebSocket %s" [accepted] version %s', self._client(), self._path(), version)

    def _with_defaults(self, headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """uvicorn's default headers (date, server) where the application set none of them."""
        given = {name.lower() for name, _ in headers}
        defaults = [
            (name.decode("latin-1"), value.decode("latin-1"))
            for name, value in self.default_headers
            if name.decode("latin-1").lower() not in given
        ]
        return defaults + headers

    def _refuse(self) -> None:
        """websocket.close before accepting: 403, as the ASGI spec says."""
        self.logger.info('%s - "WebSocket %s" 403', self._client(), self._path())
        headers = self._with_defaults([("Content-Length", "0"), ("Connection", "close")])
        self._answer(Response(403, "Forbidden", Headers(headers)))

    def _start_denial(self, message: Message) -> None:
        status = message.get("status")
        if not isinstance(status, int) or not 200 <= status <= 599:
            raise RuntimeError(f"Invalid HTTP status code {status!r} in response.")
        headers = _header_pairs(message.get("headers") or (), "websocket.http.response.start")
        self.logger.info('%s - "WebSocket %s" %d', self._client(), self._path(), status)
        self._denial = (status, headers, [])
        self._phase = _DENYING

    def _continue_denial(self, message: Message) -> None:
        assert self._denial is not None
        status, headers, body = self._denial
        body.append(bytes(message.get("body") or b""))
        if message.get("more_body", False):
            return
        content = b"".join(body)
        given = {name.lower() for name, _ in headers}
        if "content-length" not in given:
            headers.append(("Content-Length", str(len(content))))
        if "connection" not in given:
            headers.append(("Connection", "close"))
        try:
            phrase = http.HTTPStatus(status).phrase
        except ValueError:
            phrase = ""
        self._answer(Response(status, phrase, Headers(self._with_defaults(headers)), content))

    def _answer(self, response: Response) -> None:
        self._phase = _DONE
        self._app_closed = True
        self._queue_disconnect(1006, "")  # no WebSocket was ever open
        self._process(self.conn.reject(response, now=self.loop.time()))

    def _send_data(self, message: Message) -> None:
        text, data = message.get("text"), message.get("bytes")
        if (text is None) == (data is None):
            raise RuntimeError("websocket.send needs exactly one of 'text' and 'bytes'")
        if not self.conn.can_send:
            raise ClientDisconnected("the connection is closing or closed")
        if isinstance(text, str):
            self.conn.send_text(text)
        elif isinstance(data, (bytes, bytearray, memoryview)):
            self.conn.send_binary(data)  # hixie: UnsupportedFeature, for the application
        else:
            raise TypeError(f"websocket.send takes str 'text' or bytes 'bytes', not {message!r:.100}")
        self._flush()

    def _close(self, message: Message) -> None:
        code = message.get("code")
        code = 1000 if code is None else code
        reason = message.get("reason") or ""
        if not self.conn.can_send:
            raise ClientDisconnected("the connection is closing or closed")
        # Where close frames carry no status the code and reason are dropped: the close itself
        # must go out. An invalid code or a reason over 123 bytes raises ValueError.
        self.conn.close(code, reason, now=self.loop.time())
        self._app_closed = True
        self._queue_disconnect(code, reason)
        self._update_reading()  # read the peer's close frame, whatever the queue holds
        self._flush()

    def _release_writers(self) -> None:
        for waiter in self._drain_waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._drain_waiters.clear()

    # -- the application -------------------------------------------------------------------

    async def _run_asgi(self) -> None:
        try:
            result = await self.app(self.scope, self.receive, self.send)
        except ClientDisconnected:
            self._after_app(failed=False)
        except Exception:
            self.logger.exception("Exception in ASGI application\n")
            self._after_app(failed=True)
        except BaseException:  # cancelled (uvicorn's graceful shutdown timed out)
            self._after_app(failed=True)
            raise
        else:
            if self._phase == _DECIDING:
                self.logger.error("ASGI callable returned without completing handshake.")
            elif result is not None:
                self.logger.error("ASGI callable should return None, but returned '%s'.", result)
            self._after_app(failed=False)

    def _after_app(self, *, failed: bool) -> None:
        """The application is done: answer 500 if it never decided, close an open
        connection (1000, or 1011 if it failed), drop a half-sent answer."""
        if self._disconnected:
            return
        if self._phase == _DECIDING:
            headers = self._with_defaults([("Content-Type", "text/plain; charset=utf-8"), ("Connection", "close")])
            self._answer(Response(500, "Internal Server Error", Headers(headers), b"Internal Server Error"))
        elif self._phase in (_ACCEPTING, _OPEN) and not self._app_closed:
            self._app_closed = True
            code, reason = (1011, "internal error") if failed else (1000, "")
            self._queue_disconnect(code, reason)
            self.conn.close(code, reason, now=self.loop.time())
            self._update_reading()
            self._flush()
        elif self._phase == _DENYING and self.transport is not None:
            self._phase = _DONE
            self.transport.close()

    # -- writing, timers -------------------------------------------------------------------

    def _flush(self) -> None:
        """Write what the core queued, in one write, then do what it says to the transport."""
        transport = self.transport
        if transport is None:
            return
        data = self.conn.data_to_send()
        if data and not transport.is_closing():
            transport.write(data)
        action = self.conn.transport_action
        if action is TransportAction.ABORT:
            transport.abort()
        elif action is TransportAction.CLOSE and not transport.is_closing():
            transport.close()
        self._arm_timer()

    def _arm_timer(self) -> None:
        deadline = None if self._disconnected else self.conn.next_deadline()
        if deadline == self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = deadline
        self._timer = None if deadline is None else self.loop.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = self._timer_at = None
        self._process(self.conn.handle_timer(self.loop.time()))

    # -- logging ---------------------------------------------------------------------------

    def _client(self) -> str:
        return "%s:%s" % self.client if self.client else ""  # noqa: UP031 - uvicorn's format

    def _prefix(self) -> str:
        return f"{self._client()} - " if self.client else ""

    def _path(self) -> str:
        path = quote(str(self.scope.get("path", "")))
        query = bytes(self.scope.get("query_string", b""))
        return f"{path}?{query.decode('latin-1')}" if query else path


class UvicornHTTPProtocol(asyncio.Protocol):
    """uvicorn's own HTTP protocol, made to hand a WebSocket protocol every byte that follows
    an upgrade request's head (`--http hybi.asgi:UvicornHTTPProtocol`).

    uvicorn's protocols re-serialize the head for the WebSocket protocol and drop whatever
    arrived with it in the same read: a hixie-76 client's key3 (h11 keeps it, and
    `UvicornWebSocketProtocol` takes it from there; httptools and zttp do not). This wrapper
    gives the inner protocol its input cut after each blank line that ends a head, so that a
    head ends a read; when the inner protocol has handed the transport over, the rest of the
    read goes to the new protocol. `http` names the inner protocol as uvicorn's `--http`
    does ("auto", "h11", "httptools", "zttp", or an import string).
    """

    http: ClassVar[str] = "auto"

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        from uvicorn.config import HTTP_PROTOCOLS  # noqa: PLC0415 - uvicorn is there when it makes this
        from uvicorn.importer import import_from_string  # noqa: PLC0415

        inner_class = import_from_string(HTTP_PROTOCOLS.get(self.http, self.http))
        if isinstance(inner_class, type) and issubclass(inner_class, UvicornHTTPProtocol):
            raise ValueError("UvicornHTTPProtocol cannot wrap itself")
        self.inner: asyncio.Protocol = inner_class(
            config=config, server_state=server_state, app_state=app_state, _loop=_loop
        )
        self.transport: asyncio.BaseTransport | None = None
        self._tail = b""  # the last 3 bytes read, for a blank line split across reads

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.inner.connection_made(transport)

    def _head_end(self, data: bytes, start: int) -> int:
        """The index in `data` just past the next CRLF CRLF from `start`, or -1."""
        if start == 0 and self._tail:
            found = (self._tail + data[:3]).find(b"\r\n\r\n")
            if found >= 0:
                return found + 4 - len(self._tail)
        found = data.find(b"\r\n\r\n", start)
        return -1 if found < 0 else found + 4

    def data_received(self, data: bytes) -> None:
        transport = self.transport
        assert transport is not None
        start = 0
        while start < len(data):
            end = self._head_end(data, start)
            stop = len(data) if end < 0 else end
            self.inner.data_received(data[start:stop])
            start = stop
            current = transport.get_protocol()
            if current is not self:  # upgraded: the rest of this read is the new protocol's
                if start < len(data):
                    cast(asyncio.Protocol, current).data_received(data[start:])
                return
        self._tail = (self._tail + data)[-3:]

    def eof_received(self) -> bool | None:
        return self.inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()
