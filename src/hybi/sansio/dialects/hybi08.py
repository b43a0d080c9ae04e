"""Version 8: draft-ietf-hybi-thewebsocketprotocol-08 to -12 (June to August 2011).

Framing is that of RFC 6455. Clients send `Sec-WebSocket-Origin` (drafts 08-10; 11 and 12
switched to `Origin`, and a server reads both). Peers of this version used close code
1004 for "frame too large", so it is accepted; the minimal length encoding became a MUST
only in draft 14, so longer encodings are accepted too.
"""

from __future__ import annotations

from hybi.sansio.close import rfc6455_close_code
from hybi.sansio.dialects.base import CloseRules
from hybi.sansio.dialects.keyaccept import KeyAcceptDialect

__all__ = ["Hybi08", "hybi07_08_close_code"]


def hybi07_08_close_code(code: int) -> bool:
    """RFC 6455's codes plus 1004, "frame too large" in drafts 07 to 12."""
    return code == 1004 or rfc6455_close_code(code)


class Hybi08(KeyAcceptDialect):
    name = "8"
    version = 8
    origin_header = "Sec-WebSocket-Origin"
    close_rules = CloseRules(hybi07_08_close_code)
    minimal_lengths = False
