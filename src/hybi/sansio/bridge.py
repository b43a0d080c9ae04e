"""Translating between two dialects, without I/O: the rules a gateway follows when one side's
dialect carries something the other's cannot.

A gateway joins a connection it accepted (the client side) to one it opened (the upstream
side), each in its own dialect. Text crosses as it is. The rest is decided here, as data:

- binary messages towards a dialect without them (the hixie drafts): `BinaryRule`;
- close frames: the code and reason of one side's close, or the way it ended, become the
  close the other side is sent (`close_for_other_side`), within what that side's dialect
  can say (RFC 6455 section 7.4; the hixie drafts, hybi-02 and 5 carry no status);
- pings are not carried: each side keeps its own keepalive and is answered by the gateway
  (RFC 6455 section 5.5.2), since a ping's round trip through two hops measures neither.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from enum import Enum

from hybi.sansio.close import CloseCodeRule
from hybi.sansio.connection import CloseInfo

__all__ = ["BinaryRule", "CloseOrder", "Side", "carry_message", "close_for_other_side", "shorten_reason"]


class Side(Enum):
    """Which connection of a pair something came from."""

    CLIENT = "client"
    UPSTREAM = "upstream"


class BinaryRule(Enum):
    """What becomes of a binary message whose destination has no binary frames.

    REFUSE: close both sides, the sender's with 1003 (RFC 6455 section 7.4.1: data of a
    type it cannot accept); DROP: leave it out and log it; BASE64: send it as text, its
    base64 encoding (RFC 4648 section 4), which the receiving application decodes.
    """

    REFUSE = "refuse"
    DROP = "drop"
    BASE64 = "base64"


def carry_message(message: str | bytes, *, binary_supported: bool, rule: BinaryRule) -> str | bytes | BinaryRule:
    """`message` as the destination is sent it, or the rule that applies instead
    (REFUSE or DROP) when it is binary and the destination has no binary messages."""
    if isinstance(message, str) or binary_supported:
        return message
    if rule is BinaryRule.BASE64:
        return base64.b64encode(message).decode("ascii")
    return rule


@dataclass(frozen=True, slots=True)
class CloseOrder:
    """The close to send: `code` None is a close frame without status (section 5.5.1)."""

    code: int | None
    reason: str


def shorten_reason(reason: str, limit: int = 123) -> str:
    """`reason` cut to fit a close frame (123 bytes of UTF-8), never inside a character."""
    encoded = reason.encode("utf-8")
    if len(encoded) <= limit:
        return reason
    return encoded[:limit].decode("utf-8", errors="ignore")


_GONE = {
    Side.CLIENT: CloseOrder(1001, "client went away"),
    Side.UPSTREAM: CloseOrder(1011, "upstream connection lost"),
}
"""A side that dropped TCP without closing, as the other side is told: a client leaving is
"going away" (1001); an upstream vanishing is an unexpected condition (1011)."""


def close_for_other_side(info: CloseInfo | None, source: Side, status: CloseCodeRule | None) -> CloseOrder:
    """The close the other side of a pair is sent when `source`'s connection ended as
    `info` says; `status` is the destination dialect's rule for close codes (None: its
    close frames carry no status).

    - a close frame's code and reason cross as they are where the destination may send
      them; a code it may not send becomes 1000 (for 1000 and 1001) or 1011, the original
      code kept at the front of the reason;
    - a close frame without status (1005, and every hixie close) crosses without status;
    - a connection the gateway failed (a protocol error, a message over the size limit, a
      keepalive unanswered), or one that dropped without a close frame, becomes 1001 for
      the upstream (its client went away) and 1011 for the client (its upstream failed);
    - towards a dialect without status, every close is a close without status.
    """
    if info is None or info.failure is not None or info.code == 1006:
        order = _GONE[source]
        if info is not None and info.failure is not None:
            order = CloseOrder(order.code, f"{source.value} connection failed: {info.failure.code}")
    elif info.code == 1005:
        order = CloseOrder(None, "")
    else:
        order = CloseOrder(info.code, info.reason)
    if status is None or order.code is None:
        return CloseOrder(None, "")
    if not status(order.code):
        fallback = 1000 if order.code in (1000, 1001) else 1011
        order = CloseOrder(fallback, f"{order.code} {order.reason}".rstrip())
    return CloseOrder(order.code, shorten_reason(order.reason))
