"""Compression: permessage-deflate (RFC 7692) and deflate-frame (`x-webkit-deflate-frame`).

Both claim RSV1 and use raw DEFLATE with a sync flush whose `00 00 ff ff` tail is left off
the wire. permessage-deflate compresses a whole message (RSV1 on its first frame only);
deflate-frame, which Chrome and Safari offered before RFC 7692, compresses every data frame
on its own. Both run on the RFC 6455 framing of versions 13, 8 and 7.

zlib objects are made when a first message needs them, so an idle connection costs
nothing, and are dropped after each message where the context is not taken over.
Inflating is bounded by `max_size` as it goes: a decompression bomb fails with 1009 before
its memory is spent.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar, Literal

from hybi.exceptions import InvalidHandshake, InvalidPayload, MessageTooBig
from hybi.sansio.extensions import ClientExtensionFactory, ExtensionParameters, ServerExtensionFactory

__all__ = [
    "CLIENT_PRESETS",
    "PRESETS",
    "Compression",
    "CompressionSetting",
    "DeflateFrame",
    "PerMessageDeflate",
    "client_factories",
    "server_factories",
]

RSV1 = 0x40
_TAIL = b"\x00\x00\xff\xff"
_WINDOW_VALUES = {str(bits): bits for bits in range(8, 16)}  # decimal, no leading zero (RFC 7692 7.1.2)


@dataclass(frozen=True, kw_only=True)
class Compression:
    """How this side compresses, and what it asks of the peer.

    `level` and `mem_level` are zlib's (CPU against ratio, memory against ratio);
    `window_bits` caps this side's LZ77 window at 2**window_bits bytes (8 to 15: zlib
    cannot deflate with 8, so 8 deflates with 9, which never reaches back further);
    `peer_window_bits` asks the peer to stay within 2**N (None: do not ask), which sizes
    this side's inflater; `no_context_takeover` starts every message of this side with an
    empty window (less memory between messages, worse ratio); `peer_no_context_takeover`
    asks the same of the peer; messages shorter than `threshold` bytes are sent as they are;
    `deflate_frame`: also speak `x-webkit-deflate-frame` / `deflate-frame` (a server agrees
    to them when a client offers no permessage-deflate; a client offers them after it).
    """

    level: int = 6
    mem_level: int = 5
    window_bits: int = 12
    peer_window_bits: int | None = 12
    no_context_takeover: bool = False
    peer_no_context_takeover: bool = False
    threshold: int = 0
    deflate_frame: bool = True

    def __post_init__(self) -> None:
        if not 0 <= self.level <= 9 or not 1 <= self.mem_level <= 9:
            raise ValueError("level is 0 to 9 and mem_level 1 to 9")
        for bits in (self.window_bits, self.peer_window_bits):
            if bits is not None and not 8 <= bits <= 15:
                raise ValueError("window bits are 8 to 15")


PRESETS: dict[str, Compression] = {
    "balanced": Compression(),
    "memory": Compression(level=6, mem_level=2, window_bits=10, peer_window_bits=10),
    "speed": Compression(level=1, mem_level=8, window_bits=15, peer_window_bits=None),
    "ratio": Compression(level=9, mem_level=9, window_bits=15, peer_window_bits=None),
}
"""The presets, by name; their memory per connection is measured in docs/howto/compression.md."""

CLIENT_PRESETS: dict[str, Compression] = {
    name: replace(preset, deflate_frame=False, peer_window_bits=preset.peer_window_bits if name == "memory" else None)
    for name, preset in PRESETS.items()
}
"""A client's presets offer permessage-deflate alone, and ask a server to limit its window
only for "memory": some servers (AWS API Gateway among them) refuse offers that limit it."""

CompressionSetting = Literal["balanced", "memory", "speed", "ratio"] | Compression | bool | None
"""`compression=` takes a preset's name, a Compression, True ("balanced") or None/False (off)."""


def resolve(setting: CompressionSetting, presets: dict[str, Compression] = PRESETS) -> Compression | None:
    if setting is None or setting is False:
        return None
    if setting is True:
        setting = "balanced"
    if isinstance(setting, Compression):
        return setting
    try:
        return presets[setting]
    except KeyError:
        raise ValueError(f"unknown compression preset {setting!r}; known: {', '.join(PRESETS)}") from None


