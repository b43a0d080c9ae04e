"""hybi-02 and hybi-03 (autumn 2010): the hixie-76 handshake plus `Sec-WebSocket-Draft: 2`,
with the first binary framing (MORE bit, opcodes 0-5, no masking).

No browser shipped these drafts. em-websocket's `framing03.rb` and websocket-ruby's
`handler03.rb` are the implementations this follows. A hybi-01 client sends no Draft
header and is answered as hixie-76 (see hixie76.py).
"""

from __future__ import annotations

from hybi.sansio.dialects.base import ClientOffer, Session
from hybi.sansio.dialects.hixie76 import Hixie76
from hybi.sansio.events import Role
from hybi.sansio.http import Headers, Request
from hybi.sansio.interim_session import InterimSession

__all__ = ["Hybi02"]


class Hybi02(Hixie76):
    name = "hybi-02"
    aliases = ("hybi-03", "draft-2", "draft-3")

    @property
    def listed_as(self) -> int | None:
        return None

    def add_client_headers(self, headers: Headers) -> None:
        headers.add("Sec-WebSocket-Draft", "2")

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
            more_bit=True,
            prefix_mask=False,
            close_rule=None,
            max_message_size=max_message_size,
            challenge=self.challenge(role, request, offer),
        )
