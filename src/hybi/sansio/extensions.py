"""The extension slot (RFC 6455 section 9): between the codec and the message assembler.

An extension is negotiated in the opening handshake (`Sec-WebSocket-Extensions`), claims
reserved bits (RSV1-3) and transforms frames both ways. Received frames pass through the
extensions in the reverse of the order they were negotiated in, and sent frames in that
order (section 9.1). Pieces of a data frame still arriving pass through too, so an
extension can work per message (permessage-deflate, RFC 7692: reserved bit on the first
frame of a message) or per frame (deflate-frame).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from hybi.exceptions import InvalidHandshake
from hybi.sansio.framing import FrameSink
from hybi.sansio.http import Headers

__all__ = [
    "ClientExtensionFactory",
    "Extension",
    "ExtensionChain",
    "ExtensionParameters",
    "ServerExtensionFactory",
    "format_extensions",
    "parse_extensions",
]

ExtensionParameters = list[tuple[str, str | None]]
"""An extension's parameters in the header's order; a parameter without a value has None."""


class Extension(Protocol):
    """One negotiated extension on one connection."""

    name: str
    rsv_bits: int
    """The reserved bits it claims (RSV1 = 0x40, RSV2 = 0x20, RSV3 = 0x10)."""

    def decode(  # noqa: PLR0917 - positional: called once per frame
        self, opcode: int, fin: bool, rsv: int, length: int, payload: bytes, first: bool, last: bool
    ) -> tuple[int, int, bytes]:
        """A received piece of a frame: return its rsv without the bits this extension
        handled, its length (-1 where it is no longer known) and its payload. Raise
        ProtocolError (or a subclass) for bad input."""
        ...

    def encode(self, opcode: int, payload: bytes, fin: bool, rsv: int, compress: bool) -> tuple[bytes, int]:
        """A frame to send: return its payload and rsv. `compress` is False for a message
        the application asked to send as it is (its first frame decides)."""
        ...

    def set_max_size(self, max_size: int | None) -> None:
        """The connection's limit on a message, for an extension that makes payloads larger."""
        ...


class ServerExtensionFactory(Protocol):
    name: str

    def accept(self, offers: Sequence[ExtensionParameters]) -> tuple[ExtensionParameters, Extension] | None:
        """Choose among a client's offers of this extension (in its order of preference):
        the parameters to answer with and the extension, or None to decline them all."""
        ...


class ClientExtensionFactory(Protocol):
    name: str

    def offer(self) -> ExtensionParameters:
        """The parameters to offer."""
        ...

    def accept(self, parameters: ExtensionParameters) -> Extension:
        """The extension the server's answer sets up; raise InvalidHandshake if it does not
        fit the offer."""
        ...


def parse_extensions(headers: Headers) -> list[tuple[str, ExtensionParameters]]:
    """Every `Sec-WebSocket-Extensions` element, in order (section 9.1).

    `name; param; param=value, other` in one or several fields; quoted values lose their
    quotes. Raises InvalidHandshake naming what is malformed.
    """
    parsed: list[tuple[str, ExtensionParameters]] = []
    for field in headers.get_all("Sec-WebSocket-Extensions"):
        for element in _split(field, ","):
            items = _split(element, ";")
            if not items or not _is_token(items[0]):
                raise InvalidHandshake(f"malformed Sec-WebSocket-Extensions element {element[:60]!r}")
            parameters: ExtensionParameters = []
            for item in items[1:]:
                name, equals, value = item.partition("=")
                name, value = name.strip(), value.strip()
                if len(value) >= 2 and value[0] == value[-1] == '"':
                    value = value[1:-1]
                if not _is_token(name) or (equals and not _is_token(value)):
                    raise InvalidHandshake(f"malformed extension parameter {item[:60]!r}")
                parameters.append((name, value if equals else None))
            parsed.append((items[0], parameters))
    return parsed


def format_extensions(extensions: Sequence[tuple[str, ExtensionParameters]]) -> str:
    return ", ".join(
        "; ".join([name, *(key if value is None else f"{key}={value}" for key, value in parameters)])
        for name, parameters in extensions
    )


def _split(text: str, separator: str) -> list[str]:
    return [part.strip() for part in text.split(separator) if part.strip()]


_TOKEN = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def _is_token(text: str) -> bool:
    return bool(text) and all(c in _TOKEN for c in text)


class ExtensionChain:
    """A FrameSink that runs received pieces through the extensions, then on to `sink`."""

    __slots__ = ("_extensions", "_sink")

    def __init__(self, extensions: Sequence[Extension], sink: FrameSink) -> None:
        self._extensions = tuple(reversed(extensions))
        self._sink = sink

    def frame(  # noqa: PLR0917 - positional: called once per frame on the hot path
        self, opcode: int, fin: bool, rsv: int, length: int, payload: bytes, first: bool, last: bool
    ) -> bool:
        for extension in self._extensions:
            rsv, length, payload = extension.decode(opcode, fin, rsv, length, payload, first, last)
        return self._sink.frame(opcode, fin, rsv, length, payload, first, last)
