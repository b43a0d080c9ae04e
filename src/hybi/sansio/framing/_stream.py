"""What the two length-prefixed framings share: a data frame whose payload is still arriving
is handed on piece by piece, unmasked with the key turned to where the piece starts.

A large frame is the exception: the sink is told it started (an empty first piece, so that
the size limit is checked from its header before anything is held), then its payload is
unmasked into one buffer of its final size as it arrives (`PayloadBuilder`) and handed on
whole as its last piece: no copy per piece and no join of the pieces afterwards. Binary
frames always take this way; the first frame of a text message (uncompressed) takes it where
the accelerator is compiled, which checks each piece as UTF-8 as it lands, so that invalid
text still fails before the frame's end (RFC 6455 section 8.1); the assembler decodes the
whole once. Elsewhere text goes on piece by piece, and the assembler checks it there.

While such a buffer fills, `receive_buffer` lends its missing part, so that a pump can have
the transport write the payload straight into it (`receive_in_place`): the bytes are then
copied once, by the kernel, and unmasked where they lie."""

from __future__ import annotations

from hybi.exceptions import InvalidUTF8
from hybi.sansio._accel import COMPILED, Builder, PayloadBuilder
from hybi.sansio.frames import OP_BINARY, OP_TEXT, apply_mask
from hybi.sansio.framing import FrameSink

__all__ = ["PayloadStream"]

_BUILD_FROM = 1 << 16
_BUILD_UP_TO = 1 << 26
"""Binary frames of 64 KiB to 64 MiB that arrive in pieces are assembled in one buffer.
Above that, the buffer allocated from a header alone would be too large a promise."""


class PayloadStream:
    """Subclasses parse whole frames and headers in `_parse(data, sink)`; when a data frame's
    payload is incomplete they call `_start_payload` and return."""

    __slots__ = ("_builder", "_fin", "_key", "_length", "_offset", "_opcode", "_pending", "_remaining", "_rsv")

    def __init__(self) -> None:
        self._pending = b""  # the start of a frame whose header (or control payload) is incomplete
        # The data frame whose payload is still arriving:
        self._remaining = 0
        self._opcode = 0
        self._fin = False
        self._rsv = 0
        self._length = 0
        self._key: bytes | None = None
        self._offset = 0  # masked bytes of it so far (where the mask key stands)
        self._builder: Builder | None = None  # where a large binary payload is assembled

    def receive(self, data: bytes, sink: FrameSink) -> None:
        if self._remaining:
            used = min(self._remaining, len(data))
            builder = self._builder
            if builder is not None:
                if not builder.add(memoryview(data)[:used] if used < len(data) else data, self._key, self._offset):
                    raise InvalidUTF8("text message is not valid UTF-8")
                self._offset += used
                self._remaining -= used
                if not self._remaining:
                    self._builder = None
                    if sink.frame(self._opcode, self._fin, self._rsv, self._length, builder.take(), False, True):
                        return
                if used == len(data):
                    return
                self._parse(data, used, sink)
                return
            if self._key is not None:
                # Unmasked straight from the read: one copy of the piece, not a slice and a copy.
                piece = apply_mask(memoryview(data)[:used] if used < len(data) else data, self._key, self._offset)
            else:
                piece = data[:used] if used < len(data) else data
            self._offset += used
            self._remaining -= used
            if sink.frame(self._opcode, self._fin, self._rsv, self._length, piece, False, not self._remaining):
                return
            if used == len(data):
                return
            self._parse(data, used, sink)  # the rest is parsed where it lies, not copied first
            return
        if self._pending:
            data = self._pending + data
            self._pending = b""
        self._parse(data, 0, sink)

    def receive_buffer(self) -> memoryview | None:
        """The rest of a large payload still arriving, as a writable view to receive into,
        or None: bytes that land there skip the copy from a read buffer."""
        builder = self._builder
        return builder.window() if builder is not None and self._remaining else None

    def receive_in_place(self, count: int, sink: FrameSink) -> None:
        """`count` bytes landed at the start of the last `receive_buffer`'s view: unmask and
        check them there, and hand the frame on once it is complete."""
        builder = self._builder
        if builder is None or not 0 < count <= self._remaining:
            raise ValueError("no bytes were expected in place")
        if not builder.filled(count, self._key, self._offset):
            raise InvalidUTF8("text message is not valid UTF-8")
        self._offset += count
        self._remaining -= count
        if not self._remaining:
            self._builder = None
            sink.frame(self._opcode, self._fin, self._rsv, self._length, builder.take(), False, True)

    def _parse(self, data: bytes, pos: int, sink: FrameSink) -> None:
        """Parse the frames in `data` from `pos` on."""
        raise NotImplementedError

    def _start_payload(  # noqa: PLR0917 - the frame header, field by field
        self,
        opcode: int,
        fin: bool,
        rsv: int,
        length: int,
        payload: bytes | memoryview,
        key: bytes | None,
        offset: int,
        sink: FrameSink,
    ) -> None:
        """Hand on the first `payload` bytes of a data frame of `length` whose mask (if any)
        stands at `offset` at their start; keep its state for the bytes to come."""
        self._opcode = opcode
        self._fin = fin
        self._rsv = rsv
        self._length = length
        self._key = key
        self._offset = offset + len(payload)
        self._remaining = length - len(payload)
        if _BUILD_FROM <= length <= _BUILD_UP_TO and (
            opcode == OP_BINARY or (opcode == OP_TEXT and not rsv and COMPILED)
        ):
            sink.frame(opcode, fin, rsv, length, b"", True, False)  # checks the size limit
            builder = self._builder = PayloadBuilder(length, opcode == OP_TEXT)
            if not builder.add(payload, key, offset):
                raise InvalidUTF8("text message is not valid UTF-8")
            return
        piece = apply_mask(payload, key, offset) if key is not None else bytes(payload)
        sink.frame(opcode, fin, rsv, length, piece, True, False)
