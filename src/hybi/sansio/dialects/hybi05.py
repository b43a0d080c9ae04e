"""Version 5: draft-ietf-hybi-thewebsocketprotocol-05 (February 2011).

The key/accept handshake of later versions with `Sec-WebSocket-Version: 5` and
`Sec-WebSocket-Origin`; frames have a FIN bit and the opcodes of drafts 01-06, and a
client puts a 4-byte key before each frame that masks the header as well as the payload.
Close frames carry no status code here (em-websocket `close05.rb`).
"""

from __future__ import annotations

from typing import ClassVar

from hybi.sansio.close import CloseCodeRule
from hybi.sansio.dialects.base import ClientOffer, Session
from hybi.sansio.dialects.keyaccept import KeyAcceptDialect
from hybi.sansio.events import Role
from hybi.sansio.http import Request
from hybi.sansio.interim_session import InterimSession

__all__ = ["Hybi05"]


class Hybi05(KeyAcceptDialect):
    name = "5"
    version = 5
    origin_header = "Sec-WebSocket-Origin"
    status_rule: ClassVar[CloseCodeRule | None] = None
    """The close codes a close frame may carry; None where close frames carry no status."""

    def new_session(
        self,
        role: Role,
        *,
        max_message_size: int | None,
        request: Request | None = None,
        offer: ClientOffer | None = None,
    ) -> Session:
        return InterimSession(
            role,
            dialect_name=self.name,
            more_bit=False,
            prefix_mask=True,
            close_rule=type(self).status_rule,
            max_message_size=max_message_size,
        )
