"""One endpoint of one WebSocket connection, without I/O: the whole lifecycle.

A `ServerConnection` or `ClientConnection` starts CONNECTING, runs the opening handshake,
then carries messages until it is CLOSED (or REJECTED); `_state.py` holds the table of
its states. Its inputs are bytes (`receive_data`, `receive_eof`), the application's
calls (`send_*`, `close`, `accept`/`reject` for a server) and the passing of time
(`handle_timer`). Its outputs are events, bytes to write (`data_to_send`), what to do
with the transport (`transport_action`), when to call again (`next_deadline`) and, once
closed, how it closed (`close_info`).

Times are whatever monotonic clock the caller uses: the connection reads no clock. A
method that takes `now` records it; leaving it out reuses the last time given.

Received bytes pass through the dialect's codec, then the extensions, then the shared
`MessageAssembler`; the `except` ladder in `receive_data` is the one place where an error
becomes a close code.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from hybi.exceptions import (
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
    HandshakeError,
    HandshakeRejected,
    InvalidHandshake,
    InvalidPayload,
    InvalidState,
    MessageTooBig,
    ProtocolError,
    UnsupportedFeature,
)
from hybi.sansio._state import Happening, next_state
from hybi.sansio.assembler import MessageAssembler
from hybi.sansio.close import decode_close_body, encode_close_body
from hybi.sansio.dialects import DEFAULT_VERSIONS, Dialect, VersionSpec
from hybi.sansio.dialects.base import CloseRules
from hybi.sansio.dialects.keyaccept import bad_request
from hybi.sansio.events import (
    CloseReceived,
    ConnectionFailed,
    Event,
    HandshakeFailed,
    Opened,
    Ping,
    Pong,
    RequestReceived,
    Role,
    State,
    TransportAction,
)
from hybi.sansio.extensions import ClientExtensionFactory, Extension, ExtensionChain, ServerExtensionFactory
from hybi.sansio.frames import OP_BINARY, OP_CLOSE, OP_CONTINUATION, OP_PING, OP_PONG, OP_TEXT
from hybi.sansio.framing import Codec, FrameSink
from hybi.sansio.handshake import (
    CONFIGURED,
    Accepted,
    ClientHandshake,
    OriginRule,
    SelectSubprotocol,
    ServerHandshake,
    UseConfigured,
)
from hybi.sansio.hixie_challenge import HixieChallenge
from hybi.sansio.http import DEFAULT_LIMITS, Headers, HeadersLike, HTTPLimits, Request, Response, as_headers

ProcessResponse = Callable[[Request, Response], "Response | None"]
"""A server's hook on the 101 it is about to send: change it, or return another response."""

__all__ = [
    "DEFAULT_MAX_FRAGMENTS",
    "DEFAULT_MAX_SIZE",
    "ClientConnection",
    "CloseInfo",
    "Connection",
    "Options",
    "ProcessResponse",
    "ServerConnection",
    "open_connection",
]

DEFAULT_MAX_SIZE = 1 << 20
"""The default limit on a message, in bytes (1 MiB)."""
DEFAULT_MAX_FRAGMENTS = 1 << 17
"""The default limit on the frames of one message: 131,072, twice the most a test suite sends
(Autobahn 9.3.1: 4 MiB in 65,537 frames). Empty frames cost no memory; this bounds the CPU."""

