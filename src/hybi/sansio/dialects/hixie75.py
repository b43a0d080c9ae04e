"""hixie-75 (February 2010): the first shipped protocol (Chrome 4, Safari 5.0.0).

No challenge and no close frame: a connection ends when TCP closes. Clients compared the
first lines of the answer byte for byte, so they are written exactly:
`HTTP/1.1 101 Web Socket Protocol Handshake`, `Upgrade: WebSocket`, `Connection: Upgrade`.
"""

from __future__ import annotations

from hybi.exceptions import InvalidHandshake
from hybi.sansio.dialects.base import ClientOffer, Session
from hybi.sansio.dialects.hixie76 import Hixie76
from hybi.sansio.dialects.keyaccept import bad_request
from hybi.sansio.events import Role
from hybi.sansio.http import Headers, Request, Response
from hybi.sansio.sentinel_session import SentinelSession

__all__ = ["Hixie75"]


class Hixie75(Hixie76):
    name = "hixie-75"
    aliases = ("hixie75", "75")
    reason_phrase = "Web Socket Protocol Handshake"
    origin_header = "WebSocket-Origin"
    location_header = "WebSocket-Location"
    protocol_header = "WebSocket-Protocol"

    @property
    def listed_as(self) -> int | None:
        return None

    def check_request(self, request: Request) -> None:
        if not request.headers.get("Host"):
            raise bad_request(f"missing Host header ({self.name})")

    request_start = ("Upgrade", "Connection", "Host")

    def add_challenge(self, headers: Headers) -> tuple[bytes, bytes]:
        return b"", b""  # hixie-75 has no challenge

    def check_response(self, offer: ClientOffer, response: Response) -> str | None:
        """The status line of hixie-75, then the checks of hixie-76 (upgrade, location, origin).

        hixie-75 browsers compared the first lines byte for byte; hybi's client compares the
        reason phrase exactly (it is what tells a hixie-75 answer from a hixie-76 one) but
        the Upgrade and Connection values without regard to case, as Netty writes them in
        lower case.
        """
        if response.reason != self.reason_phrase:
            raise InvalidHandshake(
                f"not a {self.name} answer: status line is '101 {response.reason}', expected '101 {self.reason_phrase}'"
            )
        return super().check_response(offer, response)

    def new_session(
        self,
        role: Role,
        *,
        max_message_size: int | None,
        request: Request | None = None,
        offer: ClientOffer | None = None,
    ) -> Session:
        return SentinelSession(role, dialect_name=self.name, close_frame=False, max_message_size=max_message_size)
