"""The compiled accelerator and its pure-Python twin: the same answers, byte for byte.

Every test takes `impl`, once for `hybi.sansio._pure` and once for `hybi._speedups` (the
compiled one is skipped where it was not built, and required where HYBI_REQUIRE_ACCEL is
set, as `make test` does).
"""

from __future__ import annotations

import codecs
import contextlib
import itertools
import os
import random
import subprocess
import sys
from types import ModuleType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hybi.sansio import _accel, _pure

try:
    from hybi import _speedups
except ImportError:  # not built here
    _speedups = None  # type: ignore[assignment]

if os.environ.get("HYBI_REQUIRE_ACCEL") and _speedups is None:
    raise RuntimeError("HYBI_REQUIRE_ACCEL is set but hybi._speedups was not built")

IMPLS = [pytest.param(_pure, id="pure"), pytest.param(_speedups, id="compiled")]
KEY = b"\x37\xfa\x21\x3d"


@pytest.fixture(params=IMPLS)
def impl(request: pytest.FixtureRequest) -> ModuleType:
    if request.param is None:
        pytest.skip("hybi._speedups was not built")
    module: ModuleType = request.param
    return module


def byte_loop(data: bytes, key: bytes, offset: int = 0) -> bytes:
    """RFC 6455 section 5.3, literally: octet i XOR key[(i + offset) mod 4]."""
    return bytes(b ^ key[(i + offset) % 4] for i, b in enumerate(data))


# -- masking -------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
def test_mask_matches_the_byte_loop_for_every_short_length(impl: ModuleType, kind: type) -> None:
    source = bytes(random.Random(6455).randrange(256) for _ in range(310))
    for length in range(301):
        for offset in range(8):
            for start in (0, 1, 3):  # payloads that start at odd places in a read
                data = source[start : start + length]
                view = kind(data) if kind is not memoryview else memoryview(source)[start : start + length]
                assert impl.mask(view, KEY, offset) == byte_loop(data, KEY, offset), (length, offset, start)


def test_mask_defaults_to_offset_zero_and_is_its_own_inverse(impl: ModuleType) -> None:
    data = os.urandom(1000)
    assert impl.mask(data, KEY) == impl.mask(data, KEY, 0) == impl.mask(data, KEY, 4)
    assert impl.mask(impl.mask(data, KEY, 3), KEY, 3) == data
    assert impl.mask(b"", KEY) == b""
    assert impl.mask(memoryview(b"Hello"), KEY) == bytes.fromhex("7f9f4d5158")  # RFC 6455 section 5.7


@pytest.mark.parametrize("size", [1 << 20, (1 << 20) + 3, 3 * (1 << 20) + 7])
def test_large_masks_agree(size: int) -> None:
    if _speedups is None:
        pytest.skip("hybi._speedups was not built")
    data = os.urandom(size)
    for offset in (0, 1, 2, 3):
        assert _speedups.mask(data, KEY, offset) == _pure.mask(data, KEY, offset)
    view = memoryview(data)[5:]
    assert _speedups.mask(view, KEY, 1) == _pure.mask(view, KEY, 1)


@pytest.mark.parametrize("size", [8191, 8192, 8193, 16384 + 5, 65536 + 2])
def test_mask_around_the_chunk_size_matches_the_byte_loop(impl: ModuleType, size: int) -> None:
    data = os.urandom(size + 1)
    for offset in (0, 1, 3):
        assert impl.mask(memoryview(data)[1:], KEY, offset) == byte_loop(data[1:], KEY, offset)


def test_mask_does_not_touch_its_input(impl: ModuleType) -> None:
    data = bytearray(b"\x00" * 100)
    impl.mask(data, KEY)
    assert data == bytearray(100)


@pytest.mark.parametrize("key", [b"", b"abc", b"abcde"])
def test_mask_refuses_a_key_that_is_not_4_bytes(impl: ModuleType, key: bytes) -> None:
    with pytest.raises(ValueError, match="4 bytes"):
        impl.mask(b"data", key)


