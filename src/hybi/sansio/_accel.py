"""The hot loops, compiled where the compiled accelerator was built, else their pure twins.

`hybi._speedups` (C, built by `pip install` where a compiler exists) and
`hybi.sansio._pure` have the same functions with the same results; this module picks one
set, once, at import. `HYBI_PURE_PYTHON=1` in the environment forces the pure set.
`COMPILED` says which set runs.
"""

from __future__ import annotations

import os
from typing import Protocol

from hybi.sansio import _pure

__all__ = [
    "COMPILED",
    "Builder",
    "PayloadBuilder",
    "mask",
    "masked_frame",
    "utf8_check",
    "whole_interim_messages",
    "whole_messages",
    "whole_sentinel_messages",
]


class Builder(Protocol):
    """What both `PayloadBuilder`s are: `add` pieces (unmasking them with a key; False once a
    text payload shows invalid UTF-8), or receive into the `window` of what is missing and
    say how much landed with `filled`; `take` the whole once it is complete."""

    @property
    def missing(self) -> int: ...
    def add(self, data: bytes | bytearray | memoryview, key: bytes | None = None, offset: int = 0, /) -> bool: ...
    def take(self) -> bytes: ...
    def window(self) -> memoryview: ...
    def filled(self, count: int, key: bytes | None = None, offset: int = 0, /) -> bool: ...


FORCED_PURE = os.environ.get("HYBI_PURE_PYTHON", "") not in ("", "0")
"""Whether the environment asked for the pure-Python path."""

mask = _pure.mask
masked_frame = _pure.masked_frame
utf8_check = _pure.utf8_check
whole_messages = _pure.whole_messages
whole_interim_messages = _pure.whole_interim_messages
whole_sentinel_messages = _pure.whole_sentinel_messages
PayloadBuilder: type[_pure.PayloadBuilder] | type[_speedups.PayloadBuilder] = _pure.PayloadBuilder
COMPILED = False

if not FORCED_PURE:
    try:
        from hybi import _speedups
    except ImportError:
        pass
    else:
        mask = _speedups.mask
        masked_frame = _speedups.masked_frame
        utf8_check = _speedups.utf8_check
        whole_messages = _speedups.whole_messages
        whole_interim_messages = _speedups.whole_interim_messages
        whole_sentinel_messages = _speedups.whole_sentinel_messages
        PayloadBuilder = _speedups.PayloadBuilder
        COMPILED = True
