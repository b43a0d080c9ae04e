"""What the compression interop tests send, and a probe of what hybi's own compression
extension did with every data frame it sent and received.

The peers' scripts (interop/node/peer.js, interop/java/NettyPeer.java) build the same
messages: text and binary of the SIZES of peers.py, which compress well, and pseudo-random
`noise_of` bytes, which do not: their compressed payload is a few bytes longer than the
message, so the frames on the wire fall on both sides of the 125/126 and 65535/65536 length
boundaries too, not only the messages.
"""

from __future__ import annotations

import functools
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from tests.interop.peers import SIZES, bytes_of, text_of

import hybi
from hybi.sansio import deflate

NOISE_SIZES = (1, 120, 125, 126, 65500, 65535, 65536, 300_000)

STREAM_LENGTH = 3000
"""Messages in a context-takeover stream: every one after the first refers back into the
window that the ones before it built."""

RSV1 = 0x40


@functools.cache
def noise_of(size: int) -> bytes:
    """`size` bytes that DEFLATE cannot shrink: the top byte of a 32-bit linear congruential
    generator seeded with `size` (peer.js and NettyPeer.java compute the same bytes)."""
    state = size or 1
    out = bytearray(size)
    for index in range(size):
        state = (state * 1103515245 + 12345) & 0xFFFFFFFF
        out[index] = state >> 24
    return bytes(out)


def messages() -> list[hybi.Data]:
    """Text and binary across the length boundaries, then incompressible binary."""
    plan: list[hybi.Data] = []
    for size in SIZES:
        plan += [text_of(size), bytes_of(size)]
    plan += [noise_of(size) for size in NOISE_SIZES]
    return plan


def fragments(message: hybi.Data) -> list[hybi.Data]:
    """`message` cut in three (at characters for text), as peer.js cuts its own: the last
    pieces are empty for messages of fewer than three characters or bytes, and for others
    whose length does not divide well."""
    step = max(1, -(-len(message) // 3))
    return [message[start : start + step] for start in range(0, 3 * step, step)]


def nonempty_fragments(message: hybi.Data) -> list[hybi.Data] | hybi.Data:
    """`message` cut in three non-empty pieces, as NettyPeer.java cuts its own; shorter
    messages whole."""
    if len(message) < 3:
        return message
    step = len(message) // 3
    return [message[:step], message[step : 2 * step], message[2 * step :]]


_WORDS = ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf")


def stream_message(index: int) -> hybi.Data:
    """The `index`-th message of a stream: mostly words seen before, every third one binary
    (peer.js builds the same ones)."""
    text = f"{index} " + " ".join(_WORDS[(index + k) % len(_WORDS)] * (1 + (index + k) % 5) for k in range(12))
    return text.encode() if index % 3 == 2 else text


# -- the probe ----------------------------------------------------------------------------


@dataclass
class Frames:
    """What one connection's compression extension saw: (opcode, RSV1, payload length on
    the wire) for every data frame, continuations included."""

    received: list[tuple[int, bool, int]] = field(default_factory=list)
    sent: list[tuple[int, bool, int]] = field(default_factory=list)

    @staticmethod
    def _starts(frames: Sequence[tuple[int, bool, int]]) -> list[bool]:
        return [rsv1 for opcode, rsv1, _ in frames if opcode]

    @property
    def received_messages(self) -> list[bool]:
        """For every message received, whether its first frame had RSV1 (permessage-deflate)."""
        return self._starts(self.received)

    @property
    def sent_messages(self) -> list[bool]:
        return self._starts(self.sent)

    def sent_lengths(self) -> set[int]:
        return {length for _, rsv1, length in self.sent if rsv1}


def install_probe(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every permessage-deflate and deflate-frame extension created from now on record
    its data frames in `frames_of(connection)`, from the first one on (a server's frames may
    arrive before its handler runs)."""
    for cls in (deflate.PerMessageDeflate, deflate.DeflateFrame):
        monkeypatch.setattr(cls, "decode", _recording_decode(cls.decode))
        monkeypatch.setattr(cls, "encode", _recording_encode(cls.encode))


def _frames(extension: Any) -> Frames:
    frames: Frames = vars(extension).setdefault("_probe_frames", Frames())
    return frames


def _recording_decode(decode: Callable[..., tuple[int, int, bytes]]) -> Callable[..., tuple[int, int, bytes]]:
    def recording(self: Any, opcode: int, fin: bool, rsv: int, length: int, payload: bytes, *rest: bool) -> Any:
        if rest[0] and not opcode & 0x08:  # the first piece of a data frame
            _frames(self).received.append((opcode, bool(rsv & RSV1), length))
        return decode(self, opcode, fin, rsv, length, payload, *rest)

    return recording


def _recording_encode(encode: Callable[..., tuple[bytes, int]]) -> Callable[..., tuple[bytes, int]]:
    def recording(self: Any, opcode: int, payload: bytes, *rest: Any) -> tuple[bytes, int]:
        out, rsv = encode(self, opcode, payload, *rest)
        if not opcode & 0x08:
            _frames(self).sent.append((opcode, bool(rsv & RSV1), len(out)))
        return out, rsv

    return recording


def frames_of(ws: hybi.Connection) -> Frames:
    """The frames the connection's one compression extension saw (it must have one)."""
    assert len(ws.extensions) == 1, ws.extensions
    return _frames(ws.extensions[0])


def assert_all_compressed(frames: Frames, *, received: int, sent: int, per_frame: bool = False) -> None:
    """`received` and `sent` messages went through compression: RSV1 on every message's first
    frame (permessage-deflate), or on every data frame with a payload (deflate-frame, which
    leaves empty frames as they are)."""
    assert len(frames.received_messages) == received, frames.received_messages
    assert len(frames.sent_messages) == sent, frames.sent_messages
    if per_frame:
        assert all(rsv1 for _, rsv1, length in frames.received if length), frames.received
        assert all(rsv1 for _, rsv1, length in frames.sent if length), frames.sent
    else:
        assert all(frames.received_messages), frames.received_messages
        assert all(frames.sent_messages), frames.sent_messages
        assert not any(rsv1 for opcode, rsv1, _ in frames.received + frames.sent if not opcode)


def assert_crossed_boundaries(frames: Frames) -> None:
    """Compressed frames went out with lengths on both sides of 125/126 and 65535/65536."""
    lengths = frames.sent_lengths()
    assert min(lengths) <= 125 and any(126 <= n <= 65535 for n in lengths) and max(lengths) >= 65536, sorted(lengths)


def alone(message: hybi.Data) -> int:
    """The length of `message` compressed on its own (level 6, a 2**15 window), to compare
    with what a context-takeover stream puts on the wire for it."""
    data = message.encode() if isinstance(message, str) else message
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
    return len(compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)) - 4


def assert_taken_over(lengths: Sequence[int]) -> None:
    """The compressed lengths of a stream's messages show that its window was carried from
    message to message: together less than half of what the messages take compressed alone."""
    assert len(lengths) == STREAM_LENGTH, len(lengths)
    by_themselves = sum(alone(stream_message(index)) for index in range(STREAM_LENGTH))
    assert sum(lengths) < by_themselves / 2, (sum(lengths), by_themselves)
