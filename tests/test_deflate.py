"""permessage-deflate (RFC 7692) and deflate-frame: bytes, negotiation, limits.

The vectors are RFC 7692 section 7.2.3's and those of shared/specs/compression.md.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zlib
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import feed, raw_frame
from hybi.exceptions import InvalidHandshake
from hybi.sansio import DIALECTS, ClientConnection, ConnectionFailed, Options, Role, ServerConnection, State, deflate
from hybi.sansio.connection import Connection, open_connection
from hybi.sansio.deflate import (
    Compression,
    DeflateFrame,
    PerMessageDeflate,
    PerMessageDeflateClient,
    PerMessageDeflateServer,
    client_factories,
    server_factories,
)
from hybi.sansio.extensions import ExtensionParameters, parse_extensions
from hybi.sansio.http import Headers

KEY = bytes.fromhex("37fa213d")
HELLO = bytes.fromhex("c107f248cdc9c90700")


def pmd(role: Role = Role.CLIENT, max_size: int | None = 1 << 20, **options: int | bool) -> Connection:
    """A connection of version 13 with permessage-deflate as negotiated by `options`."""
    return open_connection(DIALECTS["13"], role, Options(max_size=max_size), extensions=[PerMessageDeflate(**options)])  # type: ignore[arg-type]


def frame(role: Role, hex_frame: str) -> bytes:
    """A server's frame as is; for a client, masked with the section 5.7 key."""
    data = bytes.fromhex(hex_frame)
    if role is Role.CLIENT:
        return data
    return raw_frame(data[0], data[2:], mask=KEY)


class TestVectors:
    def test_hello(self, feed_mode: str) -> None:
        assert feed(pmd().receive_data, HELLO, feed_mode) == ["Hello"]

    def test_hello_sent(self) -> None:
        server = pmd(Role.SERVER)
        server.send_text("Hello")
        assert server.data_to_send() == HELLO

    def test_hello_masked(self, fixed_mask: bytes) -> None:
        client = pmd(Role.CLIENT)
        client.send_text("Hello")
        assert client.data_to_send() == bytes.fromhex("c18737fa213dc5b2ecf4fefd21")
        assert pmd(Role.SERVER).receive_data(bytes.fromhex("c18737fa213dc5b2ecf4fefd21")) == ["Hello"]

    def test_second_hello_with_and_without_context_takeover(self) -> None:
        server = pmd(Role.SERVER)
        server.send_text("Hello")
        server.send_text("Hello")
        assert server.data_to_send() == HELLO + bytes.fromhex("c105f200110000")
        resetting = pmd(Role.SERVER, deflate_reset=True)
        resetting.send_text("Hello")
        resetting.send_text("Hello")
        assert resetting.data_to_send() == HELLO + HELLO  # two equal messages, equal bytes

    @pytest.mark.parametrize(
        "wire",
        [
            "4103f248cd" + "8004c9c90700",  # "Hello" in two frames
            "c10b000500faff48656c6c6f00",  # a stored block (level 0)
            "c108f348cdc9c9070000",  # a block with BFINAL set
            "c10df248050000 00ffffcac9c90700".replace(" ", ""),  # "He" sync-flushed, then "llo"
        ],
    )
    def test_rfc_examples_then_another_message(self, wire: str) -> None:
        client = pmd()
        assert client.receive_data(bytes.fromhex(wire)) == ["Hello"]
        other = pmd(Role.SERVER)
        other.send_text("Hello")
        assert client.receive_data(other.data_to_send()) == ["Hello"]

    def test_takeover_after_a_final_block(self) -> None:
        client = pmd()
        assert client.receive_data(bytes.fromhex("c108f348cdc9c9070000")) == ["Hello"]
        assert client.receive_data(bytes.fromhex("c105f200110000")) == ["Hello"]  # reaches back into "Hello"

    def test_empty_message(self) -> None:
        server = pmd(Role.SERVER)
        server.send_text("")
        server.send_text("after")
        wire = server.data_to_send()
        assert wire.startswith(bytes.fromhex("c10100"))
        assert pmd().receive_data(wire) == ["", "after"]

    def test_streamed_fragments(self) -> None:
        server = pmd(Role.SERVER)
        server.send_text("He", fin=False)
        server.send_continuation(b"", fin=False)
        server.send_continuation(b"llo", fin=True)
        server.send_binary(b"")
        server.send_text("next")
        wire = server.data_to_send()
        assert wire[0] == 0x41 and wire[2 + wire[1]] == 0x00  # RSV1 on the first frame only
        assert pmd().receive_data(wire) == ["Hello", b"", "next"]

    def test_deflate_frame_chrome_20_vector(self) -> None:
        server = open_connection(DIALECTS["13"], Role.SERVER, extensions=[DeflateFrame("x-webkit-deflate-frame")])
        wire = bytes.fromhex("c1877b1971db8951bc12b21e71") + bytes.fromhex(
            "c18759edc8f45324 80d913e8c8".replace(" ", "")
        )
        assert server.receive_data(wire) == ["Hello", "There"]

    def test_deflate_frame_compresses_every_frame(self) -> None:
        sender = open_connection(DIALECTS["8"], Role.SERVER, extensions=[DeflateFrame("deflate-frame")])
        sender.send_text("Hello, ", fin=False)
        sender.send_continuation(b"world", fin=True)
        wire = sender.data_to_send()
        assert wire[0] == 0x41 and wire[2 + wire[1]] == 0xC0  # RSV1 on the continuation too
        receiver = open_connection(DIALECTS["8"], Role.CLIENT, extensions=[DeflateFrame("deflate-frame")])
        assert receiver.receive_data(wire) == ["Hello, world"]


