"""An open WebSocket connection on asyncio, for both roles.

The connection is an `asyncio.Protocol`: the transport hands it bytes, the sans-I/O
session turns them into events, and whatever the session queued while handling one read
(pongs, close replies) leaves in one `transport.write`. Messages the application sends
are queued too and flushed once per turn of the event loop, so many small sends made in
one turn (an echo of every message that one read delivered, say) share one write.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import time
from collections.abc import AsyncIterable, AsyncIterator, Iterable
from typing import Any, cast

from hybi.exceptions import (
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
    InvalidHandshake,
    InvalidState,
    UnsupportedFeature,
)
from hybi.sansio.dialects import Dialect, Session
from hybi.sansio.events import CloseReceived, ConnectionFailed, Pong, Role, State
from hybi.sansio.http import Headers, Request, Response

__all__ = ["Connection", "Data"]

Data = str | bytes
logger = logging.getLogger("hybi")

_FLUSH_AFTER_SENDS = 64
_FLUSH_AFTER_BYTES = 1 << 16
"""Queued sends, or queued payload bytes, past which frames are written at once rather than
at the end of the loop's turn: a sender that does not yield, or that sends large messages,
then hands its frames to the transport and waits while the transport pushes back."""


class Connection(asyncio.Protocol):
    """One WebSocket connection, after (and during) its opening handshake.

    Use `send`, `recv` or `async for`, `ping`, `close`. `version`, `subprotocol`,
    `request` and `response` describe what the handshake agreed.
    """

    role: Role

    def __init__(
        self,
        *,
        max_queue: int = 32,
        ping_interval: float | None = 20.0,
        ping_timeout: float | None = 20.0,
        close_timeout: float = 10.0,
    ) -> None:
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.session: Session | None = None
        self.dialect: Dialect | None = None
        self.subprotocol: str | None = None
        self.request: Request | None = None
        self.response: Response | None = None
        self.remote_address: Any = None
        self.max_queue = max_queue
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.close_timeout = close_timeout
        self._messages: collections.deque[Data] = collections.deque()
        self._recv_waiter: asyncio.Future[None] | None = None
        self._pings: dict[bytes, tuple[asyncio.Future[float], float]] = {}
        self._reading_paused = False
        self._writing_paused = False
        self._drain_waiters: list[asyncio.Future[None]] = []
        self._flush_handle: asyncio.Handle | None = None
        self._queued = 0
        self._queued_bytes = 0
        self._close_exc: ConnectionClosed | None = None
        self._failure_detail = ""
        self.connection_lost_waiter: asyncio.Future[None] = self.loop.create_future()
        self._keepalive_task: asyncio.Task[None] | None = None
        self._close_timer: asyncio.TimerHandle | None = None
        self._head = b""
        self.ready: asyncio.Future[None] = self.loop.create_future()
        """Done once the session may carry messages (after the hixie-76 challenge)."""

    # -- what the handshake agreed -------------------------------------------------------

    @property
    def version(self) -> int | str | None:
        """The negotiated version: its number (13, 8, 7, 6, 5) or, for the drafts before
        version numbers, its name ("hybi-02", "hixie-76", "hixie-75"); None before the
        handshake."""
        if self.dialect is None:
            return None
        return self.dialect.version if self.dialect.version is not None else self.dialect.name

    @property
    def path(self) -> str:
        return self.request.target if self.request is not None else ""

    @property
    def request_headers(self) -> Headers:
        return self.request.headers if self.request is not None else Headers()

    @property
    def response_headers(self) -> Headers:
        return self.response.headers if self.response is not None else Headers()

    @property
    def state(self) -> State:
        if self.session is None:
            return State.CLOSED if self.connection_lost_waiter.done() else State.OPEN
        if self.connection_lost_waiter.done():
            return State.CLOSED
        return self.session.state

    @property
    def close_code(self) -> int | None:
        """The code of the peer's close frame (1005 if it had none, 1006 if none came)."""
        return self._close_exc.code if self._close_exc is not None else None

    @property
    def close_reason(self) -> str | None:
        return self._close_exc.reason if self._close_exc is not None else None

    # -- asyncio.Protocol ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)
        self.remote_address = transport.get_extra_info("peername")

    def pause_writing(self) -> None:
        self._writing_paused = True

    def resume_writing(self) -> None:
        self._writing_paused = False
        for waiter in self._drain_waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._drain_waiters.clear()

    def eof_received(self) -> bool | None:
        if self.session is not None:
            for event in self.session.receive_eof():
                if type(event) is CloseReceived:
                    self._closing_handshake_done()
        return None  # the transport closes itself; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        if self._close_exc is None:
            self._close_exc = self._closed_exception(exc)
        for handle in (self._flush_handle, self._close_timer):
            if handle is not None:
                handle.cancel()
        if self._keepalive_task is not None:
            self._keepalive_task.cancel()
        self._wake_reader()
        if not self.ready.done():
            self.ready.set_exception(self._close_exc)
            self.ready.exception()
        for waiter, _ in self._pings.values():
            if not waiter.done():
                waiter.set_exception(self._close_exc)
                waiter.exception()  # a ping nobody awaits must not log "exception never retrieved"
        self._pings.clear()
        self.resume_writing()
        if not self.connection_lost_waiter.done():
            self.connection_lost_waiter.set_result(None)

    def _closed_exception(self, exc: Exception | None) -> ConnectionClosed:
        session = self.session
        sent = session.close_sent[0] if session is not None and session.close_sent is not None else None
        received = session.close_received if session is not None else None
        failure: ConnectionFailed | None = session.failure if session is not None else None
        if failure is not None:
            return ConnectionClosedError(1006, "", sent, f"{failure.reason}; sent close code {failure.code}")
        if received is None:
            detail = self._failure_detail or (
                f"transport error: {exc}" if exc else "connection dropped with no close frame"
            )
            return ConnectionClosedError(1006, "", sent, detail)
        code, reason = received
        if code in (1000, 1001, 1005) and (sent is None or sent in (1000, 1001)):
            return ConnectionClosedOK(code, reason, sent)
        return ConnectionClosedError(code, reason, sent)

    # -- receiving -----------------------------------------------------------------------

    def _open(self, session: Session, trailing: bytes, head: bytes = b"") -> None:
        """Switch from the handshake to the session; feed it what came after the head.

        `head` (a server's 101) leaves in the same write as whatever the session answers to
        `trailing`: a hixie-76 key3 that came with the request gets its answer in the
        packet that carries the head, which clients that read them together rely on.
        """
        self.session = session
        self._head = head
        if self.ping_interval is not None:
            self._keepalive_task = self.loop.create_task(self._keepalive())
        if trailing:
            self._handle_data(trailing)
        else:
            self._flush()
            self._check_ready()

    def _check_ready(self) -> None:
        session = self.session
        if self.ready.done() or session is None:
            return
        if session.ready:
            self.ready.set_result(None)
        elif session.failure is not None:
            self.ready.set_exception(InvalidHandshake(session.failure.reason))
            self.ready.exception()

    def _handle_data(self, data: bytes) -> None:
        session = self.session
        assert session is not None
        events = session.receive_data(data)
        messages = self._messages
        for event in events:
            kind = type(event)
            if kind is str or kind is bytes:
                messages.append(event)  # type: ignore[arg-type]
            elif kind is Pong:
                self._pong_received(event.data)  # type: ignore[union-attr]
            elif kind is CloseReceived or kind is ConnectionFailed:
                self._closing_handshake_done()
        self._flush()
        if not self.ready.done():
            self._check_ready()
        if messages:
            self._wake_reader()
            if len(messages) >= self.max_queue and not self._reading_paused and self.transport is not None:
                self._reading_paused = True
                self.transport.pause_reading()

    def _closing_handshake_done(self) -> None:
        """Section 7.1.1: the server closes TCP first; a client waits a while for it to."""
        if self.transport is None:
            return
        if self.role is Role.SERVER or (self.session is not None and self.session.failure is not None):
            self.loop.call_soon(self._close_transport)
        elif self._close_timer is None:
            self._close_timer = self.loop.call_later(self.close_timeout, self._close_transport)

    def _close_transport(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self._flush()
            self.transport.close()

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
            self._recv_waiter = self.loop.create_future()
            try:
                await self._recv_waiter
            finally:
                self._recv_waiter = None
        message = self._messages.popleft()
        if self._reading_paused and len(self._messages) < self.max_queue // 2 and self.transport is not None:
            self._reading_paused = False
            self.transport.resume_reading()
        return message

    def __aiter__(self) -> AsyncIterator[Data]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Data]:
        """Every message, until a normal close ends the iteration (an abnormal one raises)."""
        try:
            while True:
                yield await self.recv()
        except ConnectionClosedOK:
            return

    # -- sending -------------------------------------------------------------------------

    def _ensure_open(self) -> Session:
        if self._close_exc is not None:
            raise self._close_exc
        session = self.session
        if session is None:
            raise InvalidState("the opening handshake has not completed")
        if session.state is not State.OPEN:
            if session.close_received is None and session.failure is None:
                raise InvalidState("the closing handshake is in progress")
            raise self._closed_exception(None)
        return session

    async def send(self, message: Data | Iterable[Data] | AsyncIterable[Data]) -> None:
        """Send a text (`str`) or binary (bytes-like) message.

        An iterable or async iterable of str or bytes is sent as one fragmented message,
        one frame per item (RFC 6455 section 5.4); every item must be of the same kind.
        """
        session = self._ensure_open()
        if isinstance(message, str):
            session.send_text(message)
        elif isinstance(message, (bytes, bytearray, memoryview)):
            session.send_binary(message)
        elif isinstance(message, AsyncIterable):
            await self._send_fragments(session, message.__aiter__())
            return
        elif isinstance(message, Iterable):
            await self._send_fragments(session, _as_async(message))
            return
        else:
            raise TypeError(f"cannot send {type(message).__name__}: use str or bytes")
        await self._after_send(len(message))

    async def _send_fragments(self, session: Session, fragments: AsyncIterator[Data]) -> None:
        try:
            previous: Data = await fragments.__anext__()
        except StopAsyncIteration:
            raise ValueError("cannot send an empty fragmented message") from None
        text = isinstance(previous, str)
        first = True
        async for fragment in fragments:
            self._send_fragment(session, previous, text, first, fin=False)
            first = False
            await self._after_send(len(previous))
            previous = fragment
        self._send_fragment(session, previous, text, first, fin=True)
        await self._after_send(len(previous))

    @staticmethod
    def _send_fragment(session: Session, fragment: Data, text: bool, first: bool, *, fin: bool) -> None:
        if isinstance(fragment, str) != text:
            raise TypeError("a fragmented message mixes str and bytes")
        if not first:
            session.send_continuation(fragment.encode() if isinstance(fragment, str) else bytes(fragment), fin=fin)
        elif isinstance(fragment, str):
            session.send_text(fragment, fin=fin)
        else:
            session.send_binary(fragment, fin=fin)

    async def _after_send(self, size: int) -> None:
        """Flush now if a lot is queued, else at the end of this turn; wait while paused."""
        self._queued += 1
        self._queued_bytes += size
        if self._queued >= _FLUSH_AFTER_SENDS or self._queued_bytes >= _FLUSH_AFTER_BYTES:
            self._flush()
        elif self._flush_handle is None:
            self._flush_handle = self.loop.call_soon(self._flush)
        if self._writing_paused:
            await self._drain()

    async def _drain(self) -> None:
        self._flush()
        while self._writing_paused and self._close_exc is None:
            waiter = self.loop.create_future()
            self._drain_waiters.append(waiter)
            await waiter

    def _flush(self) -> None:
        """Write everything the session queued, in one write."""
        self._queued = 0
        self._queued_bytes = 0
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        if self.session is None or self.transport is None:
            return
        data = self.session.data_to_send()
        if self._head:
            data, self._head = self._head + data, b""
        if data and not self.transport.is_closing():
            self.transport.write(data)

    async def ping(self, data: str | bytes | None = None) -> asyncio.Future[float]:
        """Send a ping; the returned future resolves with the round-trip time in seconds
        when the matching pong arrives (a pong also answers every earlier ping).

        `await (await ws.ping())` waits for the pong.
        """
        session = self._ensure_open()
        payload = os.urandom(4) if data is None else (data.encode() if isinstance(data, str) else bytes(data))
        if payload in self._pings:
            raise ValueError("a ping with this payload is already waiting for its pong")
        session.send_ping(payload)
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
        session = self._ensure_open()
        session.send_pong(data.encode() if isinstance(data, str) else bytes(data))
        self._flush()

    async def _keepalive(self) -> None:
        """Ping every `ping_interval` seconds; fail with 1011 when a pong is late."""
        assert self.ping_interval is not None
        try:
            while True:
                await asyncio.sleep(self.ping_interval)
                if self.session is None or self.session.state is not State.OPEN:
                    return
                try:
                    pong = await self.ping()
                except UnsupportedFeature:
                    return  # the dialect has no ping (hixie)
                if self.ping_timeout is not None:
                    try:
                        await asyncio.wait_for(asyncio.shield(pong), self.ping_timeout)
                    except TimeoutError:
                        self._failure_detail = f"no pong within {self.ping_timeout} s of a keepalive ping"
                        await self._close_anyhow(1011, "keepalive ping timeout")
                        return
        except ConnectionClosed:
            return

    # -- closing -------------------------------------------------------------------------

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Run the closing handshake (section 7) and wait for the connection to end.

        After `close_timeout` seconds without the peer's answer the TCP connection is
        dropped.
        """
        if self.session is not None and self.session.state is State.OPEN and self._close_exc is None:
            session: Session = self.session
            session.send_close(code, reason)
            self._flush()
            if session.state is State.CLOSED:  # hixie-75: closing TCP is the close
                self._close_transport()
        elif self.transport is not None and self.session is None:
            self.transport.close()
        await self.wait_closed()

    async def _close_anyhow(self, code: int, reason: str) -> None:
        """Close for the library's own reasons (shutdown 1001, handler error 1011, keepalive),
        without a status where the dialect's close frames carry none."""
        if self.session is not None and not self.session.close_status_supported:
            code, reason = 1000, ""
        await self.close(code, reason)

    async def wait_closed(self) -> None:
        """Wait until the TCP connection has ended, dropping it after `close_timeout`."""
        try:
            await asyncio.wait_for(asyncio.shield(self.connection_lost_waiter), self.close_timeout)
        except TimeoutError:
            if self.transport is not None:
                self.transport.abort()
            await self.connection_lost_waiter


async def _as_async(items: Iterable[Data]) -> AsyncIterator[Data]:
    for item in items:
        yield item
