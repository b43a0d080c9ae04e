"""Close status codes (RFC 6455 sections 7.4 and 11.7)."""

from __future__ import annotations

from collections.abc import Callable

from hybi.exceptions import InvalidUTF8, ProtocolError

__all__ = [
    "CloseCodeRule",
    "decode_close_body",
    "encode_close_body",
    "rfc6455_close_code",
]

CloseCodeRule = Callable[[int], bool]
"""Whether a close code may appear in a close frame of a given dialect."""


def rfc6455_close_code(code: int) -> bool:
    """Codes a close frame may carry under RFC 6455 section 7.4.

    1000-1003 and 1007-1014 are defined; 1004 is reserved, 1005, 1006 and 1015 must never
    be sent; 3000-3999 are registered and 4000-4999 private. Anything else is a protocol
    error.
    """
    return 1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999


def encode_close_body(code: int | None, reason: str, rule: CloseCodeRule) -> bytes:
    """The body of a close frame this side sends (section 5.5.1).

    No code means an empty body; a reason needs a code. The body fits a control frame:
    at most 125 bytes, so the UTF-8 reason may take 123.
    """
    if code is None:
        if reason:
            raise ValueError("a close reason needs a close code")
        return b""
    if not rule(code):
        raise ValueError(f"close code {code} may not be sent")
    encoded = reason.encode("utf-8")
    if len(encoded) > 123:
        raise ValueError("close reason is longer than 123 bytes in UTF-8")
    return code.to_bytes(2, "big") + encoded


def decode_close_body(body: bytes, rule: CloseCodeRule) -> tuple[int, str]:
    """Code and reason from a received close frame; raises ProtocolError or InvalidUTF8."""
    if not body:
        return 1005, ""
    if len(body) == 1:
        raise ProtocolError("close frame body of 1 byte: a status code takes 2")
    code = int.from_bytes(body[:2], "big")
    if not rule(code):
        raise ProtocolError(f"invalid close code {code}")
    try:
        reason = body[2:].decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidUTF8("close reason is not valid UTF-8") from None
    return code, reason
