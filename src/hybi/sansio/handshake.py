"""Opening handshakes without I/O, for both roles (RFC 6455 section 4).

These are the handshake steps that `ServerConnection` and `ClientConnection` run while
CONNECTING; they can also be used alone.

Server: feed bytes to `ServerHandshake.receive_data` until it returns the request, then
`decide(request)`: the pipeline version → origin → subprotocol → extensions → 101, which
raises HandshakeRejected carrying the reply when a step refuses.

Client: send `ClientHandshake.request_bytes()`, feed the reply to `receive_data` until it
returns what was agreed; a refusal raises InvalidStatus with the versions the server
listed, which `negotiation.ClientNegotiation` reads to choose the next attempt.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum

from hybi.exceptions import InvalidHandshake, InvalidHTTP, InvalidStatus, LegacyAnswer
from hybi.sansio.dialects import DEFAULT_VERSIONS, ClientOffer, Dialect, VersionSpec, resolve_versions
from hybi.sansio.dialects.keyaccept import bad_request
from hybi.sansio.extensions import (
    ClientExtensionFactory,
    Extension,
    ExtensionParameters,
    ServerExtensionFactory,
    format_extensions,
    parse_extensions,
)
from hybi.sansio.http import (
    DEFAULT_LIMITS,
    Headers,
    HTTPLimits,
    Request,
    Response,
    parse_request_head,
    parse_response_head,
)
from hybi.sansio.negotiation import check_upgrade_request, classify_request, dialect_of_answer, parse_version_list

__all__ = [
    "CONFIGURED",
    "Accepted",
    "ClientHandshake",
    "OriginRule",
    "SelectSubprotocol",
    "ServerHandshake",
    "UseConfigured",
]

_MAX_REFUSAL_BODY = 65536

SelectSubprotocol = Callable[[Request, Sequence[str]], "str | None"]
"""Chooses among the subprotocols a request offers (in its order); None for none."""
OriginRule = str | re.Pattern[str] | None
"""An allowed origin: the exact value, a pattern it must match whole, or None (no Origin sent)."""


@dataclass(slots=True)
class Accepted:
    """A completed opening handshake: what was agreed."""

    dialect: Dialect
    subprotocol: str | None
    request: Request
    response: Response
    extensions: tuple[Extension, ...] = field(default=())


def _origin_allowed(origin: str | None, rules: Sequence[OriginRule]) -> bool:
    for rule in rules:
        if isinstance(rule, re.Pattern):
            if origin is not None and rule.fullmatch(origin):
                return True
        elif rule == origin:
            return True
    return False


class UseConfigured(Enum):
    """The type of CONFIGURED: no per-handshake choice, the server's configuration decides."""

    CONFIGURED = "configured"


CONFIGURED = UseConfigured.CONFIGURED