class _Inflater:
    """Incremental raw inflate bounded by a per-message size limit."""

    __slots__ = ("_bits", "_max_size", "_produced", "_reset", "_zlib")

    def __init__(self, bits: int, reset: bool) -> None:
        self._bits = bits
        self._reset = reset  # the peer starts every message afresh: no window to keep
        self._zlib: zlib._Decompress | None = None
        self._max_size: int | None = None
        self._produced = 0

    def start_message(self) -> None:
        self._produced = 0

    def set_max_size(self, max_size: int | None) -> None:
        self._max_size = max_size

    def inflate(self, data: bytes, end_of_unit: bool) -> bytes:
        """Inflate `data`; at the end of a message (or frame), with the flush tail added."""
        if end_of_unit:
            data += _TAIL
        inflater = self._zlib
        if inflater is None:
            inflater = self._zlib = zlib.decompressobj(-self._bits)
        budget = None if self._max_size is None else self._max_size - self._produced
        try:
            if budget is None:
                out = inflater.decompress(data)
            else:
                out = inflater.decompress(data, budget + 1)
                if len(out) > budget or inflater.unconsumed_tail:
                    raise MessageTooBig(f"message of more than {self._max_size} bytes once inflated")
            if inflater.eof:
                out += self._after_final_block(inflater, out)
        except zlib.error as error:
            self._zlib = None  # never reused after an error
            raise InvalidPayload(f"compressed payload is not valid DEFLATE data ({error})") from None
        self._produced += len(out)
        if budget is not None and len(out) > budget:
            raise MessageTooBig(f"message of more than {self._max_size} bytes once inflated")
        if end_of_unit and self._reset:
            self._zlib = None
        return out

    def _after_final_block(self, ended: zlib._Decompress, out: bytes) -> bytes:
        """A block with BFINAL set ends zlib's stream mid-message (RFC 7692 7.2.3.4): go on
        with a new inflater, seeded with the window this message has built (the part of the
        window older messages built is not kept, as in WebKit and Firefox)."""
        window = out[-(1 << self._bits) :]
        self._zlib = zlib.decompressobj(-self._bits, zdict=window) if window else zlib.decompressobj(-self._bits)
        rest = ended.unused_data
        return self._zlib.decompress(rest) if rest else b""


_isal_zlib: Any
try:  # python-isal, in the `speed` extra
    from isal import isal_zlib as _isal_zlib
except ImportError:
    _isal_zlib = None

FAST_LEVELS = range(1, 4)
"""zlib levels deflated by ISA-L (python-isal) where it is installed: its levels 1 to 3
compress as tightly as zlib's and three to four times faster (64 KiB of text at level 1:
about 95 µs against 360 µs), honouring the negotiated window. Other levels, and
every inflater, stay with zlib."""

FAST_DEFLATE = _isal_zlib is not None and os.environ.get("HYBI_DEFLATE", "") != "zlib"
"""Whether ISA-L deflates levels 1 to 3; `HYBI_DEFLATE=zlib` in the environment keeps zlib."""


class _Deflater:
    __slots__ = ("_bits", "_level", "_mem_level", "_reset", "_zlib")

    def __init__(self, bits: int, reset: bool, level: int, mem_level: int) -> None:
        self._bits = max(bits, 9)  # zlib cannot deflate within 2**8; 9 never reaches further back
        self._reset = reset
        self._level = level
        self._mem_level = mem_level
        self._zlib: Any = None  # a zlib or isal_zlib compressor, made when first needed

    def deflate(self, payload: bytes, end: bool) -> bytes:
        """Deflate with a sync flush; at the end of a message or frame, without the tail."""
        if end and not payload:
            # Nothing to add after the last sync flush: an empty stored block's first byte
            # (RFC 7692 section 7.2.3.6), which is what zlib makes of it. ISA-L would make an
            # empty Huffman block first, which inflates to nothing just the same but which
            # Netty refuses ("cannot read uncompressed buffer").
            if self._reset:
                self._zlib = None
            return b"\x00"
        deflater = self._zlib
        if deflater is None:
            if FAST_DEFLATE and self._level in FAST_LEVELS:
                deflater = _isal_zlib.compressobj(self._level, zlib.DEFLATED, -self._bits)
            else:
                deflater = zlib.compressobj(self._level, zlib.DEFLATED, -self._bits, self._mem_level)
            self._zlib = deflater
        data: bytes = deflater.compress(payload) + deflater.flush(zlib.Z_SYNC_FLUSH)
        if end:
            if data.endswith(_TAIL):
                data = data[:-4]
            if not data:
                data = b"\x00"  # an empty stored block's first byte (RFC 7692 7.2.3.6): never empty
            if self._reset:
                self._zlib = None
        return data


