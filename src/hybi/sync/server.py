"""The threaded WebSocket server: `with hybi.sync.serve(handler, host, port) as server:
server.serve_forever()`.

Each accepted connection gets a thread that runs the opening handshake through the core
(`RequestReceived` → `process_request` → `reject` or `accept`), then `handler(connection)`;
the connection's pump runs beside it.
"""

from __future__ import annotations

import contextlib
import logging
import selectors
import socket
import ssl as ssl_module
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Self

from hybi._options import header_fields, one_of_the_header_options
from hybi.aio.server import SERVER_HEADER
from hybi.exceptions import ConnectionClosed
from hybi.sansio.connection import DEFAULT_MAX_FRAGMENTS, DEFAULT_MAX_SIZE, Options
from hybi.sansio.connection import ServerConnection as ServerProtocol
from hybi.sansio.deflate import CompressionSetting, server_factories
from hybi.sansio.dialects import DEFAULT_VERSIONS, Dialect, VersionSpec, resolve_versions
from hybi.sansio.events import State
from hybi.sansio.extensions import ServerExtensionFactory
from hybi.sansio.handshake import OriginRule
from hybi.sansio.http import DEFAULT_LIMITS, HeadersLike, HTTPLimits, Request, Response, text_response
from hybi.sync.connection import Connection, _drain_wakeups

__all__ = [
    "SERVER_HEADER",
    "Handler",
    "ProcessRequest",
    "ProcessResponseHook",
    "SelectSubprotocol",
    "Server",
    "ServerConnection",
    "ServerOptions",
    "serve",
]

logger = logging.getLogger("hybi.server")

Handler = Callable[["ServerConnection"], object]
ProcessRequest = Callable[["ServerConnection", Request], "Response | None"]
SelectSubprotocol = Callable[["ServerConnection", Sequence[str]], "str | None"]
ProcessResponseHook = Callable[["ServerConnection", Request, Response], "Response | None"]