def test_mask_refuses_what_is_not_bytes(impl: ModuleType) -> None:
    with pytest.raises(TypeError):
        impl.mask("text", KEY)
    with pytest.raises(TypeError):
        impl.mask(b"data", KEY, "1")


def test_a_negative_or_huge_offset_counts_modulo_4(impl: ModuleType) -> None:
    data = bytes(range(50))
    assert impl.mask(data, KEY, -1) == byte_loop(data, KEY, 3)
    assert impl.mask(data, KEY, (1 << 40) + 2) == byte_loop(data, KEY, 2)


# -- client frames -------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65535, 65536, (1 << 20) + 1])
def test_masked_frame_layout(impl: ModuleType, size: int) -> None:
    payload = os.urandom(size)
    frame = impl.masked_frame(0x82, payload, KEY)
    if size < 126:
        header = bytes((0x82, 0x80 | size))
    elif size < 65536:
        header = bytes((0x82, 0xFE)) + size.to_bytes(2, "big")
    else:
        header = bytes((0x82, 0xFF)) + size.to_bytes(8, "big")
    assert frame[: len(header)] == header
    assert frame[len(header) : len(header) + 4] == KEY
    assert _pure.mask(frame[len(header) + 4 :], KEY) == payload


@given(first=st.integers(0, 255), payload=st.binary(max_size=300), key=st.binary(min_size=4, max_size=4))
def test_masked_frames_agree(first: int, payload: bytes, key: bytes) -> None:
    expected = _pure.masked_frame(first, payload, key)
    if _speedups is not None:
        assert _speedups.masked_frame(first, payload, key) == expected
        assert _speedups.masked_frame(first, bytearray(payload), key) == expected


@pytest.mark.parametrize("first", [-1, 256])
def test_masked_frame_refuses_a_first_byte_out_of_range(impl: ModuleType, first: int) -> None:
    with pytest.raises(ValueError):
        impl.masked_frame(first, b"", KEY)


# -- UTF-8 ---------------------------------------------------------------------------------


def is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def feed(impl: ModuleType, pieces: list[bytes]) -> list[int]:
    """The state after each piece, stopping at the first -1."""
    states = []
    state = 0
    for piece in pieces:
        state = impl.utf8_check(piece, state)
        states.append(state)
        if state < 0:
            break
    return states


