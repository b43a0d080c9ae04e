"""RFC 6455 framing (section 5), shared by versions 7, 8 and 13.

```
byte 0: FIN RSV1 RSV2 RSV3 opcode(4)
byte 1: MASK payload-len(7)      126 -> 16-bit length, 127 -> 64-bit length
[masking key, 4 bytes, when MASK is set; it covers the payload only]
```
The payload of a data frame is handed on as it arrives, unmasked, so a large frame is never
buffered here, and a text frame can be checked before its end (section 8.1). Only a frame
header, or a control frame (125 bytes at most), waits here for the rest of its bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from hybi.exceptions import ProtocolError
from hybi.sansio._accel import whole_messages
from hybi.sansio.assembler import MessageAssembler
from hybi.sansio.events import Role
from hybi.sansio.frames import OP_BINARY, OP_PONG, apply_mask, masked_frame, unmasked_frame, unmasked_header
from hybi.sansio.framing import FrameSink
from hybi.sansio.framing._stream import PayloadStream

__all__ = ["RFC6455Codec"]

_VIEW_FROM = 2048
"""Masked payloads from this size are unmasked through a memoryview of the read rather than
a slice of it (below it, the view costs more than the copy it saves)."""


class RFC6455Codec(PayloadStream):
    """`minimal_lengths`: whether a length must use its shortest encoding (a MUST from
    hybi-14 on, section 5.2)."""

    binary: ClassVar[bool] = True
    pings: ClassVar[bool] = True
    fragments: ClassVar[bool] = True
    rsv_bits: ClassVar[int] = 0x70

    __slots__ = ("_expect_mask", "_minimal_lengths", "encode", "header")

    def __init__(self, role: Role, *, minimal_lengths: bool = True) -> None:
        super().__init__()
        # Section 5.1: clients mask every frame; servers never do.
        self.encode: Callable[..., bytes] = masked_frame if role is Role.CLIENT else unmasked_frame
        """encode(opcode, payload, fin=True, rsv=0): the frame builder itself, called straight
        from the send path (a method around it would cost a call per message)."""
        self.header: Callable[[int, int], bytes] | None = unmasked_header if role is Role.SERVER else None
        self._expect_mask = 0x80 if role is Role.SERVER else 0
        self._minimal_lengths = minimal_lengths

    def _parse(self, data: bytes, pos: int, sink: FrameSink) -> None:
        end = len(data)
        expect_mask = self._expect_mask
        # Straight to the assembler (no extension between): runs of small whole messages
        # are parsed in one call; the loop below takes every other frame.
        take_whole = sink.take_whole_messages if type(sink) is MessageAssembler else None
        while end - pos >= 2:
            if take_whole is not None:
                pos = take_whole(whole_messages, data, pos, expect_mask)
                if end - pos < 2:
                    break
            first = data[pos]
            second = data[pos + 1]
            if second & 0x80 != expect_mask:
                if expect_mask:
                    raise ProtocolError("client frame is not masked (RFC 6455 section 5.1)")
                raise ProtocolError("server frame is masked (RFC 6455 section 5.1)")
            opcode = first & 0x0F
            fin = first & 0x80 != 0
            length = second & 0x7F
            start = pos + 2
            if length == 126:
                if end - start < 2:
                    break
                length = (data[start] << 8) | data[start + 1]
                start += 2
                if length < 126 and self._minimal_lengths:
                    raise ProtocolError("payload length not minimally encoded (section 5.2)")
            elif length == 127:
                if end - start < 8:
                    break
                length = int.from_bytes(data[start : start + 8], "big")
                start += 8
                if length >> 63:
                    raise ProtocolError("64-bit payload length has its most significant bit set (section 5.2)")
                if length < 65536 and self._minimal_lengths:
                    raise ProtocolError("payload length not minimally encoded (section 5.2)")
            if opcode & 0x08:
                if not fin:
                    raise ProtocolError("fragmented control frame (section 5.5)")
                if length > 125:
                    raise ProtocolError(f"control frame payload of {length} bytes; the limit is 125 (section 5.5)")
                if opcode > OP_PONG:
                    raise ProtocolError(f"reserved control opcode {opcode:#x} (section 5.2)")
            elif opcode > OP_BINARY:
                raise ProtocolError(f"reserved data opcode {opcode:#x} (section 5.2)")
            key: bytes | None = None
            if expect_mask:
                if end - start < 4:
                    break
                key = data[start : start + 4]
                start += 4
            available = end - start
            if available >= length:
                pos = start + length
                if key is None:
                    payload = data[start:pos] if start or pos != end else data
                elif length < _VIEW_FROM:
                    payload = apply_mask(data[start:pos], key) if length else b""
                else:  # unmasked straight from the read: one copy, not a slice and a copy
                    payload = apply_mask(memoryview(data)[start:pos], key)
                if sink.frame(opcode, fin, first & 0x70, length, payload, True, True):
                    return
                continue
            if opcode & 0x08:
                break  # a control frame is handed on whole: wait for the rest of it
            # A data frame that is still arriving: hand on what is here, keep its state.
            piece = memoryview(data)[start:] if key is not None else data[start:] if start else data
            self._start_payload(opcode, fin, first & 0x70, length, piece, key, 0, sink)
            return
        if pos < end:
            self._pending = data[pos:]
