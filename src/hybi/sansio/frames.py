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


def apply_mask(data: bytes | bytearray | memoryview, key: bytes) -> bytes:
    """XOR `data` with the 4-byte `key` repeated (RFC 6455 section 5.3).

    The XOR runs on whole integers rather than byte by byte: `int.from_bytes` turns the
    payload into one big number, so the loop happens in C. Masking is its own inverse.
    """
    length = len(data)
    if length == 0:
        return b""
    repeated = key * ((length >> 2) + 1)
    value = int.from_bytes(data, "little") ^ int.from_bytes(repeated[:length], "little")
    return value.to_bytes(length, "little")


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


def masked_frame(opcode: int, payload: bytes, fin: bool = True, rsv: int = 0) -> bytes:
    """A client's frame, masked with a fresh key from the system's CSPRNG (section 5.3)."""
    length = len(payload)
    first = (0x80 if fin else 0) | rsv | opcode
    if length < 126:
        header = bytes((first, 0x80 | length))
    elif length < 65536:
        header = _pack_16(first, 0xFE, length)
    else:
        header = _pack_64(first, 0xFF, length)
    key = os.urandom(4)
    return b"".join((header, key, apply_mask(payload, key)))  # one copy of the payload, not two
