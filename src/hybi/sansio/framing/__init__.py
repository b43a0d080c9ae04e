"""Codecs: each framing family turns bytes into frames and frames into bytes.

A codec knows its wire layout and nothing about messages: it hands every frame (or, for a
data frame still arriving, each piece of it) to a `FrameSink`, which is the extension
chain or the message assembler above it. All codecs speak RFC 6455's opcodes to the sink,
whatever their own wire values, so the layers above never ask which framing runs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar, Protocol

__all__ = ["Codec", "FrameSink"]


class FrameSink(Protocol):
    def frame(  # noqa: PLR0917 - positional: called once per frame on the hot path
        self, opcode: int, fin: bool, rsv: int, length: int, payload: bytes, first: bool, last: bool
    ) -> bool:
        """Take one piece of a frame; return True to stop reading (a close frame came).

        `length` is the frame's whole payload length from its header (-1 where the wire
        does not say, as in hixie text frames); `first` and `last` say whether this piece
        starts and ends the frame. Control frames always arrive whole.
        """
        ...


class Codec(Protocol):
    """One framing family, for one endpoint: `receive` parses, `encode` serializes."""

    binary: ClassVar[bool]
    """Whether it has binary messages."""
    pings: ClassVar[bool]
    """Whether it has ping and pong frames."""
    fragments: ClassVar[bool]
    """Whether a message can be sent in several frames."""
    rsv_bits: ClassVar[int]
    """The reserved bits an extension may claim on this wire (0 where there are none)."""

    header: Callable[[int, int], bytes] | None
    """header(opcode, length): the header of an unmasked whole frame, to be sent followed by
    its payload as it is (no copy of a large payload into a frame); None where the payload is
    transformed on this wire (masked) or this framing has no such header."""

    def receive(self, data: bytes, sink: FrameSink) -> None:
        """Parse `data`, which continues whatever came before; raise ProtocolError."""
        ...

    def receive_buffer(self) -> memoryview | None:
        """Where the next bytes may be received straight into (the rest of a large payload
        still arriving), or None."""
        ...

    def receive_in_place(self, count: int, sink: FrameSink) -> None:
        """`count` bytes landed at the start of the view `receive_buffer` gave."""
        ...

    def encode(self, opcode: int, payload: bytes, fin: bool = True, rsv: int = 0) -> bytes:
        """One frame with RFC 6455 opcode `opcode`, masked where this role masks."""
        ...