class TestBadInput:
    @pytest.mark.parametrize(
        ("wire", "code"),
        [
            (raw_frame(0x01, b"He") + raw_frame(0xC0, b"llo"), 1002),  # RSV1 on a continuation
            (raw_frame(0xC9, b""), 1002),  # RSV1 on a ping
            (raw_frame(0xC1, b"\xff\xff"), 1007),  # not DEFLATE data
            (raw_frame(0xA1, b"x"), 1002),  # RSV2: nobody claimed it
        ],
    )
    def test_codes(self, wire: bytes, code: int) -> None:
        events = pmd(Role.SERVER).receive_data(wire)
        assert isinstance(events[-1], ConnectionFailed) and events[-1].code == code, events

    def test_invalid_utf8_after_inflating(self) -> None:
        deflater = zlib.compressobj(6, zlib.DEFLATED, -15)
        body = (deflater.compress(b"\xc3\x28") + deflater.flush(zlib.Z_SYNC_FLUSH))[:-4]
        events = pmd(Role.SERVER).receive_data(raw_frame(0xC1, body))
        assert isinstance(events[-1], ConnectionFailed) and events[-1].code == 1007

    def test_ping_inside_a_compressed_message(self) -> None:
        server = pmd(Role.SERVER)
        server.send_text("He", fin=False)
        first = server.data_to_send()
        server.send_continuation(b"llo", fin=True)
        last = server.data_to_send()
        client = pmd()
        assert client.receive_data(first + bytes.fromhex("8900") + last)[1:] == ["Hello"]

    @pytest.mark.parametrize("fragments", [1, 1000])
    def test_decompression_bomb(self, fragments: int) -> None:
        deflater = zlib.compressobj(9, zlib.DEFLATED, -15)
        body = (deflater.compress(bytes(10_000_000)) + deflater.flush(zlib.Z_SYNC_FLUSH))[:-4]
        size = -(-len(body) // fragments)
        pieces = [body[i : i + size] for i in range(0, len(body), size)]
        wire = b"".join(
            raw_frame((0x80 if i == len(pieces) - 1 else 0) | (0x42 if i == 0 else 0), piece, mask=None)
            for i, piece in enumerate(pieces)
        )
        client = pmd(max_size=1 << 20)
        events = client.receive_data(wire)
        assert isinstance(events[-1], ConnectionFailed) and events[-1].code == 1009
        assert client._assembler is not None and sum(map(len, client._assembler._parts)) <= 1 << 20

    def test_opt_out_keeps_both_windows_in_step(self) -> None:
        """The ws#983 pattern: compressed, plain, compressed, under context takeover."""
        server = pmd(Role.SERVER)
        server.send_text("Hello")
        server.send_text("Hello", compress=False)
        server.send_text("Hello")
        wire = server.data_to_send()
        assert wire[len(HELLO)] == 0x81  # the second went out as it is
        assert pmd().receive_data(wire) == ["Hello"] * 3

    def test_threshold(self) -> None:
        server = pmd(Role.SERVER, threshold=10)
        server.send_text("short")
        server.send_text("long enough to be compressed")
        wire = server.data_to_send()
        assert wire[0] == 0x81 and wire[7] == 0xC1
        assert pmd().receive_data(wire) == ["short", "long enough to be compressed"]


@settings(max_examples=60, deadline=None)
@given(
    messages=st.lists(st.one_of(st.text(max_size=400), st.binary(max_size=400)), min_size=1, max_size=6),
    window=st.integers(8, 15),
    reset=st.booleans(),
    level=st.integers(0, 9),
    mem_level=st.integers(1, 9),
    chunk=st.integers(1, 50),
    fragment=st.integers(1, 100),
    fast=st.booleans(),
)
def test_round_trip(
    messages: list[str | bytes],
    window: int,
    reset: bool,
    level: int,
    mem_level: int,
    chunk: int,
    fragment: int,
    fast: bool,
) -> None:
    """Levels 1 to 3 deflate with ISA-L where it is installed (`fast`), or with zlib."""
    with mock.patch.object(deflate, "FAST_DEFLATE", fast and deflate.FAST_DEFLATE):
        sender = pmd(Role.CLIENT, deflate_bits=window, deflate_reset=reset, level=level, mem_level=mem_level)
        round_trip(sender, messages, window, reset, chunk, fragment)


def round_trip(
    sender: Connection, messages: list[str | bytes], window: int, reset: bool, chunk: int, fragment: int
) -> None:
    receiver = pmd(Role.SERVER, inflate_bits=window, inflate_reset=reset)
    for message in messages:
        data = message.encode() if isinstance(message, str) else message
        parts = [data[i : i + fragment] for i in range(0, len(data), fragment)] or [b""]
        send = sender.send_text if isinstance(message, str) else sender.send_binary
        send(parts[0], fin=len(parts) == 1)
        for index, part in enumerate(parts[1:], 2):
            sender.send_continuation(part, fin=index == len(parts))
    wire = sender.data_to_send()
    received = []
    for start in range(0, len(wire), chunk):
        received += receiver.receive_data(wire[start : start + chunk])
    assert received == messages


def test_the_speed_preset_deflates_with_isa_l_where_it_is_installed() -> None:
    """The `speed` extra brings python-isal: the speed preset (level 1) then deflates with it,
    and what it sends inflates with zlib's own inflater, message after message (the context
    taken over), in every window a peer may ask for."""
    isal_zlib = pytest.importorskip("isal.isal_zlib")
    if os.environ.get("HYBI_DEFLATE") == "zlib":
        pytest.skip("HYBI_DEFLATE=zlib keeps zlib")
    assert deflate.FAST_DEFLATE
    text = " ".join(f"word{n % 97}" for n in range(20000)).encode()
    for window in (9, 10, 12, 15):
        sender = pmd(Role.SERVER, deflate_bits=window, level=1)
        inflater = zlib.decompressobj(-window)
        for size in (0, 10, 0, 70000, 100000):
            sender.send_binary(text[:size])
            wire = sender.data_to_send()
            deflater = sender.extensions[0]._deflater._zlib  # type: ignore[attr-defined]
            assert type(deflater).__module__.startswith("isal") or (deflater is None and not size)
            if not size:
                assert wire[2:] == b"\x00"  # an empty message: the empty stored block Netty expects
            header = 2 if len(wire) - 2 < 126 else 4 if len(wire) - 4 < 65536 else 10
            assert inflater.decompress(wire[header:] + b"\x00\x00\xff\xff") == text[:size]
    assert isal_zlib is not None


def test_hybi_deflate_zlib_keeps_zlib() -> None:
    code = "from hybi.sansio import deflate; print(deflate.FAST_DEFLATE)"
    env = {**os.environ, "HYBI_DEFLATE": "zlib"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


# -- negotiation -----------------------------------------------------------------------------


def negotiate(offer: str, compression: Compression | None = None) -> tuple[bytes, ServerConnection]:
    server = ServerConnection("13", extensions=server_factories(compression or Compression()))
    request = (
        "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        f"Sec-WebSocket-Extensions: {offer}\r\n\r\n"
    )
    server.receive_data(request.encode())
    server.accept()
    return server.data_to_send(), server


def answer(written: bytes) -> str | None:
    for line in written.split(b"\r\n"):
        if line.startswith(b"Sec-WebSocket-Extensions: "):
            return line.split(b": ", 1)[1].decode()
    return None


class TestServerNegotiation:
    @pytest.mark.parametrize(
        ("offer", "expected"),
        [
            ("permessage-deflate", "permessage-deflate; server_max_window_bits=12"),
            (
                "permessage-deflate; client_max_window_bits",
                "permessage-deflate; server_max_window_bits=12; client_max_window_bits=12",
            ),
            (
                "permessage-deflate; client_max_window_bits=10",
                "permessage-deflate; server_max_window_bits=12; client_max_window_bits=10",
            ),
            ('permessage-deflate; server_max_window_bits="10"', "permessage-deflate; server_max_window_bits=10"),
            (
                "permessage-deflate; server_no_context_takeover",
                "permessage-deflate; server_no_context_takeover; server_max_window_bits=12",
            ),
            ("x-webkit-deflate-frame", "x-webkit-deflate-frame"),
            ("deflate-frame, permessage-deflate", "permessage-deflate; server_max_window_bits=12"),
            ("deflate-stream", None),
            ("permessage-compress; method=deflate", None),
        ],
    )
    def test_answers(self, offer: str, expected: str | None) -> None:
        written, server = negotiate(offer)
        assert written.startswith(b"HTTP/1.1 101 ")
        assert answer(written) == expected
        assert server.state is State.OPEN

    @pytest.mark.parametrize(
        "offer",
        [
            "permessage-deflate; foo=1",
            "permessage-deflate; client_max_window_bits=12; client_max_window_bits=12",
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; server_max_window_bits=7",
            "permessage-deflate; server_max_window_bits=08",
            "permessage-deflate; server_no_context_takeover=1",
        ],
    )
    def test_declined_but_still_101(self, offer: str) -> None:
        written, server = negotiate(offer)
        assert written.startswith(b"HTTP/1.1 101 ") and answer(written) is None
        assert server.extensions == ()

    def test_second_offer_when_the_first_is_declined(self) -> None:
        written, _ = negotiate("permessage-deflate; server_max_window_bits=16, permessage-deflate")
        assert answer(written) == "permessage-deflate; server_max_window_bits=12"

    def test_malformed_header_is_400(self) -> None:
        written, _ = negotiate('permessage-deflate; server_max_window_bits="1 0"')
        assert written.startswith(b"HTTP/1.1 400 ")

    def test_off(self) -> None:
        server = ServerConnection("13", extensions=server_factories(None))
        assert server.handshake.extension_factories == ()

    def test_window_8_inflates_with_8_and_deflates_with_9(self) -> None:
        written, server = negotiate("permessage-deflate; server_max_window_bits=8; client_max_window_bits=8")
        assert answer(written) == "permessage-deflate; server_max_window_bits=8; client_max_window_bits=8"
        extension = server.extensions[0]
        assert isinstance(extension, PerMessageDeflate) and extension.inflate_bits == 8
        receiver = pmd(Role.CLIENT, inflate_bits=8)
        for index in range(300):
            server.send_text(f"message {index} " + "abcdefgh" * (index % 40))
            assert receiver.receive_data(server.data_to_send()) == [f"message {index} " + "abcdefgh" * (index % 40)]


class TestClientNegotiation:
    def client(self, compression: Compression | None = None) -> PerMessageDeflateClient:
        return PerMessageDeflateClient(compression or Compression(peer_window_bits=None))

    def test_default_offer(self) -> None:
        client = ClientConnection(DIALECTS["13"], "/", "h", extensions=client_factories("balanced"))
        assert b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n" in client.data_to_send()

    @pytest.mark.parametrize(
        "parameters",
        [
            [("client_max_window_bits", None)],  # a bare value in an answer
            [("foo", "1")],
            [("server_max_window_bits", "16")],
            [("server_max_window_bits", "9"), ("server_max_window_bits", "9")],
        ],
    )
    def test_bad_answers(self, parameters: ExtensionParameters) -> None:
        with pytest.raises(InvalidHandshake):
            self.client().accept(parameters)

    def test_what_was_asked_must_be_answered(self) -> None:
        asking = self.client(Compression(peer_window_bits=10, peer_no_context_takeover=True))
        with pytest.raises(InvalidHandshake, match="server_no_context_takeover"):
            asking.accept([("server_max_window_bits", "10")])
        with pytest.raises(InvalidHandshake, match="server_max_window_bits"):
            asking.accept([("server_no_context_takeover", None), ("server_max_window_bits", "11")])
        extension = asking.accept([("server_no_context_takeover", None), ("server_max_window_bits", "9")])
        assert extension.inflate_bits == 9

    def test_unrequested_parameters_are_accepted(self) -> None:
        extension = self.client().accept(
            [
                ("server_no_context_takeover", None),
                ("client_no_context_takeover", None),
                ("server_max_window_bits", "10"),
            ]
        )
        assert extension.inflate_bits == 10

    def test_two_elements_fail_the_handshake(self) -> None:
        client = ClientConnection(DIALECTS["13"], "/", "h", extensions=client_factories("balanced"))
        server = ServerConnection("13", extensions=server_factories("balanced"))
        server.receive_data(client.data_to_send())
        server.accept()
        written = server.data_to_send().replace(
            b"Sec-WebSocket-Extensions: permessage-deflate",
            b"Sec-WebSocket-Extensions: permessage-deflate, permessage-deflate",
        )
        events = client.receive_data(written)
        assert client.state is State.REJECTED, events

    @pytest.mark.parametrize("preset", ["balanced", "memory", "speed", "ratio"])
    def test_presets_agree_with_themselves(self, preset: str) -> None:
        client = ClientConnection(DIALECTS["13"], "/", "h", extensions=client_factories(preset))  # type: ignore[arg-type]
        server = ServerConnection("13", extensions=server_factories(preset))  # type: ignore[arg-type]
        server.receive_data(client.data_to_send())
        server.accept()
        client.receive_data(server.data_to_send())
        assert client.state is server.state is State.OPEN and len(client.extensions) == 1
        text = os.urandom(3000).hex()
        client.send_text(text)
        assert server.receive_data(client.data_to_send()) == [text]
        server.send_text(text)
        assert client.receive_data(server.data_to_send()) == [text]


def test_extension_header_parsing() -> None:
    headers = Headers([("Sec-WebSocket-Extensions", "a; x=1"), ("Sec-WebSocket-Extensions", ' b ; y = "2" ; z')])
    assert parse_extensions(headers) == [("a", [("x", "1")]), ("b", [("y", "2"), ("z", None)])]


def test_server_side_pmd_factory_rejects_nothing_it_cannot_parse() -> None:
    assert PerMessageDeflateServer(Compression()).accept([[("foo", None)]]) is None
