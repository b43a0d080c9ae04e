"""The open connection for versions 7, 8 and 13: frames in, messages out (RFC 6455 sections 5-7).

One `RFC6455Session` per connection; the dialect that created it supplies the rules
that differ between versions (which close codes are valid, whether lengths must be
minimally encoded). The session owns no socket: `receive_data()` takes bytes and
returns events, every `send_*()` queues bytes, and `data_to_send()` hands over all
queued bytes at once, so that whatever one read produced leaves in one write.
"""

from __future__ import annotations

import codecs

from hybi.exceptions import InvalidState, ProtocolError
from hybi.sansio.close import CloseCodeRule, decode_close_body, encode_close_body
from hybi.sansio.events import CloseReceived, ConnectionFailed, Event, Ping, Pong, Role, State
from hybi.sansio.frames import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONTINUATION,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    apply_mask,
    build_frame,
)

__all__ = ["DEFAULT_MAX_MESSAGE_SIZE", "RFC6455Session"]

DEFAULT_MAX_MESSAGE_SIZE = 1 << 20

_Utf8Decoder = codecs.getincrementaldecoder("utf-8")


class RFC6455Session:
    """Message layer over RFC 6455 framing, for one endpoint of one connection.

    `max_message_size` bounds a whole (possibly fragmented) message; it is checked from
    each frame header before the payload is buffered, and exceeding it fails the
    connection with 1009 (section 7.4.1). None means no limit.
    """

    ready = True  # nothing follows the HTTP heads before frames
    close_status_supported = True

    __slots__ = (
        "_buffer",
        "_close_rule",
        "_decoder",
        "_done_reading",
        "_expect_mask",
        "_mask_outgoing",
        "_max_size",
        "_message_opcode",
        "_message_size",
        "_minimal_lengths",
        "_need",
        "_out",
        "_parts",
        "_sending_fragmented",
        "close_received",
        "close_sent",
        "dialect_name",
        "failure",
        "role",
        "state",
    )

    def __init__(
        self,
        role: Role,
        *,
        dialect_name: str,
        close_rule: CloseCodeRule,
        minimal_lengths: bool,
        max_message_size: int | None = DEFAULT_MAX_MESSAGE_SIZE,
    ) -> None:
        self.role = role
        self.dialect_name = dialect_name
        self.state = State.OPEN
        self.close_sent: tuple[int | None, str] | None = None
        self.close_received: tuple[int, str] | None = None
        self.failure: ConnectionFailed | None = None
        self._close_rule = close_rule
        self._minimal_lengths = minimal_lengths
        self._max_size = max_message_size
        # Section 5.1: clients mask every frame; servers never do.
        self._mask_outgoing = role is Role.CLIENT
        self._expect_mask = 0x80 if role is Role.SERVER else 0
        self._buffer = bytearray()
        self._need = 0
        self._out: list[bytes] = []
        self._done_reading = False
        self._message_opcode = 0  # opcode of the fragmented message being received, 0 if none
        self._message_size = 0
        self._parts: list[str] | list[bytes] = []
        self._decoder: codecs.IncrementalDecoder | None = None
        self._sending_fragmented = False

    # -- reading ---------------------------------------------------------------------

    def receive_data(self, data: bytes) -> list[Event]:
        """Parse `data`, which may hold any number of frames or parts of one."""
        if self._done_reading:
            return []  # section 7.1.1 and 5.5.1: nothing is read after a close frame
        if self._buffer:
            self._buffer += data
            if len(self._buffer) < self._need:
                return []
            data = bytes(self._buffer)
            self._buffer.clear()
        events: list[Event] = []
        try:
            used = self._parse(data, events)
        except ProtocolError as error:
            self._fail(error.code, error.reason, events)
            return events
        if used < len(data) and not self._done_reading:
            self._buffer += memoryview(data)[used:]
        return events

    def receive_eof(self) -> list[Event]:
        """TCP closed: without a close frame that is an abnormal closure, reported as 1006."""
        return []

    def _parse(self, data: bytes, events: list[Event]) -> int:
        """Consume whole frames from `data`; return how many bytes were used."""
        view = memoryview(data)
        end = len(data)
        pos = 0
        expect_mask = self._expect_mask
        max_size = self._max_size
        while end - pos >= 2:
            first = data[pos]
            second = data[pos + 1]
            if second & 0x80 != expect_mask:
                if expect_mask:
                    raise ProtocolError("client frame is not masked (RFC 6455 section 5.1)")
                raise ProtocolError("server frame is masked (RFC 6455 section 5.1)")
            if first & 0x70:
                raise ProtocolError("reserved bits set without an extension that defines them (section 5.2)")
            opcode = first & 0x0F
            fin = first & 0x80
            length = second & 0x7F
            start = pos + 2
            if length == 126:
                if end - start < 2:
                    self._need = 4
                    break
                length = (data[start] << 8) | data[start + 1]
                start += 2
                if length < 126 and self._minimal_lengths:
                    raise ProtocolError("payload length not minimally encoded (section 5.2)")
            elif length == 127:
                if end - start < 8:
                    self._need = 10
                    break
                length = int.from_bytes(view[start : start + 8], "big")
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
            else:
                if opcode == OP_CONTINUATION:
                    if not self._message_opcode:
                        raise ProtocolError("continuation frame with no message to continue (section 5.4)")
                elif opcode <= OP_BINARY:
                    if self._message_opcode:
                        raise ProtocolError("new data frame inside a fragmented message (section 5.4)")
                else:
                    raise ProtocolError(f"reserved data opcode {opcode:#x} (section 5.2)")
                if max_size is not None and self._message_size + length > max_size:
                    raise ProtocolError(
                        f"message of more than {max_size} bytes (frame of {length} bytes"
                        f"{f' after {self._message_size}' if self._message_size else ''})",
                        1009,
                    )
            if expect_mask:
                if end - start < length + 4:
                    self._need = start + 4 + length - pos
                    break
                key = data[start : start + 4]
                start += 4
                payload = apply_mask(view[start : start + length], key)
            else:
                if end - start < length:
                    self._need = start + length - pos
                    break
                payload = data[start : start + length]
            pos = start + length

            if opcode == OP_TEXT:
                if fin:
                    try:
                        events.append(payload.decode("utf-8"))
                    except UnicodeDecodeError:
                        raise ProtocolError("text message is not valid UTF-8", 1007) from None
                else:
                    self._decoder = _Utf8Decoder()
                    self._message_opcode = OP_TEXT
                    self._message_size = length
                    self._parts = [self._decode_fragment(payload, False)]
            elif opcode == OP_BINARY:
                if fin:
                    events.append(payload)
                else:
                    self._message_opcode = OP_BINARY
                    self._message_size = length
                    self._parts = [payload]
            elif opcode == OP_CONTINUATION:
                self._continue_message(payload, bool(fin), events)
            elif opcode == OP_PING:
                if self.state is State.OPEN:
                    self._out.append(build_frame(OP_PONG, payload, mask=self._mask_outgoing))
                events.append(Ping(payload))
            elif opcode == OP_PONG:
                events.append(Pong(payload))
            else:
                self._receive_close(payload, events)
                return pos
        else:
            self._need = 2  # fewer than two bytes left: any frame header needs at least two
        return pos

    def _decode_fragment(self, payload: bytes, final: bool) -> str:
        """Section 8.1: invalid UTF-8 fails the connection as soon as a fragment shows it."""
        assert self._decoder is not None
        try:
            text = self._decoder.decode(payload, final)
        except UnicodeDecodeError:
            raise ProtocolError("text message is not valid UTF-8", 1007) from None
        # The codec holds back an unfinished sequence; ED A0-BF can only start a UTF-16
        # surrogate, which no valid UTF-8 contains, so it is refused now rather than later.
        pending = self._decoder.getstate()[0]
        if len(pending) >= 2 and pending[0] == 0xED and pending[1] >= 0xA0:
            raise ProtocolError("text message is not valid UTF-8", 1007)
        return text

    def _continue_message(self, payload: bytes, fin: bool, events: list[Event]) -> None:
        self._message_size += len(payload)
        if self._message_opcode == OP_TEXT:
            text_parts: list[str] = self._parts  # type: ignore[assignment]
            text_parts.append(self._decode_fragment(payload, fin))
            if fin:
                events.append("".join(text_parts))
        else:
            binary_parts: list[bytes] = self._parts  # type: ignore[assignment]
            binary_parts.append(payload)
            if fin:
                events.append(b"".join(binary_parts))
        if fin:
            self._message_opcode = 0
            self._message_size = 0
            self._parts = []
            self._decoder = None

    def _receive_close(self, payload: bytes, events: list[Event]) -> None:
        """Section 5.5.1: answer a close frame with one, echoing its status code."""
        code, reason = decode_close_body(payload, self._close_rule)
        self.close_received = (code, reason)
        if self.state is State.OPEN:
            echo = None if code == 1005 else code
            self._queue_close(echo, "")
        self.state = State.CLOSED
        self._done_reading = True
        self._buffer.clear()
        events.append(CloseReceived(code, reason))

    def _fail(self, code: int, reason: str, events: list[Event]) -> None:
        """Section 7.1.7, Fail the WebSocket Connection: send a close frame, stop reading."""
        if self.state is State.OPEN:
            self._queue_close(code, _truncate_utf8(reason, 123))
        self.state = State.CLOSED
        self._done_reading = True
        self._buffer.clear()
        self.failure = ConnectionFailed(code, reason)
        events.append(self.failure)

    # -- writing ---------------------------------------------------------------------

    def send_text(self, text: str, *, fin: bool = True) -> None:
        self._send_data(OP_TEXT, text.encode("utf-8"), fin)

    def send_binary(self, data: bytes | bytearray | memoryview, *, fin: bool = True) -> None:
        self._send_data(OP_BINARY, bytes(data), fin)

    def send_continuation(self, data: bytes, *, fin: bool) -> None:
        """A later fragment of the message begun by `send_text`/`send_binary` with fin=False."""
        self._send_data(OP_CONTINUATION, data, fin)

    def _send_data(self, opcode: int, payload: bytes, fin: bool) -> None:
        if self.state is not State.OPEN:
            raise InvalidState(f"cannot send a message: the connection is {self.state.value}")
        if opcode == OP_CONTINUATION:
            if not self._sending_fragmented:
                raise InvalidState("no fragmented message is being sent")
            self._sending_fragmented = not fin
        else:
            if self._sending_fragmented:
                raise InvalidState("finish the fragmented message being sent first")
            self._sending_fragmented = not fin
        self._out.append(build_frame(opcode, payload, fin=fin, mask=self._mask_outgoing))

    def send_ping(self, data: bytes = b"") -> None:
        self._send_control(OP_PING, data)

    def send_pong(self, data: bytes = b"") -> None:
        self._send_control(OP_PONG, data)

    def _send_control(self, opcode: int, data: bytes) -> None:
        if self.state is not State.OPEN:
            raise InvalidState(f"cannot send a control frame: the connection is {self.state.value}")
        if len(data) > 125:
            raise ValueError("control frame payload is longer than 125 bytes (section 5.5)")
        self._out.append(build_frame(opcode, bytes(data), mask=self._mask_outgoing))

    def send_close(self, code: int | None = 1000, reason: str = "") -> None:
        """Start the closing handshake (section 7.1.2); a second call does nothing."""
        if self.state is not State.OPEN:
            return
        self._queue_close(code, reason)
        self.state = State.CLOSING

    def _queue_close(self, code: int | None, reason: str) -> None:
        body = encode_close_body(code, reason, self._close_rule)
        self.close_sent = (code, reason)
        self._out.append(build_frame(OP_CLOSE, body, mask=self._mask_outgoing))

    def data_to_send(self) -> bytes:
        """Every byte queued since the last call, as one string."""
        out = self._out
        if not out:
            return b""
        data = out[0] if len(out) == 1 else b"".join(out)
        out.clear()
        return data

    @property
    def receiving_fragmented(self) -> bool:
        return bool(self._message_opcode)


def _truncate_utf8(text: str, limit: int) -> str:
    encoded = text.encode("utf-8")
    if len(encoded) <= limit:
        return text
    return encoded[:limit].decode("utf-8", "ignore")