@pytest.mark.parametrize(
    ("data", "bad_at"),
    [
        (b"\xc0\x80", 0),  # overlong NUL
        (b"\xc1\xbf", 0),  # overlong
        (b"\xe0\x80\x80", 1),  # overlong 3-byte form
        (b"\xe0\x9f\xbf", 1),
        (b"\xf0\x80\x80\x80", 1),  # overlong 4-byte form
        (b"\xf0\x8f\xbf\xbf", 1),
        (b"\xed\xa0\x80", 1),  # surrogate U+D800
        (b"\xed\xbf\xbf", 1),  # surrogate U+DFFF
        (b"\xf4\x90\x80\x80", 1),  # above U+10FFFF
        (b"\xf5\x80\x80\x80", 0),
        (b"\xff", 0),
        (b"\x80", 0),  # a lone continuation byte
        (b"a\xc3(", 2),
        (b"\xe2\x82(", 2),
        (b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited", 12),  # Autobahn 6.4.x style
    ],
)
def test_invalid_utf8_fails_at_the_first_byte_that_shows_it(impl: ModuleType, data: bytes, bad_at: int) -> None:
    assert impl.utf8_check(data) == -1
    assert impl.utf8_check(data[:bad_at]) != -1  # everything before it could still be valid
    assert feed(impl, [data[i : i + 1] for i in range(len(data))])[-1] == -1
    assert len(feed(impl, [data[i : i + 1] for i in range(len(data))])) == bad_at + 1


@pytest.mark.parametrize(
    "text", ["", "plain ASCII " * 20, "κόσμε", "€uro", "\U0001f600 grin", "\ud7ff\ue000\U0010ffff", "é" * 300]
)
def test_valid_utf8_split_anywhere(impl: ModuleType, text: str) -> None:
    data = text.encode()
    assert impl.utf8_check(data) == 0
    for cut in range(len(data) + 1):
        states = feed(impl, [data[:cut], data[cut:]])
        assert states[-1] == 0, cut
        assert states[0] >= 0
        assert (states[0] == 0) == is_utf8(data[:cut])
    assert feed(impl, [data[i : i + 1] for i in range(len(data))] or [b""])[-1] == 0


def test_utf8_check_refuses_a_state_it_did_not_make(impl: ModuleType) -> None:
    for state in (-1, 4, 1 << 24):
        with pytest.raises(ValueError):
            impl.utf8_check(b"", state)


@given(st.binary(max_size=64), st.lists(st.integers(0, 64), max_size=4))
def test_utf8_check_agrees_with_python_s_decoder(data: bytes, cuts: list[int]) -> None:
    bounds = sorted({0, len(data), *(min(cut, len(data)) for cut in cuts)})
    pieces = [data[a:b] for a, b in itertools.pairwise(bounds)] or [b""]
    pure = feed(_pure, pieces)
    assert (pure[-1] == 0) == is_utf8(data)
    if _speedups is not None:
        assert feed(_speedups, pieces) == pure
        assert _speedups.utf8_check(data) == _pure.utf8_check(data)


@given(st.text(max_size=40), st.binary(max_size=6), st.integers(0, 50))
def test_utf8_check_agrees_around_a_bad_tail(text: str, tail: bytes, cut: int) -> None:
    """Mostly valid text with arbitrary bytes after it: where the two disagree, it is here."""
    data = text.encode() + tail
    cut = min(cut, len(data))
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        decoder.decode(data, final=True)
        valid = True
    except UnicodeDecodeError:
        valid = False
    for module in (_pure, _speedups):
        if module is None:
            continue
        states = feed(module, [data[:cut], data[cut:]])
        assert (states[-1] == 0) == valid


# -- the switch ----------------------------------------------------------------------------


def test_the_switch_is_read_at_import() -> None:
    code = "from hybi.sansio import _accel; print(_accel.COMPILED, _accel.mask.__module__)"

    def run(switch: str) -> list[str]:
        env = {**os.environ, "HYBI_PURE_PYTHON": switch}
        done = subprocess.run(
            [sys.executable, "-c", code], check=False, env=env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.split()

    assert run("1") == ["False", "hybi.sansio._pure"]
    assert run("0")[0] == str(_speedups is not None)


def test_this_process_runs_the_path_it_was_asked_for() -> None:
    expected = _speedups is not None and not _accel.FORCED_PURE
    assert _accel.COMPILED is expected
    assert _accel.mask is (_speedups.mask if _accel.COMPILED else _pure.mask)  # type: ignore[union-attr]


# -- robustness ----------------------------------------------------------------------------


def test_no_references_or_memory_are_leaked() -> None:
    if _speedups is None:
        pytest.skip("hybi._speedups was not built")
    data = bytearray(os.urandom(1 << 16))
    key = bytes(KEY)
    run_of_frames = (
        raw_frame(0x81, "é".encode() * 1500, KEY) + raw_frame(0x82, b"x" * 100, KEY) + raw_frame(0x81, b"\xff", KEY)
    )
    before = (sys.getrefcount(data), sys.getrefcount(key))
    for _ in range(2000):
        _speedups.mask(data, key, 1)
        _speedups.masked_frame(0x82, data, key)
        _speedups.utf8_check(data, 0)
        _speedups.whole_messages(run_of_frames, 0, True, None)
        _speedups.whole_messages(run_of_frames, 0, True, 3)
        with pytest.raises(ValueError):
            _speedups.mask(data, b"abc")
    assert (sys.getrefcount(data), sys.getrefcount(key)) == before
    data[0] = 1  # no buffer is left exported (a bytearray with one refuses to change size)
    data.append(0)

    def rss() -> int:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    if not os.path.exists("/proc/self/statm"):
        return
    big = os.urandom(1 << 20)
    for _ in range(20):
        _speedups.mask(big, key)
    start = rss()
    for _ in range(300):  # 300 MiB through each function: a leak of the result would show
        _speedups.mask(big, key, 3)
        _speedups.masked_frame(0x82, big, key)
        builder = _speedups.PayloadBuilder(len(big), True)
        builder.add(big, key)
        builder.take()
        _speedups.PayloadBuilder(len(big)).add(big[:1000])  # dropped unfinished
        _speedups.whole_messages(run_of_frames * 20, 0, True, None)
    assert rss() - start < 32 << 20


@given(st.binary(max_size=200), st.binary(max_size=8), st.integers(-(1 << 70), 1 << 70))
@settings(max_examples=300)
def test_hostile_arguments_raise_and_never_crash(data: bytes, key: bytes, number: int) -> None:
    for module in (_pure, _speedups):
        if module is None:
            continue
        for call in (
            lambda m=module: m.mask(data, key, number),
            lambda m=module: m.masked_frame(number, data, key),
            lambda m=module: m.utf8_check(data, number),
        ):
            with contextlib.suppress(ValueError, OverflowError):
                call()


# -- payloads assembled in one buffer -----------------------------------------------------


@given(st.binary(max_size=3000), st.lists(st.integers(0, 3000), max_size=6), st.integers(0, 7), st.booleans())
def test_a_payload_built_from_pieces_is_the_whole_unmasked(
    data: bytes, cuts: list[int], offset: int, masked: bool
) -> None:
    bounds = sorted({0, len(data), *(min(cut, len(data)) for cut in cuts)})
    key = KEY if masked else None
    for module in (_pure, _speedups):
        if module is None:
            continue
        builder = module.PayloadBuilder(len(data))
        for start, stop in itertools.pairwise(bounds):
            builder.add(memoryview(data)[start:stop], key, offset + start)
            assert builder.missing == len(data) - stop
        expected = byte_loop(data, KEY, offset) if masked else data
        assert builder.take() == expected


def test_a_payload_builder_refuses_misuse(impl: ModuleType) -> None:
    builder = impl.PayloadBuilder(4)
    builder.add(b"ab")
    with pytest.raises(ValueError, match="not complete"):
        builder.take()
    with pytest.raises(ValueError, match="more bytes"):
        builder.add(b"cde")
    builder.add(bytearray(b"cd"))
    assert builder.take() == b"abcd"
    with pytest.raises(ValueError, match="taken"):
        builder.take()
    with pytest.raises(ValueError, match="taken"):
        builder.add(b"")
    with pytest.raises(ValueError):
        impl.PayloadBuilder(-1)
    with pytest.raises(ValueError, match="4 bytes"):
        impl.PayloadBuilder(1).add(b"x", b"abc")


def test_a_large_frame_in_pieces_is_one_message_on_both_paths() -> None:
    """Through the codec: a 1 MiB masked binary frame split at odd places, then a small one."""
    from hybi.sansio.events import Role
    from hybi.sansio.framing.interim import InterimCodec, build_interim_frame
    from hybi.sansio.framing.rfc6455 import RFC6455Codec

    class Sink:
        def __init__(self) -> None:
            self.pieces: list[tuple[int, bool, bool, bytes]] = []

        def frame(self, opcode: int, fin: bool, rsv: int, length: int, payload: bytes, first: bool, last: bool) -> bool:
            self.pieces.append((opcode, first, last, bytes(payload)))
            return False

    payload = os.urandom((1 << 20) + 5)
    for codec, wire in (
        (RFC6455Codec(Role.SERVER), _pure.masked_frame(0x82, payload, KEY) + _pure.masked_frame(0x82, b"next", KEY)),
        (
            InterimCodec(Role.SERVER, more_bit=False, prefix_mask=True),
            build_interim_frame(5, payload, more_bit=False, key=KEY)
            + build_interim_frame(5, b"next", more_bit=False, key=KEY),
        ),
    ):
        sink = Sink()
        cuts = [0, 7, 9, 65536 + 3, 300001, 1 << 20, len(wire)]
        for start, stop in itertools.pairwise(cuts):
            codec.receive(wire[start:stop], sink)
        assert [(opcode, first, last) for opcode, first, last, _ in sink.pieces] == [
            (2, True, False),
            (2, False, True),
            (2, True, True),
        ]
        assert sink.pieces[0][3] == b""
        assert sink.pieces[1][3] == payload
        assert sink.pieces[2][3] == b"next"


@given(st.binary(max_size=200), st.lists(st.integers(0, 200), max_size=5))
def test_a_text_payload_is_checked_as_it_lands(data: bytes, cuts: list[int]) -> None:
    bounds = sorted({0, len(data), *(min(cut, len(data)) for cut in cuts)})
    masked = _pure.mask(data, KEY)
    expected = [state >= 0 for state in feed(_pure, [data[a:b] for a, b in itertools.pairwise(bounds)])]
    for module in (_pure, _speedups):
        if module is None:
            continue
        builder = module.PayloadBuilder(len(data), True)
        results = [builder.add(masked[a:b], KEY, a) for a, b in itertools.pairwise(bounds)]
        assert results[: len(expected)] == expected
        assert all(not ok for ok in results[len(expected) :])
        assert builder.take() == data


# -- runs of small whole messages -------------------------------------------------------------

SIMPLE_FRAMES = st.one_of(
    st.tuples(st.just("text"), st.text(max_size=300)),
    st.tuples(st.just("binary"), st.binary(max_size=300)),
    st.tuples(st.just("large"), st.integers(126, 70000)),  # 16-bit lengths, and one 64-bit
    st.tuples(st.just("bad-utf8"), st.binary(min_size=1, max_size=20)),
    st.tuples(st.just("raw"), st.binary(min_size=1, max_size=12)),  # control frames, fragments, junk
)


def frame_bytes(kind: str, value: object, masked: bool) -> bytes:
    key = KEY if masked else None
    if kind == "text":
        assert isinstance(value, str)
        return raw_frame(0x81, value.encode(), key)
    if kind == "binary":
        assert isinstance(value, bytes)
        return raw_frame(0x82, value, key)
    if kind == "large":
        assert isinstance(value, int)
        return raw_frame(0x82, bytes(value % 251 for value in range(value)), key)
    if kind == "bad-utf8":
        assert isinstance(value, bytes)
        return raw_frame(0x81, b"ok" + value + b"\xff", key)
    assert isinstance(value, bytes)
    return value


def raw_frame(first: int, payload: bytes, key: bytes | None) -> bytes:
    length = len(payload)
    bit = 0x80 if key is not None else 0
    if length < 126:
        header = bytes((first, bit | length))
    elif length < 65536:
        header = bytes((first, bit | 126)) + length.to_bytes(2, "big")
    else:
        header = bytes((first, bit | 127)) + length.to_bytes(8, "big")
    return header + (key + _pure.mask(payload, key) if key is not None else payload)


@given(
    st.lists(SIMPLE_FRAMES, max_size=8),
    st.booleans(),
    st.one_of(st.none(), st.integers(0, 400)),
    st.integers(0, 40),
    st.integers(0, 40),
)
@settings(max_examples=400)
def test_whole_messages_twins_agree(
    frames: list[tuple[str, object]], masked: bool, max_size: int | None, start: int, cut: int
) -> None:
    wire = b"".join(frame_bytes(kind, value, masked) for kind, value in frames)
    wire = wire[: max(0, len(wire) - cut)]
    start = min(start, len(wire))
    expected = _pure.whole_messages(wire, start, masked, max_size)
    if _speedups is not None:
        assert _speedups.whole_messages(wire, start, masked, max_size) == expected
        assert _speedups.whole_messages(wire, start, 0x80 if masked else 0, max_size) == expected
    messages, stop = expected
    assert start <= stop <= len(wire)
    if start:
        return
    # From the start, the run is the plain messages up to the first frame that is not one.
    plain: list[object] = []
    for kind, value in frames:
        if kind == "large":
            assert isinstance(value, int)
            kind, value = ("binary", bytes(n % 251 for n in range(value))) if value < 65536 else ("raw", b"")
        size = len(value.encode()) if isinstance(value, str) else len(value) if isinstance(value, bytes) else 0
        if kind not in ("text", "binary") or (max_size is not None and size > max_size):
            break
        plain.append(value)
    assert messages == plain[: len(messages)]
    if not cut:
        assert len(messages) == len(plain)  # fewer only where the wire was cut short


@pytest.mark.parametrize(
    ("frame", "why"),
    [
        (bytes.fromhex("0100"), "a fragment"),
        (bytes.fromhex("c100"), "RSV1"),
        (bytes.fromhex("8900"), "a ping"),
        (bytes.fromhex("8300"), "a reserved opcode"),
        (bytes.fromhex("817e0005") + b"hello", "a length not in its shortest form"),
        (bytes.fromhex("81037a7a"), "an incomplete frame"),
        (bytes.fromhex("8102c328"), "invalid UTF-8"),
        (bytes.fromhex("8180") + KEY, "the MASK bit where none is expected"),
    ],
)
def test_whole_messages_stop_at_what_they_do_not_take(impl: ModuleType, frame: bytes, why: str) -> None:
    before = bytes.fromhex("8102") + b"ok" + bytes.fromhex("8201") + b"\x00"
    messages, stop = impl.whole_messages(before + frame + before, 0, False, None)
    assert (messages, stop) == (["ok", b"\x00"], len(before)), why


def test_whole_messages_keep_to_max_size_and_refuse_misuse(impl: ModuleType) -> None:
    wire = bytes.fromhex("8103") + b"abc" + bytes.fromhex("8104") + b"abcd"
    assert impl.whole_messages(wire, 0, False, 3) == (["abc"], 5)
    assert impl.whole_messages(wire, 5, False, 4) == (["abcd"], len(wire))
    assert impl.whole_messages(wire, len(wire), False, None) == ([], len(wire))
    with pytest.raises(ValueError):
        impl.whole_messages(wire, len(wire) + 1, False, None)
    with pytest.raises(ValueError):
        impl.whole_messages(wire, -1, False, None)
    with pytest.raises(ValueError):
        impl.whole_messages(wire, 0, False, -1)
    with pytest.raises(TypeError):
        impl.whole_messages("text", 0, False, None)


def test_messages_before_a_bad_frame_are_delivered_then_the_close_code() -> None:
    """Through the connection: the run stops at the bad frame, whose error fails the
    connection after the messages before it were handed on (as the frame parser did)."""
    from hybi.sansio import DIALECTS, Options, open_connection
    from hybi.sansio.events import ConnectionFailed, Role

    good = raw_frame(0x81, b"first", KEY) + raw_frame(0x82, b"second", KEY)
    for bad, code in (
        (raw_frame(0x81, b"\xc3\x28", KEY), 1007),
        (raw_frame(0x82, bytes(50), KEY), 1009),
        (raw_frame(0x81, b"x" * 5, KEY)[:1] + b"\xfe\x00\x05" + KEY + b"12345", 1002),  # non-minimal length
        (raw_frame(0xC1, b"x", KEY), 1002),
    ):
        connection = open_connection(DIALECTS["13"], Role.SERVER, Options(max_size=40))
        events = connection.receive_data(good + bad + good)
        assert events[:2] == ["first", b"second"]
        assert [getattr(event, "code", None) for event in events[2:]] == [code]
        assert isinstance(events[2], ConnectionFailed)


@given(
    st.lists(st.tuples(st.sampled_from([4, 5, 0, 1, 2, 3, 9]), st.booleans(), st.binary(max_size=300)), max_size=6),
    st.booleans(),
    st.booleans(),
    st.one_of(st.none(), st.integers(0, 300)),
    st.integers(0, 20),
    st.binary(max_size=3),
)
@settings(max_examples=400)
def test_whole_interim_messages_twins_agree_with_the_frame_parser(
    frames: list[tuple[int, bool, bytes]],
    more_bit: bool,
    prefix_mask: bool,
    max_size: int | None,
    cut: int,
    junk: bytes,
) -> None:
    """hybi-01..06 framing: the twins agree with each other, and their run is exactly the
    plain whole messages the frame-by-frame parser finds before anything else."""
    from hybi.sansio.framing.interim import build_interim_frame

    key = KEY if prefix_mask else None
    wire = b"".join(
        build_interim_frame(
            opcode, payload if opcode != 4 else payload.hex().encode(), more_bit=more_bit, fin=fin, key=key
        )
        for opcode, fin, payload in frames
    )
    wire = wire[: max(0, len(wire) - cut)] + junk
    expected = _pure.whole_interim_messages(wire, 0, more_bit, prefix_mask, max_size)
    if _speedups is not None:
        assert _speedups.whole_interim_messages(wire, 0, more_bit, prefix_mask, max_size) == expected
    messages, stop = expected
    assert 0 <= stop <= len(wire)
    if cut or junk:
        return  # a frame cut and followed by junk may still parse: only the twins must agree
    plain: list[object] = []
    for opcode, fin, payload in frames:
        size = len(payload) * 2 if opcode == 4 else len(payload)
        if opcode not in (4, 5) or not fin or size >= 65536 or (max_size is not None and size > max_size):
            break
        plain.append(payload.hex() if opcode == 4 else payload)
    assert messages == plain


@given(
    st.lists(
        st.one_of(st.text(max_size=100).map(lambda t: b"\x00" + t.encode() + b"\xff"), st.binary(max_size=6)),
        max_size=6,
    ),
    st.one_of(st.none(), st.integers(0, 200)),
)
@settings(max_examples=400)
def test_whole_sentinel_messages_twins_agree(pieces: list[bytes], max_size: int | None) -> None:
    wire = b"".join(pieces)
    expected = _pure.whole_sentinel_messages(wire, 0, max_size)
    if _speedups is not None:
        assert _speedups.whole_sentinel_messages(wire, 0, max_size) == expected
    messages, stop = expected
    assert all(isinstance(message, str) for message in messages)
    assert stop == sum(len(message.encode()) + 2 for message in messages)  # type: ignore[union-attr]


@pytest.mark.parametrize("version", ["6", "5", "hybi-02", "hixie-76", "hixie-75"])
def test_old_dialects_deliver_the_messages_before_a_bad_frame_then_fail(version: str) -> None:
    """Through the connection: a run of messages, then a frame the run does not take (too
    large, or invalid text): the messages come first, then the failure, as frame by frame."""
    from hybi.sansio import DIALECTS, Options, open_connection
    from hybi.sansio.events import Role

    client = open_connection(DIALECTS[version], Role.CLIENT, Options(max_size=None))
    client.send_text("first")
    client.send_text("second")
    client.send_text("x" * 50)  # above the server's limit below
    wire = client.data_to_send()
    server = open_connection(DIALECTS[version], Role.SERVER, Options(max_size=40))
    events = server.receive_data(wire)
    assert events[:2] == ["first", "second"]
    assert [type(event).__name__ for event in events[2:]] == ["ConnectionFailed"]
    assert events[2].code == 1009  # type: ignore[attr-defined]
    server = open_connection(DIALECTS[version], Role.SERVER, Options(max_size=None))
    received = []
    for piece in (wire[:3], wire[3:9], wire[9:20], wire[20:]):  # frames cut anywhere: the same messages
        received += server.receive_data(piece)
    assert received == ["first", "second", "x" * 50]


def test_whole_interim_and_sentinel_runs_refuse_misuse(impl: ModuleType) -> None:
    for call in (
        lambda: impl.whole_interim_messages(b"", 1, False, False, None),
        lambda: impl.whole_interim_messages(b"", 0, False, False, -1),
        lambda: impl.whole_sentinel_messages(b"", 1, None),
        lambda: impl.whole_sentinel_messages(b"", 0, -1),
    ):
        with pytest.raises(ValueError):
            call()
    assert impl.whole_sentinel_messages(b"\x00\xc3\x28\xff", 0, None) == ([], 0)
    assert impl.whole_sentinel_messages(b"\x00abc", 0, None) == ([], 0)
    assert impl.whole_sentinel_messages(b"\x00abc\xff\xff\x00", 0, 2) == ([], 0)
    assert impl.whole_sentinel_messages(b"\x00ab\xff\xff\x00", 0, 2) == (["ab"], 4)
