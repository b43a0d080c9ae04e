"""The framing of the interim drafts hybi-01 to -06 (binary frames before RFC 6455).

```
byte 0: MORE-or-FIN RSV1 RSV2 RSV3 opcode(4)
byte 1: RSV4 payload-len(7)          126 -> 16-bit length, 127 -> 64-bit length
opcodes: 0 continuation, 1 close, 2 ping, 3 pong, 4 text, 5 binary
```
Drafts 01-03 set MORE (0x80) on every fragment but the last and never mask. From -04 the
bit means FIN. In -05 and -06 a client puts a 4-byte key before each frame and XORs every
following byte with it, the header included (em-websocket `framing05.rb`, Jetty
`WebSocketParserD06`). The opcodes are translated to RFC 6455's for the layers above.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable
from typing import ClassVar

from hybi.exceptions import ProtocolError
from hybi.sansio._accel import whole_interim_messages
from hybi.sansio.assembler import MessageAssembler
from hybi.sansio.events import Role
from hybi.sansio.frames import OP_BINARY, OP_CLOSE, OP_CONTINUATION, OP_PING, OP_PONG, OP_TEXT, apply_mask
from hybi.sansio.framing import FrameSink
from hybi.sansio.framing._stream import PayloadStream

__all__ = ["InterimCodec", "build_interim_frame"]

# Wire opcode -> RFC 6455 opcode, and back.
_FROM_WIRE = {0: OP_CONTINUATION, 1: OP_CLOSE, 2: OP_PING, 3: OP_PONG, 4: OP_TEXT, 5: OP_BINARY}
_TO_WIRE = {rfc: wire for wire, rfc in _FROM_WIRE.items()}


def build_interim_frame(
    opcode: int, payload: bytes, *, more_bit: bool, fin: bool = True, key: bytes | None = None
) -> bytes:
    """One frame with wire opcode `opcode`; with `key` (hybi-05/06 clients) the key comes
    first and masks the rest."""
    flag = (0 if fin else 0x80) if more_bit else (0x80 if fin else 0)
    length = len(payload)
    if length < 126:
        header = bytes((flag | opcode, length))
    elif length < 65536:
        header = struct.pack("!BBH", flag | opcode, 126, length)
    else:
        header = struct.pack("!BBQ", flag | opcode, 127, length)
    if key is None:
        return header + payload
    return key + apply_mask(header + payload, key)


class InterimCodec(PayloadStream):
    """`more_bit`: drafts 01-03 (else FIN, 04 on); `prefix_mask`: drafts 05-06."""

    binary: ClassVar[bool] = True
    pings: ClassVar[bool] = True
    fragments: ClassVar[bool] = True
    rsv_bits: ClassVar[int] = 0  # no extension of these drafts is spoken
    header: Callable[[int, int], bytes] | None = None

    __slots__ = ("_mask_in", "_mask_out", "_more_bit")

    def __init__(self, role: Role, *, more_bit: bool, prefix_mask: bool) -> None:
        super().__init__()
        self._more_bit = more_bit
        self._mask_in = prefix_mask and role is Role.SERVER
        self._mask_out = prefix_mask and role is Role.CLIENT

    def encode(self, opcode: int, payload: bytes, fin: bool = True, rsv: int = 0) -> bytes:
        key = os.urandom(4) if self._mask_out else None
        return build_interim_frame(_TO_WIRE[opcode], payload, more_bit=self._more_bit, fin=fin, key=key)

    def _parse(self, data: bytes, pos: int, sink: FrameSink) -> None:
        end = len(data)
        mask_in = self._mask_in
        more_bit = self._more_bit
        from_wire = _FROM_WIRE
        # Straight to the assembler: runs of small whole messages are parsed in one call.
        take_whole = sink.take_whole_messages if type(sink) is MessageAssembler else None
        while pos < end:
            if take_whole is not None:
                pos = take_whole(whole_interim_messages, data, pos, more_bit, mask_in)
                if pos >= end:
                    break
            # The header's bytes are read (and, in -05/-06, unmasked) one by one where they lie:
            # no slice or mask call per frame.
            key: bytes | None = None
            start = pos
            if mask_in:
                if end - pos < 6:
                    break
                key = data[pos : pos + 4]
                start = pos + 4
                first = data[start] ^ key[0]
                second = data[start + 1] ^ key[1]
            else:
                if end - pos < 2:
                    break
                first = data[pos]
                second = data[pos + 1]
            if first & 0x70 or second & 0x80:
                raise ProtocolError("reserved bits set without an extension that defines them")
            opcode = from_wire.get(first & 0x0F)
            if opcode is None:
                raise ProtocolError(f"reserved opcode {first & 0x0F:#x}")
            fin = not first & 0x80 if more_bit else first & 0x80 != 0
            length = second & 0x7F
            header_length = 2
            if length >= 126:
                header_length = 4 if length == 126 else 10
                if end - start < header_length:
                    break
                extended = data[start + 2 : start + header_length]
                if key is not None:
                    extended = apply_mask(extended, key, 2)
                length = int.from_bytes(extended, "big")
                if length >> 63:
                    raise ProtocolError("64-bit payload length has its most significant bit set")
            if opcode & 0x08:
                if not fin:
                    raise ProtocolError("fragmented control frame")
                if length > 125:
                    raise ProtocolError(f"control frame payload of {length} bytes; the limit is 125")
            payload_start = start + header_length
            if end - payload_start >= length:
                pos = payload_start + length
                if key is None:
                    payload = data[payload_start:pos]
                elif length:
                    payload = apply_mask(memoryview(data)[payload_start:pos], key, header_length)
                else:
                    payload = b""
                if sink.frame(opcode, fin, 0, length, payload, True, True):
                    return
                continue
            if opcode & 0x08:
                break
            piece = memoryview(data)[payload_start:] if key is not None else data[payload_start:]
            self._start_payload(opcode, fin, 0, length, piece, key, header_length, sink)
            return
        if pos < end:
            self._pending = data[pos:]
