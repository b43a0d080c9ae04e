"""hixie-75 (February 2010): the first shipped protocol (Chrome 4, Safari 5.0.0).

No challenge and no close frame: a connection ends when TCP closes. Clients compared the
first lines of the answer byte for byte, so they are written exactly:
`HTTP/1.1 101 Web Socket Protocol Handshake`, `Upgrade: WebSocket`, `Connection: Upgrade`.
"""

from __future__ import annotations

from hybi.exceptions import InvalidHandshake
from hybi.sansio.dialects.base import ClientOffer, CloseRules
from hybi.sansio.dialects.hixie76 import Hixie76, _unversioned
from hybi.sansio.dialects.keyaccept import bad_request
from hybi.sansio.events import Role
from hybi.sansio.hixie_challenge import HixieChallenge
from hybi.sansio.http import Headers, Request, Response

__all__ = ["Hixie75"]


class Hixie75(Hixie76):
    name = "hixie-75"
    aliases = ("hixie75", "75")
    reason_phrase = "Web Socket Protocol Handshake"
    origin_header = "WebSocket-Origin"
    location_header = "WebSocket-Location"
    protocol_header = "WebSocket-Protocol"
    close_rules = CloseRules(None, close_frame=False, close_on_failure=False)
    description = "requests without Sec-WebSocket-Version (hixie-75)"

    def claims_request(self, request: Request) -> bool:
        """None of the headers the later drafts are told apart by."""
        headers = request.headers
        return (
            _unversioned(request)
            and "Sec-WebSocket-Draft" not in headers
            and not ("Sec-WebSocket-Key1" in headers and "Sec-WebSocket-Key2" in headers)
        )

    def claims_response(self, response: Response) -> bool:
        headers = response.headers
        return super().claims_response(response) and "Sec-WebSocket-Location" not in headers

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

    def challenge(self, role: Role, request: Request | None, offer: ClientOffer | None) -> HixieChallenge | None:
        return None  # hixie-75 has no challenge
