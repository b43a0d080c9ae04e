"""The framing of hixie-75 and hixie-76 / hybi-00: sentinel-delimited text frames.

```
text:            0x00, UTF-8 bytes, 0xFF
length-prefixed: a type byte with its high bit set, a base-128 length, that many bytes;
                 read and discarded (no API of these drafts exposes them)
close:           0xFF 0x00 (hixie-76 only; hixie-75 closes by closing TCP)
```
A text frame is handed on piece by piece as it arrives, each byte looked at once, so a
large frame costs neither a rescan nor a copy of what came before.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from hybi.exceptions import MessageTooBig, ProtocolError
from hybi.sansio._accel import whole_sentinel_messages
from hybi.sansio.assembler import MessageAssembler
from hybi.sansio.events import Role
from hybi.sansio.frames import OP_CLOSE, OP_TEXT
from hybi.sansio.framing import FrameSink

__all__ = ["SentinelCodec"]

_CLOSE_FRAME = b"\xff\x00"
_MAX_LENGTH_BYTES = 10


class SentinelCodec:
    """`close_frame`: whether 0xFF 0x00 closes (hixie-76) or is an empty frame (hixie-75);
    `max_discarded`: the longest length-prefixed frame read and discarded (None: any)."""

    binary: ClassVar[bool] = False
    pings: ClassVar[bool] = False
    fragments: ClassVar[bool] = False
    rsv_bits: ClassVar[int] = 0
    header: Callable[[int, int], bytes] | None = None

    __slots__ = ("_close_frame", "_in_text", "_max_discarded", "_pending", "_skip")

    def __init__(self, role: Role, *, close_frame: bool, max_discarded: int | None) -> None:
        self._close_frame = close_frame
        self._max_discarded = max_discarded
        self._in_text = False  # inside a 0x00 ... 0xFF frame
        self._skip = 0  # bytes still to discard of a length-prefixed frame
        self._pending = b""  # a type byte and part of its length

    def encode(self, opcode: int, payload: bytes, fin: bool = True, rsv: int = 0) -> bytes:
        if opcode == OP_CLOSE:
            return _CLOSE_FRAME
        return b"\x00" + payload + b"\xff"

    def receive_buffer(self) -> memoryview | None:
        """Never a view: sentinel frames do not say their length, so every byte is scanned
        as it comes."""
        return None

    def receive_in_place(self, count: int, sink: FrameSink) -> None:
        raise ValueError("no bytes were expected in place")

    def receive(self, data: bytes, sink: FrameSink) -> None:
        if self._pending:
            data = self._pending + data
            self._pending = b""
        end = len(data)
        pos = 0
        if self._skip:
            pos = min(self._skip, end)
            self._skip -= pos
        if self._in_text and pos < end:
            pos = self._text(data, pos, False, sink)
        # Straight to the assembler: runs of whole text frames are parsed in one call.
        take_whole = sink.take_whole_messages if type(sink) is MessageAssembler and not self._skip else None
        while pos < end:
            if take_whole is not None:
                pos = take_whole(whole_sentinel_messages, data, pos)
                if pos >= end:
                    break
            frame_type = data[pos]
            if not frame_type & 0x80:
                # The drafts read other text-range types up to 0xFF and discard them. No client
                # sends one; it appears when a text frame held a stray 0xFF, so it is refused
                # rather than dropped without a word.
                if frame_type != 0x00:
                    raise ProtocolError(f"unknown frame type {frame_type:#04x} (a 0xFF inside a text frame?)")
                self._in_text = True
                pos = self._text(data, pos + 1, True, sink)
                continue
            length, index, complete = 0, pos + 1, False
            while index < end:
                byte = data[index]
                index += 1
                length = (length << 7) | (byte & 0x7F)
                if not byte & 0x80:
                    complete = True
                    break
                if index - pos > _MAX_LENGTH_BYTES:
                    raise ProtocolError("length of a length-prefixed frame takes more than 9 bytes")
            if not complete:
                self._pending = data[pos:]
                return
            if frame_type == 0xFF and length == 0 and self._close_frame:
                sink.frame(OP_CLOSE, True, 0, 0, b"", True, True)
                return
            if self._max_discarded is not None and length > self._max_discarded:
                raise MessageTooBig(f"length-prefixed frame of {length} bytes; the limit is {self._max_discarded}")
            skipped = min(length, end - index)
            self._skip = length - skipped
            pos = index + skipped

    def _text(self, data: bytes, pos: int, first: bool, sink: FrameSink) -> int:
        """Hand on the text from `pos` to the 0xFF that ends it, or to the end of `data`."""
        stop = data.find(b"\xff", pos)
        if stop < 0:
            sink.frame(OP_TEXT, True, 0, -1, data[pos:] if pos else data, first, False)
            return len(data)
        self._in_text = False
        sink.frame(OP_TEXT, True, 0, -1, data[pos:stop], first, True)
        return stop + 1
