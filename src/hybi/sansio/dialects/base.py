"""What every dialect (one published version of the protocol) provides to the core.

A dialect is data plus the few functions that differ between versions: which requests
and answers are its own, its opening handshake in both roles, its codec and its closing
rules. The core never asks which version it runs; it reads these.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from hybi.sansio.close import CloseCodeRule
from hybi.sansio.events import Role
from hybi.sansio.framing import Codec
from hybi.sansio.hixie_challenge import HixieChallenge
from hybi.sansio.http import Headers, Request, Response

__all__ = ["ClientOffer", "CloseRules", "Dialect", "requested_version"]


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


@dataclass(frozen=True, slots=True)
class CloseRules:
    """How a dialect ends a connection.

    `status`: the codes a close frame may carry, or None where close frames carry no
    status (the body of a received one is then echoed as it came, as hybi-03 asks);
    `close_frame`: False where closing TCP is the whole close (hixie-75);
    `close_on_failure`: whether failing the connection sends a close frame first
    (RFC 6455 section 7.1.7), where the hixie drafts just close TCP;
    `server_closes_first`: whether a client waits, after the closing handshake, for the
    server to close TCP (RFC 6455 section 7.1.1; hybi-05 on). In hixie-76 the side that
    answers a close frame closes TCP, and nothing is left to wait for once both went by.
    """

    status: CloseCodeRule | None
    close_frame: bool = True
    close_on_failure: bool = True
    server_closes_first: bool = True


def requested_version(request: Request) -> str | None:
    """The `Sec-WebSocket-Version` a request asks for, as written (repeats joined)."""
    values = request.headers.get_all("Sec-WebSocket-Version")
    if not values:
        return None
    return values[0].strip() if len(values) == 1 else ", ".join(values)


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
    close_rules: ClassVar[CloseRules]
    extensions: ClassVar[bool] = False
    """Whether extensions (Sec-WebSocket-Extensions, reserved bits) can be negotiated."""

    @property
    def listed_as(self) -> int | None:
        return self.version

    def __repr__(self) -> str:
        return f"<dialect {self.name}>"

    # -- which messages are its own ------------------------------------------------------

    @abstractmethod
    def claims_request(self, request: Request) -> bool:
        """Whether an opening request asks for this dialect. At most one dialect claims any
        request, so the order dialects are asked in does not matter."""

    @abstractmethod
    def refusal_reason(self, request: Request) -> str:
        """Why a request of this dialect is refused by a server that does not speak it."""

    def claims_response(self, response: Response) -> bool:
        """Whether a 101 answer, to a request of any dialect, is written in this one."""
        return False

    # -- server role -------------------------------------------------------------------

    @abstractmethod
    def check_request(self, request: Request) -> None:
        """Validate a request this dialect claims; raise HandshakeRejected."""

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

    # -- after the heads ---------------------------------------------------------------

    def challenge(self, role: Role, request: Request | None, offer: ClientOffer | None) -> HixieChallenge | None:
        """Bytes still to exchange after the HTTP heads before the connection is open."""
        return None

    @abstractmethod
    def new_codec(self, role: Role, *, max_size: int | None) -> Codec:
        """The framing of this dialect for one endpoint (`max_size` bounds what it would
        otherwise read and discard)."""
