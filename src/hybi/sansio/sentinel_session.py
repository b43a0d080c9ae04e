"""The open connection of hixie-75 and hixie-76 / hybi-00: sentinel-delimited text frames.

```
text:            0x00, UTF-8 bytes, 0xFF
length-prefixed: a type byte with its high bit set, a base-128 length, that many bytes;
                 read and discarded (no API of these drafts exposes them)
close:           0xFF 0x00 (hixie-76 only; hixie-75 closes by closing TCP)
```
There is no binary message, no ping, no fragmentation and no close status: asking for
one raises UnsupportedFeature naming the dialect.
"""

from __future__ import annotations

from hybi.exceptions import ProtocolError, UnsupportedFeature
from hybi.sansio.draft_session import DraftSession
from hybi.sansio.events import CloseReceived, ConnectionFailed, Event, Role, State
from hybi.sansio.hixie_challenge import HixieChallenge

__all__ = ["SentinelSession"]

_CLOSE_FRAME = b"\xff\x00"
_MAX_LENGTH_BYTES = 10


class SentinelSession(DraftSession):
    """`close_frame`: whether 0xFF 0x00 closes (hixie-76) or is an empty frame (hixie-75)."""

    close_status_supported = False

    def __init__(
        self,
        role: Role,
        *,
        dialect_name: str,
        close_frame: bool,
        max_message_size: int | None,
        challenge: HixieChallenge | None = None,
    ) -> None:
        super().__init__(role, dialect_name=dialect_name, max_message_size=max_message_size, challenge=challenge)
        self._close_frame = close_frame

    # -- reading ---------------------------------------------------------------------

    def _parse(self, events: list[Event]) -> None:
        buffer = self._buffer
        end = len(buffer)
        pos = 0
        max_size = self._max_size
        while pos < end:
            frame_type = buffer[pos]
            if not frame_type & 0x80:
                # The drafts read other text-range types up to 0xFF and discard them. No client
                # sends one; it appears when a text frame held a stray 0xFF, so it is refused
                # rather than dropped without a word.
                if frame_type != 0x00:
                    raise ProtocolError(f"unknown frame type {frame_type:#04x} (a 0xFF inside a text frame?)")
                stop = buffer.find(b"\xff", pos + 1)
                if stop < 0:
                    if max_size is not None and end - pos - 1 > max_size:
                        raise ProtocolError(f"text frame of more than {max_size} bytes without its 0xFF end", 1009)
                    break
                payload = bytes(buffer[pos + 1 : stop])
                pos = stop + 1
                try:
                    events.append(payload.decode("utf-8"))
                except UnicodeDecodeError:
                    raise ProtocolError("text frame is not valid UTF-8", 1007) from None
                continue
            length, index, complete = 0, pos + 1, False
            while index < end:
                byte = buffer[index]
                index += 1
                length = (length << 7) | (byte & 0x7F)
                if not byte & 0x80:
                    complete = True
                    break
                if index - pos > _MAX_LENGTH_BYTES:
                    raise ProtocolError("length of a length-prefixed frame takes more than 9 bytes")
            if not complete:
                break
            if frame_type == 0xFF and length == 0 and self._close_frame:
                pos = index
                self._receive_close(events)
                break
            if max_size is not None and length > max_size:
                raise ProtocolError(f"length-prefixed frame of {length} bytes; the limit is {max_size}", 1009)
            if end - index < length:
                break
            pos = index + length
        del buffer[:pos]

    def _receive_close(self, events: list[Event]) -> None:
        """hixie-76: answer 0xFF 0x00 with 0xFF 0x00, then the connection ends."""
        if self.state is State.OPEN:
            self._out.append(_CLOSE_FRAME)
            self.close_sent = (None, "")
        self.close_received = (1005, "")
        self._stop_reading()
        events.append(CloseReceived(1005, ""))

    def receive_eof(self) -> list[Event]:
        """In hixie-75, closing TCP is how a connection ends normally."""
        if self._close_frame or self.state is State.CLOSED or self._challenge is not None:
            return []
        self.close_received = (1005, "")
        self._stop_reading()
        return [CloseReceived(1005, "")]

    def _fail(self, code: int, reason: str, events: list[Event]) -> None:
        """The drafts close the connection on bad input; `code` only tells the application why."""
        self._stop_reading()
        self.failure = ConnectionFailed(code, reason)
        events.append(self.failure)

    # -- writing ---------------------------------------------------------------------

    def send_text(self, text: str, *, fin: bool = True) -> None:
        if not fin:
            raise UnsupportedFeature(f"{self.dialect_name} has no fragmented messages")
        self._check_open()
        self._out.append(b"\x00" + text.encode("utf-8") + b"\xff")

    def send_binary(self, data: bytes | bytearray | memoryview, *, fin: bool = True) -> None:
        raise UnsupportedFeature(f"{self.dialect_name} has no binary messages: it carries text only")

    def send_continuation(self, data: bytes, *, fin: bool) -> None:
        raise UnsupportedFeature(f"{self.dialect_name} has no fragmented messages")

    def send_ping(self, data: bytes = b"") -> None:
        raise UnsupportedFeature(f"{self.dialect_name} has no ping or pong")

    def send_pong(self, data: bytes = b"") -> None:
        raise UnsupportedFeature(f"{self.dialect_name} has no ping or pong")

    def send_close(self, code: int | None = 1000, reason: str = "") -> None:
        """hixie-76 sends 0xFF 0x00; hixie-75 has nothing to send (TCP is then closed)."""
        if code not in (None, 1000) or reason:
            raise UnsupportedFeature(f"{self.dialect_name} closes carry no status code or reason")
        if self.state is not State.OPEN:
            return
        self.close_sent = (None, "")
        if self._close_frame:
            self._out.append(_CLOSE_FRAME)
            self.state = State.CLOSING
        else:
            # Closing TCP is the whole closing handshake: nothing more will come.
            self.close_received = (1005, "")
            self._stop_reading()
