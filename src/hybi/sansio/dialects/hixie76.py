"""hixie-76, re-issued as hybi-00 (May 2010): Key1/Key2 and an MD5 challenge, sentinel frames.

Spoken by Chrome 6-13, Safari 5.0.1-5.1, iOS 4.2-5 and Flash's web-socket-js until 2011.
A hybi-01 request carries nothing that tells it from this one, so a server answers it as
hixie-76 (em-websocket and Jetty do the same); hybi-02 and -03 add `Sec-WebSocket-Draft`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from hybi.exceptions import InvalidHandshake
from hybi.sansio.dialects.base import ClientOffer, CloseRules, Dialect
from hybi.sansio.dialects.keyaccept import bad_request
from hybi.sansio.events import Role
from hybi.sansio.framing import Codec
from hybi.sansio.framing.sentinel import SentinelCodec
from hybi.sansio.hixie_challenge import HixieChallenge, challenge_answer, generate_key, key_part, new_key3
from hybi.sansio.http import Headers, Request, Response

__all__ = ["Hixie76", "location_of"]


def _unversioned(request: Request) -> bool:
    """Neither the version nor the key of the drafts from 04 on."""
    return "Sec-WebSocket-Version" not in request.headers and "Sec-WebSocket-Key" not in request.headers


def location_of(host: str, resource: str, secure: bool) -> str:
    """The URL a hixie server names in its answer: scheme, the Host field, the resource."""
    return f"{'wss' if secure else 'ws'}://{host}{resource}"


class Hixie76(Dialect):
    name = "hixie-76"
    version = None
    aliases: ClassVar[tuple[str, ...]] = ("hybi-00", "hixie76", "76")
    reason_phrase = "WebSocket Protocol Handshake"
    origin_header = "Sec-WebSocket-Origin"
    location_header = "Sec-WebSocket-Location"
    protocol_header = "Sec-WebSocket-Protocol"
    close_rules = CloseRules(None, close_on_failure=False, server_closes_first=False)
    description = "hixie-76 / hybi-00 requests (Sec-WebSocket-Key1 and Key2)"

    @property
    def listed_as(self) -> int | None:
        return 0  # RFC 6455 section 11.6: 0 is draft-ietf-hybi-00

    def claims_request(self, request: Request) -> bool:
        """No version or key of the later drafts, and both of this draft's keys."""
        headers = request.headers
        return (
            _unversioned(request)
            and "Sec-WebSocket-Draft" not in headers
            and "Sec-WebSocket-Key1" in headers
            and "Sec-WebSocket-Key2" in headers
        )

    def refusal_reason(self, request: Request) -> str:
        return f"missing Sec-WebSocket-Version header: {self.description} are not accepted"

    def claims_response(self, response: Response) -> bool:
        headers = response.headers
        return self.location_header in headers and "Sec-WebSocket-Accept" not in headers

    def key_parts(self, request: Request) -> tuple[int, int]:
        """Both keys' numbers; a missing or malformed key rejects the request with 400."""
        parts = []
        for name in ("Sec-WebSocket-Key1", "Sec-WebSocket-Key2"):
            values = request.headers.get_all(name)
            if len(values) != 1:
                raise bad_request(f"{'missing' if not values else 'repeated'} {name} header ({self.name})")
            try:
                parts.append(key_part(values[0]))
            except ValueError as error:
                raise bad_request(f"invalid {name}: {error} ({self.name})") from None
        return parts[0], parts[1]

    def check_request(self, request: Request) -> None:
        if not request.headers.get("Host"):
            raise bad_request(f"missing Host header ({self.name})")
        self.key_parts(request)

    def offered_subprotocols(self, request: Request) -> list[str]:
        value = (request.headers.get(self.protocol_header) or "").strip()
        return [value] if value else []

    def accept_response(
        self, request: Request, subprotocol: str | None, extra_headers: Headers, *, secure: bool = False
    ) -> Response:
        """The 101 head; the 16-byte answer follows from the session once key3 is in."""
        headers = Headers([("Upgrade", "WebSocket"), ("Connection", "Upgrade")])
        origin = request.headers.get("Origin")
        if origin is not None:
            headers.add(self.origin_header, origin)
        headers.add(self.location_header, location_of(request.headers.get("Host") or "", request.target, secure))
        if subprotocol is not None:
            headers.add(self.protocol_header, subprotocol)
        for name, value in extra_headers:
            headers.add(name, value)
        return Response(101, self.reason_phrase, headers)

    request_start = ("Host", "Connection", "Upgrade")
    """The first fields of a client request, in the order of the draft's example."""

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
        if len(subprotocols) > 1:
            raise ValueError(f"{self.name} offers one subprotocol, not {len(subprotocols)}")
        values = {"Host": host, "Connection": "Upgrade", "Upgrade": "WebSocket"}
        headers = Headers([(name, values[name]) for name in self.request_start])
        if origin is not None:
            headers.add("Origin", origin)
        key3, answer = self.add_challenge(headers)
        if subprotocols:
            headers.add(self.protocol_header, subprotocols[0])
        self.add_client_headers(headers)
        for name, value in extra_headers:
            headers.add(name, value)
        return ClientOffer(
            Request("GET", resource, headers),
            answer,
            tuple(subprotocols),
            body=key3,
            origin=origin,
            location=location_of(host, resource, secure),
        )

    def add_challenge(self, headers: Headers) -> tuple[bytes, bytes]:
        """Add Key1 and Key2; return key3 (sent after the head) and the expected answer."""
        key1, part1 = generate_key()
        key2, part2 = generate_key()
        key3 = new_key3()
        headers.add("Sec-WebSocket-Key1", key1)
        headers.add("Sec-WebSocket-Key2", key2)
        return key3, challenge_answer(part1, part2, key3)

    def add_client_headers(self, headers: Headers) -> None:
        """Headers a later draft adds to this request (hybi-02's Sec-WebSocket-Draft)."""

    def check_response(self, offer: ClientOffer, response: Response) -> str | None:
        headers = response.headers
        if not headers.has_token("Upgrade", "websocket") or not headers.has_token("Connection", "upgrade"):
            raise InvalidHandshake(f"{self.name} answer lacks 'Upgrade: WebSocket' and 'Connection: Upgrade'")
        location = headers.get(self.location_header)
        if location != offer.location:
            raise InvalidHandshake(f"{self.location_header} is {location!r}; expected {offer.location!r}")
        if offer.origin is not None and headers.get(self.origin_header) != offer.origin:
            raise InvalidHandshake(
                f"{self.origin_header} is {headers.get(self.origin_header)!r}; sent {offer.origin!r}"
            )
        chosen = headers.get(self.protocol_header)
        if chosen is not None and chosen not in offer.subprotocols:
            raise InvalidHandshake(f"server chose subprotocol {chosen!r}, not offered")
        return chosen

    def new_codec(self, role: Role, *, max_size: int | None) -> Codec:
        return SentinelCodec(role, close_frame=self.close_rules.close_frame, max_discarded=max_size)

    def challenge(self, role: Role, request: Request | None, offer: ClientOffer | None) -> HixieChallenge | None:
        """Key3 after the request head, the 16-byte answer after the 101 head."""
        if role is Role.SERVER:
            assert request is not None
            return HixieChallenge(role, parts=self.key_parts(request))
        assert offer is not None and isinstance(offer.secret, bytes)
        return HixieChallenge(role, expected=offer.secret)