_SEPARATE_FROM = 1 << 16
"""Payloads from this size are queued apart from their frame header where the wire leaves
them as they are, and reach the transport without a copy (`buffers_to_send`)."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Options:
    """Limits and timeouts shared by both roles (seconds; None turns a timeout off).

    `max_size` bounds a whole message, checked from each frame header before the payload
    is held (1009 past it). `open_timeout` bounds the opening handshake, `close_timeout`
    the wait for the peer's close frame and then for the transport to close.
    `ping_interval` and `ping_timeout`: keepalive pings, and how long a pong may take
    before the connection is closed with 1011. `idle_timeout`: close (1001) a connection
    that received nothing for this long (for the hixie drafts, which have no ping).
    `max_fragments` bounds the frames of one message (1009 past it), so that a peer
    cannot keep one endless message going with empty frames.
    """

    max_size: int | None = DEFAULT_MAX_SIZE
    max_fragments: int | None = DEFAULT_MAX_FRAGMENTS
    open_timeout: float | None = 10.0
    close_timeout: float | None = 10.0
    ping_interval: float | None = 20.0
    ping_timeout: float | None = 20.0
    idle_timeout: float | None = None


@dataclass(frozen=True, slots=True)
class CloseInfo:
    """How a connection ended.

    `code`, `reason`: the peer's close frame (1005: it had no status; 1006: none came).
    `sent_code`, `sent_reason`: this side's close frame, if it sent one. `local_first`:
    whether this side sent its close frame first (None when neither sent one).
    `failure`: set when the connection was failed (section 7.1.7). `detail`: what
    happened, in words, when it was not a plain closing handshake.
    """

    code: int
    reason: str
    sent_code: int | None
    sent_reason: str
    local_first: bool | None
    failure: ConnectionFailed | None
    detail: str

    @property
    def ok(self) -> bool:
        """A normal closure (section 7.4.1): 1000 or 1001 (or no status) both ways."""
        return _normal_closure(self.code, self.sent_code, self.failure)

    def exception(self) -> ConnectionClosed:
        return _closed_error(self.code, self.reason, self.sent_code, self.failure, self.detail)


def _normal_closure(code: int, sent_code: int | None, failure: ConnectionFailed | None) -> bool:
    return failure is None and code in (1000, 1001, 1005) and (sent_code is None or sent_code in (1000, 1001))


def _closed_error(
    code: int, reason: str, sent_code: int | None, failure: ConnectionFailed | None, detail: str
) -> ConnectionClosed:
    """What `CloseInfo.exception` returns for a connection that closed so."""
    if failure is not None:
        return ConnectionClosedError(1006, "", sent_code, f"{failure.reason}; sent close code {failure.code}")
    if _normal_closure(code, sent_code, failure):
        return ConnectionClosedOK(code, reason, sent_code, detail)
    return ConnectionClosedError(code, reason, sent_code, detail)


class Connection:
    """What both roles share: the message pipeline, closing, keepalive and timers.

    Made directly (`open_connection`), it is OPEN at once, for a handshake done elsewhere.
    """

    __slots__ = (
        "_answer_pending",
        "_assembler",
        "_challenge",
        "_challenge_buffer",
        "_close_rules",
        "_codec",
        "_deadlines",
        "_detail",
        "_done_reading",
        "_failure_close",
        "_keepalive_payload",
        "_keepalive_sent_at",
        "_last_received",
        "_local_first",
        "_now",
        "_out",
        "_out_large",
        "_pong_owed",
        "_sending_fragmented",
        "_sink",
        "_writing_blocked",
        "close_received",
        "close_sent",
        "dialect",
        "extensions",
        "failure",
        "handshake_error",
        "latency",
        "options",
        "request",
        "response",
        "role",
        "state",
        "subprotocol",
        "transport_action",
    )

    def __init__(self, role: Role, options: Options = Options(), *, now: float = 0.0) -> None:
        self.role = role
        self.options = options
        self.state = State.CONNECTING
        self.dialect: Dialect | None = None
        self.subprotocol: str | None = None
        self.extensions: tuple[Extension, ...] = ()
        self.request: Request | None = None
        self.response: Response | None = None
        self.handshake_error: HandshakeError | None = None
        self.close_sent: tuple[int | None, str] | None = None
        self.close_received: tuple[int, str] | None = None
        self.failure: ConnectionFailed | None = None
        self.transport_action = TransportAction.KEEP
        self.latency: float | None = None  # the round trip of the last keepalive ping, in seconds
        self._now = now
        self._out: list[bytes] = []
        self._out_large = False  # whether _out holds a payload queued apart from its header
        self._detail = ""
        self._local_first: bool | None = None
        self._done_reading = False
        self._codec: Codec | None = None
        self._assembler: MessageAssembler | None = None
        self._sink: FrameSink | None = None
        self._close_rules: CloseRules | None = None
        self._challenge: HixieChallenge | None = None
        self._challenge_buffer = b""
        self._sending_fragmented = False
        self._failure_close: bytes | None = None
        self._answer_pending = False
        self._deadlines: dict[str, float] = {}
        self._keepalive_payload: bytes | None = None
        self._last_received = now
        self._writing_blocked = False
        self._pong_owed: bytes | None = None
        self._keepalive_sent_at = 0.0
        if options.open_timeout is not None:
            self._deadlines["open"] = now + options.open_timeout

    # -- what the handshake agreed ---------------------------------------------------------

    @property
    def version(self) -> int | str | None:
        """The negotiated version: its number (13, 8, 7, 6, 5) or, for the drafts before
        version numbers, its name ("hybi-02", "hixie-76", "hixie-75"); None before."""
        if self.dialect is None:
            return None
        return self.dialect.version if self.dialect.version is not None else self.dialect.name

    @property
    def receiving_fragmented(self) -> bool:
        return self._assembler is not None and self._assembler.receiving_fragmented

    @property
    def close_status_supported(self) -> bool:
        """Whether close frames of this dialect carry a status code and reason."""
        return self._close_rules is not None and self._close_rules.status is not None

    @property
    def binary_supported(self) -> bool:
        """Whether this dialect has binary messages (the hixie drafts carry text only)."""
        return self._codec is not None and self._codec.binary

    # -- switching to the dialect's pipeline ---------------------------------------------

    def _install(self, dialect: Dialect, extensions: Sequence[Extension] = ()) -> None:
        """Set up codec → extensions → assembler for `dialect`."""
        self.dialect = dialect
        self.extensions = tuple(extensions)
        for extension in extensions:
            extension.set_max_size(self.options.max_size)
        self._close_rules = dialect.close_rules
        self._codec = dialect.new_codec(self.role, max_size=self.options.max_size)
        self._assembler = MessageAssembler(
            max_size=self.options.max_size,
            max_fragments=self.options.max_fragments,
            on_ping=self._ping_received,
            on_pong=self._pong_received,
            on_close=self._close_received,
        )
        self._sink = ExtensionChain(extensions, self._assembler) if extensions else self._assembler

    def _opened(self, events: list[Event]) -> None:
        """Section 4.1 / 4.2.2: the handshake is complete."""
        self.state = next_state(self.state, Happening.HANDSHAKE_COMPLETED)
        self._deadlines.pop("open", None)
        if self.options.ping_interval is not None and self._codec is not None and self._codec.pings:
            self._deadlines["ping"] = self._now + self.options.ping_interval
        if self.options.idle_timeout is not None:
            self._deadlines["idle"] = self._now + self.options.idle_timeout
        self._last_received = self._now
        events.append(Opened())

    def _handshake_failed(self, error: HandshakeError, events: list[Event], response: Response | None = None) -> None:
        """The opening handshake is over without a connection; a server answers `response`."""
        if response is not None:
            self._out.append(response.serialize())
        self.handshake_error = error
        self.state = next_state(self.state, Happening.HANDSHAKE_FAILED)
        self._done_reading = True
        self._deadlines.clear()
        self._set_transport(TransportAction.CLOSE)
        events.append(HandshakeFailed(error))

    # -- reading ---------------------------------------------------------------------------

    def receive_data(self, data: bytes, *, now: float | None = None) -> list[Event]:
        """Take bytes from the peer; return what they meant, in order."""
        if now is not None:
            self._now = now
        self._last_received = self._now
        if self._done_reading:
            return []  # sections 7.1.1 and 5.5.1: nothing is read after a close frame
        if self.state is State.CONNECTING and self._codec is None:
            return self._receive_handshake(data)
        events: list[Event] = []
        if self._challenge is not None:
            data = self._receive_challenge(data, events)
            if not data:
                return events
        assembler = self._assembler
        assert assembler is not None and self._codec is not None and self._sink is not None
        assembler.events = events
        try:
            self._codec.receive(data, self._sink)
        except (ProtocolError, UnsupportedFeature) as error:
            self._fail_on(error)
        return events

    def receive_buffer(self) -> memoryview | None:
        """Where the next bytes from the peer may be written directly, or None.

        While a large frame's payload arrives, this is a writable view of the part still
        to come: a pump that can receive into memory (`recv_into`, a buffered protocol)
        puts up to its length there and calls `receive_in_place` with the count, which
        saves copying the payload out of a read buffer. Whenever this is None, call
        `receive_data`. The view is good until the next call into this connection.
        """
        codec = self._codec
        if codec is None or self._done_reading or self._challenge is not None:
            return None
        return codec.receive_buffer()

    def receive_in_place(self, count: int, *, now: float | None = None) -> list[Event]:
        """`count` bytes from the peer were written at the start of the view the last
        `receive_buffer` gave; return what they meant, as `receive_data` does."""
        if now is not None:
            self._now = now
        self._last_received = self._now
        codec = self._codec
        assembler = self._assembler
        if codec is None or assembler is None or self._sink is None or self._done_reading:
            raise InvalidState("no bytes were expected in place")
        events: list[Event] = []
        assembler.events = events
        try:
            codec.receive_in_place(count, self._sink)
        except (ProtocolError, UnsupportedFeature) as error:
            self._fail_on(error)
        except ValueError as error:  # the codec lent no view, or not this much of one
            raise InvalidState(str(error)) from None
        return events

    def _fail_on(self, error: ProtocolError | UnsupportedFeature) -> None:
        """Fail the connection with the close code (section 7.4.1) for what was wrong in
        the peer's bytes."""
        if isinstance(error, MessageTooBig):
            self._fail(1009, error.reason)
        elif isinstance(error, InvalidPayload):
            self._fail(1007, error.reason)
        elif isinstance(error, ProtocolError):
            self._fail(1002, error.reason)
        else:
            self._fail(1003, str(error))

    def _receive_handshake(self, data: bytes) -> list[Event]:
        raise InvalidState("this connection was made open: it has no opening handshake")

    def _receive_challenge(self, data: bytes, events: list[Event]) -> bytes:
        """hixie-76: the bytes after the heads (key3, or the server's answer); what follows."""
        challenge = self._challenge
        assert challenge is not None
        buffered = self._challenge_buffer + data
        if len(buffered) < challenge.need:
            self._challenge_buffer = buffered
            return b""
        self._challenge_buffer = b""
        self._challenge = None
        try:
            reply = challenge.complete(buffered[: challenge.need])
        except InvalidHandshake as error:
            self._handshake_failed(error, events)
            return b""
        if reply:
            self._out.append(reply)
        self._opened(events)
        return buffered[challenge.need :]

    def receive_eof(self, *, now: float | None = None) -> list[Event]:
        """The peer closed its side of TCP (or the transport is gone)."""
        if now is not None:
            self._now = now
        events: list[Event] = []
        if self.state is State.CONNECTING:
            self._eof_while_connecting(events)
        elif self.state in (State.OPEN, State.CLOSING):
            rules = self._close_rules
            if rules is not None and not rules.close_frame and self.state is State.OPEN:
                # hixie-75 has no close frame: closing TCP is how a connection ends normally.
                self.close_received = (1005, "")
                if self._local_first is None:
                    self._local_first = False
                events.append(CloseReceived(1005, ""))
            elif self.close_received is None and not self._detail:
                self._detail = "connection dropped with no close frame"
            self._done_reading = True
            self.state = next_state(self.state, Happening.TCP_CLOSED)
            self._deadlines.clear()
            self._set_transport(TransportAction.CLOSE)
        return events

    def _eof_while_connecting(self, events: list[Event]) -> None:
        self._handshake_failed(InvalidHandshake("connection closed during the opening handshake"), events)

    def connection_lost(self, *, now: float | None = None) -> list[Event]:
        """The transport is closed: nothing more comes in or goes out."""
        events = self.receive_eof(now=now) if self.state in (State.CONNECTING, State.OPEN, State.CLOSING) else []
        self.state = next_state(self.state, Happening.TCP_CLOSED)
        self._deadlines.clear()
        self._done_reading = True
        if self._assembler is not None:
            self._assembler.detach()
        return events

    def _ping_received(self, payload: bytes) -> None:
        """Section 5.5.2: answer with a pong carrying the same data, unless closing. While
        the peer does not read what this side writes (`writing_blocked`), only the latest
        ping is answered, once it reads again (section 5.5.3 allows that): a ping flood from
        a peer that never reads cannot pile up pongs."""
        if self.state is State.OPEN and self._failure_close is None:
            if self._writing_blocked:
                self._pong_owed = payload
            else:
                self._queue(OP_PONG, payload)
        assert self._assembler is not None
        self._assembler.events.append(Ping(payload))

    @property
    def writing_blocked(self) -> bool:
        return self._writing_blocked

    @writing_blocked.setter
    def writing_blocked(self, blocked: bool) -> None:
        """The I/O layer says whether its write buffer is above its high-water mark."""
        self._writing_blocked = blocked
        if not blocked and self._pong_owed is not None:
            payload, self._pong_owed = self._pong_owed, None
            if self.state is State.OPEN:
                self._queue(OP_PONG, payload)

    def _pong_received(self, payload: bytes) -> None:
        """A pong: it answers the keepalive ping with the same data (section 5.5.3)."""
        if self._keepalive_payload is not None and payload == self._keepalive_payload:
            self.latency = self._now - self._keepalive_sent_at
            self._keepalive_payload = None
            self._deadlines.pop("pong", None)
        assert self._assembler is not None
        self._assembler.events.append(Pong(payload))

    def _close_received(self, payload: bytes) -> None:
        """Section 5.5.1: answer a close frame with one, echoing its status code."""
        rules = self._close_rules
        assert rules is not None and self._assembler is not None
        if rules.status is not None:
            code, reason = decode_close_body(payload, rules.status)
            echo_code: int | None = None if code == 1005 else code
            echo = b"" if echo_code is None else echo_code.to_bytes(2, "big")
        else:
            code, reason, echo_code, echo = 1005, "", None, payload  # hybi-03 echoes the body as it came
        self.close_received = (code, reason)
        if self.state is State.OPEN:
            self._local_first = False
            self._queue(OP_CLOSE, echo)
            self.close_sent = (echo_code, "")
        self.state = next_state(self.state, Happening.CLOSE_RECEIVED)
        self._done_reading = True
        deadlines = self._deadlines
        if deadlines:
            for timer in ("close", "ping", "pong", "idle"):
                deadlines.pop(timer, None)
        self._assembler.events.append(CloseReceived(code, reason))
        self._after_close()

    def _after_close(self) -> None:
        """Section 7.1.1: the server closes TCP first; a client waits for it a while (where
        the dialect has that rule)."""
        rules = self._close_rules
        if (
            self.role is Role.SERVER
            or self.failure is not None
            or (rules is not None and not rules.server_closes_first)
        ):
            self._set_transport(TransportAction.CLOSE)
        elif self.options.close_timeout is not None:
            self._deadlines["transport"] = self._now + self.options.close_timeout

    def _fail(self, code: int, reason: str) -> None:
        """Section 7.1.7, Fail the WebSocket Connection: a close frame with `code` (where
        the dialect sends one), then close TCP. The close frame goes out after whatever
        the application sends before the next `data_to_send()`, so that answers to the
        messages that came before the error still reach the peer."""
        rules = self._close_rules
        assert rules is not None and self._assembler is not None
        if self.state is State.OPEN and rules.close_on_failure:
            status = code if rules.status is not None else None
            body = encode_close_body(status, _truncate_utf8(reason, 123) if status else "", rules.status or _any)
            assert self._codec is not None
            self._failure_close = self._codec.encode(OP_CLOSE, body)
            self.close_sent = (code, reason)
            if self._local_first is None:
                self._local_first = True
        self._answer_pending = True
        self.state = next_state(self.state, Happening.FAILED)
        self._done_reading = True
        self.failure = ConnectionFailed(code, reason)
        self._deadlines.clear()
        self._assembler.events.append(self.failure)
        self._after_close()

    # -- writing ---------------------------------------------------------------------------

    @property
    def can_send(self) -> bool:
        """Whether frames may be sent now: OPEN, or just failed with the close frame still
        to go out after the application's answers (see `_fail`)."""
        return self.state is State.OPEN or (self._answer_pending and self.state is State.CLOSED)

    def _check_can_send(self, what: str) -> None:
        if self.can_send:
            return
        if self.state is State.CONNECTING:
            raise InvalidState(f"cannot send {what}: the opening handshake has not completed")
        raise InvalidState(f"cannot send {what}: the connection is {self.state.value}")

    def _queue(self, opcode: int, payload: bytes, fin: bool = True, compress: bool = True) -> None:
        rsv = 0
        for extension in self.extensions:
            payload, rsv = extension.encode(opcode, payload, fin, rsv, compress)
        assert self._codec is not None
        self._out.append(self._codec.encode(opcode, payload, fin, rsv))

    def _send_data(self, opcode: int, payload: bytes, fin: bool, compress: bool) -> None:
        if self.state is not State.OPEN:
            self._check_can_send("a message")
        codec = self._codec
        assert codec is not None
        if fin and not self._sending_fragmented and opcode != OP_CONTINUATION and not self.extensions:
            # The common case, written out: a whole message, no extension (a call less each).
            if len(payload) >= _SEPARATE_FROM and codec.header is not None and type(payload) is bytes:
                # A large payload is queued as it is, after its header: see buffers_to_send.
                self._out += (codec.header(opcode, len(payload)), payload)
                self._out_large = True
            else:
                self._out.append(codec.encode(opcode, payload))
            return
        if not fin and not codec.fragments:
            assert self.dialect is not None
            raise UnsupportedFeature(f"{self.dialect.name} has no fragmented messages")
        if opcode == OP_CONTINUATION:
            if not self._sending_fragmented:
                raise InvalidState("no fragmented message is being sent")
        elif self._sending_fragmented:
            raise InvalidState("finish the fragmented message being sent first")
        self._sending_fragmented = not fin
        self._queue(opcode, payload, fin, compress)

    def send_text(self, text: str | bytes, *, fin: bool = True, compress: bool = True) -> None:
        """A text message, or its first fragment with fin=False. Bytes are sent as they are
        (UTF-8 the caller vouches for; a fragment may end inside a character).
        `compress=False` sends the message uncompressed where compression was agreed (for a
        secret next to data an attacker chooses, RFC 7692 section 8)."""
        self._send_data(OP_TEXT, text.encode("utf-8") if isinstance(text, str) else text, fin, compress)

    def send_binary(self, data: bytes | bytearray | memoryview, *, fin: bool = True, compress: bool = True) -> None:
        """A binary message, or its first fragment with fin=False; as `send_text`. Raises
        UnsupportedFeature where the dialect has no binary messages (hixie)."""
        if self._codec is not None and not self._codec.binary:
            assert self.dialect is not None
            raise UnsupportedFeature(f"{self.dialect.name} has no binary messages: it carries text only")
        self._send_data(OP_BINARY, bytes(data), fin, compress)

    def send_continuation(self, data: bytes | str, *, fin: bool) -> None:
        """A later fragment of the message begun by `send_text`/`send_binary` with fin=False."""
        self._send_data(OP_CONTINUATION, data.encode("utf-8") if isinstance(data, str) else bytes(data), fin, True)

    def encode_message(self, message: str | bytes) -> bytes:
        """`message` as the frame `send_encoded` takes, without sending it: a server
        broadcasting one message frames it once per dialect. Not for connections with
        extensions (each has its own compression state) nor for clients (masks differ)."""
        if self.extensions or self.role is Role.CLIENT:
            raise InvalidState("a frame of this connection is its own: use send_text or send_binary")
        codec = self._codec
        assert codec is not None and self.dialect is not None
        if isinstance(message, str):
            return codec.encode(OP_TEXT, message.encode("utf-8"))
        if not codec.binary:
            raise UnsupportedFeature(f"{self.dialect.name} has no binary messages: it carries text only")
        return codec.encode(OP_BINARY, bytes(message))

    def send_encoded(self, frame: bytes) -> None:
        """Send a whole message framed by `encode_message` (on a connection of the same dialect)."""
        self._check_can_send("a message")
        if self._sending_fragmented:
            raise InvalidState("finish the fragmented message being sent first")
        self._out.append(frame)

    def send_ping(self, data: bytes = b"") -> None:
        """A ping (at most 125 bytes of data); the peer's pong is reported as `Pong`."""
        self._send_control(OP_PING, data, "ping")

    def send_pong(self, data: bytes = b"") -> None:
        """An unsolicited pong (pings are answered without being asked)."""
        self._send_control(OP_PONG, data, "pong")

    def _send_control(self, opcode: int, data: bytes, name: str) -> None:
        if self._codec is not None and not self._codec.pings:
            assert self.dialect is not None
            raise UnsupportedFeature(f"{self.dialect.name} has no ping or pong")
        self._check_can_send(f"a {name}")
        if len(data) > 125:
            raise ValueError("control frame payload is longer than 125 bytes (section 5.5)")
        self._queue(opcode, bytes(data))

    def send_close(self, code: int | None = 1000, reason: str = "", *, now: float | None = None) -> None:
        """Start the closing handshake (section 7.1.2); a second call does nothing.

        Where close frames carry no status, only 1000 (or None) without a reason may be
        given; hixie-75, which has no close frame, closes TCP.
        """
        if now is not None:
            self._now = now
        rules = self._close_rules
        if rules is not None and rules.status is None and (code not in (None, 1000) or reason):
            assert self.dialect is not None
            raise UnsupportedFeature(f"{self.dialect.name} close frames carry no status code or reason")
        if self.state is not State.OPEN:
            if self.state is State.CONNECTING:
                raise InvalidState("cannot close: the opening handshake has not completed")
            return
        assert rules is not None
        self._local_first = True
        for timer in ("ping", "pong", "idle"):
            self._deadlines.pop(timer, None)
        if not rules.close_frame:
            # hixie-75: closing TCP is the whole closing handshake.
            self.close_sent = (None, "")
            self.close_received = (1005, "")
            self._done_reading = True
            self.state = next_state(self.state, Happening.TCP_CLOSED)
            self._set_transport(TransportAction.CLOSE)
            return
        status = code if rules.status is not None else None
        body = encode_close_body(status, reason, rules.status) if rules.status is not None else b""
        self._queue(OP_CLOSE, body)
        self.close_sent = (status, reason)
        self.state = next_state(self.state, Happening.CLOSE_SENT)
        if self.options.close_timeout is not None:
            self._deadlines["close"] = self._now + self.options.close_timeout

    def close(self, code: int = 1000, reason: str = "", *, now: float | None = None) -> None:
        """Close for any reason, in whatever the dialect allows: `send_close` where it can,
        else without status (the hixie drafts, hybi-02 and 5 have none); a connection still
        CONNECTING is given up."""
        if self.state is State.CONNECTING:
            if now is not None:
                self._now = now
            events: list[Event] = []
            self._handshake_failed(InvalidHandshake("closed during the opening handshake"), events)
            return
        if not self.close_status_supported:
            code, reason = 1000, ""
        self.send_close(code, reason, now=now)

    def data_to_send(self) -> bytes:
        """Every byte queued since the last call, as one string; after a failure, the
        close frame comes last."""
        out = self._take_out()
        if not out:
            return b""
        return out[0] if len(out) == 1 else b"".join(out)

    def buffers_to_send(self) -> list[bytes]:
        """What `data_to_send` would return, as a list for a gathering write: neighbours
        shorter than 64 KiB joined, larger payloads as the application gave them (immutable
        bytes, never copied into a frame)."""
        if not self._out and not self._answer_pending:
            return []
        large = self._out_large
        out = self._take_out()
        if len(out) < 2:
            return out
        if not large:
            return [b"".join(out)]
        buffers: list[bytes] = []
        run: list[bytes] = []
        for piece in out:
            if len(piece) < _SEPARATE_FROM:
                run.append(piece)
                continue
            if run:
                buffers.append(run[0] if len(run) == 1 else b"".join(run))
                run = []
            buffers.append(piece)
        if run:
            buffers.append(run[0] if len(run) == 1 else b"".join(run))
        return buffers

    def _take_out(self) -> list[bytes]:
        out = self._out
        if self._answer_pending:
            self._answer_pending = False
            if self._failure_close is not None:
                out.append(self._failure_close)
                self._failure_close = None
        if not out:
            return []
        self._out = []
        self._out_large = False
        return out

    def _set_transport(self, action: TransportAction) -> None:
        """Move the transport instruction forward (never back), with its deadline."""
        order = (TransportAction.KEEP, TransportAction.CLOSE, TransportAction.ABORT)
        if order.index(action) <= order.index(self.transport_action):
            return
        self.transport_action = action
        self._deadlines.pop("transport", None)
        if action is TransportAction.CLOSE and self.options.close_timeout is not None:
            self._deadlines["abort"] = self._now + self.options.close_timeout

    # -- time ------------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        """When `handle_timer` must be called next, on the caller's clock; None: never."""
        return min(self._deadlines.values()) if self._deadlines else None

    def handle_timer(self, now: float) -> list[Event]:
        """Act on every deadline that has passed: open timeout, keepalive ping, late pong,
        late close frame, transport that did not close."""
        self._now = now
        events: list[Event] = []
        handlers = {
            "open": self._expired_open,
            "ping": self._expired_ping,
            "pong": self._expired_pong,
            "close": self._expired_close,
            "transport": self._expired_transport,
            "abort": self._expired_abort,
            "idle": self._expired_idle,
        }
        for name, when in sorted(self._deadlines.items(), key=lambda item: item[1]):
            if when <= now and self._deadlines.get(name) == when:
                del self._deadlines[name]
                handlers[name](events)
        return events

    def _expired_open(self, events: list[Event]) -> None:
        self._detail = "opening handshake timed out"
        self._handshake_failed(InvalidHandshake("opening handshake timed out"), events)
        self._set_transport(TransportAction.ABORT)

    def _expired_ping(self, events: list[Event]) -> None:
        if self.state is not State.OPEN:
            return
        payload = os.urandom(4)
        self._queue(OP_PING, payload)
        self._keepalive_payload = payload
        self._keepalive_sent_at = self._now
        assert self.options.ping_interval is not None
        self._deadlines["ping"] = self._now + self.options.ping_interval
        if self.options.ping_timeout is not None and "pong" not in self._deadlines:
            self._deadlines["pong"] = self._now + self.options.ping_timeout

    def _expired_pong(self, events: list[Event]) -> None:
        """No pong within ping_timeout: close with 1011, where the dialect has codes."""
        self._detail = f"no pong within {self.options.ping_timeout} s of a keepalive ping"
        self.close(1011, "keepalive ping timeout")

    def _expired_idle(self, events: list[Event]) -> None:
        """Nothing received for idle_timeout: close with 1001 (or plainly, without codes)."""
        assert self.options.idle_timeout is not None
        quiet_until = self._last_received + self.options.idle_timeout
        if self.state is not State.OPEN:
            return
        if quiet_until > self._now:
            self._deadlines["idle"] = quiet_until
            return
        self._detail = f"nothing received for {self.options.idle_timeout} s"
        self.close(1001, "idle timeout")

    def _expired_close(self, events: list[Event]) -> None:
        """Section 7.1.1: the peer did not answer the close frame in time; drop TCP."""
        self._detail = self._detail or f"no close frame within {self.options.close_timeout} s of this side's"
        self._done_reading = True
        self.state = next_state(self.state, Happening.TCP_CLOSED)
        self._set_transport(TransportAction.ABORT)

    def _expired_transport(self, events: list[Event]) -> None:
        """A client waited close_timeout for the server to close TCP: it closes it itself."""
        self._set_transport(TransportAction.CLOSE)

    def _expired_abort(self, events: list[Event]) -> None:
        self._set_transport(TransportAction.ABORT)

    # -- how it ended ----------------------------------------------------------------------

    def close_info(self) -> CloseInfo | None:
        """How the connection closed; None while it is not CLOSED."""
        if self.state is not State.CLOSED:
            return None
        code, reason, sent_code, sent_reason, detail = self._close_facts()
        return CloseInfo(code, reason, sent_code, sent_reason, self._local_first, self.failure, detail)

    def close_exception(self) -> ConnectionClosed | None:
        """`close_info().exception()`, without making the CloseInfo (an I/O layer asks this
        of every connection that ends); None while the connection is not CLOSED."""
        if self.state is not State.CLOSED:
            return None
        code, reason, sent_code, _, detail = self._close_facts()
        return _closed_error(code, reason, sent_code, self.failure, detail)

    def _close_facts(self) -> tuple[int, str, int | None, str, str]:
        """The close frame received (1006 if none came), the one sent, and the detail."""
        received = self.close_received
        sent_code, sent_reason = self.close_sent if self.close_sent is not None else (None, "")
        code, reason = received if received is not None else (1006, "")
        detail = self._detail if received is None or self.failure is not None else ""
        return code, reason, sent_code, sent_reason, detail


