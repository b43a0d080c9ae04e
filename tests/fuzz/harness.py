"""Drives the sans-I/O core with arbitrary bytes and checks what must always hold.

One input is a target (a dialect and a role, or a handshake) and a byte stream, cut into
reads at points the input also chooses. Whatever the bytes, the core must:
- raise nothing out of `receive_data`, `receive_eof`, `data_to_send` or `accept`
  (bad input becomes an event: ConnectionFailed, HandshakeFailed);
- hold no more than the limits allow: a message under assembly within `max_size`, at most
  a frame header (or a control frame) waiting in the codec;
- read nothing after it closed or failed.

Used by the hypothesis test in tests/test_fuzz.py (a short run in every `make test`) and by
`tests/fuzz/run_atheris.py` (`make fuzz`, coverage-guided, a million inputs per target).
"""

from __future__ import annotations

from hybi.sansio import (
    DIALECTS,
    ClientConnection,
    CloseReceived,
    Connection,
    ConnectionFailed,
    Options,
    RequestReceived,
    Role,
    ServerConnection,
    State,
    open_connection,
)

MAX_SIZE = 4096
OPTIONS = Options(max_size=MAX_SIZE, max_fragments=64, open_timeout=None, ping_interval=None, close_timeout=None)
MAX_PENDING = 2 + 8 + 4 + 125  # the longest header and control frame a codec may hold

TARGETS: list[str] = [f"{name}/{role.value}" for name in DIALECTS for role in Role] + [
    "handshake/server",
    "handshake/client",
]

VALID_REQUEST = (
    b"GET /chat HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


def make(target: str) -> Connection:
    name, role = target.split("/")
    if name == "handshake":
        if role == "server":
            return ServerConnection("all", OPTIONS, subprotocols=["chat"])
        client = ClientConnection(DIALECTS["13"], "/", "h", OPTIONS)
        client.data_to_send()
        return client
    return open_connection(DIALECTS[name], Role(role), OPTIONS)


def held(connection: Connection) -> int:
    """Bytes of message data the connection holds."""
    assembler = connection._assembler
    return 0 if assembler is None else sum(len(part) for part in assembler._parts)


def check(connection: Connection) -> None:
    assert held(connection) <= MAX_SIZE, held(connection)
    codec = connection._codec
    pending = getattr(codec, "_pending", b"")
    assert len(pending) <= MAX_PENDING, len(pending)


def drive(target: str, data: bytes, cuts: list[int]) -> None:
    """Feed `data` to a new connection of `target`, in reads ending at `cuts`."""
    connection = make(target)
    start = 0
    ended = False
    for cut in [*sorted(c % (len(data) + 1) for c in cuts), len(data)]:
        piece = data[start:cut]
        start = max(start, cut)
        if not piece:
            continue
        events = connection.receive_data(piece)
        if ended:
            assert events == [], events
        for event in events:
            if isinstance(event, RequestReceived):
                connection.accept()  # type: ignore[attr-defined]
            if isinstance(event, ConnectionFailed | CloseReceived):
                ended = True
        check(connection)
        connection.data_to_send()
    connection.receive_eof()
    connection.data_to_send()
    assert connection.state in (State.CLOSED, State.REJECTED, State.CONNECTING, State.OPEN, State.CLOSING)


def split_input(raw: bytes, only: str | None = None) -> tuple[str, bytes, list[int]]:
    """One fuzzer input: byte 0 picks the target (unless `only` names it), bytes 1-4 the
    cuts, the rest is the stream."""
    if not raw:
        return only or TARGETS[0], b"", []
    target = only or TARGETS[(raw[0] & 0x7F) % len(TARGETS)]
    cuts = list(raw[1:5])
    data = raw[5:]
    if target == "handshake/server" and raw[0] & 0x80:
        data = VALID_REQUEST + data  # get past the head more often
    return target, data, [c * 3 for c in cuts]
