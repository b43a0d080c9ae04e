"""An open WebSocket connection on a plain socket and threads, for both roles: a pump over
the sans-I/O core.

Each connection runs one background thread, the pump. It waits (with `selectors`) until
the socket can be read or written or the core's `next_deadline()` comes, then feeds the
core (`receive_data`, `receive_eof`, `handle_timer`), queues the messages for `recv`,
writes what the core queued and does to the socket what `transport_action` says. Every
protocol decision (closing, keepalive, timeouts, what counts as a normal close) is the
core's, exactly as in `hybi.aio`.

The socket is non-blocking and every operation on it, and on the core, happens under one
lock, held only for the time of a non-blocking call: `send` is safe from any thread, the
bytes of a message are never interleaved with another's, and a TLS socket is never used by
two threads at once. Only the pump ever waits on the socket and only the pump closes it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import selectors
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import Self

from hybi._handshake_info import HandshakeInfo
from hybi._logging import HANDSHAKE_FAILED, preview
from hybi.exceptions import (
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
    HandshakeError,
    InvalidHandshake,
    InvalidState,
)
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

__all__ = ["Connection", "Data", "PongWaiter"]

Data = str | bytes

_READ_SIZE = 1 << 16
_HIGH_WATER = 1 << 16
_LOW_WATER = 1 << 14
"""Unwritten bytes past which writing is blocked until they fall to the low mark (the marks
of an asyncio transport): `send` waits, and the core is told (`writing_blocked`), so that it
owes the peer one pong, for its latest ping, instead of queueing one per ping. The pump
goes on reading meanwhile, as the asyncio one does: two peers that both stream must not
each wait for the other to read."""

_WOULD_BLOCK = (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError)


class PongWaiter:
    """What `ping()` returns: `wait(timeout)` blocks until the pong comes and returns the
    round trip in seconds."""

    __slots__ = ("_done", "_error", "_latency")

    def __init__(self) -> None:
        self._done = threading.Event()
        self._latency = 0.0
        self._error: ConnectionClosed | None = None

    def done(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> float:
        """The round trip in seconds; TimeoutError after `timeout`, ConnectionClosed if the
        connection ended first."""
        if not self._done.wait(timeout):
            raise TimeoutError(f"no pong within {timeout} s")
        if self._error is not None:
            raise self._error
        return self._latency

    def _resolve(self, latency: float) -> None:
        self._latency = latency
        self._done.set()

    def _fail(self, error: ConnectionClosed) -> None:
        self._error = error
        self._done.set()


class Connection(HandshakeInfo):
    """One WebSocket connection, during and after its opening handshake.

    Use `send`, `recv` or `for message in ws`, `ping`, `close`; `with ws:` closes it at the
    end. `version`, `subprotocol`, `request` and `response` describe what the handshake
    agreed; `id` is in every log record of the connection (see `hybi._logging`).
    """

    logger_name = "hybi"

    def __init__(self, protocol: Protocol, sock: socket.socket, *, max_queue: int = 32) -> None:
        self.protocol = protocol
        self._debug = logging.getLogger(self.logger_name).isEnabledFor(logging.DEBUG)
        self.max_queue = max_queue
        self._sock = sock
        self.remote_address: object = _address(sock.getpeername)
        """The peer's address, as the socket gives it (for TCP, a (host, port) tuple)."""
        self.local_address: object = _address(sock.getsockname)
        """This end's address, as the socket gives it."""
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._send_mutex = threading.Lock()  # one message (all its fragments) at a time
        self._messages: deque[Data] = deque()
        self._receiving = False
        self._reading_paused = False
        self._request_pending = False
        self._pings: dict[bytes, tuple[PongWaiter, float]] = {}
        self._outbuf: deque[bytes | memoryview] = deque()
        self._outbuf_size = 0
        self._writing_paused = False  # above the high-water mark, until down to the low one
        self._answers_held = False  # the close frame of a failure waits for the application's answers
        self._held_bytes = 0  # what the application queued meanwhile
        self._eof = False
        self._abort_requested = False
        self._transport_error: OSError | None = None
        self._socket_closed = False
        self._pump_done = False
        self._armed: float | None = None
        self._close_exc: ConnectionClosed | None = None
        self._closed = threading.Event()
        self._handshake_done = threading.Event()
        self._open_error: HandshakeError | None = None
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._thread = threading.Thread(target=self._run, name="hybi-sync-pump", daemon=True)

    # -- what the handshake agreed -------------------------------------------------------

    @property
    def writing_paused(self) -> bool:
        """Whether the unwritten bytes are above the high-water mark (and not yet back down
        to the low one): senders wait, and `broadcast` skips this connection."""
        return self._writing_paused

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

    # -- starting ------------------------------------------------------------------------

    def _start(self) -> None:
        """Make the socket non-blocking, write what the core has queued (a client's
        request) and start the pump."""
        sock = self._sock
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            with contextlib.suppress(OSError):
                # A peer that vanished without a word (and the hixie drafts have no ping) is
                # found by TCP keepalive, so that no connection is held forever; small
                # messages leave at once, as on an asyncio transport.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setblocking(False)
        with self._lock:
            self._flush()
        self._thread.start()

    def _wait_open(self, timeout: float | None) -> None:
        """Wait for the end of the opening handshake; raise why it failed."""
        if not self._handshake_done.wait(timeout):
            raise TimeoutError("opening handshake timed out")
        if self._open_error is not None:
            raise self._open_error

    # -- the pump ------------------------------------------------------------------------

    def _run(self) -> None:
        selector = selectors.DefaultSelector()
        selector.register(self._wake_r, selectors.EVENT_READ)
        registered = 0
        try:
            while True:
                with self._lock:
                    if self._must_close_now():
                        break
                    want = (selectors.EVENT_READ if self._can_read() else 0) | (
                        selectors.EVENT_WRITE if self._outbuf else 0
                    )
                    if want != registered:
                        if not registered:
                            selector.register(self._sock, want)
                        elif not want:
                            selector.unregister(self._sock)
                        else:
                            selector.modify(self._sock, want)
                        registered = want
                    deadline = self.protocol.next_deadline()
                    self._armed = deadline
                    # TLS may hold decrypted bytes that the socket no longer signals.
                    buffered = bool(want & selectors.EVENT_READ) and _tls_pending(self._sock)
                timeout = 0.0 if buffered else None if deadline is None else max(0.0, deadline - time.monotonic())
                ready = selector.select(timeout)
                with self._lock:
                    readable, writable = buffered, False
                    for key, mask in ready:
                        if key.fileobj is self._wake_r:
                            _drain_wakeups(self._wake_r)
                        else:
                            readable = readable or bool(mask & selectors.EVENT_READ)
                            writable = bool(mask & selectors.EVENT_WRITE)
                    now = time.monotonic()
                    if writable:
                        self._write()
                    if readable and self._can_read():
                        self._read(now)
                    self._run_timers(now)
        except Exception:
            self.logger.exception("connection pump failed")
        finally:
            if registered:
                with contextlib.suppress(KeyError, ValueError, OSError):
                    selector.unregister(self._sock)  # before the socket is closed and its number reused
            selector.close()
            with self._lock:
                try:
                    self._finish()
                finally:  # whatever happened, nobody may wait for this connection forever
                    if self._close_exc is None:
                        self._close_exc = ConnectionClosedError(1006, "", None, "connection closed")
                    self._handshake_failed()
                    self._pump_done = True
                    self._closed.set()
                    self._changed.notify_all()

    def _can_read(self) -> bool:
        return not (
            self._eof
            or self._socket_closed
            or self._transport_error is not None
            or self._reading_paused
            or self._request_pending
        )

    def _must_close_now(self) -> bool:
        """Follow the core's `transport_action`: ABORT drops the socket now; CLOSE (and the
        peer's EOF, after which the transport is done) closes it once everything is written."""
        if self._transport_error is not None or self._abort_requested:
            return True
        action = self.protocol.transport_action
        if action is TransportAction.ABORT:
            return True
        finishing = action is TransportAction.CLOSE or self._eof
        return finishing and not self._answers_held and not self._outbuf

    def _read(self, now: float) -> None:
        # While a large payload arrives, the core lends the rest of its buffer: receiving
        # straight into it saves copying the payload out of a read buffer.
        window = self.protocol.receive_buffer()
        try:
            if window is None:
                data = self._sock.recv(_READ_SIZE)
                count = len(data)
            else:
                count = self._sock.recv_into(window)
        except _WOULD_BLOCK:
            return
        except OSError as error:
            self._broken(error)
            return
        finally:
            if window is not None:
                window.release()
        if not count:
            self._eof = True
            self._process(self.protocol.receive_eof(now=now))
        elif window is None:
            self._process(self.protocol.receive_data(data, now=now))
        else:
            self._process(self.protocol.receive_in_place(count, now=now))

    def _run_timers(self, now: float) -> None:
        deadline = self.protocol.next_deadline()
        if deadline is not None and deadline <= now:
            # A close frame still held for answers has waited as long as the core allows
            # (its abort, close_timeout after the failure): it goes now, then TCP ends.
            self._release_answers()
            self._process(self.protocol.handle_timer(now))

    def _finish(self) -> None:
        """The socket is closed (or about to be): tell the core and everyone waiting."""
        if not self._socket_closed:
            self._close_socket()
        self._answers_held = False
        self._process(self.protocol.connection_lost(now=time.monotonic()))
        if self._debug:
            self.logger.debug("connection lost: %s", self.protocol.close_info() or self.protocol.handshake_error)
        if self._close_exc is None:
            info = self.protocol.close_info()
            if info is not None:
                self._close_exc = info.exception()
            else:
                error = self._transport_error
                detail = f"transport error: {error}" if error else "connection closed"
                self._close_exc = ConnectionClosedError(1006, "", None, detail)
        for waiter, _ in self._pings.values():
            waiter._fail(self._close_exc)
        self._pings.clear()
        self._handshake_failed()
        self._pump_done = True
        self._wake_r.close()
        self._wake_w.close()

    def _close_socket(self) -> None:
        """Close the socket (pump only). A TLS connection closed on the core's CLOSE first
        says close_notify, best effort."""
        self._socket_closed = True
        graceful = (
            self.protocol.transport_action is not TransportAction.ABORT
            and not self._abort_requested
            and self._transport_error is None
        )
        if graceful and isinstance(self._sock, ssl.SSLSocket):
            with contextlib.suppress(OSError, ValueError):
                self._sock.unwrap()
        self._sock.close()
        self._outbuf.clear()
        self._outbuf_size = 0
        self._writing_paused = False

    def _broken(self, error: OSError) -> None:
        """The socket failed (reset, broken pipe): nothing more can be read or written."""
        if self._transport_error is None:
            self._transport_error = error
        self._outbuf.clear()
        self._outbuf_size = 0
        self._writing_paused = False
        self._changed.notify_all()
        self._wake()

    def _wake(self) -> None:
        """Make the pump look again (a new deadline, bytes to write, reading to resume)."""
        if self._pump_done or threading.current_thread() is self._thread:
            return
        with contextlib.suppress(OSError):  # a full pipe already wakes it
            self._wake_w.send(b"\0")

    # -- events from the core ------------------------------------------------------------

    def _process(self, events: list[Event]) -> None:
        """Act on the core's events, then write what it queued."""
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
                self._handshake_done.set()
            elif kind is RequestReceived:
                self._request_received(event.request)  # type: ignore[union-attr]
            elif kind is HandshakeFailed:
                self._handshake_failed()
        if len(messages) >= self.max_queue:
            self._reading_paused = True
        if failed:
            # Section 7.1.7 with the answers first: the core puts its close frame after
            # whatever the application sends before the next `data_to_send()`. No clock can
            # tell when the application (a handler in another thread, busy or not) has
            # answered the messages received before the failure, so the frame is held until
            # what the application does says so: it comes back to `recv` with every message
            # taken, sends a message with every message taken, or closes (a handler that
            # returns closes); or it has queued 64 KiB meanwhile (`_queued`). The core's own
            # deadline bounds the wait: close_timeout after the failure it aborts, and the
            # frame goes just before (`_run_timers`).
            self._answers_held = True
        self._changed.notify_all()
        self._flush()

    def _request_received(self, request: Request) -> None:
        """Server only: the opening request is complete."""
        raise InvalidState("a client connection does not receive requests")

    def _handshake_failed(self) -> None:
        """The opening handshake ended without a connection; the core says why (INFO: a
        peer that breaks the handshake, a port scanner, is no error of this side's)."""
        if self._handshake_done.is_set():
            return
        error = self.protocol.handshake_error
        self.logger.info(HANDSHAKE_FAILED, error or self._transport_error or "connection closed")
        if error is None:
            transport = f": {self._transport_error}" if self._transport_error else ""
            error = InvalidHandshake(f"connection closed during the opening handshake{transport}")
        self._open_error = error
        self._handshake_done.set()

    def _pong_received(self, data: bytes) -> None:
        if data not in self._pings:
            return  # an unsolicited pong is a heartbeat (section 5.5.3)
        now = time.monotonic()
        for payload in list(self._pings):
            waiter, sent_at = self._pings.pop(payload)
            waiter._resolve(now - sent_at)
            if payload == data:
                break

    # -- writing -------------------------------------------------------------------------

    def _flush(self) -> None:
        """Take what the core queued and write as much as the socket takes now (the pump
        writes the rest); wake the pump if it must look again. Nothing goes while the close
        frame of a failure is held for answers: `data_to_send()` would release it."""
        if self._answers_held:
            return
        data = self.protocol.data_to_send()
        if data and not self._socket_closed and self._transport_error is None:
            self._outbuf.append(data)
            self._outbuf_size += len(data)
            self._write()
        if (
            self._outbuf
            or self._transport_error is not None
            or self.protocol.transport_action is not TransportAction.KEEP
            or self.protocol.next_deadline() != self._armed
        ):
            self._wake()

    def _write(self) -> None:
        """Write what the socket takes now; block or unblock writing at the marks."""
        out = self._outbuf
        while out:
            chunk = out[0]
            try:
                sent = self._sock.send(chunk)
            except _WOULD_BLOCK:
                break
            except OSError as error:
                self._broken(error)
                return
            if sent >= len(chunk):
                out.popleft()
            else:
                out[0] = memoryview(chunk)[sent:]
            self._outbuf_size -= sent
        if not self._writing_paused and self._outbuf_size > _HIGH_WATER:
            self._writing_paused = True
            self.protocol.writing_blocked = True
        elif self._writing_paused and self._outbuf_size <= _LOW_WATER:
            self._writing_paused = False
            self.protocol.writing_blocked = False  # the core queues the pong it owes, if any
            self._changed.notify_all()  # senders waiting in _drain
            self._flush()

    def _release_answers(self) -> None:
        """Let the close frame of a failure go out, after the application's answers."""
        if self._answers_held:
            self._answers_held = False
            self._held_bytes = 0
            self._flush()

    def _queued(self, size: int, *, complete: bool) -> None:
        """The application queued `size` bytes of a message (`complete`: all of it, or its
        last fragment): write them, unless the close frame of a failure is held for more
        answers, which this one may end (see `_process`)."""
        if self._answers_held:
            self._held_bytes += size
            if (complete and not self._messages) or self._held_bytes > _HIGH_WATER:
                self._answers_held = False
                self._held_bytes = 0
        self._flush()

    def _can_write_now(self) -> bool:
        """Whether bytes queued now would be written without waiting (under the lock): the
        socket is open and not closing, and the unwritten bytes are below the high-water mark."""
        return not (
            self._pump_done
            or self._socket_closed
            or self._abort_requested
            or self._transport_error is not None
            or self._writing_paused
        )

    def _drain(self) -> None:
        """Wait while the peer reads slower than this side writes (writing is blocked)."""
        with self._lock:
            while self._writing_paused and not self._socket_closed and self._transport_error is None:
                self._changed.wait()

    # -- receiving -----------------------------------------------------------------------

    def recv(self, timeout: float | None = None) -> Data:
        """The next message: `str` for text, `bytes` for binary.

        Raises TimeoutError when none comes within `timeout` seconds, and
        ConnectionClosedOK or ConnectionClosedError once the connection is closed and every
        message received before that has been returned.
        """
        with self._lock:
            if not self._messages:
                if self._close_exc is not None:
                    raise self._close_exc
                if self._receiving:
                    raise RuntimeError("another thread is already waiting in recv()")
                self._receiving = True
                try:
                    deadline = None if timeout is None else time.monotonic() + timeout
                    while not self._messages:
                        if self._close_exc is not None:
                            raise self._close_exc
                        self._release_answers()  # every message was taken: the answers are out
                        remaining = None if deadline is None else deadline - time.monotonic()
                        if remaining is not None and remaining <= 0:
                            raise TimeoutError(f"no message within {timeout} s")
                        self._changed.wait(remaining)
                finally:
                    self._receiving = False
            message = self._messages.popleft()
            if self._reading_paused and len(self._messages) <= self.max_queue // 2:
                self._reading_paused = False
                self._wake()
            return message

    def __iter__(self) -> Iterator[Data]:
        """Every message, until a normal close ends the iteration (an abnormal one raises)."""
        try:
            while True:
                yield self.recv()
        except ConnectionClosedOK:
            return

    # -- sending -------------------------------------------------------------------------

    def _ensure_can_send(self) -> Protocol:
        protocol = self.protocol
        if protocol.can_send:
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

    def send(self, message: Data | bytearray | memoryview | Iterable[Data], *, compress: bool = True) -> None:
        """Send a text (`str`) or binary (bytes-like) message, from any thread.

        An iterable of str or bytes is sent as one fragmented message, one frame per item
        (RFC 6455 section 5.4); every item must be of the same kind, and other sends wait
        until it is all out. `compress=False` sends this message uncompressed where
        compression was agreed (a secret next to data an attacker chooses, RFC 7692
        section 8). Returns once the bytes are written, or while the peer reads slower,
        once they are down to a few kilobytes.
        """
        if isinstance(message, dict):
            raise TypeError("cannot send a dict: use str or bytes (json.dumps it first)")
        if self._debug and isinstance(message, (str, bytes, bytearray, memoryview)):
            self.logger.debug("> %s", preview(message))
        with self._send_mutex:
            if isinstance(message, (str, bytes, bytearray, memoryview)):
                with self._lock:
                    protocol = self._ensure_can_send()
                    if isinstance(message, str):
                        protocol.send_text(message, compress=compress)
                    else:
                        protocol.send_binary(message, compress=compress)
                    self._queued(len(message), complete=True)
            elif isinstance(message, Iterable):
                self._send_fragmented(message, compress)
                return
            else:
                raise TypeError(f"cannot send {type(message).__name__}: use str or bytes")
            self._drain()

    def _send_fragmented(self, message: Iterable[Data], compress: bool) -> None:
        fragments = iter(message)
        started = False
        try:
            try:
                previous = next(fragments)
            except StopIteration:
                raise ValueError("cannot send an empty fragmented message") from None
            text = isinstance(previous, str)
            for fragment in fragments:
                self._send_fragment(previous, text, not started, fin=False, compress=compress)
                started = True
                self._drain()
                previous = fragment
            self._send_fragment(previous, text, not started, fin=True, compress=compress)
            self._drain()
        except BaseException:
            with self._lock:
                if started and self.protocol.can_send:
                    # A message cut short cannot be finished or taken back: end the connection.
                    self.protocol.close(1011, "a fragmented message could not be completed", now=time.monotonic())
                    self._flush()
            raise

    def _send_fragment(self, fragment: Data, text: bool, first: bool, *, fin: bool, compress: bool) -> None:
        if not isinstance(fragment, (str, bytes, bytearray, memoryview)):
            raise TypeError(f"cannot send a fragment of type {type(fragment).__name__}: use str or bytes")
        if isinstance(fragment, str) != text:
            raise TypeError("a fragmented message mixes str and bytes")
        with self._lock:
            protocol = self._ensure_can_send()
            if not first:
                protocol.send_continuation(fragment, fin=fin)
            elif isinstance(fragment, str):
                protocol.send_text(fragment, fin=fin, compress=compress)
            else:
                protocol.send_binary(fragment, fin=fin, compress=compress)
            self._queued(len(fragment), complete=fin)

    def ping(self, data: str | bytes | None = None) -> PongWaiter:
        """Send a ping; `ping().wait(timeout)` returns the round trip in seconds when the
        matching pong arrives (a pong also answers every earlier ping, section 5.5.3)."""
        payload = os.urandom(4) if data is None else (data.encode() if isinstance(data, str) else bytes(data))
        with self._lock:
            protocol = self._ensure_can_send()
            if payload in self._pings:
                raise ValueError("a ping with this payload is already waiting for its pong")
            protocol.send_ping(payload)
            waiter = PongWaiter()
            self._pings[payload] = (waiter, time.monotonic())
            self._flush()
        return waiter

    def pong(self, data: str | bytes = b"") -> None:
        """Send an unsolicited pong (a one-way heartbeat)."""
        with self._lock:
            protocol = self._ensure_can_send()
            protocol.send_pong(data.encode() if isinstance(data, str) else bytes(data))
            self._flush()

    # -- closing -------------------------------------------------------------------------

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Run the closing handshake (section 7) and wait for the connection to end.

        The core drops the TCP connection when the peer does not answer within
        `close_timeout` seconds (section 7.1.1).
        """
        with self._lock:
            if not self._pump_done:
                now = time.monotonic()
                if self.protocol.state is State.CONNECTING:
                    self.protocol.close(now=now)
                else:
                    self.protocol.send_close(code, reason, now=now)
                self._release_answers()
                self._flush()
        self._wait_closed_bounded()

    def close_anyhow(self, code: int, reason: str) -> None:
        """Start closing for the library's own reasons (shutdown 1001, handler error 1011),
        without a status where the dialect's close frames carry none; do not wait."""
        with self._lock:
            if not self._pump_done:
                self.protocol.close(code, reason, now=time.monotonic())
                self._release_answers()
                self._flush()

    def wait_closed(self, timeout: float | None = None) -> bool:
        """Wait until the TCP connection has ended; False if `timeout` passed first."""
        return self._closed.wait(timeout)

    def _wait_closed_bounded(self) -> None:
        """Wait for the end, which the core bounds (close_timeout for the peer's close frame,
        then close_timeout for TCP); past twice that, drop the socket."""
        if threading.current_thread() is self._thread:
            return
        close_timeout = self.protocol.options.close_timeout
        bound = None if close_timeout is None else 2 * close_timeout + 1.0
        if not self._closed.wait(bound):
            self._abort()
            self._closed.wait(5.0)

    def _abort(self) -> None:
        """Drop the socket now, whatever the state."""
        with self._lock:
            self._abort_requested = True
            self._wake()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()


def _address(getter: Callable[[], object]) -> object:
    try:
        return getter()
    except OSError:
        return None


def _tls_pending(sock: socket.socket) -> bool:
    return isinstance(sock, ssl.SSLSocket) and sock.pending() > 0


def _drain_wakeups(sock: socket.socket) -> None:
    try:
        while sock.recv(4096):
            pass
    except OSError:
        pass