class ServerConnection(Connection):
    """A connection accepted by a Server; passed to the handler once open."""

    logger_name = "hybi.server"

    def __init__(self, server: Server, sock: socket.socket, *, now: float) -> None:
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
            now=now,
        )
        super().__init__(protocol, sock, max_queue=options.max_queue)
        self.server_protocol = protocol
        self.server = server

    def _request_received(self, request: Request) -> None:
        """The opening request is complete: reading stops until it is answered."""
        self._request_pending = True

    def _handshake(self) -> bool:
        """Run the opening handshake (section 4.2.2): wait for the request, let
        `process_request` answer it or the core's pipeline decide; True once OPEN."""
        with self._lock:
            while not self._request_pending and not self._handshake_done.is_set():
                self._changed.wait()
            if not self._request_pending:
                return False  # refused by the core (bad request, 426), timed out or dropped
            request = self.protocol.request
        assert request is not None
        answer: Response | None = None
        hook = self.server.options.process_request
        if hook is not None:
            try:
                answer = hook(self, request)
            except Exception:
                self.logger.exception("process_request failed")
                answer = text_response(500, "internal server error\n")
        with self._lock:
            self._request_pending = False
            protocol = self.server_protocol
            if protocol.state is State.CONNECTING:  # else the opening handshake timed out meanwhile
                now = time.monotonic()
                if answer is not None:
                    events = protocol.reject(answer, now=now)
                else:
                    # process_response runs in the core's accept(), under the lock: the pump
                    # has nothing to do meanwhile, since reading waits for this answer.
                    after = self.server.options.process_response
                    hook_of_core = None if after is None else (lambda request, response: after(self, request, response))
                    events = protocol.accept(process_response=hook_of_core, now=now)
                if protocol.internal_error is not None:
                    self.logger.error("opening handshake failed", exc_info=protocol.internal_error)
                self._process(events)
            self._wake()
        self._handshake_done.wait()  # the core bounds it with open_timeout (hixie-76's key3)
        return self._open_error is None

    def _run_handler(self) -> None:
        """Run the handler; close with 1000 when it returns, 1011 when it raises."""
        try:
            self.server.handler(self)
        except ConnectionClosed:
            pass  # the peer closed or dropped the connection while the handler used it
        except Exception:
            self.logger.exception("connection handler failed")
            self.close_anyhow(1011, "internal error")
            self._wait_closed_bounded()
        else:
            self.close()


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
    """A listening WebSocket server. `serve_forever()` accepts connections, a thread for
    each; `shutdown()` (from another thread, or on leaving `with`) stops it and ends every
    connection with 1001."""

    def __init__(
        self,
        handler: Handler,
        dialects: tuple[Dialect, ...],
        options: ServerOptions,
        listener: socket.socket,
        *,
        ssl: ssl_module.SSLContext | None = None,
    ) -> None:
        self.handler = handler
        self.dialects = dialects
        self.options = options
        self.extension_factories: list[ServerExtensionFactory] = server_factories(options.compression)
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
        self.ssl = ssl
        self.secure = ssl is not None
        self.socket = listener
        self.port: int = int(listener.getsockname()[1])
        """The listening port (useful after binding port 0)."""
        listener.setblocking(False)
        self._lock = threading.Lock()
        self._live: set[ServerConnection] = set()  # from accept to the end of the handler
        self._tls_handshaking: set[ssl_module.SSLSocket] = set()
        self._threads: set[threading.Thread] = set()
        self._closing = False
        self._serving = False
        self._listener_closed = False
        self._stopped = threading.Event()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)

    @property
    def connections(self) -> set[ServerConnection]:
        """The open connections (a handshake under way, or a closing one, is not open)."""
        with self._lock:
            return {connection for connection in self._live if connection.state is State.OPEN}

    # -- accepting -----------------------------------------------------------------------

    def serve_forever(self) -> None:
        """Accept connections until `shutdown()`."""
        with self._lock:
            if self._serving:
                raise RuntimeError("serve_forever() is already running")
            if self._closing:
                return
            self._serving = True
        selector = selectors.DefaultSelector()
        try:
            selector.register(self.socket, selectors.EVENT_READ)
            selector.register(self._wake_r, selectors.EVENT_READ)
            while not self._closing:
                for key, _ in selector.select():
                    if key.fileobj is self._wake_r:
                        _drain_wakeups(self._wake_r)
                    elif not self._closing:
                        self._accept()
        finally:
            selector.close()
            self._close_listener()
            self._stopped.set()

    def _accept(self) -> None:
        try:
            sock, _ = self.socket.accept()
        except (BlockingIOError, InterruptedError):
            return
        except OSError as error:  # out of file descriptors, for example: wait a little
            logger.error("accept() failed: %s", error)
            time.sleep(0.1)
            return
        with self._lock:
            if self._closing:
                sock.close()
                return
            thread = threading.Thread(target=self._handle, args=(sock,), name="hybi-sync-handler", daemon=True)
            self._threads.add(thread)
        thread.start()

    def _handle(self, sock: socket.socket) -> None:
        try:
            self._serve_one(sock, time.monotonic())
        except Exception:
            logger.exception("connection failed")
        finally:
            with self._lock:
                self._threads.discard(threading.current_thread())

    def _serve_one(self, sock: socket.socket, now: float) -> None:
        if self.ssl is not None:
            tls = self._tls_handshake(sock)
            if tls is None:
                return
            sock = tls
        with self._lock:
            if self._closing:
                sock.close()
                return
            connection = ServerConnection(self, sock, now=now)
            self._live.add(connection)
        try:
            connection._start()
            if not connection._handshake():
                connection.wait_closed(5.0)  # the refusal is written and the socket closed
                return
            if self._closing:  # shutdown() came during the handshake
                connection.close_anyhow(1001, "server shutting down")
                connection._wait_closed_bounded()
                return
            connection._run_handler()
        finally:
            with self._lock:
                self._live.discard(connection)

    def _tls_handshake(self, sock: socket.socket) -> ssl_module.SSLSocket | None:
        """The TLS handshake, bounded by open_timeout (which also bounds the WebSocket one)."""
        assert self.ssl is not None
        try:
            tls = self.ssl.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        except (OSError, ValueError):
            sock.close()
            return None
        with self._lock:
            self._tls_handshaking.add(tls)
        try:
            tls.settimeout(self.options.open_timeout)
            tls.do_handshake()
        except (OSError, ValueError) as error:
            logger.debug("TLS handshake failed: %s", error)
            tls.close()
            return None
        finally:
            with self._lock:
                self._tls_handshaking.discard(tls)
        return tls

    # -- stopping ------------------------------------------------------------------------

    def shutdown(self, timeout: float | None = None, *, code: int = 1001, reason: str = "server shutting down") -> bool:
        """Stop listening, close every open connection with `code` (1001: going away),
        drop the handshakes under way and wait for every connection's thread.

        The wait is bounded by `timeout`, by default twice close_timeout and a second:
        what the core allows a closing handshake and then TCP. True when every thread ended.
        """
        bound = 2 * self.options.close_timeout + 1.0 if timeout is None else timeout
        deadline = time.monotonic() + bound
        with self._lock:
            self._closing = True
            serving = self._serving
            live = list(self._live)
            tls_handshaking = list(self._tls_handshaking)
            threads = list(self._threads)
        with contextlib.suppress(OSError):
            self._wake_w.send(b"\0")
        if serving:
            self._stopped.wait(max(0.0, deadline - time.monotonic()))
        else:
            self._close_listener()
        for tls in tls_handshaking:
            with contextlib.suppress(OSError):
                socket.socket.shutdown(tls, socket.SHUT_RDWR)  # the plain socket's: fails the handshake
        for connection in live:
            if connection.state is State.CONNECTING:
                connection._abort()
            else:
                connection.close_anyhow(code, reason)
        current = threading.current_thread()
        for thread in threads:
            if thread is not current:
                thread.join(max(0.0, deadline - time.monotonic()))
        return not any(thread.is_alive() for thread in threads if thread is not current)

    def _close_listener(self) -> None:
        with self._lock:
            if self._listener_closed:
                return
            self._listener_closed = True
        self.socket.close()
        self._wake_r.close()
        self._wake_w.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.shutdown()