class _Deflating:
    """What both extensions hold: an inflater bounded by max_size, a deflater, a threshold."""

    rsv_bits = RSV1

    def __init__(
        self,
        *,
        inflate_bits: int = 15,
        inflate_reset: bool = False,
        deflate_bits: int = 15,
        deflate_reset: bool = False,
        level: int = 6,
        mem_level: int = 8,
        threshold: int = 0,
    ) -> None:
        self.inflate_bits = inflate_bits
        self.deflate_bits = deflate_bits
        self._inflater = _Inflater(inflate_bits, inflate_reset)
        self._deflater = _Deflater(deflate_bits, deflate_reset, level, mem_level)
        self._threshold = threshold
        self._inflating = False
        self._deflating = False

    def set_max_size(self, max_size: int | None) -> None:
        self._inflater.set_max_size(max_size)

    def _decide(self, payload: bytes, fin: bool, compress: bool) -> bool:
        """At a message's first frame, before the compressor sees it: compress it or not."""
        self._deflating = compress and (not fin or len(payload) >= self._threshold)
        return self._deflating


class PerMessageDeflate(_Deflating):
    """permessage-deflate on one connection, as negotiated (RFC 7692 sections 6 and 7.2)."""

    name = "permessage-deflate"

    def decode(  # noqa: PLR0917 - the frame, field by field, as the chain passes it
        self, opcode: int, fin: bool, rsv: int, length: int, payload: bytes, first: bool, last: bool
    ) -> tuple[int, int, bytes]:
        """Section 6: RSV1 on the first frame marks a compressed message; on a continuation
        or control frame it is left set, for the assembler to fail the connection."""
        if opcode & 0x08:
            return rsv, length, payload
        if first and opcode:
            self._inflating = bool(rsv & RSV1)
            rsv &= ~RSV1
            if self._inflating:
                self._inflater.start_message()
        if not self._inflating:
            return rsv, length, payload
        return rsv, -1, self._inflater.inflate(payload, fin and last)

    def encode(self, opcode: int, payload: bytes, fin: bool, rsv: int, compress: bool) -> tuple[bytes, int]:
        """Section 7.2.1. Whether a message is compressed is decided at its first frame,
        before the compressor sees it, so a message sent as it is cannot desynchronise the
        peer's window."""
        if opcode & 0x08:
            return payload, rsv
        if opcode and self._decide(payload, fin, compress):
            rsv |= RSV1
        if not self._deflating:
            return payload, rsv
        return self._deflater.deflate(payload, fin), rsv


class DeflateFrame(_Deflating):
    """deflate-frame / x-webkit-deflate-frame: every data frame with a payload is deflated
    on its own (RSV1 on each, continuations included), the window shared across frames
    unless `no_context_takeover`."""

    def __init__(self, name: str, **options: Any) -> None:
        super().__init__(**options)
        self.name = name

    def decode(  # noqa: PLR0917 - the frame, field by field, as the chain passes it
        self, opcode: int, fin: bool, rsv: int, length: int, payload: bytes, first: bool, last: bool
    ) -> tuple[int, int, bytes]:
        if opcode & 0x08:
            return rsv, length, payload
        if first:
            if opcode:
                self._inflater.start_message()
            self._inflating = bool(rsv & RSV1)
            rsv &= ~RSV1
        if not self._inflating:
            return rsv, length, payload
        return rsv, -1, self._inflater.inflate(payload, last)

    def encode(self, opcode: int, payload: bytes, fin: bool, rsv: int, compress: bool) -> tuple[bytes, int]:
        if opcode & 0x08:
            return payload, rsv
        if opcode:
            self._decide(payload, fin, compress)
        if not self._deflating or not payload:
            return payload, rsv
        return self._deflater.deflate(payload, True), rsv | RSV1


# -- negotiation ------------------------------------------------------------------------------


def _window(value: str | None) -> int | None:
    return _WINDOW_VALUES.get(value) if value is not None else None


