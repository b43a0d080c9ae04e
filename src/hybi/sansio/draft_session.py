"""What the sessions of the drafts before version 7 share: a receive buffer, the hixie-76
challenge bytes that may come before any frame, and the queue of bytes to send."""

from __future__ import annotations

from hybi.exceptions import InvalidState, ProtocolError
from hybi.sansio.events import ConnectionFailed, Event, Role, State
from hybi.sansio.hixie_challenge import HixieChallenge

__all__ = ["DraftSession"]


class DraftSession:
    """Subclasses parse frames from `_buffer` in `_parse` and say how to fail in `_fail`."""

    def __init__(
        self,
        role: Role,
        *,
        dialect_name: str,
        max_message_size: int | None,
        challenge: HixieChallenge | None,
    ) -> None:
        self.role = role
        self.dialect_name = dialect_name
        self.state = State.OPEN
        self.close_sent: tuple[int | None, str] | None = None
        self.close_received: tuple[int, str] | None = None
        self.failure: ConnectionFailed | None = None
        self._max_size = max_message_size
        self._challenge = challenge
        self._buffer = bytearray()
        self._out: list[bytes] = []
        self._done_reading = False

    @property
    def ready(self) -> bool:
        """False until the hixie-76 challenge bytes have been exchanged."""
        return self._challenge is None

    def receive_data(self, data: bytes) -> list[Event]:
        if self._done_reading:
            return []
        self._buffer += data
        events: list[Event] = []
        try:
            if self._challenge is not None and not self._take_challenge():
                return events
            self._parse(events)
        except ProtocolError as error:
            self._fail(error.code, error.reason, events)
        return events

    def _take_challenge(self) -> bool:
        """Consume key3 (server) or the answer (client) once all of it is in."""
        assert self._challenge is not None
        need = self._challenge.need
        if len(self._buffer) < need:
            return False
        received = bytes(self._buffer[:need])
        del self._buffer[:need]
        reply = self._challenge.complete(received)
        self._challenge = None
        if reply:
            self._out.insert(0, reply)  # ahead of anything queued meanwhile
        return True

    def _parse(self, events: list[Event]) -> None:
        raise NotImplementedError

    def _fail(self, code: int, reason: str, events: list[Event]) -> None:
        raise NotImplementedError

    def _stop_reading(self) -> None:
        self.state = State.CLOSED
        self._done_reading = True
        self._buffer.clear()

    def _check_open(self) -> None:
        if self._challenge is not None:
            raise InvalidState("the hixie-76 challenge is not complete yet")
        if self.state is not State.OPEN:
            raise InvalidState(f"cannot send: the connection is {self.state.value}")

    def data_to_send(self) -> bytes:
        out = self._out
        if not out:
            return b""
        data = b"".join(out)
        out.clear()
        return data
