"""The pure-Python twins of the compiled accelerator (`hybi._speedups`, from `_speedups.c`).

Each function here has the same name, arguments and results as its compiled twin;
`hybi.sansio._accel` picks one set at import, and the tests hold both to the same answers.
"""

from __future__ import annotations

import codecs

__all__ = [
    "PayloadBuilder",
    "mask",
    "masked_frame",
    "utf8_check",
    "whole_interim_messages",
    "whole_messages",
    "whole_sentinel_messages",
]


_CHUNK = 8192
"""Large data is masked this many bytes at a time: CPython's big-integer conversions slow
down per byte on numbers of a megabyte, and stay in the cache on numbers of a few kilobytes."""


def mask(data: bytes | bytearray | memoryview, key: bytes, offset: int = 0, /) -> bytes:
    """`data` XORed with the 4-byte `key` repeated, the key turned to stand `offset` bytes
    into the masked data (RFC 6455 section 5.3; masking is its own inverse).

    The XOR runs on whole integers: `int.from_bytes` makes the payload one big number, so
    the loop happens inside CPython rather than byte by byte here.
    """
    if len(key) != 4:
        raise ValueError("a mask key is 4 bytes")
    length = len(data)
    if not length:
        return b""
    offset &= 3
    if offset:
        key = key[offset:] + key[:offset]
    from_bytes = int.from_bytes
    if length <= _CHUNK:
        return (from_bytes(data, "little") ^ from_bytes((key * ((length >> 2) + 1))[:length], "little")).to_bytes(
            length, "little"
        )
    view = memoryview(data).cast("B")
    repeated = from_bytes(key * (_CHUNK >> 2), "little")  # a chunk's length is a multiple of 4
    pieces = [
        (from_bytes(view[start : start + _CHUNK], "little") ^ repeated).to_bytes(_CHUNK, "little")
        for start in range(0, length - _CHUNK + 1, _CHUNK)
    ]
    rest = length % _CHUNK
    if rest:
        pieces.append(mask(view[length - rest :], key))
    return b"".join(pieces)


def masked_frame(first: int, payload: bytes | bytearray | memoryview, key: bytes, /) -> bytes:
    """A client's frame (RFC 6455 section 5.2): the byte `first` (FIN, RSV, opcode), the
    shortest length with the MASK bit, `key`, and the payload masked with it."""
    if not 0 <= first <= 0xFF:
        raise ValueError("the first byte of a frame is 0 to 255")
    length = len(payload)
    if length < 126:
        header = bytes((first, 0x80 | length))
    elif length < 65536:
        header = bytes((first, 0xFE)) + length.to_bytes(2, "big")
    else:
        header = bytes((first, 0xFF)) + length.to_bytes(8, "big")
    return b"".join((header, key, mask(payload, key)))


_decode = codecs.utf_8_decode


def _step(state: int, byte: int) -> int:
    """One byte through the validator's state machine (see `utf8_check`)."""
    remaining = state & 0xFF
    if remaining:
        if not (state >> 8) & 0xFF <= byte <= (state >> 16) & 0xFF:
            return -1
        return 0 if remaining == 1 else (remaining - 1) | 0x80 << 8 | 0xBF << 16
    if byte < 0x80:
        return 0
    if byte < 0xC2 or byte > 0xF4:
        return -1
    if byte < 0xE0:
        return 1 | 0x80 << 8 | 0xBF << 16
    if byte < 0xF0:
        return 2 | (0xA0 if byte == 0xE0 else 0x80) << 8 | (0x9F if byte == 0xED else 0xBF) << 16
    return 3 | (0x90 if byte == 0xF0 else 0x80) << 8 | (0x8F if byte == 0xF4 else 0xBF) << 16


