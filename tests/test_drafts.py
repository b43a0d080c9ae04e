"""The drafts before version 7: hixie-75, hixie-76 / hybi-00, hybi-02/03, hybi-05 and -06."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import feed
from hybi.exceptions import HandshakeRejected, InvalidHandshake, UnsupportedFeature
from hybi.sansio.connection import ClientConnection, Connection, Options, ServerConnection, open_connection
from hybi.sansio.dialects import DIALECTS
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
)
from hybi.sansio.framing.interim import build_interim_frame
from hybi.sansio.handshake import ClientHandshake, ServerHandshake
from hybi.sansio.hixie_challenge import challenge_answer, generate_key, key_part

# The example of hixie-76 section 1.3 (and hybi-00), as shared/versions.md section 4 gives it.
HIXIE76_REQUEST = (
    b"GET /demo HTTP/1.1\r\n"
    b"Host: example.com\r\n"
    b"Connection: Upgrade\r\n"
    b"Sec-WebSocket-Key2: 12998 5 Y3 1  .P00\r\n"
    b"Sec-WebSocket-Protocol: sample\r\n"
    b"Upgrade: WebSocket\r\n"
    b"Sec-WebSocket-Key1: 4 @1  46546xW%0l 1 5\r\n"
    b"Origin: http://example.com\r\n"
    b"\r\n"
)
HIXIE76_KEY3 = b"^n:ds[4U"
HIXIE76_RESPONSE = (
    b"HTTP/1.1 101 WebSocket Protocol Handshake\r\n"
    b"Upgrade: WebSocket\r\n"
    b"Connection: Upgrade\r\n"
    b"Sec-WebSocket-Origin: http://example.com\r\n"
    b"Sec-WebSocket-Location: ws://example.com/demo\r\n"
    b"Sec-WebSocket-Protocol: sample\r\n"
    b"\r\n"
)
HIXIE76_ANSWER = b"8jKS'y:G*Co,Wxa-"

HIXIE75_REQUEST = (
    b"GET /demo HTTP/1.1\r\nUpgrade: WebSocket\r\nConnection: Upgrade\r\nHost: example.com\r\n"
    b"Origin: http://example.com\r\nWebSocket-Protocol: sample\r\n\r\n"
)
HIXIE75_RESPONSE = (
    b"HTTP/1.1 101 Web Socket Protocol Handshake\r\nUpgrade: WebSocket\r\nConnection: Upgrade\r\n"
    b"WebSocket-Origin: http://example.com\r\nWebSocket-Location: ws://example.com/demo\r\n"
    b"WebSocket-Protocol: sample\r\n\r\n"
)


def serve_request(data: bytes, versions: str = "all", max_size: int | None = 1 << 20) -> tuple[bytes, ServerConnection]:
    """What a server writes for `data`: the 101 head and whatever the connection then sends."""
    server = ServerConnection(versions, Options(max_size=max_size), subprotocols=["sample"])
    if any(isinstance(event, RequestReceived) for event in server.receive_data(data)):
        server.accept()
    return server.data_to_send(), server


# -- hixie-76 challenge ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key1", "key2", "key3", "answer"),
    [
        ("4 @1  46546xW%0l 1 5", "12998 5 Y3 1  .P00", b"^n:ds[4U", b"8jKS'y:G*Co,Wxa-"),
        ("18x 6]8vM;54 *(5:  {   U1]8  z [  8", "1_ tx7X d  <  nw  334J702) 7]o}` 0", b"Tm[K T2u", b"fQJ,fN/4F4!~K~MH"),
        ("3e6b263  4 17 80", "17  9 G`ZD9   2 2b 7X 3 /r90", b"WjN}|M(6", b"n`9eBk9z$R8pOtVb"),
    ],
)
def test_challenge_vectors(key1: str, key2: str, key3: bytes, answer: bytes) -> None:
    assert challenge_answer(key_part(key1), key_part(key2), key3) == answer


def test_key_parts_of_the_example() -> None:
    assert key_part("4 @1  46546xW%0l 1 5") == 829309203
    assert key_part("12998 5 Y3 1  .P00") == 259970620


@pytest.mark.parametrize(
    ("key", "words"),
    [("12345", "no spaces"), ("1 2 3", "not a multiple"), ("a b", "no digits"), ("99999999999 ", "more than 32 bits")],
)
def test_bad_keys(key: str, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        key_part(key)


@given(st.integers(min_value=0, max_value=2**32))
def test_generated_keys_stand_for_their_part(seed: int) -> None:
    key, part = generate_key(random.Random(seed))
    assert key_part(key) == part
    assert not key.startswith(" ") and not key.endswith(" ")
    assert 1 <= key.count(" ") <= 12


class TestHixie76Server:
    def test_spec_example(self, feed_mode: str) -> None:
        data = HIXIE76_REQUEST + HIXIE76_KEY3
        if feed_mode == "bytewise":
            server = ServerConnection("hixie-76", subprotocols=["sample"])
            events: list[Event] = []
            for index in range(len(HIXIE76_REQUEST)):
                events += server.receive_data(data[index : index + 1])
            assert events == [RequestReceived(server.handshake.request, DIALECTS["hixie-76"])]  # type: ignore[arg-type]
            server.accept()
            assert server.data_to_send() == HIXIE76_RESPONSE  # the head goes out before key3 arrives
            out = b""
            for byte in HIXIE76_KEY3:
                assert server.state is State.CONNECTING
                server.receive_data(bytes([byte]))
                out += server.data_to_send()
            assert server.state is State.OPEN
            assert out == HIXIE76_ANSWER
        else:
            extra = b"\x00hi\xff" if feed_mode == "trailing" else b""
            written, _ = serve_request(data + extra)
            assert written == HIXIE76_RESPONSE + HIXIE76_ANSWER

    def test_with_content_length_8(self) -> None:
        request = HIXIE76_REQUEST.replace(b"Origin:", b"Content-Length: 8\r\nOrigin:")
        written, _ = serve_request(request + HIXIE76_KEY3)
        assert written == HIXIE76_RESPONSE + HIXIE76_ANSWER

    def test_frames_after_key3(self) -> None:
        _written, session = serve_request(HIXIE76_REQUEST + HIXIE76_KEY3 + b"\x00Hello\xff")
        assert session.state is State.OPEN
        session.send_text("back")
        assert session.data_to_send() == b"\x00back\xff"

    def test_no_key3_yet_means_not_ready(self) -> None:
        written, session = serve_request(HIXIE76_REQUEST + HIXIE76_KEY3[:5])
        assert written == HIXIE76_RESPONSE
        assert session.state is State.CONNECTING

    @pytest.mark.parametrize(
        ("old", "new", "words"),
        [
            (b"4 @1  46546xW%0l 1 5", b"4@146546xW%0l15", "no spaces"),
            (b"4 @1  46546xW%0l 1 5", b"4 @1  46546xW%0l 1 6", "not a multiple"),
            (b"Sec-WebSocket-Key2: 12998 5 Y3 1  .P00\r\n", b"", "missing Sec-WebSocket-Key2"),
            (b"Host: example.com\r\n", b"", "missing Host"),
        ],
    )
    def test_bad_requests(self, old: bytes, new: bytes, words: str) -> None:
        written, _ = serve_request(HIXIE76_REQUEST.replace(old, new) + HIXIE76_KEY3, "hixie-76,13")
        if words == "missing Sec-WebSocket-Key2":  # then it is classified as hixie-75, not enabled
            assert written.startswith(b"HTTP/1.1 426 ")
            return
        assert written.startswith(b"HTTP/1.1 400 ")
        assert words.encode() in written


class TestHixie76Client:
    def offer(self) -> ClientHandshake:
        return ClientHandshake(DIALECTS["hixie-76"], "/demo", "example.com", origin="http://example.com")

    def connection(self) -> ClientConnection:
        return ClientConnection(DIALECTS["hixie-76"], "/demo", "example.com", origin="http://example.com")

    def test_request_carries_key3(self) -> None:
        data = self.connection().data_to_send()
        head, body = data.split(b"\r\n\r\n", 1)
        assert len(body) == 8
        assert b"Upgrade: WebSocket\r\n" in head and b"Origin: http://example.com\r\n" in head

    def test_against_the_server(self, feed_mode: str) -> None:
        client = self.connection()
        written, _ = serve_request(client.data_to_send(), "hixie-76")
        data = written + b"\x00hi\xff"
        if feed_mode == "bytewise":
            events: list[Event] = []
            for index in range(len(data)):
                events += client.receive_data(data[index : index + 1])
        else:
            events = client.receive_data(data)
        assert client.state is State.OPEN
        assert events == [Opened(), "hi"]

    def test_wrong_answer_fails(self) -> None:
        client = self.connection()
        written, _ = serve_request(client.data_to_send(), "hixie-76")
        events = client.receive_data(written[:-16] + b"0123456789abcdef")
        assert isinstance(events[-1], HandshakeFailed) and "challenge" in str(events[-1].error)
        assert client.state is State.REJECTED

    @pytest.mark.parametrize(
        ("old", "new", "words"),
        [
            (b"ws://example.com/demo", b"ws://evil.example/demo", "Sec-WebSocket-Location"),
            (
                b"Sec-WebSocket-Origin: http://example.com",
                b"Sec-WebSocket-Origin: http://other",
                "Sec-WebSocket-Origin",
            ),
            (b"Upgrade: WebSocket\r\n", b"", "Upgrade"),
        ],
    )
    def test_bad_answers(self, old: bytes, new: bytes, words: str) -> None:
        client = self.offer()
        written, _ = serve_request(client.request_bytes(), "hixie-76")
        with pytest.raises(InvalidHandshake, match=words):
            client.receive_data(written.replace(old, new))


class TestHixie75:
    def test_server_answer_is_byte_exact(self) -> None:
        written, _ = serve_request(HIXIE75_REQUEST)
        assert written == HIXIE75_RESPONSE
        assert written.startswith(
            b"HTTP/1.1 101 Web Socket Protocol Handshake\r\nUpgrade: WebSocket\r\nConnection: Upgrade\r\n"
        )

    def test_client_against_the_server(self) -> None:
        client = ClientConnection(DIALECTS["hixie-75"], "/demo", "example.com", origin="http://example.com")
        request = client.data_to_send()
        assert request.endswith(b"\r\n\r\n")  # no body
        written, _ = serve_request(request, "hixie-75")
        assert client.receive_data(written + b"\x00x\xff") == [Opened(), "x"]
        assert client.state is State.OPEN

    def test_client_refuses_a_near_miss(self) -> None:
        client = ClientHandshake(DIALECTS["hixie-75"], "/demo", "example.com", origin="http://example.com")
        written, _ = serve_request(client.request_bytes(), "hixie-75")
        with pytest.raises(InvalidHandshake, match="not a hixie-75 answer"):
            client.receive_data(written.replace(b"Web Socket Protocol", b"WebSocket Protocol"))

    def test_client_accepts_lower_case_values(self) -> None:
        """Netty answers hixie-75 with `upgrade: websocket` and `connection: upgrade`."""
        client = ClientHandshake(DIALECTS["hixie-75"], "/demo", "example.com", origin="http://example.com")
        written, _ = serve_request(client.request_bytes(), "hixie-75")
        lowered = written.replace(b"Upgrade: WebSocket", b"upgrade: websocket").replace(
            b"Connection: Upgrade", b"connection: upgrade"
        )
        assert client.receive_data(lowered) is not None

    def test_tcp_close_is_the_close(self) -> None:
        session = open_connection(DIALECTS["hixie-75"], Role.SERVER, Options(max_size=None))
        assert session.receive_data(b"\xff\x00\x00a\xff") == ["a"]  # 0xFF 0x00 is an empty frame here
        assert session.receive_eof() == [CloseReceived(1005, "")]
        assert session.state is State.CLOSED


# -- sentinel framing --------------------------------------------------------------------------


def sentinel(close_frame: bool = True, max_message_size: int | None = 1000) -> Connection:
    name = "hixie-76" if close_frame else "hixie-75"
    return open_connection(DIALECTS[name], Role.SERVER, Options(max_size=max_message_size))


def test_sentinel_text(feed_mode: str) -> None:
    assert feed(sentinel().receive_data, b"\x00Hello\xff\x00\xce\xba\xcf\x8c\xff", feed_mode) == ["Hello", "κό"]


def test_length_prefixed_frames_are_read_and_discarded(feed_mode: str) -> None:
    data = b"\x80\x03abc" + b"\x81\x81\x00" + bytes(128) + b"\x00after\xff"
    assert feed(sentinel().receive_data, data, feed_mode) == ["after"]


def test_sentinel_close_is_answered(feed_mode: str) -> None:
    session = sentinel()
    events = feed(session.receive_data, b"\x00bye\xff\xff\x00", feed_mode if feed_mode != "trailing" else "whole")
    assert events == ["bye", CloseReceived(1005, "")]
    assert session.data_to_send() == b"\xff\x00"
    assert session.state is State.CLOSED


@pytest.mark.parametrize(
    ("data", "code", "words"),
    [
        (b"\x00" + b"a" * 1001, 1009, "more than 1000 bytes"),
        (b"\x80\x88\x00", 1009, "limit is 1000"),
        (b"\x80" + b"\xff" * 11, 1002, "more than 9 bytes"),
        (b"\x00ab\xffcd\xff", 1002, "0xFF inside a text frame"),
        (b"\x00\xc3\xff\xa9\xff", 1007, "not valid UTF-8"),
        (b"\x00\xed\xa0\x80\xff", 1007, "not valid UTF-8"),
    ],
)
def test_sentinel_bad_input(data: bytes, code: int, words: str) -> None:
    session = sentinel()
    events = session.receive_data(data)
    assert isinstance(events[-1], ConnectionFailed), events
    assert events[-1].code == code and words in events[-1].reason
    assert session.receive_data(b"\x00more\xff") == []


def test_sentinel_lacks_features_and_says_so() -> None:
    session = sentinel()
    for action, words in [
        (lambda: session.send_binary(b"x"), "hixie-76 has no binary messages"),
        (session.send_ping, "hixie-76 has no ping"),
        (lambda: session.send_text("a", fin=False), "fragmented"),
        (lambda: session.send_close(1001), "no status code"),
        (lambda: session.send_close(1000, "why"), "no status code"),
    ]:
        with pytest.raises(UnsupportedFeature, match=words):
            action()


def test_sentinel_sending() -> None:
    session = sentinel()
    session.send_text("héllo")
    session.send_close()
    assert session.data_to_send() == b"\x00h\xc3\xa9llo\xff\xff\x00"
    assert session.state is State.CLOSING


# -- hybi-05/06 and hybi-02/03 framing ---------------------------------------------------------

KEY = bytes.fromhex("37fa213d")
HELLO_05 = bytes.fromhex("37fa213db3ff69585b964e")  # shared/versions.md: "Hello", -05/06, key 37 fa 21 3d


def interim(role: Role, name: str, max_message_size: int | None = 1 << 20) -> Connection:
    """A connection of `name` ready for frames (for hybi-02, past its hixie-76 challenge)."""
    options = Options(max_size=max_message_size)
    if name != "hybi-02":
        session: Connection = open_connection(DIALECTS[name], role, options)
    elif role is Role.SERVER:
        written, session = serve_request(
            request(Sec_WebSocket_Draft="2", **KEYS) + HIXIE76_KEY3, "hybi-02", max_message_size
        )
        assert written.endswith(HIXIE76_ANSWER)
    else:
        session = ClientConnection(DIALECTS["hybi-02"], "/", "h", options)
        request_bytes = session.data_to_send()
        assert b"Sec-WebSocket-Draft: 2\r\n" in request_bytes
        written, _ = serve_request(request_bytes, "hybi-02")
        assert session.receive_data(written) == [Opened()]
    assert session.state is State.OPEN
    return session


def test_hybi05_worked_example_serialized() -> None:
    assert build_interim_frame(0x4, b"Hello", more_bit=False, key=KEY) == HELLO_05


@pytest.mark.parametrize("name", ["5", "6"])
def test_hybi05_worked_example_parsed(name: str, feed_mode: str) -> None:
    assert feed(interim(Role.SERVER, name).receive_data, HELLO_05, feed_mode) == ["Hello"]


@pytest.mark.parametrize("name", ["5", "6"])
@pytest.mark.parametrize("size", [0, 125, 126, 65535, 65536])
def test_hybi05_round_trip(name: str, size: int) -> None:
    client, server = interim(Role.CLIENT, name), interim(Role.SERVER, name)
    payload = bytes(i % 251 for i in range(size))
    client.send_binary(payload)
    client.send_text("é" * (size // 2), fin=False)
    client.send_ping(b"p")
    client.send_continuation(b"!", fin=True)
    assert server.receive_data(client.data_to_send()) == [payload, Ping(b"p"), "é" * (size // 2) + "!"]
    server.send_text("to client")
    assert client.receive_data(server.data_to_send()) == [Pong(b"p"), "to client"]


def test_hybi02_more_bit(feed_mode: str) -> None:
    data = bytes([0x84, 3]) + b"Hel" + bytes([0x00, 2]) + b"lo" + bytes([0x05, 1]) + b"\x01"
    assert feed(interim(Role.CLIENT, "hybi-02").receive_data, data, feed_mode) == ["Hello", b"\x01"]
    sender = interim(Role.SERVER, "hybi-02")
    sender.send_text("Hel", fin=False)
    sender.send_continuation(b"lo", fin=True)
    assert sender.data_to_send() == data[:9]


def test_interim_close_bodies() -> None:
    six = interim(Role.SERVER, "6")
    client = interim(Role.CLIENT, "6")
    client.send_close(1004, "too big")  # 1004 meant "frame too large" then
    assert six.receive_data(client.data_to_send()) == [CloseReceived(1004, "too big")]
    assert client.receive_data(six.data_to_send()) == [CloseReceived(1004, "")]
    two = interim(Role.SERVER, "hybi-02")
    assert two.receive_data(bytes([0x01, 3]) + b"abc") == [CloseReceived(1005, "")]
    assert two.data_to_send() == bytes([0x01, 3]) + b"abc"  # -03 echoes the body
    with pytest.raises(UnsupportedFeature, match="no status code"):
        interim(Role.SERVER, "5").send_close(1001)


@pytest.mark.parametrize(
    ("name", "data", "code"),
    [
        ("hybi-02", bytes([0x06, 0]), 1002),  # reserved opcode
        ("hybi-02", bytes([0x44, 0]), 1002),  # RSV1
        ("hybi-02", bytes([0x04, 0x80]), 1002),  # RSV4
        ("hybi-02", bytes([0x82, 0]), 1002),  # fragmented ping
        ("hybi-02", bytes([0x00, 0]), 1002),  # continuation with nothing to continue
        ("hybi-02", bytes([0x04, 2]) + b"\xc3\x28", 1007),
        ("hybi-02", bytes([0x05, 127]) + (1 << 21).to_bytes(8, "big"), 1009),
        ("6", build_interim_frame(0x4, b"\xff", more_bit=False, key=KEY), 1007),
        ("5", build_interim_frame(0x4, b"\xff", more_bit=False, key=KEY), 1007),
        ("5", build_interim_frame(0x7, b"", more_bit=False, key=KEY), 1002),  # reserved opcode
        ("5", build_interim_frame(0x4, b"hello", more_bit=False), 1002),  # no key: the header reads as noise
        ("6", build_interim_frame(0x1, b"\x03", more_bit=False, key=KEY), 1002),
    ],
)
def test_interim_bad_input(name: str, data: bytes, code: int) -> None:
    role = Role.SERVER if name in ("5", "6") else Role.CLIENT
    events = interim(role, name).receive_data(data)
    assert isinstance(events[-1], ConnectionFailed) and events[-1].code == code, events


# -- classification ----------------------------------------------------------------------------


def request(**fields: str) -> bytes:
    head = "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: WebSocket\r\nConnection: Upgrade\r\n"
    head += "".join(f"{name.replace('_', '-')}: {value}\r\n" for name, value in fields.items())
    return (head + "\r\n").encode()


KEYS = {"Sec_WebSocket_Key1": "4 @1  46546xW%0l 1 5", "Sec_WebSocket_Key2": "12998 5 Y3 1  .P00"}


@pytest.mark.parametrize(
    ("fields", "dialect"),
    [
        ({"Sec_WebSocket_Version": "6", "Sec_WebSocket_Key": "dGhlIHNhbXBsZSBub25jZQ=="}, "6"),
        ({"Sec_WebSocket_Version": "5", "Sec_WebSocket_Key": "dGhlIHNhbXBsZSBub25jZQ=="}, "5"),
        ({"Sec_WebSocket_Draft": "2", **KEYS}, "hybi-02"),
        (KEYS, "hixie-76"),
        ({}, "hixie-75"),
    ],
)
def test_classification(fields: dict[str, str], dialect: str) -> None:
    handshake = ServerHandshake("all")
    parsed = handshake.receive_data(request(**fields))
    assert parsed is not None
    assert handshake.negotiate(parsed).name == dialect
    only_13 = ServerHandshake("13,hixie-76")
    parsed = only_13.receive_data(request(**fields))
    assert parsed is not None
    if dialect == "hixie-76":
        assert only_13.negotiate(parsed).name == "hixie-76"
    else:
        with pytest.raises(HandshakeRejected) as caught:
            only_13.negotiate(parsed)
        assert caught.value.response.headers.get("Sec-WebSocket-Version") == "13, 0"


def test_version_4_is_refused_with_the_list() -> None:
    written, _ = serve_request(request(Sec_WebSocket_Version="4", Sec_WebSocket_Key="dGhlIHNhbXBsZSBub25jZQ=="))
    assert written.startswith(b"HTTP/1.1 426 ")
    assert b"Sec-WebSocket-Version: 13, 8, 7, 6, 5, 0\r\n" in written


def test_key_without_version_is_not_hixie_75() -> None:
    written, _ = serve_request(request(Sec_WebSocket_Key="dGhlIHNhbXBsZSBub25jZQ=="))
    assert written.startswith(b"HTTP/1.1 426 ") and b"missing Sec-WebSocket-Version" in written


# -- round trips ---------------------------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(
    messages=st.lists(st.one_of(st.text(max_size=200), st.binary(max_size=200)), min_size=1, max_size=6),
    fragment_size=st.integers(min_value=1, max_value=50),
    chunk=st.integers(min_value=1, max_value=80),
    to_server=st.booleans(),
    name=st.sampled_from(["6", "5", "hybi-02"]),
)
def test_interim_round_trip(
    messages: list[str | bytes], fragment_size: int, chunk: int, to_server: bool, name: str
) -> None:
    """Whatever one side of an interim draft sends, fragmented or not, the other reads back."""
    sender = interim(Role.CLIENT if to_server else Role.SERVER, name)
    receiver = interim(Role.SERVER if to_server else Role.CLIENT, name)
    for message in messages:
        encoded = message.encode() if isinstance(message, str) else message
        parts = [encoded[i : i + fragment_size] for i in range(0, len(encoded), fragment_size)] or [b""]
        first, *rest = parts
        if isinstance(message, str):
            sender.send_text(first, fin=not rest)
        else:
            sender.send_binary(first, fin=not rest)
        for index, part in enumerate(rest):
            sender.send_continuation(part, fin=index == len(rest) - 1)
    wire = sender.data_to_send()
    received: list[Event] = []
    for start in range(0, len(wire), chunk):
        received += receiver.receive_data(wire[start : start + chunk])
    assert received == messages


@settings(max_examples=100, deadline=None)
@given(
    messages=st.lists(st.text(max_size=200), min_size=1, max_size=6),
    chunk=st.integers(min_value=1, max_value=80),
    close_frame=st.booleans(),
)
def test_sentinel_round_trip(messages: list[str], chunk: int, close_frame: bool) -> None:
    sender = sentinel(close_frame, max_message_size=None)
    receiver = sentinel(close_frame, max_message_size=None)
    for message in messages:
        sender.send_text(message)
    sender.send_close()
    wire = sender.data_to_send()
    received: list[Event] = []
    for start in range(0, len(wire), chunk):
        received += receiver.receive_data(wire[start : start + chunk])
    assert received == [*messages, *([CloseReceived(1005, "")] if close_frame else [])]
