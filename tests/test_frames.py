"""RFC 6455 framing and the open-connection state machine of versions 7, 8 and 13."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import feed, raw_frame
from hybi.exceptions import InvalidState
from hybi.sansio.connection import Connection, Options, open_connection
from hybi.sansio.dialects import DIALECTS
from hybi.sansio.events import CloseReceived, ConnectionFailed, Ping, Pong, Role, State
from hybi.sansio.frames import apply_mask, build_frame

KEY = bytes.fromhex("37fa213d")

# RFC 6455 section 5.7, byte for byte.
UNMASKED_HELLO = bytes.fromhex("810548656c6c6f")
MASKED_HELLO = bytes.fromhex("818537fa213d7f9f4d5158")
FRAGMENTED_HELLO = bytes.fromhex("010348656c") + bytes.fromhex("80026c6f")
UNMASKED_PING = bytes.fromhex("890548656c6c6f")
MASKED_PONG = bytes.fromhex("8a8537fa213d7f9f4d5158")
BINARY_256 = bytes.fromhex("827e0100")
BINARY_64K = bytes.fromhex("827f0000000000010000")


def session(role: Role, version: str = "13", max_message_size: int | None = 1 << 20) -> Connection:
    return open_connection(DIALECTS[version], role, Options(max_size=max_message_size))


def server(version: str = "13", **kwargs: int | None) -> Connection:
    return session(Role.SERVER, version, **kwargs)


def client(version: str = "13", **kwargs: int | None) -> Connection:
    return session(Role.CLIENT, version, **kwargs)


# -- the specification's examples, both directions --------------------------------------


class TestSpecExamplesParsed:
    def test_unmasked_text_to_client(self, feed_mode: str) -> None:
        assert feed(client().receive_data, UNMASKED_HELLO, feed_mode) == ["Hello"]

    def test_masked_text_to_server(self, feed_mode: str) -> None:
        assert feed(server().receive_data, MASKED_HELLO, feed_mode) == ["Hello"]

    def test_fragmented_text(self, feed_mode: str) -> None:
        assert feed(client().receive_data, FRAGMENTED_HELLO, feed_mode) == ["Hello"]

    def test_ping_is_reported_and_answered(self, feed_mode: str, fixed_mask: bytes) -> None:
        peer = client()
        assert feed(peer.receive_data, UNMASKED_PING, feed_mode) == [Ping(b"Hello")]
        assert peer.data_to_send() == MASKED_PONG

    def test_masked_pong_to_server(self, feed_mode: str) -> None:
        assert feed(server().receive_data, MASKED_PONG, feed_mode) == [Pong(b"Hello")]

    def test_256_byte_binary(self, feed_mode: str) -> None:
        payload = bytes(range(256))
        assert feed(client().receive_data, BINARY_256 + payload, feed_mode) == [payload]

    def test_64k_binary(self) -> None:
        payload = bytes(i % 253 for i in range(65536))
        for mode in ("whole", "trailing"):
            assert feed(client().receive_data, BINARY_64K + payload, mode) == [payload]

    def test_trailing_bytes_are_kept_for_the_next_frame(self) -> None:
        peer = client()
        assert peer.receive_data(UNMASKED_HELLO + UNMASKED_HELLO[:3]) == ["Hello"]
        assert peer.receive_data(UNMASKED_HELLO[3:]) == ["Hello"]


class TestSpecExamplesSerialized:
    def test_unmasked_text(self) -> None:
        peer = server()
        peer.send_text("Hello")
        assert peer.data_to_send() == UNMASKED_HELLO

    def test_masked_text(self, fixed_mask: bytes) -> None:
        peer = client()
        peer.send_text("Hello")
        assert peer.data_to_send() == MASKED_HELLO

    def test_fragmented_text(self) -> None:
        peer = server()
        peer.send_text("Hel", fin=False)
        peer.send_continuation(b"lo", fin=True)
        assert peer.data_to_send() == FRAGMENTED_HELLO

    def test_ping(self) -> None:
        peer = server()
        peer.send_ping(b"Hello")
        assert peer.data_to_send() == UNMASKED_PING

    def test_masked_pong(self, fixed_mask: bytes) -> None:
        peer = client()
        peer.send_pong(b"Hello")
        assert peer.data_to_send() == MASKED_PONG

    @pytest.mark.parametrize(("size", "header"), [(256, BINARY_256), (65536, BINARY_64K)])
    def test_extended_lengths(self, size: int, header: bytes) -> None:
        peer = server()
        peer.send_binary(bytes(size))
        assert peer.data_to_send() == header + bytes(size)

    @pytest.mark.parametrize(("size", "header_length"), [(125, 2), (126, 4), (65535, 4), (65536, 10)])
    def test_length_boundaries(self, size: int, header_length: int) -> None:
        frame = build_frame(0x2, bytes(size))
        assert len(frame) == header_length + size
        assert client().receive_data(frame) == [bytes(size)]


def test_apply_mask_matches_the_byte_loop() -> None:
    data = bytes(range(251)) * 3
    assert apply_mask(data, KEY) == bytes(b ^ KEY[i % 4] for i, b in enumerate(data))
    assert apply_mask(apply_mask(data, KEY), KEY) == data
    assert apply_mask(b"", KEY) == b""
    assert apply_mask(memoryview(b"Hello"), KEY) == bytes.fromhex("7f9f4d5158")


# -- round trips ---------------------------------------------------------------------------

messages = st.lists(
    st.one_of(st.text(max_size=300), st.binary(max_size=300)),
    min_size=1,
    max_size=8,
)


@settings(max_examples=150, deadline=None)
@given(
    messages=messages,
    fragment_size=st.integers(min_value=1, max_value=64),
    chunk=st.integers(min_value=1, max_value=97),
    to_server=st.booleans(),
    version=st.sampled_from(["13", "8", "7"]),
    pings=st.booleans(),
)
def test_round_trip(
    messages: list[str | bytes], fragment_size: int, chunk: int, to_server: bool, version: str, pings: bool
) -> None:
    """Whatever one side sends, fragmented or not, the other reads back, however it is cut."""
    sender = client(version) if to_server else server(version)
    receiver = server(version) if to_server else client(version)
    for message in messages:
        encoded = message.encode() if isinstance(message, str) else message
        parts = [encoded[i : i + fragment_size] for i in range(0, len(encoded), fragment_size)] or [b""]
        first, *rest = parts
        if isinstance(message, str):
            # Split at byte boundaries even inside a character: the receiver must cope.
            sender.send_text(first, fin=not rest)
        else:
            sender.send_binary(first, fin=not rest)
        for index, part in enumerate(rest):
            if pings:
                sender.send_ping(b"p")
            sender.send_continuation(part, fin=index == len(rest) - 1)
    wire = sender.data_to_send()
    received = []
    for start in range(0, len(wire), chunk):
        received += [e for e in receiver.receive_data(wire[start : start + chunk]) if not isinstance(e, Ping)]
    assert received == messages


# -- bad input -----------------------------------------------------------------------------


def failure(events: list[object]) -> ConnectionFailed:
    assert events, "no event: bad input was accepted silently"
    assert isinstance(events[-1], ConnectionFailed), events
    return events[-1]


def sent_close_code(peer: Connection) -> int:
    data = peer.data_to_send()
    reader = client() if peer.role is Role.SERVER else server()
    events = reader.receive_data(data)
    assert isinstance(events[-1], CloseReceived), events
    return events[-1].code


BAD_FRAMES = {
    "unmasked client frame": (raw_frame(0x81, b"Hi", mask=None), 1002),
    "rsv1 without extension": (raw_frame(0xC1, b"Hi"), 1002),
    "rsv2 without extension": (raw_frame(0xA1, b"Hi"), 1002),
    "rsv3 without extension": (raw_frame(0x91, b"Hi"), 1002),
    "reserved data opcode 3": (raw_frame(0x83, b"Hi"), 1002),
    "reserved control opcode 0xB": (raw_frame(0x8B, b"Hi"), 1002),
    "fragmented ping": (raw_frame(0x09, b"Hi"), 1002),
    "ping of 126 bytes": (raw_frame(0x89, bytes(126)), 1002),
    "close of 126 bytes": (raw_frame(0x88, b"\x03\xe8" + bytes(124)), 1002),
    "continuation with nothing to continue": (raw_frame(0x80, b"Hi"), 1002),
    "text inside a fragmented message": (raw_frame(0x01, b"Hi") + raw_frame(0x81, b"Hi"), 1002),
    "binary inside a fragmented message": (raw_frame(0x02, b"Hi") + raw_frame(0x82, b"Hi"), 1002),
    "16-bit length for 5 bytes": (raw_frame(0x81, b"Hello", length="16"), 1002),
    "64-bit length for 200 bytes": (raw_frame(0x82, bytes(200), length="64"), 1002),
    "64-bit length with top bit set": (b"\x82\xff" + b"\x80" + bytes(7) + KEY, 1002),
    "invalid UTF-8 text": (raw_frame(0x81, b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited"), 1007),
    "overlong UTF-8": (raw_frame(0x81, b"\xc0\xaf"), 1007),
    "truncated UTF-8 at message end": (raw_frame(0x81, b"ab\xe2\x82"), 1007),
    "truncated UTF-8 across fragments": (raw_frame(0x01, b"ab\xe2") + raw_frame(0x80, b"\x82"), 1007),
    "close body of one byte": (raw_frame(0x88, b"\x03"), 1002),
    "close code 999": (raw_frame(0x88, (999).to_bytes(2, "big")), 1002),
    "close code 1004 in version 13": (raw_frame(0x88, (1004).to_bytes(2, "big")), 1002),
    "close code 1005 sent": (raw_frame(0x88, (1005).to_bytes(2, "big")), 1002),
    "close code 1006 sent": (raw_frame(0x88, (1006).to_bytes(2, "big")), 1002),
    "close code 1015 sent": (raw_frame(0x88, (1015).to_bytes(2, "big")), 1002),
    "close code 2000": (raw_frame(0x88, (2000).to_bytes(2, "big")), 1002),
    "close code 5000": (raw_frame(0x88, (5000).to_bytes(2, "big")), 1002),
    "close reason not UTF-8": (raw_frame(0x88, b"\x03\xe8\xff"), 1007),
}


@pytest.mark.parametrize("name", list(BAD_FRAMES))
def test_bad_input_fails_with_the_right_code(name: str, feed_mode: str) -> None:
    data, code = BAD_FRAMES[name]
    peer = server()
    if feed_mode == "trailing":
        events = peer.receive_data(data + raw_frame(0x81, b"after"))
    else:
        events = feed(peer.receive_data, data, feed_mode)
    failed = failure(events)
    assert failed.code == code
    assert failed.reason
    assert peer.state is State.CLOSED
    assert sent_close_code(peer) == code
    assert peer.receive_data(raw_frame(0x81, b"ignored")) == []


def test_masked_server_frame_fails_the_client() -> None:
    peer = client()
    assert failure(peer.receive_data(raw_frame(0x81, b"Hi"))).code == 1002


def test_invalid_utf8_fails_at_the_first_bad_fragment() -> None:
    """Section 8.1: no need to wait for the end of the message."""
    peer = server()
    assert peer.receive_data(raw_frame(0x01, "κό".encode())) == []
    assert failure(peer.receive_data(raw_frame(0x00, b"\xff"))).code == 1007


@pytest.mark.parametrize("prefix", [b"\xed\xa0", b"\xf4\x90", b"\xf5", b"\xc1"])
def test_impossible_utf8_prefix_fails_before_the_message_ends(prefix: bytes) -> None:
    peer = server()
    assert failure(peer.receive_data(raw_frame(0x01, b"ok" + prefix))).code == 1007


def test_valid_utf8_split_inside_characters() -> None:
    text = "κόσμε 🎉"
    encoded = text.encode()
    peer = server()
    events = peer.receive_data(
        b"".join(raw_frame(0x00 if i else 0x01, encoded[i : i + 1]) for i in range(len(encoded)))
    )
    assert events == [] and peer.receiving_fragmented
    assert peer.receive_data(raw_frame(0x80, b"")) == [text]


def test_control_frames_inside_a_fragmented_message(fixed_mask: bytes) -> None:
    peer = client()
    data = bytes.fromhex("010348656c") + UNMASKED_PING + bytes.fromhex("8a00") + bytes.fromhex("80026c6f")
    assert peer.receive_data(data) == [Ping(b"Hello"), Pong(b""), "Hello"]
    assert peer.data_to_send() == MASKED_PONG


class TestVersionDifferences:
    def test_version_8_and_7_accept_close_code_1004(self) -> None:
        for version in ("8", "7"):
            peer = server(version)
            assert peer.receive_data(raw_frame(0x88, (1004).to_bytes(2, "big"))) == [CloseReceived(1004, "")]

    def test_version_8_accepts_non_minimal_lengths(self) -> None:
        assert server("8").receive_data(raw_frame(0x81, b"Hello", length="16")) == ["Hello"]
        assert server("7").receive_data(raw_frame(0x82, b"x" * 200, length="64")) == [b"x" * 200]


class TestMessageSize:
    def test_oversized_frame_fails_from_its_header(self) -> None:
        peer = server(max_message_size=1000)
        header_only = raw_frame(0x82, bytes(1001))[:8]  # 2 + 2 length bytes + 4 key bytes
        assert failure(peer.receive_data(header_only)).code == 1009

    def test_oversized_fragmented_message(self) -> None:
        peer = server(max_message_size=1000)
        assert peer.receive_data(raw_frame(0x02, bytes(600))) == []
        assert failure(peer.receive_data(raw_frame(0x80, bytes(401))[:8])).code == 1009

    def test_exact_limit_is_accepted(self) -> None:
        peer = server(max_message_size=1000)
        assert peer.receive_data(raw_frame(0x02, bytes(500)) + raw_frame(0x80, bytes(500))) == [bytes(1000)]

    def test_no_limit(self) -> None:
        peer = client(max_message_size=None)
        assert peer.receive_data(build_frame(0x2, bytes(3 << 20))) == [bytes(3 << 20)]

    def test_default_limit_is_one_mebibyte(self) -> None:
        assert server().receive_data(raw_frame(0x82, bytes(1 << 20))) == [bytes(1 << 20)]
        assert failure(server().receive_data(raw_frame(0x82, bytes((1 << 20) + 1))[:14])).code == 1009


class TestClosingHandshake:
    def test_close_is_echoed(self) -> None:
        peer = server()
        assert peer.receive_data(raw_frame(0x88, b"\x03\xe8bye")) == [CloseReceived(1000, "bye")]
        assert peer.state is State.CLOSED
        assert peer.data_to_send() == b"\x88\x02\x03\xe8"

    def test_empty_close_reports_1005_and_is_echoed_empty(self) -> None:
        peer = server()
        assert peer.receive_data(raw_frame(0x88, b"")) == [CloseReceived(1005, "")]
        assert peer.data_to_send() == b"\x88\x00"

    def test_initiated_close_is_not_sent_twice(self) -> None:
        peer = server()
        peer.send_close(1001, "going away")
        assert peer.state is State.CLOSING
        assert peer.data_to_send() == b"\x88\x0c\x03\xe9going away"
        assert peer.receive_data(raw_frame(0x88, b"\x03\xe9")) == [CloseReceived(1001, "")]
        assert peer.state is State.CLOSED
        assert peer.data_to_send() == b""

    def test_no_pong_after_close_sent(self) -> None:
        peer = server()
        peer.send_close()
        peer.data_to_send()
        assert peer.receive_data(raw_frame(0x89, b"x")) == [Ping(b"x")]
        assert peer.data_to_send() == b""

    def test_frames_after_close_are_ignored(self) -> None:
        peer = server()
        events = peer.receive_data(raw_frame(0x88, b"\x03\xe8") + raw_frame(0x81, b"late"))
        assert events == [CloseReceived(1000, "")]
        assert peer.receive_data(raw_frame(0x81, b"later")) == []

    @pytest.mark.parametrize("code", [999, 1004, 1005, 1006, 1015, 2999, 5000])
    def test_codes_that_may_not_be_sent(self, code: int) -> None:
        with pytest.raises(ValueError, match="may not be sent"):
            server().send_close(code)

    def test_reason_limit(self) -> None:
        with pytest.raises(ValueError, match="123 bytes"):
            server().send_close(1000, "é" * 62)
        peer = server()
        peer.send_close(1000, "é" * 61 + "x")
        assert len(peer.data_to_send()) == 2 + 125

    def test_close_without_code(self) -> None:
        peer = client()
        peer.send_close(None)
        assert server().receive_data(peer.data_to_send()) == [CloseReceived(1005, "")]


class TestSendingRules:
    def test_nothing_after_close(self) -> None:
        peer = server()
        peer.send_close()
        for send in (lambda: peer.send_text("x"), lambda: peer.send_binary(b"x"), peer.send_ping):
            with pytest.raises(InvalidState):
                send()

    def test_fragment_order(self) -> None:
        peer = server()
        with pytest.raises(InvalidState):
            peer.send_continuation(b"x", fin=True)
        peer.send_text("a", fin=False)
        with pytest.raises(InvalidState):
            peer.send_text("b")
        peer.send_continuation(b"c", fin=True)
        assert client().receive_data(peer.data_to_send()) == ["ac"]

    def test_control_payload_limit(self) -> None:
        with pytest.raises(ValueError, match="125"):
            server().send_ping(bytes(126))

    def test_everything_queued_leaves_as_one_string(self) -> None:
        peer = server()
        for index in range(100):
            peer.send_text(str(index))
        data = peer.data_to_send()
        assert client().receive_data(data) == [str(i) for i in range(100)]
        assert peer.data_to_send() == b""


# -- what goes to the transport ------------------------------------------------------------


def test_a_large_payload_reaches_the_transport_uncopied() -> None:
    peer = server()
    payload = bytes(range(256)) * 1024
    peer.send_binary(b"small")
    peer.send_binary(payload)
    peer.send_text("tail")
    buffers = peer.buffers_to_send()
    assert len(buffers) == 3
    assert buffers[1] is payload  # the application's own bytes, not a copy in a frame
    assert b"".join(buffers) == build_frame(0x2, b"small") + build_frame(0x2, payload) + build_frame(0x1, b"tail")
    assert peer.buffers_to_send() == [] and peer.data_to_send() == b""


def test_data_to_send_joins_what_buffers_to_send_would_give() -> None:
    peer = server()
    payload = bytes(70000)
    peer.send_binary(payload)
    peer.send_binary(payload)
    assert peer.data_to_send() == build_frame(0x2, payload) * 2


def test_small_frames_share_one_buffer() -> None:
    peer = server()
    for index in range(5):
        peer.send_text(str(index))
    assert peer.buffers_to_send() == [b"".join(build_frame(0x1, str(index).encode()) for index in range(5))]


@pytest.mark.parametrize("version", ["13", "8", "7", "6", "5", "hybi-02", "hixie-76", "hixie-75"])
def test_frames_that_the_wire_changes_are_built_whole(version: str) -> None:
    """A client masks its payload, and the older framings have no separable header: their
    large frames are queued whole."""
    for peer in (client(version), server(version)) if version in ("13", "8", "7") else (server(version),):
        peer.send_text("x" * 70000)
        buffers = peer.buffers_to_send()
        separate = peer.role is Role.SERVER and version in ("13", "8", "7")
        assert len(buffers) == (2 if separate else 1)


# -- large frames arriving in pieces -------------------------------------------------------


def _in_pieces(peer: Connection, wire: bytes, size: int = 40000) -> list[list[object]]:
    return [peer.receive_data(wire[start : start + size]) for start in range(0, len(wire), size)]


@pytest.mark.parametrize("version", ["13", "6"])
@pytest.mark.parametrize("text", ["a" * 200_000, "κόσμε €" * 20_000 + "\U0001f600"])
def test_a_large_text_frame_in_pieces(version: str, text: str) -> None:
    peer = server(version)
    wire = raw_frame(0x81, text.encode()) if version == "13" else _hybi06_frame(4, text.encode())
    events = [event for batch in _in_pieces(peer, wire, 4099) for event in batch]
    assert events == [text]


@pytest.mark.parametrize("version", ["13", "6"])
def test_invalid_utf8_in_a_large_frame_fails_before_the_frame_ends(version: str) -> None:
    payload = bytearray(b"a" * 200_000)
    payload[70_000:70_003] = b"\xed\xa0\x80"  # a surrogate
    peer = server(version)
    wire = raw_frame(0x81, bytes(payload)) if version == "13" else _hybi06_frame(4, bytes(payload))
    batches = _in_pieces(peer, wire)
    failed = [index for index, batch in enumerate(batches) if any(isinstance(e, ConnectionFailed) for e in batch)]
    assert failed == [1]  # the piece holding byte 70,000, long before the last of 5
    assert next(e for e in batches[1] if isinstance(e, ConnectionFailed)).code == 1007


def test_a_large_binary_frame_over_the_limit_fails_from_its_header() -> None:
    peer = server(max_message_size=100_000)
    events = peer.receive_data(raw_frame(0x82, bytes(200_000))[:20])
    assert [type(event) for event in events] == [ConnectionFailed]
    assert events[0].code == 1009  # type: ignore[union-attr]


def _hybi06_frame(opcode: int, payload: bytes) -> bytes:
    from hybi.sansio.framing.interim import build_interim_frame

    return build_interim_frame(opcode, payload, more_bit=False, key=KEY)
