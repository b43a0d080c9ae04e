"""Version 5: draft-ietf-hybi-thewebsocketprotocol-05 (February 2011).

The key/accept handshake of later versions with `Sec-WebSocket-Version: 5` and
`Sec-WebSocket-Origin`; frames have a FIN bit and the opcodes of drafts 01-06, and a
client puts a 4-byte key before each frame that masks the header as well as the payload.
Close frames carry no status code here (em-websocket `close05.rb`).
"""

from __future__ import annotations

from hybi.sansio.dialects.base import CloseRules
from hybi.sansio.dialects.keyaccept import KeyAcceptDialect
from hybi.sansio.events import Role
from hybi.sansio.framing import Codec
from hybi.sansio.framing.interim import InterimCodec

__all__ = ["Hybi05"]


class Hybi05(KeyAcceptDialect):
    name = "5"
    version = 5
    origin_header = "Sec-WebSocket-Origin"
    close_rules = CloseRules(None)
    extensions = False

    def new_codec(self, role: Role, *, max_size: int | None) -> Codec:
        return InterimCodec(role, more_bit=False, prefix_mask=True)
