"""The Sec-WebSocket-Key / Sec-WebSocket-Accept handshake and RFC framing, shared by
versions 7, 8 and 13 (RFC 6455 sections 1.3, 4.1 and 4.2; hybi-07 onwards).

The three versions differ only in the header a client names its origin with and in the
close codes they allow; each has a file of its own that sets those.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Sequence
from typing import ClassVar

from hybi.exceptions import HandshakeRejected, InvalidHandshake
from hybi.sansio.dialects.base import ClientOffer, Dialect, requested_version
from hybi.sansio.events import Role
from hybi.sansio.framing import Codec
from hybi.sansio.framing.rfc6455 import RFC6455Codec
from hybi.sansio.http import Headers, Request, Response, text_response

__all__ = ["GUID", "KeyAcceptDialect", "accept_value", "bad_request", "generate_key"]

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
"""The constant that section 1.3 appends to the key (the same since hybi-04)."""


def accept_value(key: str) -> str:
    """Section 4.2.2 item 5.4: base64 of the SHA-1 of the key followed by the GUID."""
    return base64.b64encode(hashlib.sha1((key + GUID).encode("ascii")).digest()).decode("ascii")


def generate_key() -> str:
    """Section 4.1 item 7: a nonce of 16 random bytes, base64-encoded."""
    return base64.b64encode(os.urandom(16)).decode("ascii")


def bad_request(reason: str, status: int = 400) -> HandshakeRejected:
    """A rejection whose plain-text body says why."""
    return HandshakeRejected(reason, text_response(status, f"{reason}\n", Headers([("Connection", "close")])))


class KeyAcceptDialect(Dialect):
    """A dialect with the key/accept handshake and RFC 6455 framing."""

    version: ClassVar[int]
    origin_header: ClassVar[str]
    """The header a client of this version names its origin with (section 4.1 item 8)."""
    minimal_lengths: ClassVar[bool] = True
    """Whether a length must use its shortest encoding (a MUST of RFC 6455 section 5.2)."""
    extensions = True

    def claims_request(self, request: Request) -> bool:
        """Section 4.2.1 item 6: `Sec-WebSocket-Version` names this version."""
        return requested_version(request) == str(self.version)

    def refusal_reason(self, request: Request) -> str:
        return f"unsupported WebSocket version {(requested_version(request) or '')[:40]!r}"

    def claims_response(self, response: Response) -> bool:
        return "Sec-WebSocket-Accept" in response.headers

    def new_codec(self, role: Role, *, max_size: int | None) -> Codec:
        return RFC6455Codec(role, minimal_lengths=self.minimal_lengths)

    def check_request(self, request: Request) -> None:
        """Section 4.2.1: a Host field and one key that decodes to 16 bytes."""
        if not request.headers.get("Host"):
            raise bad_request("missing Host header (RFC 6455 section 4.2.1 item 2)")
        keys = request.headers.get_all("Sec-WebSocket-Key")
        if len(keys) != 1:
            what = "missing" if not keys else "repeated"
            raise bad_request(f"{what} Sec-WebSocket-Key header (RFC 6455 section 4.2.1 item 5)")
        try:
            raw = base64.b64decode(keys[0].encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError):
            raw = b""
        if len(raw) != 16:
            raise bad_request(
                f"Sec-WebSocket-Key {keys[0][:40]!r} is not 16 bytes in base64 (RFC 6455 section 4.2.1 item 5)"
            )

    def offered_subprotocols(self, request: Request) -> list[str]:
        return request.headers.tokens("Sec-WebSocket-Protocol")

    def accept_response(
        self, request: Request, subprotocol: str | None, extra_headers: Headers, *, secure: bool = False
    ) -> Response:
        """Section 4.2.2 item 5."""
        key = request.headers.get("Sec-WebSocket-Key") or ""
        headers = Headers(
            [
                ("Upgrade", "websocket"),
                ("Connection", "Upgrade"),
                ("Sec-WebSocket-Accept", accept_value(key)),
            ]
        )
        if subprotocol is not None:
            headers.add("Sec-WebSocket-Protocol", subprotocol)
        for name, value in extra_headers:
            headers.add(name, value)
        return Response(101, "Switching Protocols", headers)

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
        """Section 4.1, with the origin header and version number of this dialect."""
        key = generate_key()
        headers = Headers(
            [
                ("Host", host),
                ("Upgrade", "websocket"),
                ("Connection", "Upgrade"),
                ("Sec-WebSocket-Key", key),
                ("Sec-WebSocket-Version", str(self.version)),
            ]
        )
        if origin is not None:
            headers.add(self.origin_header, origin)
        if subprotocols:
            headers.add("Sec-WebSocket-Protocol", ", ".join(subprotocols))
        for name, value in extra_headers:
            headers.add(name, value)
        return ClientOffer(Request("GET", resource, headers), key, tuple(subprotocols), origin=origin)

    def check_response(self, offer: ClientOffer, response: Response) -> str | None:
        """Section 4.1, the client's checks of the server's 101 response."""
        headers = response.headers
        if not headers.has_token("Upgrade", "websocket"):
            raise InvalidHandshake(f"101 response has Upgrade {headers.get('Upgrade')!r}, not websocket")
        if not headers.has_token("Connection", "upgrade"):
            raise InvalidHandshake(f"101 response has Connection {headers.get('Connection')!r}, not Upgrade")
        accepts = headers.get_all("Sec-WebSocket-Accept")
        assert isinstance(offer.secret, str)
        expected = accept_value(offer.secret)
        if accepts != [expected]:
            got = accepts[0] if len(accepts) == 1 else f"{len(accepts)} fields"
            raise InvalidHandshake(f"Sec-WebSocket-Accept is {got!r}; expected {expected!r}")
        chosen = headers.tokens("Sec-WebSocket-Protocol")
        if not chosen:
            return None
        if len(chosen) > 1 or chosen[0] not in offer.subprotocols:
            raise InvalidHandshake(f"server chose subprotocol {headers.get('Sec-WebSocket-Protocol')!r}, not offered")
        return chosen[0]