def utf8_check(data: bytes | bytearray | memoryview, state: int = 0, /) -> int:
    """Validate `data` as UTF-8 (RFC 3629 section 4) continuing from `state`; return the
    state after it: 0 at a character boundary, -1 once anything is invalid, else the
    unfinished character (continuation bytes due, and the range the next must fall in), so
    that an overlong form, a surrogate or a code point above U+10FFFF fails at the first
    byte that shows it, even when the character is split between pieces.

    The bulk goes through Python's own decoder; only the bytes around the pieces' edges
    run through the state machine here.
    """
    if state < 0 or state & 0xFF > 3 or state >> 24:
        raise ValueError("not a state utf8_check returned")
    view = memoryview(data).cast("B") if not isinstance(data, bytes) else data
    length = len(view)
    pos = 0
    while state and pos < length:
        state = _step(state, view[pos])
        pos += 1
        if state < 0:
            return -1
    if pos >= length:
        return state
    try:
        _, used = _decode(view[pos:] if pos else view, "strict", False)
    except UnicodeDecodeError:
        return -1
    pos += used
    while pos < length:  # an unfinished character at the end, which the decoder held back
        state = _step(state, view[pos])
        pos += 1
        if state < 0:
            return -1
    return state


_WHOLE_BELOW = 65536


def _run_end(data: bytes, pos: int, max_size: int | None) -> int:
    """What every run checks of its arguments; the length of `data`."""
    if max_size is not None and max_size < 0:
        raise ValueError("max_size is not negative")
    end = len(data)
    if not 0 <= pos <= end:
        raise ValueError("pos is outside data")
    return end


def whole_messages(
    data: bytes, pos: int, expect_mask: bool | int, max_size: int | None, /
) -> tuple[list[str | bytes], int]:
    """The run of plain messages at `pos` in RFC 6455 framing (section 5.2), each a whole
    frame in `data`: FIN set, no RSV bit, text or binary, the MASK bit as expected, the
    shortest length encoding, a payload under 64 KiB and within `max_size` (None: any), and
    for text valid UTF-8. They come back unmasked, text decoded; with the position where
    the run stopped. Anything else ends the run there, for the frame-by-frame parser."""
    end = _run_end(data, pos, max_size)
    mask_bit = 0x80 if expect_mask else 0
    messages: list[str | bytes] = []
    while end - pos >= 2:
        first = data[pos]
        second = data[pos + 1]
        if first & 0xF0 != 0x80 or not 1 <= first & 0x0F <= 2 or second & 0x80 != mask_bit:
            break
        length = second & 0x7F
        start = pos + 2
        if length == 126:
            if end - start < 2:
                break
            length = data[start] << 8 | data[start + 1]
            start += 2
            if length < 126:
                break
        elif length == 127:
            break
        if max_size is not None and length > max_size:
            break
        if mask_bit:
            if end - start < 4:
                break
            key = data[start : start + 4]
            start += 4
            if end - start < length:
                break
            payload = mask(data[start : start + length], key) if length else b""
        else:
            if end - start < length:
                break
            payload = data[start : start + length]
        if first & 0x0F == 1:
            try:
                messages.append(payload.decode("utf-8"))
            except UnicodeDecodeError:
                break
        else:
            messages.append(payload)
        pos = start + length
    return messages, pos


def whole_interim_messages(
    data: bytes, pos: int, more_bit: bool, prefix_mask: bool, max_size: int | None, /
) -> tuple[list[str | bytes], int]:
    """As `whole_messages`, in the framing of the drafts hybi-01 to -06: opcodes 4 (text)
    and 5 (binary); a final frame has 0x80 clear with `more_bit` (01-03), set otherwise;
    with `prefix_mask` (a server of 05-06) a 4-byte key comes first and masks the header
    and the payload after it."""
    end = _run_end(data, pos, max_size)
    final_bit = 0 if more_bit else 0x80
    messages: list[str | bytes] = []
    while True:
        key = b"\x00\x00\x00\x00"
        start = pos
        if prefix_mask:
            if end - pos < 6:
                break
            key = data[pos : pos + 4]
            start = pos + 4
        elif end - pos < 2:
            break
        first = data[start] ^ key[0]
        second = data[start + 1] ^ key[1]
        opcode = first & 0x0F
        if first & 0x70 or second & 0x80 or not 4 <= opcode <= 5 or first & 0x80 != final_bit:
            break
        length = second & 0x7F
        header = 2
        if length == 127:
            break
        if length == 126:
            if end - start < 4:
                break
            length = (data[start + 2] ^ key[2]) << 8 | (data[start + 3] ^ key[3])
            header = 4
        if max_size is not None and length > max_size:
            break
        if end - start - header < length:
            break
        payload = data[start + header : start + header + length]
        if prefix_mask and length:
            payload = mask(payload, key, header)
        if opcode == 4:
            try:
                messages.append(payload.decode("utf-8"))
            except UnicodeDecodeError:
                break
        else:
            messages.append(payload)
        pos = start + header + length
    return messages, pos