def _any(code: int) -> bool:
    return True


def _truncate_utf8(text: str, limit: int) -> str:
    encoded = text.encode("utf-8")
    if len(encoded) <= limit:
        return text
    return encoded[:limit].decode("utf-8", "ignore")


def open_connection(
    dialect: Dialect,
    role: Role,
    options: Options = Options(),
    *,
    extensions: Sequence[Extension] = (),
    subprotocol: str | None = None,
    now: float = 0.0,
) -> Connection:
    """A connection already OPEN in `dialect`, for a handshake done elsewhere (and tests)."""
    connection = Connection(role, options, now=now)
    connection._install(dialect, extensions)
    connection.subprotocol = subprotocol
    connection._opened([])
    return connection


class ServerConnection(Connection):
    """The server's endpoint: from the request head to the end.

    Feed it the client's bytes. When the request head is complete it reports
    `RequestReceived`: call `accept()` to run the rest of the pipeline (version, origin,
    subprotocol, extensions, then the 101), or `reject(response)` to answer otherwise.
    """

    __slots__ = ("_deciding", "handshake", "internal_error")

    def __init__(
        self,
        versions: VersionSpec = DEFAULT_VERSIONS,
        options: Options = Options(),
        *,
        subprotocols: Sequence[str] = (),
        select_subprotocol: SelectSubprotocol | None = None,
        origins: Sequence[OriginRule] | None = None,
        extensions: Sequence[ServerExtensionFactory] = (),
        extra_headers: Sequence[tuple[str, str]] = (),
        limits: HTTPLimits = DEFAULT_LIMITS,
        secure: bool = False,
        require_subprotocol: bool = False,
        now: float = 0.0,
    ) -> None:
        super().__init__(Role.SERVER, options, now=now)
        self.handshake = ServerHandshake(
            versions,
            subprotocols=subprotocols,
            select_subprotocol=select_subprotocol,
            origins=origins,
            extensions=extensions,
            extra_headers=extra_headers,
            limits=limits,
            secure=secure,
            require_subprotocol=require_subprotocol,
        )
        self._deciding = False
        self.internal_error: Exception | None = None  # what a user hook raised in accept() (500)

    def _receive_handshake(self, data: bytes) -> list[Event]:
        events: list[Event] = []
        try:
            # After the head and before the decision, bytes are kept (up to limits.max_early).
            request = self.handshake.receive_data(data)
        except HandshakeRejected as rejection:
            self._deciding = False  # whoever decides finds the handshake over (state REJECTED)
            self._handshake_failed(rejection, events, rejection.response)
            return events
        if request is not None and self.request is None:
            self.request = request
            self._deciding = True
            try:
                dialect: Dialect | None = self.handshake.negotiate(request)
            except HandshakeRejected:
                dialect = None  # accept() answers with the refusal
            events.append(RequestReceived(request, dialect))
        return events

    def accept(
        self,
        *,
        subprotocol: str | UseConfigured | None = CONFIGURED,
        extra_headers: HeadersLike | None = None,
        process_response: ProcessResponse | None = None,
        now: float | None = None,
    ) -> list[Event]:
        """Go on with the handshake: the 101 (and, past a hixie-76 challenge, OPEN), or the
        refusal a pipeline step answers with. `subprotocol` (one the client offered, or
        None for none) overrides the configured choice for this handshake, and
        `extra_headers` go into this 101 after the configured ones; a subprotocol not
        offered raises ValueError and the request still waits for a decision.
        `process_response(request, response)` may change the 101 about to be sent, or
        return another response to send instead."""
        if now is not None:
            self._now = now
        headers = () if extra_headers is None else as_headers(extra_headers).items()
        if subprotocol is not CONFIGURED and subprotocol is not None and self.request is not None:
            dialect = classify_or_none(self.handshake, self.request)
            if dialect is not None and subprotocol not in dialect.offered_subprotocols(self.request):
                offered = dialect.offered_subprotocols(self.request)
                raise ValueError(f"subprotocol {subprotocol!r} was not offered by the client (it offered {offered!r})")
        request = self._take_decision()
        events: list[Event] = []
        try:
            reply, accepted = self.handshake.decide(request, subprotocol=subprotocol, extra_headers=headers)
            if process_response is not None:
                replaced = process_response(request, accepted.response)
                if replaced is not None and replaced.status != 101:
                    self._take_decision_back()
                    return self.reject(replaced)
                if replaced is not None:
                    accepted.response = replaced
                reply = accepted.response.serialize()
        except HandshakeRejected as rejection:
            self._handshake_failed(rejection, events, rejection.response)
            return events
        except Exception as error:  # a user hook (select_subprotocol, an extension) failed
            internal = bad_request("internal server error", 500)
            self._handshake_failed(internal, events, internal.response)
            self.internal_error = error
            return events
        self._out.append(reply)
        self._accepted(accepted, Role.SERVER, events)
        trailing, self.handshake.trailing = self.handshake.trailing, b""
        if trailing and self.state is not State.REJECTED:
            events += self.receive_data(trailing)
        return events

    def reject(self, response: Response, *, now: float | None = None) -> list[Event]:
        """Answer the request with `response` (a Content-Length is added to a response
        that lacks one) instead of a WebSocket."""
        if now is not None:
            self._now = now
        self._take_decision()
        if response.body and "Content-Length" not in response.headers:
            response.headers.add("Content-Length", str(len(response.body)))
        events: list[Event] = []
        self._handshake_failed(HandshakeRejected(f"answered {response.status}", response), events, response)
        return events

    def _take_decision_back(self) -> None:
        self._deciding = True

    def _take_decision(self) -> Request:
        if not self._deciding or self.request is None:
            raise InvalidState("no opening request waits for a decision")
        self._deciding = False
        return self.request

    def _accepted(self, accepted: Accepted, role: Role, events: list[Event]) -> None:
        self.response = accepted.response
        self.subprotocol = accepted.subprotocol
        self._install(accepted.dialect, accepted.extensions)
        self._challenge = accepted.dialect.challenge(role, accepted.request, None)
        if self._challenge is None:
            self._opened(events)