def _read_parameters(parameters: ExtensionParameters, allowed: Sequence[str]) -> dict[str, str | None] | None:
    """The parameters by name; None for an unknown or repeated one."""
    seen: dict[str, str | None] = {}
    for name, value in parameters:
        if name not in allowed or name in seen:
            return None
        seen[name] = value
    return seen


_PMD_PARAMETERS = (
    "server_no_context_takeover",
    "client_no_context_takeover",
    "server_max_window_bits",
    "client_max_window_bits",
)


class PerMessageDeflateServer:
    """The server's side of RFC 7692 section 7: accept the first acceptable offer."""

    name = "permessage-deflate"

    def __init__(self, compression: Compression) -> None:
        self.compression = compression

    def accept(self, offers: Sequence[ExtensionParameters]) -> tuple[ExtensionParameters, PerMessageDeflate] | None:
        for offer in offers:
            accepted = self._accept_one(offer)
            if accepted is not None:
                return accepted
        return None

    def _accept_one(self, offer: ExtensionParameters) -> tuple[ExtensionParameters, PerMessageDeflate] | None:
        """Section 7.1: an offer with an unknown, repeated or invalid parameter is declined."""
        config = self.compression
        params = _read_parameters(offer, _PMD_PARAMETERS)
        if params is None:
            return None
        for flag in ("server_no_context_takeover", "client_no_context_takeover"):
            if flag in params and params[flag] is not None:
                return None
        server_bits = config.window_bits
        if "server_max_window_bits" in params:
            asked = _window(params["server_max_window_bits"])
            if asked is None:
                return None
            server_bits = min(server_bits, asked)
        client_bits: int | None = None
        if "client_max_window_bits" in params:
            value = params["client_max_window_bits"]
            if value is not None and _window(value) is None:
                return None
            client_bits = _window(value)
        answer: ExtensionParameters = []
        deflate_reset = "server_no_context_takeover" in params or config.no_context_takeover
        if deflate_reset:
            answer.append(("server_no_context_takeover", None))
        inflate_reset = config.peer_no_context_takeover
        if inflate_reset:
            answer.append(("client_no_context_takeover", None))
        if "server_max_window_bits" in params or server_bits < 15:
            answer.append(("server_max_window_bits", str(server_bits)))
        inflate_bits = client_bits or 15
        if "client_max_window_bits" in params and config.peer_window_bits is not None:
            inflate_bits = min(config.peer_window_bits, client_bits or 15)
            answer.append(("client_max_window_bits", str(inflate_bits)))
        extension = PerMessageDeflate(
            inflate_bits=inflate_bits,
            inflate_reset=inflate_reset,
            deflate_bits=server_bits,
            deflate_reset=deflate_reset,
            level=config.level,
            mem_level=config.mem_level,
            threshold=config.threshold,
        )
        return answer, extension


class PerMessageDeflateClient:
    """The client's side: one offer, and the checks of RFC 7692 section 7.1 on the answer.

    The offer is `client_max_window_bits` (let the server choose this side's window) plus
    what `compression` asks of the server; by default it does not limit the server's window,
    as some servers refuse offers that do.
    """

    name = "permessage-deflate"

    def __init__(self, compression: Compression) -> None:
        self.compression = compression

    def offer(self) -> ExtensionParameters:
        config = self.compression
        offer: ExtensionParameters = []
        if config.peer_no_context_takeover:
            offer.append(("server_no_context_takeover", None))
        if config.no_context_takeover:
            offer.append(("client_no_context_takeover", None))
        if config.peer_window_bits is not None:
            offer.append(("server_max_window_bits", str(config.peer_window_bits)))
        offer.append(("client_max_window_bits", None))
        return offer

    def accept(self, parameters: ExtensionParameters) -> PerMessageDeflate:
        config = self.compression
        params = _read_parameters(parameters, _PMD_PARAMETERS)
        if params is None:
            raise InvalidHandshake(f"permessage-deflate answer with an unknown or repeated parameter: {parameters}")
        for flag in ("server_no_context_takeover", "client_no_context_takeover"):
            if flag in params and params[flag] is not None:
                raise InvalidHandshake(f"permessage-deflate parameter {flag} takes no value")
        if config.peer_no_context_takeover and "server_no_context_takeover" not in params:
            raise InvalidHandshake("permessage-deflate answer lacks the server_no_context_takeover asked for")
        inflate_bits = 15
        if "server_max_window_bits" in params:
            bits = _window(params["server_max_window_bits"])
            if bits is None or (config.peer_window_bits is not None and bits > config.peer_window_bits):
                raise InvalidHandshake(f"invalid server_max_window_bits {params['server_max_window_bits']!r}")
            inflate_bits = bits
        elif config.peer_window_bits is not None:
            raise InvalidHandshake("permessage-deflate answer lacks the server_max_window_bits asked for")
        deflate_bits = config.window_bits
        if "client_max_window_bits" in params:
            bits = _window(params["client_max_window_bits"])
            if bits is None:
                raise InvalidHandshake("client_max_window_bits in an answer needs a value from 8 to 15")
            deflate_bits = min(deflate_bits, bits)
        return PerMessageDeflate(
            inflate_bits=inflate_bits,
            inflate_reset="server_no_context_takeover" in params,
            deflate_bits=deflate_bits,
            deflate_reset="client_no_context_takeover" in params or config.no_context_takeover,
            level=config.level,
            mem_level=config.mem_level,
            threshold=config.threshold,
        )


