"""The sans-I/O connection: its lifecycle, timers, transport instructions and extension slot."""

from __future__ import annotations

import gc

import pytest

from conftest import raw_frame
from hybi.exceptions import InvalidState
from hybi.sansio import (
    DIALECTS,
    ClientConnection,
    CloseReceived,
    ConnectionFailed,
    HandshakeFailed,
    Opened,
    Options,
    Ping,
    Pong,
    RequestReceived,
    Role,
    ServerConnection,
    State,
    TransportAction,
    open_connection,
)
from hybi.sansio.extensions import ExtensionParameters
from hybi.sansio.frames import OP_BINARY, OP_TEXT

NO_TIMERS = Options(open_timeout=None, close_timeout=None, ping_interval=None)


def handshake(
    server_options: Options = NO_TIMERS, client_options: Options = NO_TIMERS, **server_kwargs: object
) -> tuple[ServerConnection, ClientConnection]:
    """A server and a client connection that went through a real handshake with each other."""
    server = ServerConnection("13", server_options, **server_kwargs)  # type: ignore[arg-type]
    client = ClientConnection(DIALECTS["13"], "/", "example.com", client_options, extensions=server_kwargs.get("x", ()))  # type: ignore[arg-type]
    assert client.state is State.CONNECTING
    events = server.receive_data(client.data_to_send())
    assert isinstance(events[0], RequestReceived) and server.state is State.CONNECTING
    assert server.accept() == [Opened()]
    assert client.receive_data(server.data_to_send()) == [Opened()]
    assert server.state is client.state is State.OPEN
    return server, client


