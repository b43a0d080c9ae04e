"""A version-translating WebSocket reverse proxy: `async with hybi.gateway.serve(...)`.

Each client connection, in whichever version it speaks, gets its own upstream connection,
opened with RFC 6455 section 4.4 negotiation; messages flow both ways, translated between
the two dialects by the rules of `hybi.sansio.bridge`. The gateway keeps no state across
connections, so any number of its processes can share a port or sit behind a TCP load
balancer.

The client's handshake is answered only once the upstream has accepted: an upstream
refusal reaches the client as an HTTP answer, an unreachable upstream as 502 (504 when it
does not answer in time). Each side negotiates its own extensions and keeps its own
keepalive; backpressure is end to end (a side that reads slowly stops the gateway reading
from the other, with at most `max_queue` messages of at most `max_size` bytes held in
each direction).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import ssl as ssl_module
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hybi._awaitable import AwaitableOpening
from hybi._version import __version__
from hybi.aio.client import ClientConnection, connect
from hybi.aio.connection import Connection, Data
from hybi.aio.server import Server, ServerConnection, ServerOptions
from hybi.exceptions import ConnectionClosed, HandshakeError, HandshakeRejected, InvalidState, InvalidStatus
from hybi.sansio.bridge import BinaryRule, CloseOrder, Side, carry_message, close_for_other_side
from hybi.sansio.connection import DEFAULT_MAX_FRAGMENTS, DEFAULT_MAX_SIZE
from hybi.sansio.deflate import CompressionSetting
from hybi.sansio.dialects import DEFAULT_VERSIONS, VersionSpec
from hybi.sansio.events import State
from hybi.sansio.handshake import OriginRule
from hybi.sansio.http import Headers, Request, Response, text_response
from hybi.sansio.uri import WebSocketURI, parse_uri

__all__ = ["FORWARDED_HEADERS", "BinaryRule", "Gateway", "Pair", "Route", "parse_route", "serve"]

logger = logging.getLogger("hybi.gateway")

FORWARDED_HEADERS: tuple[str, ...] = ("Cookie", "Authorization", "User-Agent", "Accept-Language")
"""Request fields passed on to the upstream as they came (Host is rewritten; Origin follows
the `origin` option; the WebSocket fields are the upstream request's own)."""

_HOP_BY_HOP = frozenset(
    name.lower()
    for name in (
        "Connection",
        "Upgrade",
        "Keep-Alive",
        "Transfer-Encoding",
        "Content-Length",
        "Proxy-Connection",
        "Sec-WebSocket-Version",
        "Sec-WebSocket-Accept",
        "Sec-WebSocket-Extensions",
        "Sec-WebSocket-Protocol",
    )
)
"""Fields of an upstream refusal that describe its own connection, not the answer."""


@dataclass(frozen=True, slots=True)
class Route:
    """Requests whose path is `prefix` or lies under it go to `upstream`; the rest of the
    path and the query are appended to the upstream's path (as a reverse proxy does)."""

    prefix: str
    upstream: WebSocketURI

    def matches(self, path: str) -> bool:
        base = self.prefix.rstrip("/")
        return not base or path == base or path.startswith(base + "/")

    def resource(self, target: str) -> str:
        """The upstream request target for the client's `target` (path and query): the
        upstream's path with what follows the prefix (the prefix itself, with or without
        its slash, is the upstream's path as given), and both queries."""
        remainder = target[len(self.prefix.rstrip("/")) :]
        rest, _, query = remainder.partition("?")
        path, _, own_query = self.upstream.resource.partition("?")
        if rest not in ("", "/"):
            path = path.rstrip("/") + rest
        queries = "&".join(part for part in (own_query, query) if part)
        return (path or "/") + (f"?{queries}" if queries else "")


def parse_route(text: str) -> Route:
    """A `--route` value: `PREFIX=ws://host:port/path`."""
    prefix, sep, uri = text.partition("=")
    if not sep or not prefix.startswith("/"):
        raise ValueError(f"{text!r}: a route is /PREFIX=ws://host:port/path")
    return Route(prefix, parse_uri(uri))


def _routes(upstream: str | None, routes: Sequence[Route | str] | Mapping[str, str]) -> tuple[Route, ...]:
    found: list[Route] = []
    if isinstance(routes, Mapping):
        found += [Route(prefix, parse_uri(uri)) for prefix, uri in routes.items()]
    else:
        found += [route if isinstance(route, Route) else parse_route(route) for route in routes]
    if upstream is not None:
        found.append(Route("/", parse_uri(upstream)))
    if not found:
        raise ValueError("a gateway needs an upstream or at least one route")
    return tuple(sorted(found, key=lambda route: len(route.prefix.rstrip("/")), reverse=True))


@dataclass(eq=False)
class Pair:
    """A client connection and the upstream connection opened for it."""

    client: ServerConnection
    upstream: ClientConnection
    address: str
    forwarded: dict[Side, int] = field(default_factory=lambda: {Side.CLIENT: 0, Side.UPSTREAM: 0})

    def buffered(self) -> int:
        """Bytes the gateway holds for this pair: messages received and not yet passed on,
        and what waits in both transports' write buffers."""
        total = 0
        for connection in (self.client, self.upstream):
            total += sum(len(message) for message in connection._messages)
            if connection.transport is not None:
                total += connection.transport.get_write_buffer_size()
        return total


@dataclass(frozen=True, kw_only=True)
class GatewayOptions:
    """The settings of a gateway (see `gateway` for their meaning)."""

    upstream_versions: VersionSpec = "all"
    origin: str | None = "keep"
    forward_headers: Sequence[str] = FORWARDED_HEADERS
    forwarded_for: bool = True
    binary_rule: BinaryRule = BinaryRule.REFUSE
    max_per_address: int | None = None
    open_timeout: float = 10.0
    upstream_compression: CompressionSetting = "balanced"
    upstream_ssl: ssl_module.SSLContext | None = None
    max_size: int | None = DEFAULT_MAX_SIZE
    max_queue: int = 8
    close_timeout: float = 10.0
    ping_interval: float | None = 20.0
    ping_timeout: float | None = 20.0
    idle_timeout: float | None = None


class Gateway:
    """A listening gateway; `close()` ends every pair with 1001, `wait_closed()` drains."""

    def __init__(
        self,
        routes: Sequence[Route],
        versions: VersionSpec,
        server_options: ServerOptions,
        options: GatewayOptions,
        *,
        secure: bool,
    ) -> None:
        self.routes = tuple(routes)
        self.options = options
        hooks = dataclasses.replace(
            server_options,
            process_request=self._process_request,
            process_response=self._process_response,
            select_subprotocol=self._select_subprotocol,
        )
        self.server = Server(self._handler, versions, hooks, secure=secure)
        self.pairs: set[Pair] = set()
        self._opening: dict[ServerConnection, Pair] = {}
        self._per_address: dict[str, int] = {}

    @property
    def port(self) -> int:
        return self.server.port

    # -- the opening handshake -------------------------------------------------------------

    def _route(self, target: str) -> Route | None:
        path = target.partition("?")[0]
        return next((route for route in self.routes if route.matches(path)), None)

    async def _process_request(self, client: ServerConnection, request: Request) -> Response | None:
        """Open the upstream before answering: the client's 101 follows the upstream's."""
        try:
            dialect = client.server_protocol.handshake.check(request)
        except HandshakeRejected:
            return None  # the core answers its own refusals (426, 400, 403)
        route = self._route(request.target)
        if route is None:
            return text_response(404, f"no upstream for {request.target.partition('?')[0]}\n")
        address = _host_of(client.remote_address)
        limit = self.options.max_per_address
        if limit is not None and self._per_address.get(address, 0) >= limit:
            logger.info("refused %s: %d connections from it already", address, limit)
            return text_response(429, f"at most {limit} connections per client address\n")
        self._per_address[address] = self._per_address.get(address, 0) + 1
        client.connection_lost_waiter.add_done_callback(lambda _: self._client_gone(client, address))
        offered = dialect.offered_subprotocols(request)
        try:
            upstream = await self._open_upstream(client, request, route, offered)
        except InvalidStatus as refusal:
            return _passed_back(refusal)
        except (HandshakeError, ValueError) as error:
            logger.info("upstream %s refused the handshake: %s", route.upstream.host_header, error)
            return text_response(502, f"the upstream's handshake failed: {error}\n")
        except TimeoutError:
            logger.info("upstream %s did not answer in time", route.upstream.host_header)
            return text_response(504, "the upstream did not answer in time\n")
        except OSError as error:
            logger.info("upstream %s unreachable: %s", route.upstream.host_header, error)
            return text_response(502, f"the upstream cannot be reached: {error.strerror or error}\n")
        if client.connection_lost_waiter.done():  # the client left (or shutdown) meanwhile
            _close(upstream, CloseOrder(1001, "client went away"))
            return None
        self._opening[client] = Pair(client, upstream, address)
        return None

    async def _open_upstream(
        self, client: ServerConnection, request: Request, route: Route, offered: Sequence[str]
    ) -> ClientConnection:
        options = self.options
        target = route.upstream
        scheme = "wss" if target.secure else "ws"
        uri = f"{scheme}://{target.host_header}{route.resource(request.target)}"
        headers = Headers()
        for name in options.forward_headers:
            if name.lower() != "user-agent":
                for value in request.headers.get_all(name):
                    headers.add(name, value)
        if options.forwarded_for:
            _add_forwarded(headers, request, _host_of(client.remote_address), self.server.secure)
        origin = request.origin
        if options.origin is None or options.origin == "upstream":
            origin = (
                None if options.origin is None else f"{'https' if target.secure else 'http'}://{target.host_header}"
            )
        elif options.origin != "keep":
            origin = options.origin
        forward_agent = any(name.lower() == "user-agent" for name in options.forward_headers)
        agent = request.headers.get("User-Agent") if forward_agent else None

        def opening(subprotocols: Sequence[str]) -> connect:
            return connect(
                uri,
                versions=options.upstream_versions,
                subprotocols=subprotocols,
                origin=origin,
                additional_headers=headers,
                user_agent_header=agent or f"hybi/{__version__} (gateway)",
                compression=options.upstream_compression,
                ssl=options.upstream_ssl,
                open_timeout=options.open_timeout,
                close_timeout=options.close_timeout,
                ping_interval=options.ping_interval,
                ping_timeout=options.ping_timeout,
                idle_timeout=options.idle_timeout,
                max_size=options.max_size,
                max_queue=options.max_queue,
            )

        try:
            return await opening(offered)
        except ValueError:
            if len(offered) < 2:
                raise
            # A draft that offers one subprotocol only (hixie): offer the client's first.
            return await opening(offered[:1])

    def _select_subprotocol(self, client: ServerConnection, offered: Sequence[str]) -> str | None:
        """The upstream's choice is the client's answer (the upstream chose among its offer)."""
        pair = self._opening.get(client)
        return pair.upstream.subprotocol if pair is not None else None

    def _process_response(self, client: ServerConnection, request: Request, response: Response) -> Response | None:
        """Cookies the upstream set in its 101 reach the client in the gateway's."""
        pair = self._opening.get(client)
        if pair is not None and pair.upstream.response is not None:
            for value in pair.upstream.response.headers.get_all("Set-Cookie"):
                response.headers.add("Set-Cookie", value)
        return None

    def _client_gone(self, client: ServerConnection, address: str) -> None:
        count = self._per_address.get(address, 0) - 1
        if count > 0:
            self._per_address[address] = count
        else:
            self._per_address.pop(address, None)
        pair = self._opening.pop(client, None)
        if pair is not None:  # the client's handshake failed after the upstream's succeeded
            _close(pair.upstream, CloseOrder(1001, "client went away"))

    # -- once both are open ----------------------------------------------------------------

    async def _handler(self, client: ServerConnection) -> None:
        pair = self._opening.pop(client, None)
        if pair is None:
            return
        self.pairs.add(pair)
        upstream = pair.upstream
        logger.debug(
            "pair open: %s %s (version %s) <-> %s (version %s)",
            pair.address,
            client.path,
            client.version,
            upstream.request.target if upstream.request is not None else "?",
            upstream.version,
        )
        try:
            await asyncio.gather(
                self._pump(pair, client, upstream, Side.CLIENT),
                self._pump(pair, upstream, client, Side.UPSTREAM),
            )
            await asyncio.gather(client.wait_closed(), upstream.wait_closed())
            logger.debug(
                "pair closed: %s, client %s, upstream %s, messages %d up and %d down",
                pair.address,
                client.close_code,
                upstream.close_code,
                pair.forwarded[Side.CLIENT],
                pair.forwarded[Side.UPSTREAM],
            )
        finally:
            self.pairs.discard(pair)
            if upstream.transport is not None and upstream.protocol.state is not State.CLOSED:
                _close(upstream, CloseOrder(1001, "gateway shutting down"))

    async def _pump(self, pair: Pair, source: Connection, destination: Connection, side: Side) -> None:
        """Carry `source`'s messages to `destination` until `source` ends, then carry its close.
        `destination.send` waits while its transport is full: reading from `source` stops."""
        rule = self.options.binary_rule
        while True:
            try:
                message: Data = await source.recv()
            except ConnectionClosed:
                rules = destination.protocol.dialect.close_rules if destination.protocol.dialect else None
                order = close_for_other_side(source.protocol.close_info(), side, rules.status if rules else None)
                _close(destination, order)
                return
            carried = carry_message(message, binary_supported=destination.protocol.binary_supported, rule=rule)
            if carried is BinaryRule.DROP:
                logger.warning(
                    "dropped a binary message of %d bytes: version %s has none", len(message), destination.version
                )
                continue
            if carried is BinaryRule.REFUSE:
                logger.info("refused a binary message: version %s has none", destination.version)
                reason = f"binary messages cannot be carried to version {destination.version}"
                _close(source, CloseOrder(1003, reason))
                _close(destination, CloseOrder(1003, reason))
                return
            assert not isinstance(carried, BinaryRule)
            try:
                await destination.send(carried)
            except (ConnectionClosed, InvalidState):
                return  # the destination ended; its own pump carries its close to `source`
            pair.forwarded[side] += 1

    # -- shutting down ---------------------------------------------------------------------

    def close(self, code: int = 1001, reason: str = "gateway shutting down") -> None:
        """Stop listening and close every pair, both sides, with `code`."""
        self.server.close(code, reason)
        for pair in list(self.pairs) + list(self._opening.values()):
            _close(pair.upstream, CloseOrder(code, reason))

    async def wait_closed(self, timeout: float | None = None) -> None:
        """Wait until every pair has ended; after `timeout` seconds, drop what remains."""
        waiting = asyncio.ensure_future(self.server.wait_closed())
        # asyncio.wait, not a timeout around it: cancelling the wait would cancel the handlers.
        done, _ = await asyncio.wait({waiting}, timeout=timeout)
        if not done:
            pairs = list(self.pairs) + list(self._opening.values())
            for connection in [c for pair in pairs for c in (pair.client, pair.upstream)] + list(
                self.server.connections | self.server.handshaking
            ):
                if connection.transport is not None:
                    connection.transport.abort()
            for task in list(self.server.tasks):  # upstream openings still under way
                if task is not waiting:
                    task.cancel()
        await waiting


def _close(connection: Connection, order: CloseOrder) -> None:
    """Send `order` on `connection` as far as its dialect can say it (see `bridge`)."""
    protocol = connection.protocol
    if protocol.state is State.OPEN:
        if order.code is None:
            protocol.send_close(None, now=connection.loop.time())
        else:
            protocol.close(order.code, order.reason, now=connection.loop.time())
    elif protocol.state is State.CONNECTING:
        protocol.close(now=connection.loop.time())
    connection.flush()


def _host_of(address: Any) -> str:
    return str(address[0]) if isinstance(address, tuple) and address else str(address)


def _add_forwarded(headers: Headers, request: Request, address: str, secure: bool) -> None:
    """X-Forwarded-For (appended to), X-Forwarded-Proto, X-Forwarded-Host, and RFC 7239's
    Forwarded, so that the upstream sees the client's address and the host it asked for."""
    earlier = ", ".join(request.headers.get_all("X-Forwarded-For"))
    headers.add("X-Forwarded-For", f"{earlier}, {address}" if earlier else address)
    headers.add("X-Forwarded-Proto", "https" if secure else "http")
    host = request.headers.get("Host")
    if host:
        headers.add("X-Forwarded-Host", host)
    node = f'"[{address}]"' if ":" in address else address
    element = f"for={node};proto={'https' if secure else 'http'}" + (f';host="{host}"' if host else "")
    previous = ", ".join(request.headers.get_all("Forwarded"))
    headers.add("Forwarded", f"{previous}, {element}" if previous else element)


def _passed_back(refusal: InvalidStatus) -> Response:
    """An upstream's refusal as the client is answered: its status, fields and body, except
    a version list (section 4.4), which names the upstream's versions and not the
    gateway's: that becomes 502 saying which versions the upstream takes."""
    answer = refusal.response
    if refusal.server_versions or answer.status == 426:
        listed = ", ".join(map(str, refusal.server_versions)) or "none"
        logger.info("no version in common with the upstream: %s", refusal)
        return text_response(502, f"the upstream speaks none of the gateway's upstream versions; it lists {listed}\n")
    logger.info("upstream refused: %d %s", answer.status, answer.reason)
    headers = Headers([(name, value) for name, value in answer.headers if name.lower() not in _HOP_BY_HOP])
    return Response(answer.status, answer.reason, headers, answer.body)


class serve(AwaitableOpening[Gateway]):  # noqa: N801 - used like a function, as in `async with serve(...)`
    """Start a gateway: `gw = await serve(...)` or `async with serve(...) as gw`.

    `upstream` is the ws:// or wss:// URL every request goes to; `routes` (`/prefix` to
    URL, or `Route`s, or "PREFIX=URL" strings) send requests by path instead, the longest
    prefix first. `versions` are those accepted from clients (13, 8, 7 by default: the
    unmasked drafts are opt-in, as for `serve`); `upstream_versions` those offered to the
    upstream, most preferred first, found by section 4.4 negotiation ("all" by default).

    - `origin`: "keep" passes the client's Origin on, "upstream" rewrites it to the
      upstream's own origin, another string sends that, None sends none; `origins`
      restricts the clients' Origin as for `serve` (403).
    - `forward_headers`: request fields passed on as they are (Cookie, Authorization,
      User-Agent, Accept-Language); `forwarded_for` adds X-Forwarded-For/-Proto/-Host and
      Forwarded (RFC 7239).
    - `binary`: what a binary message becomes towards a dialect without binary frames:
      "refuse" (close with 1003), "drop" (with a log record) or "base64" (as text).
    - `max_per_address`: connections at once from one client address (429 past it).
    - `public_scheme`: "wss" when a TLS terminator in front makes clients use wss:// (the
      hixie drafts name the URL in their answer).
    - `max_size`, `max_queue`: per message and per direction, which bound the memory of a
      pair; `compression`, `upstream_compression`: each side's own; `open_timeout` bounds
      the upstream's opening (504 past it); `close_timeout`, `ping_interval`,
      `ping_timeout` and `idle_timeout` apply to each side on its own: pings are answered
      by the gateway, not carried (the hixie drafts have none; `idle_timeout` closes a
      side that sent nothing for that long).
    """

    def __init__(
        self,
        upstream: str | None = None,
        host: str | Sequence[str] | None = None,
        port: int | None = None,
        *,
        routes: Sequence[Route | str] | Mapping[str, str] = (),
        versions: VersionSpec = DEFAULT_VERSIONS,
        upstream_versions: VersionSpec = "all",
        origin: str | None = "keep",
        origins: Sequence[OriginRule] | None = None,
        forward_headers: Sequence[str] = FORWARDED_HEADERS,
        forwarded_for: bool = True,
        binary: BinaryRule | str = BinaryRule.REFUSE,
        max_per_address: int | None = None,
        public_scheme: str | None = None,
        compression: CompressionSetting = "balanced",
        upstream_compression: CompressionSetting = "balanced",
        max_size: int | None = DEFAULT_MAX_SIZE,
        max_fragments: int | None = DEFAULT_MAX_FRAGMENTS,
        max_queue: int = 8,
        open_timeout: float = 10.0,
        close_timeout: float = 10.0,
        ping_interval: float | None = 20.0,
        ping_timeout: float | None = 20.0,
        idle_timeout: float | None = None,
        ssl: ssl_module.SSLContext | None = None,
        upstream_ssl: ssl_module.SSLContext | None = None,
        sock: Any = None,
        reuse_port: bool = False,
        backlog: int = 100,
    ) -> None:
        if public_scheme not in (None, "ws", "wss"):
            raise ValueError(f"public_scheme is 'ws' or 'wss', not {public_scheme!r}")
        options = GatewayOptions(
            upstream_versions=upstream_versions,
            origin=origin,
            forward_headers=tuple(forward_headers),
            forwarded_for=forwarded_for,
            binary_rule=BinaryRule(binary),
            max_per_address=max_per_address,
            open_timeout=open_timeout,
            upstream_compression=upstream_compression,
            upstream_ssl=upstream_ssl,
            max_size=max_size,
            max_queue=max_queue,
            close_timeout=close_timeout,
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
            idle_timeout=idle_timeout,
        )
        server_options = ServerOptions(
            origins=origins,
            compression=compression,
            max_size=max_size,
            max_fragments=max_fragments,
            max_queue=max_queue,
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
            idle_timeout=idle_timeout,
            close_timeout=close_timeout,
            open_timeout=open_timeout + 10.0,  # the upstream's opening takes place within it
        )
        secure = public_scheme == "wss" if public_scheme is not None else ssl is not None
        self._gateway = Gateway(_routes(upstream, routes), versions, server_options, options, secure=secure)
        self._host = host
        self._port = port
        self._ssl = ssl
        self._sock = sock
        self._reuse_port = reuse_port
        self._backlog = backlog

    async def _enter(self) -> Gateway:
        loop = asyncio.get_running_loop()
        server = self._gateway.server
        server.server = await loop.create_server(
            lambda: ServerConnection(server),
            self._host,
            self._port,
            ssl=self._ssl,
            sock=self._sock,
            backlog=self._backlog,
            reuse_port=self._reuse_port or None,
        )
        return self._gateway

    async def _exit(self) -> None:
        self._gateway.close()
        await self._gateway.wait_closed(self._gateway.options.close_timeout)