def serve(
    handler: Handler,
    host: str | None = None,
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
    sock: socket.socket | None = None,
    backlog: int = 100,
) -> Server:
    """Listen for WebSocket connections; `server.serve_forever()` accepts them.

    The options are the asyncio `hybi.serve`'s, with the same names, defaults and meaning,
    each an explicit keyword. `handler(connection)` runs in a thread of its own for each
    accepted connection; the connection closes with 1000 when it returns and with 1011 when
    it raises. `versions` are the protocol versions accepted, most preferred first; a
    request for any other version gets a 426 answer listing them (RFC 6455 section 4.4).

    - `process_request(connection, request)` may return a Response to answer instead of
      the handshake (authentication, plain HTTP pages);
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
    - `host` None listens on every interface; `sock` is a listening socket to use instead.
    """
    options = ServerOptions(
        subprotocols=tuple(subprotocols),
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
    dialects = resolve_versions(versions)
    listener = sock if sock is not None else _listen(host, port or 0, backlog)
    try:
        return Server(handler, dialects, options, listener, ssl=ssl)
    except BaseException:
        if sock is None:
            listener.close()
        raise


def _listen(host: str | None, port: int, backlog: int) -> socket.socket:
    """A listening socket: every interface (both families where possible) when `host` is
    None or empty, else the first address `host` resolves to."""
    if not host:
        if socket.has_dualstack_ipv6():
            return socket.create_server(("", port), family=socket.AF_INET6, backlog=backlog, dualstack_ipv6=True)
        return socket.create_server(("", port), backlog=backlog)
    family, _, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    return socket.create_server(address[:2], family=family, backlog=backlog)