class DeflateFrameServer:
    """deflate-frame as a server: offer parameters (`max_window_bits`, `no_context_takeover`)
    constrain this side's compressor; the answer is the name alone."""

    names: ClassVar[tuple[str, ...]] = ("x-webkit-deflate-frame", "deflate-frame")

    def __init__(self, name: str, compression: Compression) -> None:
        self.name = name
        self.compression = compression

    def accept(self, offers: Sequence[ExtensionParameters]) -> tuple[ExtensionParameters, DeflateFrame] | None:
        config = self.compression
        for offer in offers:
            params = _read_parameters(offer, ("max_window_bits", "no_context_takeover"))
            if params is None or params.get("no_context_takeover", None) is not None:
                continue
            bits = config.window_bits
            if "max_window_bits" in params:
                asked = _window(params["max_window_bits"])
                if asked is None:
                    continue
                bits = min(bits, asked)
            extension = DeflateFrame(
                self.name,
                deflate_bits=bits,
                deflate_reset="no_context_takeover" in params or config.no_context_takeover,
                level=config.level,
                mem_level=config.mem_level,
                threshold=config.threshold,
            )
            return [], extension
        return None


class DeflateFrameClient:
    """deflate-frame as a client; answer parameters constrain this side's compressor."""

    def __init__(self, name: str, compression: Compression) -> None:
        self.name = name
        self.compression = compression

    def offer(self) -> ExtensionParameters:
        return []

    def accept(self, parameters: ExtensionParameters) -> DeflateFrame:
        config = self.compression
        params = _read_parameters(parameters, ("max_window_bits", "no_context_takeover"))
        if params is None or params.get("no_context_takeover", None) is not None:
            raise InvalidHandshake(f"invalid {self.name} answer parameters: {parameters}")
        bits = config.window_bits
        if "max_window_bits" in params:
            asked = _window(params["max_window_bits"])
            if asked is None:
                raise InvalidHandshake(f"invalid {self.name} max_window_bits {params['max_window_bits']!r}")
            bits = min(bits, asked)
        return DeflateFrame(
            self.name,
            deflate_bits=bits,
            deflate_reset="no_context_takeover" in params or config.no_context_takeover,
            level=config.level,
            mem_level=config.mem_level,
            threshold=config.threshold,
        )


def server_factories(setting: CompressionSetting) -> list[ServerExtensionFactory]:
    """The extensions a server agrees to for `compression=`: permessage-deflate first."""
    compression = resolve(setting)
    if compression is None:
        return []
    factories: list[ServerExtensionFactory] = [PerMessageDeflateServer(compression)]
    if compression.deflate_frame:
        factories += [DeflateFrameServer(name, compression) for name in DeflateFrameServer.names]
    return factories


def client_factories(setting: CompressionSetting) -> list[ClientExtensionFactory]:
    """What a client offers for `compression=`: permessage-deflate, then the deflate-frame
    names when `deflate_frame` is set (for servers of 2012-2014 that know no other)."""
    compression = resolve(setting, CLIENT_PRESETS)
    if compression is None:
        return []
    factories: list[ClientExtensionFactory] = [PerMessageDeflateClient(compression)]
    if compression.deflate_frame:
        factories += [DeflateFrameClient(name, compression) for name in DeflateFrameServer.names]
    return factories