def whole_sentinel_messages(data: bytes, pos: int, max_size: int | None, /) -> tuple[list[str | bytes], int]:
    """The run of whole hixie text frames (0x00, UTF-8, 0xFF) at `pos`, decoded; it ends at
    anything else: another frame type, a frame whose 0xFF has not come, invalid text, or
    text above `max_size`."""
    end = _run_end(data, pos, max_size)
    messages: list[str | bytes] = []
    while end - pos >= 2 and data[pos] == 0x00:
        close = data.find(b"\xff", pos + 1)
        if close < 0 or (max_size is not None and close - pos - 1 > max_size):
            break
        try:
            messages.append(data[pos + 1 : close].decode("utf-8"))
        except UnicodeDecodeError:
            break
        pos = close + 1
    return messages, pos


class PayloadBuilder:
    """A payload of `size` bytes put together from its pieces (unmasked on the way in when
    `add` is given a key) and handed out whole, once, by `take`. With `text`, `add` checks
    the pieces as UTF-8 as they come and returns False once they are invalid.

    `window` lends the part still missing as a writable memoryview, so that a transport can
    receive straight into it; `filled` then unmasks (and checks) the bytes that landed at
    its start. This twin fills a bytearray and copies it into bytes at `take`; the compiled
    one fills the bytes object itself."""

    __slots__ = ("_buffer", "_pos", "_taken", "_utf8", "_view")

    def __init__(self, size: int, text: bool = False) -> None:
        if size < 0:
            raise ValueError("a payload size is not negative")
        self._buffer = bytearray(size)
        self._view = memoryview(self._buffer)
        self._pos = 0
        self._taken = False
        self._utf8 = 0 if text else None  # utf8_check's state, None when not checking

    @property
    def missing(self) -> int:
        """Bytes still to add."""
        return 0 if self._taken else len(self._buffer) - self._pos

    def add(self, data: bytes | bytearray | memoryview, key: bytes | None = None, offset: int = 0, /) -> bool:
        if self._taken:
            raise ValueError("the payload was taken already")
        if len(key) != 4 if key is not None else False:
            raise ValueError("a mask key is 4 bytes")
        count = len(data)
        if count > len(self._buffer) - self._pos:
            raise ValueError("more bytes than the payload's size")
        self._view[self._pos : self._pos + count] = mask(data, key, offset) if key is not None else data
        return self._advance(count)

    def window(self) -> memoryview:
        if self._taken or self._pos == len(self._buffer):
            raise BufferError("no part of the payload is missing")
        return self._view[self._pos :]

    def filled(self, count: int, key: bytes | None = None, offset: int = 0, /) -> bool:
        if self._taken:
            raise ValueError("the payload was taken already")
        if not 0 <= count <= len(self._buffer) - self._pos:
            raise ValueError("more bytes than the payload's size")
        if key is not None:
            if len(key) != 4:
                raise ValueError("a mask key is 4 bytes")
            landed = self._view[self._pos : self._pos + count]
            landed[:] = mask(landed, key, offset)
        return self._advance(count)

    def _advance(self, count: int) -> bool:
        start = self._pos
        self._pos += count
        if self._utf8 is not None and self._utf8 >= 0:
            self._utf8 = utf8_check(self._view[start : self._pos], self._utf8)
        return self._utf8 is None or self._utf8 >= 0

    def take(self) -> bytes:
        if self._taken:
            raise ValueError("the payload was taken already")
        if self._pos != len(self._buffer):
            raise ValueError("the payload is not complete")
        self._taken = True
        payload = bytes(self._buffer)
        self._buffer = bytearray()  # a window still lent keeps the old one alive, not this
        self._view = memoryview(self._buffer)
        return payload