class ServerHandshake:
    """The server's half of one opening handshake.

    `versions` are the dialects accepted, most preferred first; `subprotocols` those the
    server speaks, most preferred first (the first one the client also offers wins) unless
    `select_subprotocol` chooses; `origins`, if given, the Origin values allowed (others get
    403); `extensions` the extensions it can agree to, most preferred first;
    `require_subprotocol`: refuse (400) a client that offers none the server speaks,
    rather than accept it without one.
    """

    def __init__(
        self,
        versions: VersionSpec = DEFAULT_VERSIONS,
        *,
        subprotocols: Sequence[str] = (),
        select_subprotocol: SelectSubprotocol | None = None,
        origins: Sequence[OriginRule] | None = None,
        extensions: Sequence[ServerExtensionFactory] = (),
        extra_headers: Sequence[tuple[str, str]] = (),
        limits: HTTPLimits = DEFAULT_LIMITS,
        secure: bool = False,
        require_subprotocol: bool = False,
    ) -> None:
        self.dialects = resolve_versions(versions)
        self.secure = secure
        self.subprotocols = tuple(subprotocols)
        self.require_subprotocol = require_subprotocol
        self.select_subprotocol_hook = select_subprotocol
        self.origins = None if origins is None else tuple(origins)
        self.extension_factories = tuple(extensions)
        self.extra_headers = tuple(extra_headers)
        self.limits = limits
        self.request: Request | None = None
        self.trailing = b""
        self._buffer = bytearray()
        self._negotiated: tuple[tuple[object, ...], Dialect] | None = None

    def receive_data(self, data: bytes) -> Request | None:
        """Collect the request head; return it once complete.

        Raises HandshakeRejected (400, 414, 431 or 505 with the reason) on a malformed
        head. Bytes after the head are kept in `trailing` for the connection.
        """
        if self.request is not None:
            if len(self.trailing) + len(data) > self.limits.max_early:
                raise bad_request(
                    f"more than {self.limits.max_early} bytes arrived after the request head "
                    "before the handshake was answered"
                )
            self.trailing += data
            return self.request
        searched = len(self._buffer)
        # A head that comes in one read (the usual case) is parsed where it is, uncopied.
        buffer: bytes | bytearray = data
        if searched or type(data) is not bytes:
            self._buffer += data
            buffer = self._buffer
        try:
            parsed = parse_request_head(buffer, self.limits, searched)
        except InvalidHTTP as error:
            raise bad_request(error.reason, error.status) from None
        if parsed is None:
            if buffer is data:
                self._buffer += data
            return None
        self.request, used = parsed
        self.trailing = buffer[used:] if type(buffer) is bytes else bytes(buffer[used:])
        self._buffer.clear()
        if len(self.trailing) > self.limits.max_early:
            raise bad_request(f"more than {self.limits.max_early} bytes arrived after the request head")
        return self.request

    def negotiate(self, request: Request) -> Dialect:
        """Choose the dialect, or raise HandshakeRejected with the reply to send.

        The order is that of section 4.2.1 and 4.2.2 item 4: is it an upgrade at all,
        which version does it ask for (426 with the list when none is accepted), and only
        then the version's own checks (400 with the reason).

        A server asks twice for the same request (for `RequestReceived`, then to decide):
        the second time, the dialect found the first time is the answer, unless the
        request (or this handshake's versions) changed in between.
        """
        headers = request.headers
        seen = (request, request.method, request.http_version, request.target, headers, headers.changes, self.dialects)
        memo = self._negotiated
        if memo is not None and memo[0] == seen:  # what negotiating depends on, all the same
            return memo[1]
        check_upgrade_request(request, self.dialects)
        dialect = classify_request(request, self.dialects)
        dialect.check_request(request)
        self._negotiated = (seen, dialect)
        return dialect

    def select_subprotocol(
        self, request: Request, dialect: Dialect, chosen: str | UseConfigured | None = CONFIGURED
    ) -> str | None:
        """Section 4.2.2 item 5.4: one of the offered subprotocols, or None. `chosen`, when
        given, is this handshake's choice instead of the configured one; it must be offered."""
        if chosen is CONFIGURED and self.select_subprotocol_hook is None and not self.subprotocols:
            return None  # nothing to choose from, whatever the client offers
        offered = dialect.offered_subprotocols(request)
        if chosen is not CONFIGURED:
            if chosen is not None and chosen not in offered:
                raise ValueError(f"subprotocol {chosen!r} was not offered by the client (it offered {offered!r})")
            return chosen
        if self.select_subprotocol_hook is not None:
            chosen = self.select_subprotocol_hook(request, offered)
            if chosen is not None and chosen not in offered:
                raise ValueError(f"select_subprotocol chose {chosen!r}, which the client did not offer")
            return chosen
        for name in self.subprotocols:
            if name in offered:
                return name
        return None

    def negotiate_extensions(
        self, request: Request, dialect: Dialect
    ) -> tuple[list[tuple[str, ExtensionParameters]], list[Extension]]:
        """Section 9.1: for each extension the server speaks, in its order, the client's
        offers of it go to its factory, which accepts one or declines them all."""
        if not dialect.extensions or not self.extension_factories:
            return [], []
        try:
            offers = parse_extensions(request.headers)
        except InvalidHandshake as error:
            raise bad_request(str(error)) from None
        if not offers:
            return [], []
        answer: list[tuple[str, ExtensionParameters]] = []
        agreed: list[Extension] = []
        claimed = 0
        for factory in self.extension_factories:
            mine = [parameters for name, parameters in offers if name == factory.name]
            if not mine:
                continue
            accepted = factory.accept(mine)
            if accepted is None:
                continue
            parameters, extension = accepted
            if extension.rsv_bits & claimed:
                continue  # its reserved bits are taken by an extension agreed before it
            claimed |= extension.rsv_bits
            answer.append((factory.name, parameters))
            agreed.append(extension)
        return answer, agreed

    def check(self, request: Request) -> Dialect:
        """The pipeline's refusals that depend on the request alone (version, origin): the
        dialect it asks for, or HandshakeRejected. A server that must do something slow
        before answering (a gateway opening its upstream) asks this first."""
        dialect = self.negotiate(request)
        if self.origins is not None and not _origin_allowed(request.origin, self.origins):
            raise bad_request(f"origin {request.origin!r} is not allowed", 403)
        return dialect

    def decide(
        self,
        request: Request,
        *,
        subprotocol: str | UseConfigured | None = CONFIGURED,
        extra_headers: Sequence[tuple[str, str]] = (),
    ) -> tuple[bytes, Accepted]:
        """The pipeline after `process_request`: version, origin, subprotocol, extensions,
        then the 101 to write and what was agreed. Raises HandshakeRejected. `subprotocol`
        and `extra_headers` are this handshake's (after the configured headers)."""
        dialect = self.check(request)
        chosen = subprotocol
        subprotocol = self.select_subprotocol(request, dialect, chosen)
        if subprotocol is None and self.require_subprotocol and chosen is CONFIGURED:
            offered = ", ".join(dialect.offered_subprotocols(request)) or "none"
            raise bad_request(
                f"no subprotocol in common: the server speaks {', '.join(self.subprotocols) or 'none'}; "
                f"the client offered {offered}"
            )
        answer, extensions = self.negotiate_extensions(request, dialect)
        headers = Headers(self.extra_headers)
        for name, value in extra_headers:
            headers.add(name, value)
        if answer:
            headers.add("Sec-WebSocket-Extensions", format_extensions(answer))
        reply, accepted = self.accept(request, dialect, subprotocol=subprotocol, extra_headers=headers)
        accepted.extensions = tuple(extensions)
        # Decided: what only deciding needed is not kept for the connection's lifetime.
        self._negotiated = None
        request.headers.drop_index()
        return reply, accepted

    def accept(
        self,
        request: Request,
        dialect: Dialect,
        *,
        subprotocol: str | None = None,
        extra_headers: Headers | None = None,
    ) -> tuple[bytes, Accepted]:
        """The 101 reply to write, and what was agreed.

        Bytes that arrived after the request head are in `trailing`: the connection reads
        them next.
        """
        response = dialect.accept_response(request, subprotocol, extra_headers or Headers(), secure=self.secure)
        return response.serialize(), Accepted(dialect, subprotocol, request, response)


