"""When a client tries again, and after how long (RFC 6455 section 7.2.3), without clocks.

`retryable(error)` tells failures worth another attempt (the network, a server error, a
server going away) from those that will fail the same way again (a refusal, no common
version, an invalid answer, a proxy that refuses); `Backoff` gives the delays. The asyncio and sync clients both
follow them: they only sleep.
"""

from __future__ import annotations

import random

from hybi.exceptions import ConnectionClosed, HandshakeError, InvalidStatus, NoCommonVersion, ProxyError

__all__ = ["RETRYABLE_CLOSE_CODES", "Backoff", "retryable"]

RETRYABLE_CLOSE_CODES = frozenset({1001, 1006, 1011, 1012, 1013, 1014})
"""Going away, dropped, server error, service restart, try again later, bad gateway."""


def retryable(error: BaseException) -> bool:
    """Whether opening again may succeed where `error` ended the last attempt or connection."""
    if isinstance(error, NoCommonVersion):
        return False
    if isinstance(error, ProxyError):
        return error.retryable  # the proxy's trouble (5xx, unreachable) may pass; a refusal will not
    if isinstance(error, InvalidStatus):
        return error.response.status >= 500
    if isinstance(error, ConnectionClosed):
        return error.code in RETRYABLE_CLOSE_CODES
    if isinstance(error, HandshakeError):
        return False  # an answer that is wrong will be wrong again
    return isinstance(error, OSError | TimeoutError | EOFError)


class Backoff:
    """Section 7.2.3: a random first delay (so that clients dropped together do not all come
    back at once), then delays growing by `factor` up to `maximum`; `reset()` after a
    successful connection starts over."""

    def __init__(
        self, initial: float = 3.0, factor: float = 1.6, maximum: float = 60.0, rng: random.Random | None = None
    ) -> None:
        if initial < 0 or factor < 1 or maximum < initial:
            raise ValueError("backoff needs 0 <= initial <= maximum and factor >= 1")
        self.initial = initial
        self.factor = factor
        self.maximum = maximum
        self._rng = rng or random.SystemRandom()
        self._next: float | None = None

    def next_delay(self) -> float:
        """The time to wait before the next attempt, in seconds."""
        if self._next is None:
            delay = self._rng.uniform(0, self.initial)
            self._next = max(self.initial, delay) * self.factor
            return delay
        delay = min(self._next, self.maximum)
        self._next = delay * self.factor
        return delay

    def reset(self) -> None:
        self._next = None
