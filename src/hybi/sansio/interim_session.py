"""The open connection of the interim drafts hybi-01 to -06 (binary frames before RFC 6455).

```
byte 0: MORE-or-FIN RSV1 RSV2 RSV3 opcode(4)
byte 1: RSV4 payload-len(7)          126 -> 16-bit length, 127 -> 64-bit length
opcodes: 0 continuation, 1 close, 2 ping, 3 pong, 4 text, 5 binary
```
Drafts 01-03 set MORE (0x80) on every fragment but the last and never mask. From -04 the
bit means FIN. In -05 and -06 a client puts a 4-byte key before each frame and XORs every
following byte with it, the header included (em-websocket `framing05.rb`, Jetty
`WebSocketParserD06`). Close frames of -06 carry a status code and reason; earlier drafts'
close bodies are echoed as they came (-03).
"""

from __future__ import annotations

import codecs
import os
import struct

from hybi.exceptions import InvalidState, ProtocolError, UnsupportedFeature
from hybi.sansio.close import CloseCodeRule, decode_close_body, encode_close_body
from hybi.sansio.draft_session import DraftSession
from hybi.sansio.events import CloseReceived, ConnectionFailed, Event, Ping, Pong, Role, State
from hybi.sansio.frames import apply_mask
from hybi.sansio.hixie_challenge import HixieChallenge

__all__ = ["InterimSession", "build_interim_frame"]

OP_CONTINUATION, OP_CLOSE, OP_PING, OP_PONG, OP_TEXT, OP_BINARY = range(6)

_Utf8Decoder = codecs.getincrementaldecoder("utf-8")


def build_interim_frame(
    opcode: int, payload: bytes, *, more_bit: bool, fin: bool = True, key: bytes | None = None
) -> bytes:
    """One frame; with `key` (hybi-05/06 clients) the key comes first and masks the rest."""
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


def _rotate(key: bytes, offset: int) -> bytes:
    offset %= 4
    return key[offset:] + key[:offset]