class TestLifecycle:
    def test_states_follow_the_handshake(self) -> None:
        handshake()

    def test_refusal_is_rejected_state(self) -> None:
        server = ServerConnection("8")
        client = ClientConnection(DIALECTS["13"], "/", "h")
        server.receive_data(client.data_to_send())
        events = server.accept()
        assert isinstance(events[0], HandshakeFailed) and server.state is State.REJECTED
        assert server.transport_action is TransportAction.CLOSE
        answer = server.data_to_send()
        assert answer.startswith(b"HTTP/1.1 426 ")
        events = client.receive_data(answer)
        assert isinstance(events[0], HandshakeFailed) and client.state is State.REJECTED
        assert client.handshake_error is not None and "lists versions 8" in str(client.handshake_error)

    def test_reject_answers_with_the_response_given(self) -> None:
        from hybi.sansio import Response

        server = ServerConnection()
        server.receive_data(ClientConnection(DIALECTS["13"], "/", "h").data_to_send())
        server.reject(Response(401, "Unauthorized", body=b"no"))
        assert server.data_to_send().startswith(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 2\r\n\r\nno")
        assert server.state is State.REJECTED
        with pytest.raises(InvalidState):
            server.accept()

    def test_nothing_is_sent_before_the_handshake(self) -> None:
        client = ClientConnection(DIALECTS["13"], "/", "h")
        with pytest.raises(InvalidState, match="opening handshake"):
            client.send_text("early")

    def test_server_closes_tcp_first_and_the_client_waits(self) -> None:
        options = Options(open_timeout=None, close_timeout=5, ping_interval=None)
        server, client = handshake(options, options)
        client.send_close(1000, now=1.0)
        assert client.state is State.CLOSING and client.next_deadline() == 6.0
        assert server.receive_data(client.data_to_send(), now=1.1) == [CloseReceived(1000, "")]
        assert server.state is State.CLOSED and server.transport_action is TransportAction.CLOSE
        assert server.next_deadline() == pytest.approx(6.1)  # abort if the transport does not close
        assert client.receive_data(server.data_to_send(), now=1.2) == [CloseReceived(1000, "")]
        assert client.state is State.CLOSED and client.transport_action is TransportAction.KEEP
        assert client.next_deadline() == pytest.approx(6.2)
        client.handle_timer(6.2)
        assert client.transport_action is TransportAction.CLOSE  # the server did not close: the client does
        client.handle_timer(11.2)
        assert client.transport_action is TransportAction.ABORT
        info = client.close_info()
        assert info is not None and info.ok and info.local_first and (info.code, info.sent_code) == (1000, 1000)

    def test_unanswered_close_aborts_after_close_timeout(self) -> None:
        options = Options(open_timeout=None, close_timeout=2, ping_interval=None)
        server, _ = handshake(options)
        server.send_close(1001, "bye", now=10.0)
        assert server.handle_timer(11.9) == [] and server.state is State.CLOSING
        server.handle_timer(12.0)
        assert server.state is State.CLOSED and server.transport_action is TransportAction.ABORT
        info = server.close_info()
        assert info is not None and info.code == 1006 and not info.ok and "no close frame within 2" in info.detail

    def test_open_timeout(self) -> None:
        server = ServerConnection("13", Options(open_timeout=3), now=100.0)
        assert server.next_deadline() == 103.0
        server.receive_data(b"GET / HTTP/1.1\r\n", now=101.0)
        events = server.handle_timer(103.0)
        assert isinstance(events[0], HandshakeFailed) and server.state is State.REJECTED
        assert server.transport_action is TransportAction.ABORT

    def test_eof_without_close_frame_is_1006(self) -> None:
        server, _ = handshake()
        assert server.receive_eof() == []
        info = server.close_info()
        assert info is not None and info.code == 1006 and "no close frame" in info.detail
        assert server.transport_action is TransportAction.CLOSE

    def test_a_finished_connection_is_freed_without_the_cycle_collector(self) -> None:
        """Once the transport is gone the connection and its assembler no longer refer to
        each other: a server that runs thousands of handshakes a second frees each at once."""
        gc.collect()
        gc.disable()
        try:
            server, client = handshake()
            client.send_close(1000)
            server.receive_data(client.data_to_send())
            client.receive_data(server.data_to_send())
            server.connection_lost()
            client.connection_lost()
            assert server.state is client.state is State.CLOSED
            del server, client
            assert gc.collect() == 0
        finally:
            gc.enable()

    def test_control_frames_after_the_transport_is_gone_are_not_read(self) -> None:
        server, client = handshake()
        server.connection_lost()
        client.send_ping(b"late")
        assert server.receive_data(client.data_to_send()) == [] and server.data_to_send() == b""


def ended(how: str) -> ServerConnection:
    """A server connection that ended in one of several ways."""
    server, client = handshake()
    if how == "client closes 1000":
        client.send_close(1000)
        server.receive_data(client.data_to_send())
    elif how == "client closes 4000 with a reason":
        client.send_close(4000, "bye")
        server.receive_data(client.data_to_send())
    elif how == "client closes without a status":
        server.receive_data(raw_frame(0x88, b""))
    elif how == "server closes 1001":
        server.send_close(1001, "going away")
        client.receive_data(server.data_to_send())
        server.receive_data(client.data_to_send())
    elif how == "server closes 1011, client answers 1000":
        server.send_close(1011, "oops")
        server.receive_data(raw_frame(0x88, (1000).to_bytes(2, "big")))
    elif how == "bad frame":
        server.receive_data(raw_frame(0x83, b"x"))
    elif how == "eof":
        server.receive_eof()
    elif how == "still open":
        pass
    server.connection_lost()
    return server


@pytest.mark.parametrize(
    "how",
    [
        "client closes 1000",
        "client closes 4000 with a reason",
        "client closes without a status",
        "server closes 1001",
        "server closes 1011, client answers 1000",
        "bad frame",
        "eof",
        "still open",
    ],
)
def test_close_exception_is_close_info_exception(how: str) -> None:
    server = ended(how)
    info = server.close_info()
    assert info is not None
    expected, got = info.exception(), server.close_exception()
    assert type(got) is type(expected)
    assert (got.code, got.reason, got.sent_code, got.detail, str(got)) == (
        expected.code,
        expected.reason,
        expected.sent_code,
        expected.detail,
        str(expected),
    )


def test_no_close_exception_before_closed_or_when_rejected() -> None:
    server, _ = handshake()
    assert server.close_exception() is None and server.close_info() is None
    refused = ServerConnection("8")
    refused.receive_data(ClientConnection(DIALECTS["13"], "/", "h").data_to_send())
    refused.accept()
    refused.connection_lost()
    assert refused.state is State.REJECTED
    assert refused.close_exception() is None and refused.close_info() is None


class TestKeepalive:
    def test_pings_and_latency(self) -> None:
        options = Options(open_timeout=None, ping_interval=10, ping_timeout=5, close_timeout=None)
        server, client = handshake(options, now=0.0)  # type: ignore[arg-type]
        assert server.next_deadline() == 10.0
        server.handle_timer(10.0)
        ping = server.data_to_send()
        assert ping[0] == 0x89 and server.next_deadline() == 15.0
        assert isinstance(client.receive_data(ping)[0], Ping)
        assert isinstance(server.receive_data(client.data_to_send(), now=10.25)[0], Pong)
        assert server.latency == 0.25
        assert server.next_deadline() == 20.0  # the pong deadline is gone; the next ping is due

    def test_late_pong_closes_with_1011(self) -> None:
        options = Options(open_timeout=None, ping_interval=10, ping_timeout=5, close_timeout=None)
        server, client = handshake(options)
        server.handle_timer(10.0)
        server.data_to_send()
        server.handle_timer(15.0)
        assert server.state is State.CLOSING
        assert client.receive_data(server.data_to_send()) == [CloseReceived(1011, "keepalive ping timeout")]

    def test_hixie_has_no_keepalive(self) -> None:
        connection = open_connection(DIALECTS["hixie-76"], Role.SERVER, Options(ping_interval=1))
        assert connection.next_deadline() is None


class TestFailing:
    def test_answers_to_earlier_messages_go_before_the_close_frame(self) -> None:
        """Autobahn 3.2, 4.1.3, 5.15: a message, then a bad frame in the same read."""
        server, client = handshake()
        events = server.receive_data(raw_frame(0x81, b"first") + raw_frame(0xA1, b"bad") + raw_frame(0x89, b""))
        assert events[0] == "first" and isinstance(events[1], ConnectionFailed) and events[1].code == 1002
        assert len(events) == 2 and server.state is State.CLOSED
        server.send_text("first")  # the echo of what came before the error
        out = server.data_to_send()
        assert client.receive_data(out) == ["first", CloseReceived(1002, events[1].reason[:123])]
        with pytest.raises(InvalidState):
            server.send_text("after the close frame")

    def test_invalid_utf8_fails_before_the_frame_ends(self) -> None:
        """Autobahn 6.4.3: the bad byte is in the middle of a frame still arriving."""
        server, _ = handshake()
        frame = raw_frame(0x81, "κόσμε".encode() + b"\xf4\x90\x80\x80" + b"x" * 1000)
        assert server.receive_data(frame[:15]) == []  # header and part of the valid text
        events = server.receive_data(frame[15:30])
        assert isinstance(events[-1], ConnectionFailed) and events[-1].code == 1007

    def test_one_byte_fragments_are_held_compactly(self) -> None:
        server, _ = handshake()
        for _ in range(20000):
            server.receive_data(raw_frame(0x00 if server.receiving_fragmented else 0x02, b"x"))
        assembler = server._assembler
        assert assembler is not None and len(assembler._parts) < 20  # merged, not one object per byte
        assert server.receive_data(raw_frame(0x80, b"")) == [b"x" * 20000]

    def test_large_sentinel_frame_is_not_rescanned(self) -> None:
        connection = open_connection(DIALECTS["hixie-76"], Role.SERVER, Options(max_size=None))
        connection.receive_data(b"\x00")
        for _ in range(1000):
            assert connection.receive_data(b"a" * 1000) == []
            assert connection._codec is not None and connection._codec._pending == b""  # type: ignore[attr-defined]
        assert connection.receive_data(b"\xff") == ["a" * 1000000]


class XorExtension:
    """A test extension: RSV1 on the first frame of a message means its payload was XORed
    with 0x5A (a stand-in for per-message compression)."""

    name = "x-xor"
    rsv_bits = 0x40

    def __init__(self) -> None:
        self.flagged = False  # the message being received was XORed
        self.sending = False  # the message being sent is XORed

    def decode(
        self, opcode: int, fin: bool, rsv: int, length: int, payload: bytes, first: bool, last: bool
    ) -> tuple[int, int, bytes]:
        if opcode & 0x08:
            return rsv, length, payload
        if first and opcode != 0:
            self.flagged = bool(rsv & 0x40)
        elif first and rsv & 0x40:
            return rsv, length, payload  # RSV1 on a continuation: left for the assembler to refuse
        if self.flagged:
            return rsv & ~0x40, -1, bytes(b ^ 0x5A for b in payload)
        return rsv, length, payload

    def set_max_size(self, max_size: int | None) -> None:
        pass

    def encode(self, opcode: int, payload: bytes, fin: bool, rsv: int, compress: bool) -> tuple[bytes, int]:
        if opcode & 0x08:
            return payload, rsv
        if opcode in (OP_TEXT, OP_BINARY):
            self.sending = True
            rsv |= 0x40
        return (bytes(b ^ 0x5A for b in payload) if self.sending else payload), rsv


class XorFactory:
    """The server's side: agrees to an offer without parameters."""

    name = "x-xor"

    def accept(self, offers: list[ExtensionParameters]) -> tuple[ExtensionParameters, XorExtension] | None:
        return ([], XorExtension()) if [] in offers else None


class ClientXorFactory:
    name = "x-xor"

    def offer(self) -> ExtensionParameters:
        return []

    def accept(self, parameters: ExtensionParameters) -> XorExtension:
        assert parameters == []
        return XorExtension()


class TestExtensionSlot:
    def test_negotiated_and_applied_both_ways(self) -> None:
        server = ServerConnection("13", NO_TIMERS, extensions=[XorFactory()])
        client = ClientConnection(DIALECTS["13"], "/", "h", NO_TIMERS, extensions=[ClientXorFactory()])
        request = client.data_to_send()
        assert b"Sec-WebSocket-Extensions: x-xor\r\n" in request
        server.receive_data(request)
        server.accept()
        answer = server.data_to_send()
        assert b"Sec-WebSocket-Extensions: x-xor\r\n" in answer
        client.receive_data(answer)
        assert len(client.extensions) == len(server.extensions) == 1
        client.send_text("héllo")
        client.send_binary(b"ab", fin=False)
        client.send_continuation(b"cd", fin=True)
        wire = client.data_to_send()
        assert wire[0] == 0xC1  # FIN, RSV1, text
        assert server.receive_data(wire) == ["héllo", b"abcd"]

    def test_declined_offer_leaves_no_extension(self) -> None:
        server = ServerConnection("13", NO_TIMERS)
        client = ClientConnection(DIALECTS["13"], "/", "h", NO_TIMERS, extensions=[ClientXorFactory()])
        server.receive_data(client.data_to_send())
        server.accept()
        client.receive_data(server.data_to_send())
        assert client.extensions == () and client.state is State.OPEN
        assert server.receive_data(raw_frame(0xC1, b"x"))[-1] == ConnectionFailed(
            1002, "reserved bits set without an extension that defines them (section 5.2)"
        )

    def test_no_extensions_on_drafts_without_reserved_bits(self) -> None:
        client = ClientConnection(DIALECTS["6"], "/", "h", extensions=[ClientXorFactory()])
        assert b"Sec-WebSocket-Extensions" not in client.data_to_send()


class TestLimits:
    def test_empty_fragments_are_bounded(self) -> None:
        server = open_connection(DIALECTS["13"], Role.SERVER, Options(max_fragments=100))
        events = server.receive_data(raw_frame(0x02, b"") + raw_frame(0x00, b"") * 99)
        assert events == [] and server.receiving_fragmented
        events = server.receive_data(raw_frame(0x00, b""))
        assert isinstance(events[-1], ConnectionFailed) and events[-1].code == 1009

    def test_empty_fragments_cost_no_memory(self) -> None:
        server = open_connection(DIALECTS["13"], Role.SERVER, Options(max_fragments=None))
        server.receive_data(raw_frame(0x02, b"") + raw_frame(0x00, b"") * 10000)
        assert server._assembler is not None and server._assembler._parts == []

    @pytest.mark.parametrize("name", ["hybi-02", "6"])
    def test_interim_control_frames_are_bounded(self, name: str) -> None:
        from hybi.sansio.framing.interim import build_interim_frame

        connection = open_connection(DIALECTS[name], Role.CLIENT)
        events = connection.receive_data(build_interim_frame(0x2, bytes(126), more_bit=name == "hybi-02"))
        assert isinstance(events[-1], ConnectionFailed) and events[-1].code == 1002
        # the announced 2**62-byte ping of the hardening report, from its header alone
        connection = open_connection(DIALECTS["hybi-02"], Role.CLIENT)
        events = connection.receive_data(bytes.fromhex("027f4000000000000000"))
        assert isinstance(events[-1], ConnectionFailed) and events[-1].code == 1002

    @pytest.mark.parametrize("name", ["hixie-76", "hixie-75"])
    def test_hixie_message_over_the_limit_fails_even_when_its_end_is_in_the_same_read(self, name: str) -> None:
        connection = open_connection(DIALECTS[name], Role.SERVER, Options(max_size=1000))
        events = connection.receive_data(b"\x00" + b"a" * 990)
        assert events == []
        events = connection.receive_data(b"a" * 20 + b"\xff")
        assert isinstance(events[-1], ConnectionFailed) and events[-1].code == 1009

    def test_idle_timeout(self) -> None:
        connection = open_connection(DIALECTS["hixie-76"], Role.SERVER, Options(idle_timeout=30), now=0.0)
        assert connection.next_deadline() == 30.0
        connection.receive_data(b"\x00hi\xff", now=20.0)
        connection.handle_timer(30.0)
        assert connection.state is State.OPEN and connection.next_deadline() == 50.0
        connection.handle_timer(50.0)
        assert connection.state is State.CLOSING and connection.data_to_send() == b"\xff\x00"


class TestServerDecision:
    """What the server's application learns from RequestReceived, and what accept() takes."""

    def test_request_received_names_the_version_asked_for(self) -> None:
        server = ServerConnection("all")
        events = server.receive_data(ClientConnection(DIALECTS["8"], "/", "h").data_to_send())
        assert isinstance(events[0], RequestReceived)
        assert events[0].dialect is DIALECTS["8"] and events[0].version == 8
        server = ServerConnection("all")
        events = server.receive_data(ClientConnection(DIALECTS["hixie-76"], "/", "h").data_to_send())
        assert isinstance(events[0], RequestReceived) and events[0].version == "hixie-76"

    def test_request_received_for_a_version_not_served_has_none(self) -> None:
        server = ServerConnection("8")
        events = server.receive_data(ClientConnection(DIALECTS["13"], "/", "h").data_to_send())
        assert isinstance(events[0], RequestReceived)
        assert events[0].dialect is None and events[0].version is None
        assert isinstance(server.accept()[0], HandshakeFailed)
        assert server.data_to_send().startswith(b"HTTP/1.1 426 ")

    def test_accept_takes_this_handshakes_subprotocol_and_headers(self) -> None:
        server = ServerConnection("13", NO_TIMERS, subprotocols=["a"], extra_headers=[("X-Configured", "1")])
        client = ClientConnection(DIALECTS["13"], "/", "h", NO_TIMERS, subprotocols=["a", "b"])
        server.receive_data(client.data_to_send())
        with pytest.raises(ValueError, match="'c' was not offered"):
            server.accept(subprotocol="c")
        assert server.accept(subprotocol="b", extra_headers={"X-Call": "2"}) == [Opened()]
        answer = server.data_to_send()
        assert b"Sec-WebSocket-Protocol: b\r\n" in answer
        assert answer.index(b"X-Configured: 1\r\n") < answer.index(b"X-Call: 2\r\n")
        assert client.receive_data(answer) == [Opened()]
        assert client.subprotocol == server.subprotocol == "b"

    def test_accept_with_no_subprotocol_overrides_the_configured_one(self) -> None:
        server = ServerConnection("13", NO_TIMERS, subprotocols=["a"], require_subprotocol=True)
        client = ClientConnection(DIALECTS["13"], "/", "h", NO_TIMERS, subprotocols=["a"])
        server.receive_data(client.data_to_send())
        assert server.accept(subprotocol=None) == [Opened()]
        assert b"Sec-WebSocket-Protocol" not in server.data_to_send()
        assert server.subprotocol is None

    def test_bytes_after_the_head_are_bounded_while_the_server_decides(self) -> None:
        from hybi.sansio import HTTPLimits

        server = ServerConnection("13", NO_TIMERS, limits=HTTPLimits(max_early=100))
        events = server.receive_data(ClientConnection(DIALECTS["13"], "/", "h").data_to_send() + b"x" * 60)
        assert isinstance(events[0], RequestReceived)
        assert server.receive_data(b"y" * 40) == []  # 100 in all: kept
        events = server.receive_data(b"z")
        assert isinstance(events[0], HandshakeFailed)
        assert "more than 100 bytes arrived after the request head" in str(events[0].error)
        assert server.state is State.REJECTED and server.transport_action is TransportAction.CLOSE
        assert server.data_to_send().startswith(b"HTTP/1.1 400 ")
        with pytest.raises(InvalidState):
            server.accept()

    def test_bytes_after_the_head_in_the_same_read_are_bounded_too(self) -> None:
        from hybi.sansio import HTTPLimits

        server = ServerConnection("13", NO_TIMERS, limits=HTTPLimits(max_early=8))
        events = server.receive_data(ClientConnection(DIALECTS["13"], "/", "h").data_to_send() + b"x" * 9)
        assert isinstance(events[0], HandshakeFailed) and server.state is State.REJECTED
