"""Version 7: draft-ietf-hybi-thewebsocketprotocol-07 (April 2011).

The first draft with today's frame layout (MASK bit, mask covering the payload only).
Its handshake and close rules are those of version 8, with `Sec-WebSocket-Version: 7`.
"""

from __future__ import annotations

from hybi.sansio.dialects.hybi08 import Hybi08

__all__ = ["Hybi07"]


class Hybi07(Hybi08):
    name = "7"
    version = 7