class InterimSession(DraftSession):
    """`more_bit`: drafts 01-03 (else FIN, 04 on); `prefix_mask`: drafts 05-06;
    `close_rule`: the close codes of -06, or None where close bodies have no status."""

    def __init__(
        self,
        role: Role,
        *,
        dialect_name: str,
        more_bit: bool,
        prefix_mask: bool,
        close_rule: CloseCodeRule | None,
        max_message_size: int | None,
        challenge: HixieChallenge | None = None,
    ) -> None:
        super().__init__(role, dialect_name=dialect_name, max_message_size=max_message_size, challenge=challenge)
        self._more_bit = more_bit
        self._mask_in = prefix_mask and role is Role.SERVER
        self._mask_out = prefix_mask and role is Role.CLIENT
        self._close_rule = close_rule
        self._message_opcode = 0
        self._message_size = 0
        self._parts: list[bytes] = []
        self._decoder: codecs.IncrementalDecoder | None = None
        self._sending_fragmented = False

    @property
    def close_status_supported(self) -> bool:
        return self._close_rule is not None

    # -- reading ---------------------------------------------------------------------

    def _parse(self, events: list[Event]) -> None:
        buffer = self._buffer
        end = len(buffer)
        pos = 0
        while pos < end:
            key: bytes | None = None
            start = pos
            if self._mask_in:
                if end - pos < 6:
                    break
                key = bytes(buffer[pos : pos + 4])
                start = pos + 4
                head = apply_mask(buffer[start : min(start + 10, end)], key)
            else:
                head = bytes(buffer[start : min(start + 10, end)])
            if len(head) < 2:
                break
            first, second = head[0], head[1]
            if first & 0x70 or second & 0x80:
                raise ProtocolError("reserved bits set without an extension that defines them")
            opcode = first & 0x0F
            final = not first & 0x80 if self._more_bit else bool(first & 0x80)
            length = second & 0x7F
            header_length = 2
            if length == 126:
                if len(head) < 4:
                    break
                length = int.from_bytes(head[2:4], "big")
                header_length = 4
            elif length == 127:
                if len(head) < 10:
                    break
                length = int.from_bytes(head[2:10], "big")
                header_length = 10
                if length >> 63:
                    raise ProtocolError("64-bit payload length has its most significant bit set")
            self._check_frame(opcode, final, length)
            payload_start = start + header_length
            if end - payload_start < length:
                break
            payload = bytes(buffer[payload_start : payload_start + length])
            if key is not None:
                payload = apply_mask(payload, _rotate(key, header_length))
            pos = payload_start + length
            if self._dispatch(opcode, final, payload, events):
                break
        del buffer[:pos]

    def _check_frame(self, opcode: int, final: bool, length: int) -> None:
        if opcode in (OP_CLOSE, OP_PING, OP_PONG):
            if not final:
                raise ProtocolError("fragmented control frame")
            return
        if opcode == OP_CONTINUATION:
            if not self._message_opcode:
                raise ProtocolError("continuation frame with no message to continue")
        elif opcode in (OP_TEXT, OP_BINARY):
            if self._message_opcode:
                raise ProtocolError("new data frame inside a fragmented message")
        else:
            raise ProtocolError(f"reserved opcode {opcode:#x} in {self.dialect_name}")
        if self._max_size is not None and self._message_size + length > self._max_size:
            raise ProtocolError(f"message of more than {self._max_size} bytes", 1009)

    def _dispatch(self, opcode: int, final: bool, payload: bytes, events: list[Event]) -> bool:
        """Act on one frame; True when reading is over (a close frame)."""
        if opcode in (OP_TEXT, OP_BINARY):
            self._message_opcode = opcode
            self._message_size = 0
            self._parts = []
            self._decoder = _Utf8Decoder() if opcode == OP_TEXT else None
            opcode = OP_CONTINUATION
        if opcode == OP_CONTINUATION:
            self._message_size += len(payload)
            if self._decoder is not None:
                try:
                    self._decoder.decode(payload, final)
                except UnicodeDecodeError:
                    raise ProtocolError("text message is not valid UTF-8", 1007) from None
            self._parts.append(payload)
            if final:
                whole = b"".join(self._parts)
                events.append(whole.decode("utf-8") if self._message_opcode == OP_TEXT else whole)
                self._message_opcode = 0
                self._message_size = 0
                self._parts = []
                self._decoder = None
        elif opcode == OP_PING:
            if self.state is State.OPEN:
                self._queue(OP_PONG, payload)
            events.append(Ping(payload))
        elif opcode == OP_PONG:
            events.append(Pong(payload))
        else:
            self._receive_close(payload, events)
            return True
        return False

    def _receive_close(self, payload: bytes, events: list[Event]) -> None:
        if self._close_rule is not None:
            code, reason = decode_close_body(payload, self._close_rule)
            echo = b"" if code == 1005 else payload[:2]
        else:
            code, reason, echo = 1005, "", payload  # -03 echoes the close body as it came
        self.close_received = (code, reason)
        if self.state is State.OPEN:
            self._queue(OP_CLOSE, echo)
            self.close_sent = (None if code == 1005 else code, "")
        self._stop_reading()
        events.append(CloseReceived(code, reason))

    def receive_eof(self) -> list[Event]:
        return []

    def _fail(self, code: int, reason: str, events: list[Event]) -> None:
        if self.state is State.OPEN:
            body = encode_close_body(code, "", self._close_rule) if self._close_rule is not None else b""
            self._queue(OP_CLOSE, body)
            self.close_sent = (code, reason)
        self._stop_reading()
        self.failure = ConnectionFailed(code, reason)
        events.append(self.failure)

    # -- writing ---------------------------------------------------------------------

    def _queue(self, opcode: int, payload: bytes, fin: bool = True) -> None:
        key = os.urandom(4) if self._mask_out else None
        self._out.append(build_interim_frame(opcode, payload, more_bit=self._more_bit, fin=fin, key=key))

    def _send_data(self, opcode: int, payload: bytes, fin: bool) -> None:
        self._check_open()
        if (opcode == OP_CONTINUATION) != self._sending_fragmented:
            raise InvalidState("fragments out of order")
        self._sending_fragmented = not fin
        self._queue(opcode, payload, fin)

    def send_text(self, text: str, *, fin: bool = True) -> None:
        self._send_data(OP_TEXT, text.encode("utf-8"), fin)

    def send_binary(self, data: bytes | bytearray | memoryview, *, fin: bool = True) -> None:
        self._send_data(OP_BINARY, bytes(data), fin)

    def send_continuation(self, data: bytes, *, fin: bool) -> None:
        self._send_data(OP_CONTINUATION, data, fin)

    def send_ping(self, data: bytes = b"") -> None:
        self._check_open()
        self._queue(OP_PING, bytes(data))

    def send_pong(self, data: bytes = b"") -> None:
        self._check_open()
        self._queue(OP_PONG, bytes(data))

    def send_close(self, code: int | None = 1000, reason: str = "") -> None:
        if self._close_rule is None and (code not in (None, 1000) or reason):
            raise UnsupportedFeature(f"{self.dialect_name} close frames carry no status code or reason")
        if self.state is not State.OPEN:
            return
        body = encode_close_body(code, reason, self._close_rule) if self._close_rule is not None else b""
        self._queue(OP_CLOSE, body)
        self.close_sent = (code if self._close_rule is not None else None, reason)
        self.state = State.CLOSING
