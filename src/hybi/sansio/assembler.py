"""Frames in, messages out: the one place for fragments, UTF-8 and the size limit.

Every codec hands its frames here (through the extensions, if any) with RFC 6455's
opcodes, so fragmentation (section 5.4), UTF-8 checks (section 8.1) and the size limit
are written once for every dialect. A data frame may come in pieces as it arrives: text
is checked piece by piece, so invalid UTF-8 fails the connection at the first bad byte,
and the size limit is checked from the frame header before its payload is held.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable
from typing import Any

from hybi.exceptions import InvalidUTF8, MessageTooBig, ProtocolError
from hybi.sansio.events import Event
from hybi.sansio.frames import OP_BINARY, OP_CLOSE, OP_CONTINUATION, OP_PING, OP_TEXT

__all__ = ["MessageAssembler"]

_Utf8Decoder = codecs.getincrementaldecoder("utf-8")
_MERGE_BELOW = 1 << 16
"""Pieces of a message shorter than this are merged as they pile up, so that a message sent
one byte per frame costs memory in proportion to its bytes, not to its frames."""


def _append(parts: list[Any], piece: str | bytes) -> None:
    """Add `piece`; merge small neighbours like a binary counter (each byte is copied at
    most log2(64 KiB) times, and fewer than 17 small pieces are ever held)."""
    parts.append(piece)
    while len(parts) > 1 and len(parts[-2]) <= len(parts[-1]) and len(parts[-2]) < _MERGE_BELOW:
        last = parts.pop()
        parts[-1] += last


class MessageAssembler:
    """Rebuilds messages for one connection; `events` collects what it found.

    `on_ping`, `on_pong` and `on_close` (each given the payload) are the connection's
    answers to those control frames; a close frame stops reading. `max_size` bounds a
    whole message.
    """

    __slots__ = (
        "_decoder",
        "_fragments",
        "_max_fragments",
        "_max_size",
        "_message_opcode",
        "_message_size",
        "_on_close",
        "_on_ping",
        "_on_pong",
        "_parts",
        "events",
    )

    def __init__(
        self,
        *,
        max_size: int | None,
        max_fragments: int | None = None,
        on_ping: Callable[[bytes], None],
        on_pong: Callable[[bytes], None],
        on_close: Callable[[bytes], None],
    ) -> None:
        self.events: list[Event] = []
        self._max_size = max_size
        self._max_fragments = max_fragments
        self._fragments = 0
        self._on_ping = on_ping
        self._on_pong = on_pong
        self._on_close = on_close
        self._message_opcode = 0  # opcode of the message being received, 0 if none
        self._message_size = 0
        self._parts: list[Any] = []
        self._decoder: codecs.IncrementalDecoder | None = None

    @property
    def receiving_fragmented(self) -> bool:
        return bool(self._message_opcode)

    def take_whole_messages(
        self, parse: Callable[..., tuple[list[str | bytes], int]], data: bytes, pos: int, *layout: object
    ) -> int:
        """Take the run of plain whole messages at `pos` in one call to `parse` (a codec's
        `whole_*_messages` of hybi.sansio._accel, given `layout` and the size limit): the
        common case of small messages, without a call per frame. Return where the run
        stopped, for the codec to go on frame by frame."""
        if self._message_opcode:
            return pos
        messages, pos = parse(data, pos, *layout, self._max_size)
        if messages:
            self.events += messages
        return pos

    def frame(  # noqa: PLR0917 - positional: called once per frame on the hot path
        self, opcode: int, fin: bool, rsv: int, length: int, payload: bytes, first: bool, last: bool
    ) -> bool:
        if fin and first and last and not rsv and not self._message_opcode and opcode:
            # The common case first: a whole message in one frame that arrived whole (the
            # size check is written out: a call per message shows in the profile).
            max_size = self._max_size
            if max_size is not None and len(payload) > max_size:
                self._check_size(len(payload))
            if opcode == OP_TEXT:
                try:
                    self.events.append(payload.decode("utf-8"))
                except UnicodeDecodeError:
                    raise InvalidUTF8("text message is not valid UTF-8") from None
                return False
            if opcode == OP_BINARY:
                self.events.append(payload)
                return False
        if opcode & 0x08:
            return self._control(opcode, rsv, payload)
        if first:
            if rsv:
                raise ProtocolError("reserved bits set without an extension that defines them (section 5.2)")
            if opcode == OP_CONTINUATION:
                if not self._message_opcode:
                    raise ProtocolError("continuation frame with no message to continue (section 5.4)")
                self._fragments += 1
                if self._max_fragments is not None and self._fragments > self._max_fragments:
                    raise MessageTooBig(f"message in more than {self._max_fragments} frames")
            elif self._message_opcode:
                raise ProtocolError("new data frame inside a fragmented message (section 5.4)")
            else:
                self._message_opcode = opcode
                self._message_size = 0
                self._fragments = 1
                self._decoder = _Utf8Decoder() if opcode == OP_TEXT else None
            if length >= 0:
                self._check_size(self._message_size + length)
        self._message_size += len(payload)
        if length < 0:
            self._check_size(self._message_size)
        end = fin and last
        if self._decoder is not None:
            text = self._decode(payload, end)
            if text:
                _append(self._parts, text)
        elif payload:
            _append(self._parts, payload)
        if end:
            self._finish()
        return False

    def _check_size(self, size: int) -> None:
        if self._max_size is not None and size > self._max_size:
            raise MessageTooBig(f"message of more than {self._max_size} bytes ({size} bytes so far or announced)")

    def _decode(self, payload: bytes, final: bool) -> str:
        """Section 8.1: invalid UTF-8 fails the connection as soon as a piece shows it."""
        decoder = self._decoder
        assert decoder is not None
        try:
            text = decoder.decode(payload, final)
        except UnicodeDecodeError:
            raise InvalidUTF8("text message is not valid UTF-8") from None
        # The codec holds back an unfinished sequence; ED A0-BF can only start a UTF-16
        # surrogate, which no valid UTF-8 contains, so it is refused now rather than later.
        pending = decoder.getstate()[0]
        if len(pending) >= 2 and pending[0] == 0xED and pending[1] >= 0xA0:
            raise InvalidUTF8("text message is not valid UTF-8")
        return text

    def _finish(self) -> None:
        parts = self._parts
        if self._message_opcode == OP_TEXT:
            message: str | bytes = parts[0] if len(parts) == 1 else "".join(parts)
        else:
            message = bytes(parts[0]) if len(parts) == 1 else b"".join(parts)
        self.events.append(message)
        self._message_opcode = 0
        self._message_size = 0
        self._parts = []
        self._decoder = None

    def detach(self) -> None:
        """Let go of the connection's callbacks (nothing is read any more): a connection and
        its assembler that refer to each other are then freed at once, not by the cycle
        collector."""
        self._on_ping = self._on_pong = self._on_close = _ignore

    def _control(self, opcode: int, rsv: int, payload: bytes) -> bool:
        if rsv:
            raise ProtocolError("reserved bits set on a control frame (section 5.2)")
        if opcode == OP_PING:
            self._on_ping(payload)
        elif opcode == OP_CLOSE:
            self._on_close(payload)
            return True
        else:
            self._on_pong(payload)
        return False


def _ignore(payload: bytes) -> None:
    """A detached assembler's answer to a control frame (it never reads one)."""
