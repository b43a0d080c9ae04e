"""RFC 6455 section 5 frame layout, shared by versions 7, 8 and 13 (hybi-07 onwards).

```
byte 0: FIN RSV1 RSV2 RSV3 opcode(4)
byte 1: MASK payload-len(7)      126 -> 16-bit length, 127 -> 64-bit length
[masking key, 4 bytes, when MASK is set; it covers the payload only]
```
"""

from __future__ import annotations

import os
import struct

from hybi.sansio import _accel

__all__ = [
    "OP_BINARY",
    "OP_CLOSE",
    "OP_CONTINUATION",
    "OP_PING",
    "OP_PONG",
    "OP_TEXT",
    "apply_mask",
    "build_frame",
    "masked_frame",
    "unmasked_frame",
    "unmasked_header",
]


# RFC 6455 section 5.2 opcodes; 0x3-0x7 and 0xB-0xF are reserved.
OP_CONTINUATION = 0x0
OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA

_pack_16 = struct.Struct("!BBH").pack
_pack_64 = struct.Struct("!BBQ").pack
_masked_frame = _accel.masked_frame


apply_mask = _accel.mask
"""apply_mask(data, key, offset=0) -> bytes: `data` XORed with the 4-byte `key` repeated (RFC
6455 section 5.3), the key turned to stand `offset` bytes into the masked data; masking is
its own inverse. The compiled function where the accelerator is built (`hybi.sansio._accel`),
called directly: a wrapper would cost a call per frame."""


def build_frame(opcode: int, payload: bytes, fin: bool = True, rsv: int = 0, *, mask: bool = False) -> bytes:
    """Serialize one frame, with the shortest length encoding (RFC 6455 section 5.2).

    Clients set `mask` (section 5.3 requires a fresh unpredictable key per frame); servers
    never do.
    """
    return (masked_frame if mask else unmasked_frame)(opcode, payload, fin, rsv)


def unmasked_frame(opcode: int, payload: bytes, fin: bool = True, rsv: int = 0) -> bytes:
    """A server's frame (section 5.1: never masked)."""
    length = len(payload)
    first = (0x80 if fin else 0) | rsv | opcode
    if length < 126:
        return bytes((first, length)) + payload
    if length < 65536:
        return _pack_16(first, 126, length) + payload
    return _pack_64(first, 127, length) + payload


def unmasked_header(opcode: int, length: int, fin: bool = True, rsv: int = 0) -> bytes:
    """The header of a server's frame of `length` payload bytes (section 5.2), for a payload
    that follows it uncopied."""
    first = (0x80 if fin else 0) | rsv | opcode
    if length < 126:
        return bytes((first, length))
    if length < 65536:
        return _pack_16(first, 126, length)
    return _pack_64(first, 127, length)


def masked_frame(opcode: int, payload: bytes, fin: bool = True, rsv: int = 0) -> bytes:
    """A client's frame, masked with a fresh key from the system's CSPRNG (section 5.3),
    written into one new buffer."""
    return _masked_frame((0x80 if fin else 0) | rsv | opcode, payload, os.urandom(4))