def classify_or_none(handshake: ServerHandshake, request: Request) -> Dialect | None:
    """The dialect `request` asks for, or None when the pipeline will refuse it."""
    try:
        return handshake.negotiate(request)
    except HandshakeRejected:
        return None


class ClientConnection(Connection):
    """The client's endpoint of one attempt, in one dialect: `data_to_send()` starts with
    the request; feed it the server's bytes. A refusal ends it REJECTED with the error in
    `handshake_error` (InvalidStatus lists the server's versions: see `ClientNegotiation`).
    """

    __slots__ = ("handshake",)

    def __init__(
        self,
        dialect: Dialect,
        resource: str,
        host: str,
        options: Options = Options(),
        *,
        origin: str | None = None,
        subprotocols: Sequence[str] = (),
        extra_headers: Headers | Sequence[tuple[str, str]] = (),
        extensions: Sequence[ClientExtensionFactory] = (),
        limits: HTTPLimits = DEFAULT_LIMITS,
        secure: bool = False,
        now: float = 0.0,
    ) -> None:
        super().__init__(Role.CLIENT, options, now=now)
        self.handshake = ClientHandshake(
            dialect,
            resource,
            host,
            origin=origin,
            subprotocols=subprotocols,
            extra_headers=Headers(extra_headers),
            extensions=extensions,
            limits=limits,
            secure=secure,
        )
        self.request = self.handshake.request
        self._out.append(self.handshake.request_bytes())

    def _receive_handshake(self, data: bytes) -> list[Event]:
        events: list[Event] = []
        try:
            accepted = self.handshake.receive_data(data)
        except HandshakeError as error:
            self.response = self.handshake.response
            self._handshake_failed(error, events)
            return events
        if accepted is None:
            return events
        self.response = accepted.response
        self.subprotocol = accepted.subprotocol
        self._install(accepted.dialect, accepted.extensions)
        self._challenge = accepted.dialect.challenge(Role.CLIENT, None, self.handshake.offer)
        if self._challenge is None:
            self._opened(events)
        trailing, self.handshake.trailing = self.handshake.trailing, b""
        if trailing:
            events += self.receive_data(trailing)
        return events

    def _eof_while_connecting(self, events: list[Event]) -> None:
        try:
            self.handshake.connection_lost()
        except HandshakeError as error:
            self.response = self.handshake.response
            self._handshake_failed(error, events)
            return
        super()._eof_while_connecting(events)
