"""What every dialect (one published version of the protocol) provides to the core.

A dialect owns its opening handshake in both roles, its framing and its closing rules.
The core never asks which version it runs: it calls these methods.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, Protocol

from hybi.sansio.events import Event, Role, State
from hybi.sansio.http import Headers, Request, Response

__all__ = ["ClientOffer", "Dialect", "Session"]


class Session(Protocol):
    """The open connection of any dialect: bytes in, events out, bytes to send."""

    role: Role
    state: State
    dialect_name: str
    close_sent: tuple[int | None, str] | None
    close_received: tuple[int, str] | None

    def receive_data(self, data: bytes) -> list[Event]: ...
    def send_text(self, text: str, *, fin: bool = True) -> None: ...
    def send_binary(self, data: bytes | bytearray | memoryview, *, fin: bool = True) -> None: ...
    def send_continuation(self, data: bytes, *, fin: bool) -> None: ...
    def send_ping(self, data: bytes = b"") -> None: ...
    def send_pong(self, data: bytes = b"") -> None: ...
    def send_close(self, code: int | None = 1000, reason: str = "") -> None: ...
    def data_to_send(self) -> bytes: ...


@dataclass(frozen=True, slots=True)
class ClientOffer:
    """A client's opening request and what it needs to check the answer."""

    request: Request
    secret: str
    subprotocols: tuple[str, ...]


class Dialect(ABC):
    """One version of the WebSocket protocol.

    `name` is how users and the command line name it ("13", "8", "7"); `version` is the
    `Sec-WebSocket-Version` number it is requested with, or None for drafts that predate
    that header.
    """

    name: ClassVar[str]
    version: ClassVar[int | None]
    summary: ClassVar[str]

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
    def accept_response(self, request: Request, subprotocol: str | None, extra_headers: Headers) -> Response:
        """The response that completes the handshake for `request`."""

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
    def new_session(self, role: Role, *, max_message_size: int | None) -> Session:
        """The state machine for an open connection of this dialect."""
