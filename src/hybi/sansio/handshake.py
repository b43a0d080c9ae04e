"""Opening handshakes without I/O, for both roles (RFC 6455 section 4).

Server: feed bytes to `ServerHandshake.receive_data` until it returns the request, call
`negotiate` (which raises HandshakeRejected carrying the reply to send), then `accept`.

Client: send `ClientHandshake.request_bytes()`, feed the reply to `receive_data` until it
returns the session; a refusal raises InvalidStatus with the versions the server listed,
from which `negotiation.choose_retry` picks the next attempt.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from hybi.exceptions import InvalidHandshake, InvalidHTTP, InvalidStatus
from hybi.sansio.dialects import DEFAULT_VERSIONS, ClientOffer, Dialect, Session, VersionSpec, resolve_versions
from hybi.sansio.dialects.keyaccept import bad_request
from hybi.sansio.events import Role
from hybi.sansio.http import (
    DEFAULT_LIMITS,
    Headers,
    HTTPLimits,
    Request,
    Response,
    parse_request_head,
    parse_response_head,
)
from hybi.sansio.negotiation import check_upgrade_request, classify_request, parse_version_list
from hybi.sansio.rfc6455_session import DEFAULT_MAX_MESSAGE_SIZE

__all__ = ["Accepted", "ClientHandshake", "ServerHandshake"]

_MAX_REFUSAL_BODY = 65536


@dataclass(slots=True)
class Accepted:
    """A completed handshake: the session to continue with and what was agreed."""

    session: Session
    dialect: Dialect
    subprotocol: str | None
    request: Request
    response: Response


class ServerHandshake:
    """The server's half of one opening handshake.

    `versions` are the dialects accepted, most preferred first; `subprotocols` those the
    server speaks, most preferred first (the first one the client also offers wins).
    """

    def __init__(
        self,
        versions: VersionSpec = DEFAULT_VERSIONS,
        *,
        subprotocols: Sequence[str] = (),
        limits: HTTPLimits = DEFAULT_LIMITS,
        max_message_size: int | None = DEFAULT_MAX_MESSAGE_SIZE,
        secure: bool = False,
    ) -> None:
        self.dialects = resolve_versions(versions)
        self.secure = secure
        self.subprotocols = tuple(subprotocols)
        self.limits = limits
        self.max_message_size = max_message_size
        self.request: Request | None = None
        self.trailing = b""
        self._buffer = bytearray()

    def receive_data(self, data: bytes) -> Request | None:
        """Collect the request head; return it once complete.

        Raises HandshakeRejected (400, 414, 431 or 505 with the reason) on a malformed
        head. Bytes after the head are kept in `trailing` for the session.
        """
        if self.request is not None:
            self.trailing += data
            return self.request
        searched = len(self._buffer)
        self._buffer += data
        try:
            parsed = parse_request_head(self._buffer, self.limits, searched)
        except InvalidHTTP as error:
            raise bad_request(error.reason, error.status) from None
        if parsed is None:
            return None
        self.request, used = parsed
        self.trailing = bytes(self._buffer[used:])
        self._buffer.clear()
        return self.request

    def negotiate(self, request: Request) -> Dialect:
        """Choose the dialect, or raise HandshakeRejected with the reply to send.

        The order is that of section 4.2.1 and 4.2.2 item 4: is it an upgrade at all,
        which version does it ask for (426 with the list when none is accepted), and only
        then the version's own checks (400 with the reason).
        """
        check_upgrade_request(request, self.dialects)
        dialect = classify_request(request, self.dialects)
        dialect.check_request(request)
        return dialect

    def select_subprotocol(self, request: Request, dialect: Dialect) -> str | None:
        offered = dialect.offered_subprotocols(request)
        for name in self.subprotocols:
            if name in offered:
                return name
        return None

    def accept(
        self,
        request: Request,
        dialect: Dialect,
        *,
        subprotocol: str | None = None,
        extra_headers: Headers | None = None,
    ) -> tuple[bytes, Accepted]:
        """The 101 reply to write and the session that follows it.

        Bytes that arrived after the request head are in `trailing`: the caller feeds them
        to the session next.
        """
        response = dialect.accept_response(request, subprotocol, extra_headers or Headers(), secure=self.secure)
        session = dialect.new_session(Role.SERVER, max_message_size=self.max_message_size, request=request)
        return response.serialize(), Accepted(session, dialect, subprotocol, request, response)


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
        limits: HTTPLimits = DEFAULT_LIMITS,
        max_message_size: int | None = DEFAULT_MAX_MESSAGE_SIZE,
        secure: bool = False,
    ) -> None:
        self.dialect = dialect
        self.limits = limits
        self.max_message_size = max_message_size
        self.offer: ClientOffer = dialect.client_request(
            resource,
            host,
            origin=origin,
            subprotocols=subprotocols,
            extra_headers=extra_headers or Headers(),
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
        length = self.response.headers.get("Content-Length", "")
        wanted = min(int(length), _MAX_REFUSAL_BODY) if length and length.isdigit() else 0
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

        Raises InvalidStatus for any status but 101 (with the versions it lists) and
        InvalidHandshake for a 101 that does not match the request. Bytes that arrive
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
        subprotocol = self.dialect.check_response(self.offer, response)
        session = self.dialect.new_session(Role.CLIENT, max_message_size=self.max_message_size, offer=self.offer)
        self.accepted = Accepted(session, self.dialect, subprotocol, self.offer.request, response)
        return self.accepted
