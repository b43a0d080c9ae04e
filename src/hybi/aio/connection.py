"""An open WebSocket connection on asyncio, for both roles: a pump over the sans-I/O core.

The connection is an `asyncio.Protocol`. It hands received bytes to its
`hybi.sansio.Connection` (`protocol`), turns the events into futures and queued
messages, writes what the core queued, does to the transport what the core says
(`transport_action`), and calls the core back at its `next_deadline`. Every protocol
decision (closing, keepalive, timeouts, what counts as a normal close) is the core's.

Whatever the core queued while handling one read (pongs, close replies) leaves in one
`transport.write`; messages the application sends are flushed once per turn of the event
loop, so many small sends made in one turn share one write, or as soon as the sender waits
in `recv` with nothing to read (an echo answers in the turn its message is read).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Iterable
from typing import Any, cast

from hybi._handshake_info import HandshakeInfo
from hybi._logging import HANDSHAKE_FAILED, ConnectionLogger, preview
from hybi.exceptions import ConnectionClosed, ConnectionClosedError, ConnectionClosedOK, InvalidHandshake, InvalidState
from hybi.sansio.connection import Connection as Protocol
from hybi.sansio.events import (
    ConnectionFailed,
    Event,
    HandshakeFailed,
    Opened,
    Pong,
    RequestReceived,
    State,
    TransportAction,
)
from hybi.sansio.http import Request

__all__ = ["Connection", "Data"]

Data = str | bytes

_LOGGERS: dict[str, logging.Logger] = {}
"""`logging.getLogger` of each logger name, looked up once (it takes logging's lock)."""

_FLUSH_AFTER_SENDS = 64
_FLUSH_AFTER_BYTES = 1 << 16
"""Queued sends, or queued payload bytes, past which frames are written at once rather than
at the end of the loop's turn: a sender that does not yield, or that sends large messages,
then hands its frames to the transport and waits while the transport pushes back."""


_IN_PLACE_FROM = 65536
"""The rest of a large payload is received in place when at least this much of it is due."""
_LOOK_FROM = 16384
"""Reads from this size are followed by a look for a large payload under way."""
_SCRATCH_SIZE = 65536


class Connection(HandshakeInfo, asyncio.Protocol):
    """One WebSocket connection, during and after its opening handshake.

    Use `send`, `recv` or `async for`, `ping`, `close`. `version`, `subprotocol`,
    `request` and `response` describe what the handshake agreed.
    """

    logger_name = "hybi"

    def __init__(self, protocol: Protocol, *, max_queue: int = 32) -> None:
        self.loop = asyncio.get_running_loop()
        self.protocol = protocol
        self._id: uuid.UUID | None = None
        self._logger: ConnectionLogger | None = None
        logger = _LOGGERS.get(self.logger_name)
        if logger is None:
            logger = _LOGGERS[self.logger_name] = logging.getLogger(self.logger_name)
        self._debug = logger.isEnabledFor(logging.DEBUG)
        self.transport: asyncio.Transport | None = None
        self.remote_address: Any = None
        """The peer's address, as the socket gives it (for TCP, a (host, port) tuple)."""
        self.local_address: Any = None
        """This end's address, as the socket gives it."""
        self.max_queue = max_queue
        # A list, not a deque: it holds at most max_queue messages, and an idle connection's
        # empty list costs 56 bytes where a deque costs over 600.
        self._messages: list[Data] = []
        self._recv_waiter: asyncio.Future[None] | None = None
        self._pings: dict[bytes, tuple[asyncio.Future[float], float]] = {}
        self._reading_paused = False
        self._writing_paused = False
        self._drain_waiters: list[asyncio.Future[None]] = []
        self._flush_handle: asyncio.Handle | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._queued = 0
        self._queued_bytes = 0
        self._fragmented_send: asyncio.Future[None] | None = None
        self._close_exc: ConnectionClosed | None = None
        self.connection_lost_waiter: asyncio.Future[None] = self.loop.create_future()
        self._opened_future: asyncio.Future[None] | None = None
        self._handshake_outcome: BaseException | bool = False  # True: opened; an error: failed
        self._scratch: bytearray | None = None

    # -- what the handshake agreed -------------------------------------------------------

    @property
    def opened(self) -> asyncio.Future[None]:
        """Done once the opening handshake completed (after the hixie-76 challenge), or
        failed with its error."""
        if self._opened_future is None:
            self._opened_future = self.loop.create_future()
            if self._handshake_outcome is True:
                self._opened_future.set_result(None)
            elif isinstance(self._handshake_outcome, BaseException):
                self._opened_future.set_exception(self._handshake_outcome)
        return self._opened_future

    @property
    def writing_paused(self) -> bool:
        """Whether the transport's write buffer is above its high-water mark."""
        return self._writing_paused

    def flush(self) -> None:
        """Write what is queued now rather than at the end of the loop's turn."""
        self._flush()

    @property
    def latency(self) -> float | None:
        """The round trip of the last keepalive ping, in seconds."""
        return self.protocol.latency

    @property
    def close_code(self) -> int | None:
        """The code of the peer's close frame (1005 if it had none, 1006 if none came)."""
        return self._close_exc.code if self._close_exc is not None else None

    @property
    def close_reason(self) -> str | None:
        """The reason in the peer's close frame ("" if it had none)."""
        return self._close_exc.reason if self._close_exc is not None else None

    # -- asyncio.Protocol ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)
        self.remote_address = transport.get_extra_info("peername")
        self.local_address = transport.get_extra_info("sockname")
        if not self._keepalive_inherited():
            sock = transport.get_extra_info("socket")
            if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
                # A peer that vanished without a word (and the hixie drafts have no ping) is
                # found by TCP keepalive, so that no connection is held forever.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        self._flush()

    def _keepalive_inherited(self) -> bool:
        """Whether the socket has TCP keepalive on already (accepted from a listening
        socket that has it), so that connection_made need not set it."""
        return False

    def data_received(self, data: bytes) -> None:
        protocol = self.protocol
        self._process(protocol.receive_data(data, now=self.loop.time()))
        if len(data) < _LOOK_FROM:
            return  # a large payload arrives in large reads: a small one needs no look
        window = protocol.receive_buffer()
        if window is not None and len(window) >= _IN_PLACE_FROM and self.transport is not None:
            # A large payload is arriving: let the transport receive the rest of it straight
            # into its buffer (a buffered protocol), not into a read buffer to be copied. Only
            # the transport holds the reader, so no cycle keeps a finished connection alive.
            self.transport.set_protocol(_PayloadReader(self))

    def _payload_window(self) -> memoryview | bytearray:
        """The buffer the transport receives into while `_PayloadReader` stands in."""
        window = self.protocol.receive_buffer()
        if window is not None:
            return window
        # The core no longer expects the payload (it failed the connection): read as usual.
        scratch = self._scratch = bytearray(_SCRATCH_SIZE)
        return scratch

    def _payload_received(self, count: int) -> None:
        scratch = self._scratch
        if scratch is not None:
            self._scratch = None
            self.data_received(bytes(scratch[:count]))
        else:
            self._process(self.protocol.receive_in_place(count, now=self.loop.time()))
        if self.protocol.receive_buffer() is None and self.transport is not None:
            self.transport.set_protocol(self)  # the payload is complete: reads come here again

    def eof_received(self) -> bool | None:
        self._process(self.protocol.receive_eof(now=self.loop.time()))
        return None  # the transport closes itself; connection_lost follows

    def pause_writing(self) -> None:
        """The peer reads slower than this side writes: senders wait, and the core answers
        only the latest ping once it reads again (reading goes on: two peers streaming at
        each other must not both stop reading)."""
        self._writing_paused = True
        self.protocol.writing_blocked = True

    def resume_writing(self) -> None:
        self._writing_paused = False
        if self.protocol.writing_blocked:
            self.protocol.writing_blocked = False
            self._schedule_flush()
        for waiter in self._drain_waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._drain_waiters.clear()

    def connection_lost(self, exc: Exception | None) -> None:
        self._process(self.protocol.connection_lost(now=self.loop.time()))
        if self._debug:
            self.logger.debug("connection lost: %s", self.protocol.close_info() or self.protocol.handshake_error)
        if self._close_exc is None:
            closed = self.protocol.close_exception()
            if closed is not None:
                self._close_exc = closed
            else:
                detail = f"transport error: {exc}" if exc else "connection closed"
                self._close_exc = ConnectionClosedError(1006, "", None, detail)
        for handle in (self._flush_handle, self._timer):
            if handle is not None:
                handle.cancel()
        self._wake_reader()
        if self._handshake_outcome is False:
            self._handshake_failed(exc)
        for waiter, _ in self._pings.values():
            if not waiter.done():
                waiter.set_exception(self._close_exc)
                waiter.exception()  # a ping nobody awaits must not log "exception never retrieved"
        self._pings.clear()
        self.resume_writing()
        if not self.connection_lost_waiter.done():
            self.connection_lost_waiter.set_result(None)

    def _handshake_failed(self, exc: Exception | None) -> None:
        """The opening handshake ended without a connection; the core says why (INFO: a
        peer that breaks the handshake, a port scanner, is no error of this side's)."""
        error = self.protocol.handshake_error
        self.logger.info(HANDSHAKE_FAILED, error or exc or "connection closed")
        failure = error or InvalidHandshake(
            f"connection closed during the opening handshake{f': {exc}' if exc else ''}"
        )
        self._handshake_outcome = failure
        if self._opened_future is not None and not self._opened_future.done():
            self._opened_future.set_exception(failure)
            self._opened_future.exception()

    # -- events from the core ------------------------------------------------------------

    def _process(self, events: list[Event]) -> None:
        """Act on the core's events, write what it queued, follow its instructions."""
        messages = self._messages
        failed = False
        if self._debug:
            self._log_events(events)
        for event in events:
            kind = type(event)
            if kind is str or kind is bytes:
                messages.append(event)  # type: ignore[arg-type]
            elif kind is Pong:
                self._pong_received(event.data)  # type: ignore[union-attr]
            elif kind is ConnectionFailed:
                failed = True
            elif kind is Opened:
                self._opened()
            elif kind is RequestReceived:
                self._request_received(event.request)  # type: ignore[union-attr]
            elif kind is HandshakeFailed and self._handshake_outcome is False:
                self._handshake_failed(None)
        if messages:
            self._wake_reader()
            if len(messages) >= self.max_queue and not self._reading_paused and self.transport is not None:
                self._reading_paused = True
                self.transport.pause_reading()
        if failed:
            # Let the handler answer what came before the error: its task was woken above, so
            # it runs before this flush, and the close frame goes out after its answers.
            self._schedule_flush()
            self._arm_timer()
        else:
            self._flush()  # which arms the timer too

    def _opened(self) -> None:
        if self._handshake_outcome is False:
            self._handshake_outcome = True
            if self._opened_future is not None and not self._opened_future.done():
                self._opened_future.set_result(None)

    def _request_received(self, request: Request) -> None:
        """Server only: the opening request is complete."""
        raise InvalidState("a client connection does not receive requests")

    def _arm_timer(self) -> None:
        deadline = self.protocol.next_deadline()
        if deadline == self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = deadline
        self._timer = None if deadline is None else self.loop.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = self._timer_at = None
        self._process(self.protocol.handle_timer(self.loop.time()))

    def _follow_transport_action(self) -> None:
        transport = self.transport
        if transport is None:
            return
        action = self.protocol.transport_action
        if action is TransportAction.ABORT:
            transport.abort()
        elif action is TransportAction.CLOSE and not transport.is_closing():
            transport.close()

    # -- receiving -----------------------------------------------------------------------

    def _wake_reader(self) -> None:
        waiter = self._recv_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def recv(self) -> Data:
        """The next message: `str` for text, `bytes` for binary.

        Raises ConnectionClosedOK or ConnectionClosedError once the connection is closed
        and every message received before that has been returned.
        """
        while not self._messages:
            if self._close_exc is not None:
                raise self._close_exc
            if self._recv_waiter is not None:
                raise RuntimeError("another coroutine is already waiting in recv()")
            if self._flush_handle is not None:
                # Nothing left to read: what this task sent (an echo's answer) leaves now rather
                # than on the loop's next turn.
                self._flush()
            self._recv_waiter = self.loop.create_future()
            try:
                await self._recv_waiter
            finally:
                self._recv_waiter = None
        message = self._messages.pop(0)
        if self._reading_paused and len(self._messages) <= self.max_queue // 2 and self.transport is not None:
            self._reading_paused = False
            self.transport.resume_reading()
        return message

    def __aiter__(self) -> Connection:
        return self

    async def __anext__(self) -> Data:
        """Every message, until a normal close ends the iteration (an abnormal one raises)."""
        try:
            return await self.recv()
        except ConnectionClosedOK as closed:
            # Its traceback holds this frame, which holds the connection, which holds it: a
            # cycle that only the cycle collector would free, for every connection.
            closed.__traceback__ = None
            raise StopAsyncIteration from None

    # -- sending -------------------------------------------------------------------------

    def _ensure_can_send(self) -> Protocol:
        protocol = self.protocol
        if protocol.state is State.OPEN or protocol.can_send:
            return protocol
        if self._close_exc is not None:
            raise self._close_exc
        if protocol.state is State.CONNECTING:
            raise InvalidState("the opening handshake has not completed")
        if protocol.state is State.CLOSING:
            raise InvalidState("the closing handshake is in progress")
        info = protocol.close_info()
        if info is None:
            raise InvalidState(f"the connection is {protocol.state.value}")
        raise info.exception()

    async def send(self, message: Data | Iterable[Data] | AsyncIterable[Data], *, compress: bool = True) -> None:
        """Send a text (`str`) or binary (bytes-like) message.

        An iterable or async iterable of str or bytes is sent as one fragmented message,
        one frame per item (RFC 6455 section 5.4); every item must be of the same kind.
        Another send waits until a fragmented message is all out. `compress=False` sends
        this message uncompressed where compression was agreed (a secret next to data an
        attacker chooses, RFC 7692 section 8).
        """
        while self._fragmented_send is not None:
            await asyncio.shield(self._fragmented_send)
        protocol = self.protocol
        if protocol.state is not State.OPEN:
            protocol = self._ensure_can_send()
        if self._debug and isinstance(message, str | bytes):
            self.logger.debug("> %s", preview(message))
        if isinstance(message, str):
            protocol.send_text(message, compress=compress)
        elif isinstance(message, (bytes, bytearray, memoryview)):
            protocol.send_binary(message, compress=compress)
        elif isinstance(message, dict):
            raise TypeError("cannot send a dict: use str or bytes (json.dumps it first)")
        elif isinstance(message, AsyncIterable | Iterable):
            await self._send_fragmented(cast("Iterable[Data] | AsyncIterable[Data]", message), compress)
            return
        else:
            raise TypeError(f"cannot send {type(message).__name__}: use str or bytes")
        if self._note_sent(len(message)):
            await self._drain()

    async def _send_fragmented(self, message: Iterable[Data] | AsyncIterable[Data], compress: bool) -> None:
        fragments = message.__aiter__() if isinstance(message, AsyncIterable) else _as_async(message)
        self._fragmented_send = self.loop.create_future()
        started = False
        try:
            try:
                previous: Data = await fragments.__anext__()
            except StopAsyncIteration:
                raise ValueError("cannot send an empty fragmented message") from None
            text = isinstance(previous, str)
            async for fragment in fragments:
                self._send_fragment(previous, text, not started, fin=False, compress=compress)
                started = True
                await self._after_send(len(previous))
                previous = fragment
            self._send_fragment(previous, text, not started, fin=True, compress=compress)
            await self._after_send(len(previous))
        except BaseException:
            if started and self.protocol.can_send:
                # A message cut short cannot be finished or taken back: end the connection.
                self.protocol.close(1011, "a fragmented message could not be completed")
                self._flush()
            raise
        finally:
            done, self._fragmented_send = self._fragmented_send, None
            done.set_result(None)

    def _send_fragment(self, fragment: Data, text: bool, first: bool, *, fin: bool, compress: bool) -> None:
        if isinstance(fragment, str) != text:
            raise TypeError("a fragmented message mixes str and bytes")
        protocol = self._ensure_can_send()
        if not first:
            protocol.send_continuation(fragment, fin=fin)
        elif isinstance(fragment, str):
            protocol.send_text(fragment, fin=fin, compress=compress)
        else:
            protocol.send_binary(fragment, fin=fin, compress=compress)

    def _note_sent(self, size: int) -> bool:
        """Flush now if a lot is queued, else at the end of this turn; True when the sender
        must wait for the transport to drain."""
        self._queued += 1
        self._queued_bytes += size
        if self._queued >= _FLUSH_AFTER_SENDS or self._queued_bytes >= _FLUSH_AFTER_BYTES:
            self._flush()
        elif self._flush_handle is None:
            self._flush_handle = self.loop.call_soon(self._flush)
        return self._writing_paused

    async def _after_send(self, size: int) -> None:
        if self._note_sent(size):
            await self._drain()

    async def _drain(self) -> None:
        self._flush()
        while self._writing_paused and self._close_exc is None:
            waiter = self.loop.create_future()
            self._drain_waiters.append(waiter)
            await waiter

    def _schedule_flush(self) -> None:
        if self._flush_handle is None:
            self._flush_handle = self.loop.call_soon(self._flush)

    def _flush(self) -> None:
        """Write everything the core queued, in one write, then follow its instruction."""
        self._queued = 0
        self._queued_bytes = 0
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        transport = self.transport
        if transport is None:
            self._arm_timer()
            return
        protocol = self.protocol
        buffers = protocol.buffers_to_send()
        if buffers and not transport.is_closing():
            if len(buffers) == 1:
                transport.write(buffers[0])
            else:
                transport.writelines(buffers)  # large payloads go out as they are, not copied
        if protocol.transport_action is not TransportAction.KEEP:
            self._follow_transport_action()
        self._arm_timer()

    async def ping(self, data: str | bytes | None = None) -> asyncio.Future[float]:
        """Send a ping; the returned future resolves with the round-trip time in seconds
        when the matching pong arrives (a pong also answers every earlier ping).

        `await (await ws.ping())` waits for the pong.
        """
        protocol = self._ensure_can_send()
        payload = os.urandom(4) if data is None else (data.encode() if isinstance(data, str) else bytes(data))
        if payload in self._pings:
            raise ValueError("a ping with this payload is already waiting for its pong")
        protocol.send_ping(payload)
        waiter: asyncio.Future[float] = self.loop.create_future()
        self._pings[payload] = (waiter, time.monotonic())
        self._flush()
        return waiter

    def _pong_received(self, data: bytes) -> None:
        if data not in self._pings:
            return  # an unsolicited pong is a heartbeat (section 5.5.3)
        now = time.monotonic()
        for payload in list(self._pings):
            waiter, sent_at = self._pings.pop(payload)
            if not waiter.done():
                waiter.set_result(now - sent_at)
            if payload == data:
                break

    async def pong(self, data: str | bytes = b"") -> None:
        """Send an unsolicited pong (a one-way heartbeat)."""
        protocol = self._ensure_can_send()
        protocol.send_pong(data.encode() if isinstance(data, str) else bytes(data))
        self._flush()

    # -- closing -------------------------------------------------------------------------

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Run the closing handshake (section 7) and wait for the connection to end.

        After `close_timeout` seconds without the peer's answer the TCP connection is
        dropped.
        """
        if self.protocol.state is State.CONNECTING:
            self.protocol.close(now=self.loop.time())
        else:
            self.protocol.send_close(code, reason, now=self.loop.time())
        self._flush()
        await self.wait_closed()

    def close_anyhow(self, code: int, reason: str) -> None:
        """Start closing for the library's own reasons (shutdown 1001, handler error 1011),
        without a status where the dialect's close frames carry none."""
        if self._close_exc is not None:
            return  # the transport is gone (the usual end of a handler): nothing is left to close
        self.protocol.close(code, reason, now=self.loop.time())
        self._flush()

    async def wait_closed(self) -> None:
        """Wait until the TCP connection has ended (the core bounds this by close_timeout)."""
        await asyncio.shield(self.connection_lost_waiter)


async def _as_async(items: Iterable[Data]) -> AsyncIterator[Data]:
    for item in items:
        yield item


class _PayloadReader(asyncio.BufferedProtocol):
    """Stands in for a `Connection` as the transport's protocol while a large frame's
    payload arrives: the transport writes the bytes straight into the payload's buffer
    (`hybi.sansio.Connection.receive_buffer`), where the core unmasks them. The connection
    takes the transport back once the payload is complete."""

    __slots__ = ("_connection",)

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def get_buffer(self, sizehint: int) -> memoryview | bytearray:
        return self._connection._payload_window()

    def buffer_updated(self, nbytes: int) -> None:
        self._connection._payload_received(nbytes)

    def eof_received(self) -> bool | None:
        return self._connection.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self._connection.connection_lost(exc)

    def pause_writing(self) -> None:
        self._connection.pause_writing()

    def resume_writing(self) -> None:
        self._connection.resume_writing()
