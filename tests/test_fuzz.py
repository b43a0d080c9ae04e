"""A short fuzzing run of every dialect, both roles, and both handshakes (tests/fuzz/harness.py),
plus every input kept in tests/fuzz/corpus (seeds, and whatever a fuzzing run found)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import raw_frame
from fuzz.harness import TARGETS, VALID_REQUEST, drive, split_input
from hybi.sansio.framing.interim import build_interim_frame

CORPUS = Path(__file__).parent / "fuzz" / "corpus"

# Fragments of valid traffic for the mutations to start from.
PIECES = [
    raw_frame(0x81, b"Hello"),
    raw_frame(0x01, b"He"),
    raw_frame(0x80, b"llo"),
    raw_frame(0x00, b""),
    raw_frame(0x89, b"ping"),
    raw_frame(0x88, b"\x03\xe8bye"),
    raw_frame(0x81, b"Hello", mask=None),
    raw_frame(0x82, bytes(200), mask=None),
    build_interim_frame(0x4, b"Hello", more_bit=True),
    build_interim_frame(0x4, b"Hello", more_bit=False, key=b"\x37\xfa\x21\x3d"),
    b"\x00text\xff",
    b"\x80\x03abc",
    b"\xff\x00",
    VALID_REQUEST,
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
    b"HTTP/1.1 426 Upgrade Required\r\nSec-WebSocket-Version: 13, 8\r\nContent-Length: 3\r\n\r\nno\n",
]

streams = st.lists(st.one_of(st.sampled_from(PIECES), st.binary(max_size=40)), max_size=12).map(b"".join)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(target=st.sampled_from(TARGETS), data=streams, cuts=st.lists(st.integers(0, 2000), max_size=6))
def test_fuzz(target: str, data: bytes, cuts: list[int]) -> None:
    drive(target, data, cuts)


@pytest.mark.parametrize("path", sorted(CORPUS.glob("*")), ids=lambda path: path.name)
def test_corpus(path: Path) -> None:
    drive(*split_input(path.read_bytes()))


def test_corpus_is_there() -> None:
    assert len(list(CORPUS.glob("*"))) >= len(TARGETS)


# -- the one-call runs of whole messages against the frame-by-frame parser -----------------------

FRAMES_BY_VERSION = {
    "13": [
        *PIECES[:6],
        raw_frame(0x81, b"\xc3\x28"),
        raw_frame(0xC1, b"x"),
        raw_frame(0x82, bytes(300)),
        raw_frame(0x81, "é".encode() * 70),
    ],
    "6": [
        build_interim_frame(op, payload, more_bit=False, fin=fin, key=b"\x37\xfa\x21\x3d")
        for op, payload, fin in (
            (4, b"Hello", True),
            (5, bytes(130), True),
            (4, b"He", False),
            (0, b"llo", True),
            (2, b"ping", True),
            (4, b"\xc3\x28", True),
            (1, b"", True),
        )
    ],
    "hybi-02": [
        build_interim_frame(op, payload, more_bit=True, fin=fin)
        for op, payload, fin in (
            (4, b"Hello", True),
            (5, bytes(130), True),
            (4, b"He", False),
            (0, b"llo", True),
            (2, b"ping", True),
            (4, b"\xc3\x28", True),
        )
    ],
    "hixie-76": [
        b"\x00text\xff",
        b"\x00\xc3\x28\xff",
        b"\x80\x03abc",
        b"\x00" + "é".encode() * 30 + b"\xff",
        b"\xff\x00",
        b"\x01x\xff",
    ],
}


@pytest.mark.parametrize("version", list(FRAMES_BY_VERSION))
@given(data=st.data())
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_runs_of_whole_messages_change_nothing(
    version: str, data: st.DataObject, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same bytes, cut the same way, give the same events and the same bytes out (close
    codes included) with the one-call runs as with the frame-by-frame parser alone."""
    from hybi.sansio import DIALECTS, Options, open_connection
    from hybi.sansio.events import Role
    from hybi.sansio.framing import interim, rfc6455, sentinel

    stream = b"".join(data.draw(st.lists(st.sampled_from(FRAMES_BY_VERSION[version]), max_size=10)))
    cuts = sorted(set(data.draw(st.lists(st.integers(0, len(stream)), max_size=4))))
    max_size = data.draw(st.sampled_from([None, 100, 200]))

    def run() -> tuple[list[object], list[bytes]]:
        connection = open_connection(DIALECTS[version], Role.SERVER, Options(max_size=max_size))
        events: list[object] = []
        out: list[bytes] = []
        for start, stop in zip([0, *cuts], [*cuts, len(stream)], strict=True):
            events += connection.receive_data(stream[start:stop])
            out.append(connection.data_to_send())
        return events, out

    with_runs = run()
    with monkeypatch.context() as patched:
        for module in (rfc6455, interim, sentinel):
            patched.setattr(module, "MessageAssembler", type("NotTheAssembler", (), {}))
        frame_by_frame = run()
    assert with_runs == frame_by_frame