class ClientHandshake:
    """The client's half of one opening handshake, in one dialect."""

    def __init__(
        self,
        dialect: Dialect,
        resource: str,
        host: str,
        *,
        origin: str | None = None,
        subprotocols: Sequence[str] = (),
        extra_headers: Headers | None = None,
        extensions: Sequence[ClientExtensionFactory] = (),
        limits: HTTPLimits = DEFAULT_LIMITS,
        secure: bool = False,
    ) -> None:
        self.dialect = dialect
        self.limits = limits
        self.extension_factories = tuple(extensions) if dialect.extensions else ()
        headers = Headers(extra_headers or ())
        if self.extension_factories:
            offers = [(factory.name, factory.offer()) for factory in self.extension_factories]
            headers.add("Sec-WebSocket-Extensions", format_extensions(offers))
        self.offer: ClientOffer = dialect.client_request(
            resource,
            host,
            origin=origin,
            subprotocols=subprotocols,
            extra_headers=headers,
            secure=secure,
        )
        self.response: Response | None = None
        self.accepted: Accepted | None = None
        self.trailing = b""
        self._buffer = bytearray()

    @property
    def request(self) -> Request:
        return self.offer.request

    def request_bytes(self) -> bytes:
        """The request head and, for hixie-76, the 8 bytes of key3 after it."""
        return self.offer.request.serialize() + self.offer.body

    def _refuse(self) -> Accepted | None:
        """Raise InvalidStatus once the refusal's body (up to 64 KiB) is in."""
        assert self.response is not None
        length = self.response.headers.get("Content-Length") or ""
        wanted = min(int(length), _MAX_REFUSAL_BODY) if length.isascii() and length.isdigit() else 0
        if len(self.trailing) < wanted:
            return None
        self.response.body = self.trailing[: wanted or _MAX_REFUSAL_BODY]
        raise InvalidStatus(self.response, parse_version_list(self.response.headers))

    def connection_lost(self) -> None:
        """The server closed the connection: a refusal is complete with what arrived."""
        if self.response is not None and self.accepted is None:
            self.response.body = self.trailing[:_MAX_REFUSAL_BODY]
            raise InvalidStatus(self.response, parse_version_list(self.response.headers))

    def receive_data(self, data: bytes) -> Accepted | None:
        """Collect the response head; return the accepted handshake once it is complete.

        Raises InvalidStatus for any status but 101 (with the versions it lists),
        LegacyAnswer when a versioned request is answered in a pre-version draft's manner,
        and InvalidHandshake for a 101 that does not match the request. Bytes that arrive
        after the head, in this call or later ones, are kept in `trailing`.
        """
        if self.accepted is not None:
            self.trailing += data
            return self.accepted
        if self.response is not None:  # a refusal whose body is still arriving
            self.trailing += data
            return self._refuse()
        searched = len(self._buffer)
        self._buffer += data
        try:
            parsed = parse_response_head(self._buffer, self.limits, searched)
        except InvalidHTTP as error:
            raise InvalidHandshake(f"invalid HTTP response: {error.reason}") from None
        if parsed is None:
            return None
        response, used = parsed
        self.response = response
        self.trailing = bytes(self._buffer[used:])
        self._buffer.clear()
        if response.status != 101:
            return self._refuse()
        if self.dialect.version is not None and not self.dialect.claims_response(response):
            answered_as = dialect_of_answer(response)
            if answered_as is not None:
                raise LegacyAnswer(
                    f"server answered a version {self.dialect.version} request as {answered_as.name} does", answered_as
                )
        subprotocol = self.dialect.check_response(self.offer, response)
        extensions = self._accept_extensions(response)
        self.accepted = Accepted(self.dialect, subprotocol, self.offer.request, response, extensions)
        return self.accepted

    def _accept_extensions(self, response: Response) -> tuple[Extension, ...]:
        """Section 9.1: every extension the server chose must be one this client offered."""
        try:
            chosen = parse_extensions(response.headers)
        except InvalidHandshake as error:
            raise InvalidHandshake(f"invalid Sec-WebSocket-Extensions: {error}") from None
        agreed: list[Extension] = []
        available = list(self.extension_factories)
        claimed = 0
        for name, parameters in chosen:
            factory = next((f for f in available if f.name == name), None)
            if factory is None:
                raise InvalidHandshake(
                    f"server chose extensions {response.headers.get('Sec-WebSocket-Extensions')!r} "
                    "the client did not offer"
                )
            available.remove(factory)
            extension = factory.accept(parameters)
            if extension.rsv_bits & claimed:
                raise InvalidHandshake(f"server chose extensions that claim the same reserved bits ({name})")
            claimed |= extension.rsv_bits
            agreed.append(extension)
        return tuple(agreed)
