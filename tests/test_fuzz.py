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
