"""What every dialect (one published version of the protocol) provides to the core.

A dialect owns its opening handshake in both roles, its framing and its closing rules.
The core never asks which version it runs: it calls these methods.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, Protocol

from hybi.sansio.events import ConnectionFailed, Event, Role, State
from hybi.sansio.http import Headers, Request, Response

__all__ = ["ClientOffer", "Dialect", "Session"]


class Session(Protocol):
    """The open connection of any dialect: bytes in, events out, bytes to send."""

    role: Role
    state: State
    dialect_name: str
    close_sent: tuple[int | None, str] | None
    close_received: tuple[int, str] | None
    failure: ConnectionFailed | None

    @property
    def ready(self) -> bool:
        """False while the opening handshake still has bytes to exchange after the HTTP
        heads (the hixie-76 challenge); nothing may be sent until then."""
        ...

    @property
    def close_status_supported(self) -> bool:
        """Whether close frames of this dialect carry a status code and reason."""
        ...

    def receive_data(self, data: bytes) -> list[Event]: ...
    def receive_eof(self) -> list[Event]:
        """The peer closed TCP; a dialect whose normal close is a TCP close reports it."""
        ...

    def send_text(self, text: str, *, fin: bool = True) -> None: ...
    def send_binary(self, data: bytes | bytearray | memoryview, *, fin: bool = True) -> None: ...
    def send_continuation(self, data: bytes, *, fin: bool) -> None: ...
    def send_ping(self, data: bytes = b"") -> None: ...
    def send_pong(self, data: bytes = b"") -> None: ...
    def send_close(self, code: int | None = 1000, reason: str = "") -> None: ...
    def data_to_send(self) -> bytes: ...


@dataclass(frozen=True, slots=True)
class ClientOffer:
    """A client's opening request and what it needs to check the answer.

    `body` is sent right after the head (hixie-76's key3); `secret` is what the answer is
    checked against (the key, or the expected challenge answer); `location` the URL the
    server must name in the hixie drafts.
    """

    request: Request
    secret: str | bytes
    subprotocols: tuple[str, ...]
    body: bytes = b""
    origin: str | None = None
    location: str = ""


class Dialect(ABC):
    """One version of the WebSocket protocol.

    `name` is how users and the command line name it ("13", "8", "7"); `version` is the
    `Sec-WebSocket-Version` number it is requested with, or None for drafts that predate
    that header. `listed_as` is the number a server names it by in a `Sec-WebSocket-Version`
    list (RFC 6455 section 11.6 registers 0 for hybi-00, which is hixie-76), if any.
    """

    name: ClassVar[str]
    version: ClassVar[int | None]
    aliases: ClassVar[tuple[str, ...]] = ()

    @property
    def listed_as(self) -> int | None:
        return self.version

    def __repr__(self) -> str:
        return f"<dialect {self.name}>"

    # -- server role -------------------------------------------------------------------

    @abstractmethod
    def check_request(self, request: Request) -> None:
        """Validate a request already classified as this dialect; raise HandshakeRejected."""

    @abstractmethod
    def offered_subprotocols(self, request: Request) -> list[str]:
        """The subprotocols a client request offers, in its order."""

    @abstractmethod
    def accept_response(
        self, request: Request, subprotocol: str | None, extra_headers: Headers, *, secure: bool = False
    ) -> Response:
        """The response that completes the handshake for `request` (`secure`: over TLS)."""

    # -- client role -------------------------------------------------------------------

    @abstractmethod
    def client_request(
        self,
        resource: str,
        host: str,
        *,
        origin: str | None,
        subprotocols: Sequence[str],
        extra_headers: Headers,
        secure: bool = False,
    ) -> ClientOffer:
        """The opening request a client of this dialect sends."""

    @abstractmethod
    def check_response(self, offer: ClientOffer, response: Response) -> str | None:
        """Validate a 101 response to `offer`; return the chosen subprotocol.

        Raises InvalidHandshake with the reason when the response does not complete the
        handshake.
        """

    # -- after the handshake -------------------------------------------------------------

    @abstractmethod
    def new_session(
        self,
        role: Role,
        *,
        max_message_size: int | None,
        request: Request | None = None,
        offer: ClientOffer | None = None,
    ) -> Session:
        """The state machine for an open connection of this dialect; the server passes the
        request, the client its offer (the hixie-76 challenge continues in the session)."""
